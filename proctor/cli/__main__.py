"""``python -m proctor.cli``: the command line of the ``proctor`` script, less the script's
own ``proctor server`` group (``python -m proctor.cmdserver`` is the script itself)."""

import sys

from proctor.cli import main

sys.exit(main())
