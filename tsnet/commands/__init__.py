"""The command groups, in the order ``tsnet --help`` lists them; each module's ``register`` adds its commands.

Every module here imports only the standard library at import time: what a command needs is imported by its
handler (or, for flags derived from library defaults, when that command is parsed).
"""

from . import explain, label, predict, retrain, serve, space, training

__all__ = ["GROUPS"]

GROUPS = (training, predict, explain, label, retrain, space, serve)
