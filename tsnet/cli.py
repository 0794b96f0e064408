"""``tsnet``: one command with subcommands; each package registers its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from core import cli as core_cli
    from labeling import cli as labeling_cli
    from retrain import cli_retrain, cli_training
    from webapp import cli as webapp_cli

    from . import space_cli

    parser = argparse.ArgumentParser(
        prog="tsnet", description="T-SNet Studio: fast, small facial expression recognition"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_training.register(subparsers)
    core_cli.register(subparsers)
    labeling_cli.register(subparsers)
    cli_retrain.register(subparsers)
    space_cli.register(subparsers)
    webapp_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"tsnet {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
