"""``tsnet serve``: the Gradio app on the embedded defaults (data in ``$TSNET_HOME``, default ``./tsnet-data``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["register", "serve"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also open a temporary public *.gradio.live link")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Load models and store, then block serving until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from webapp import ModelUnavailable, Settings, create_app, load_services

    try:
        services = load_services(Settings.from_env())
    except ModelUnavailable as error:
        print(f"tsnet serve: error: {error}", file=sys.stderr)
        return 2
    print(f"T-SNet Studio: data in {services.settings.home.resolve()}, serving {services.model_version()}")
    create_app(services).launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        show_error=True,
        allowed_paths=[str(services.settings.home / "examples")],
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``tsnet`` command."""
    subparsers.add_command(
        "serve",
        _add_arguments,
        help="run the Gradio app: predict, annotate, retrain, models",
        description="Start the T-SNet Studio web app on the data directory $TSNET_HOME (default ./tsnet-data). "
        "TSNET_USERS='alice:pw,bob:pw2' gates annotate/retrain/promote behind a sign-in; prediction stays open.",
    )
