"""``python -m proctor.cmdserver``: the ``proctor`` console script, exactly."""

import sys

from proctor.cmdserver.client import main

sys.exit(main())
