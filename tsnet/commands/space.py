"""``tsnet space build|push``: the Hugging Face Space bundle from the command line.

Lives in ``tsnet`` (not ``spaces``) and imports ``spaces`` only when a command runs, so ``tsnet`` keeps working
inside the Space bundle, which ships no ``spaces`` package (the name belongs to a PyPI package on Spaces).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from .._console import note_data_folder

__all__ = ["register"]


def _model_repo(args: argparse.Namespace) -> str | None:
    """``--model-repo``, else ``TSNET_HUB_REPO`` unless weights were named explicitly."""
    if args.model_repo is not None:
        return args.model_repo or None
    return None if args.weights_from else (os.environ.get("TSNET_HUB_REPO") or None)


def _build(args: argparse.Namespace, out: str, force: bool) -> Any:
    from spaces.bundle import build_space

    if args.weights_from is None and not _model_repo(args):
        from retrain.layout import DataLayout

        note_data_folder(f"space {args.space_command}", DataLayout.from_env().home)  # the served version lives there
    build = build_space(
        out, weights_from=args.weights_from, model_repo=_model_repo(args), title=args.title, force=force
    )
    served = (
        f"model repo {build.model_repo}"
        if build.model_repo
        else "; ".join(f"{k}: {v}" for k, v in build.weights.items())
    )
    print(f"Built Space in {build.folder}: {len(build.files)} files, {build.size_bytes / 1e6:.1f} MB ({served})")
    return build


def _run_build(args: argparse.Namespace) -> int:
    _build(args, args.out, args.force)
    return 0


def _run_push(args: argparse.Namespace) -> int:
    from retrain.hub.transport import PublishError
    from spaces.bundle import push_space

    try:
        if args.bundle:
            result = push_space(args.bundle, args.repo, private=args.private or None, commit_message=args.message)
        else:
            with tempfile.TemporaryDirectory(prefix="tsnet-space-") as folder:
                _build(args, folder, force=False)
                result = push_space(folder, args.repo, private=args.private or None, commit_message=args.message)
    except PublishError as error:  # already free of the token
        print(f"tsnet space push: error: {error}", file=sys.stderr)
        return 1
    print(f"Pushed to Space {args.repo}: {result}")
    return 0


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights-from",
        metavar="DIR",
        help="bundle DIR/student and DIR/teacher (default: the registry's served version, else the shipped weights)",
    )
    parser.add_argument(
        "--model-repo",
        metavar="REPO",
        help="serve this published model repo (preload_from_hub + download at start) instead of bundling weights "
        "(default: $TSNET_HUB_REPO; pass '' to bundle weights anyway)",
    )
    parser.add_argument("--title", default="T-SNet Studio", help="the Space's title")


def register(subparsers: Any) -> None:
    """Add ``space build`` and ``space push`` to the ``tsnet`` command."""
    subparsers.add_command(
        "space",
        _configure,
        help="build or push the Hugging Face Space bundle",
        description="The Hugging Face Space: a self-contained folder (app, pinned requirements, our packages, "
        "weights) and its upload.",
    )


def _configure(space: argparse.ArgumentParser) -> None:
    commands = space.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    space.set_defaults(handler=lambda args: (space.print_help(), 2)[1])

    build = commands.add_parser(
        "build",
        help="assemble the Space folder",
        description="Assemble a self-contained Space folder: README with the Spaces YAML header, app.py, "
        "space_runtime.py, requirements.txt pinned to the installed versions, our packages and the served weights.",
    )
    build.add_argument("out", metavar="OUT", help="folder to create (must be empty or absent)")
    _add_build_options(build)
    build.add_argument("--force", action="store_true", help="replace OUT if it holds an earlier bundle")
    build.set_defaults(handler=_run_build)

    push = commands.add_parser(
        "push",
        help="upload the Space to the Hub (token from HF_TOKEN)",
        description="Upload the Space bundle to REPO (repo_type=space, created if missing) as one commit, with "
        "retries. The token comes from HF_TOKEN and is never printed.",
    )
    push.add_argument("repo", metavar="REPO", help="Space id, e.g. you/tsnet-studio")
    push.add_argument("--bundle", metavar="DIR", help="push this built bundle (default: build one now)")
    _add_build_options(push)
    push.add_argument("--private", action="store_true", help="create the Space private")
    push.add_argument("--message", help="commit message")
    push.set_defaults(handler=_run_push)
