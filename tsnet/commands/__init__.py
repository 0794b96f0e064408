"""The command groups, in the order ``tsnet --help`` lists them; each module's ``register`` adds its commands."""

from retrain import cli_training as training

from . import label, predict, retrain, serve, space

__all__ = ["GROUPS"]

GROUPS = (training, predict, label, retrain, space, serve)
