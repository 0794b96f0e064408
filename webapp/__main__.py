"""``python -m webapp``: same as ``tsnet serve`` (the command line lives in ``tsnet``)."""

import sys

from tsnet.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
