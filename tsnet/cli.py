"""``tsnet``: one command with subcommands, one module per command group in :mod:`tsnet.commands`.

Building the parser imports nothing but the standard library: each group registers its commands' names and help
text, and a command's own arguments are added only when that command is parsed (the idea of click's lazy groups).
So ``tsnet --help`` lists every command without importing torch, gradio or dlib; each handler imports what it
needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .commands import GROUPS

__all__ = ["LazySubcommands", "build_parser", "main"]

Configure = Callable[[argparse.ArgumentParser], None]


class LazySubcommands(argparse._SubParsersAction):
    """Subcommands whose arguments are added by ``configure(parser)`` when the subcommand is parsed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Configure] = {}

    def add_command(
        self, name: str, configure: Configure, *, help: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        """Register ``name`` with its help now; ``configure`` adds its arguments and ``handler`` on first use."""
        parser = self.add_parser(name, help=help, description=description)
        self._pending[name] = configure
        return parser

    def configured(self, name: str) -> argparse.ArgumentParser:
        """The subcommand's parser with every argument added (e.g. to read or print its help)."""
        parser = self.choices[name]
        configure = self._pending.pop(name, None)
        if configure is not None:
            configure(parser)
        return parser

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values and values[0] in self.choices:
            self.configured(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsnet",
        description="T-SNet Studio: fast, small facial expression recognition",
        epilog="Each command has --help. Exit status: 0 on success, 1 when the command ran but something failed "
        "(e.g. an input of tsnet predict could not be read), 2 on a usage error.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubcommands)
    for group in GROUPS:
        group.register(subparsers)
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
