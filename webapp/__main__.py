"""``python -m webapp``: same as ``tsnet serve``."""

import sys

from . import main

sys.exit(main())
