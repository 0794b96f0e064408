"""``python -m webapp``: hands the process over to ``tsnet serve`` (same flags and help), which owns the command
line; an exec rather than an import, so webapp never imports the tsnet package above it."""

import os
import sys

os.execv(sys.executable, [sys.executable, "-m", "tsnet", "serve", *sys.argv[1:]])
