"""``python -m proctor.cli``: the same command line as the ``proctor`` script."""

import sys

from proctor.cli import main

sys.exit(main())
