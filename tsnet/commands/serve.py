"""``tsnet serve``: the Gradio app on the embedded defaults (data in ``$TSNET_HOME``, default ``./tsnet-data``), and
``tsnet bench-serve``: the app under concurrent load."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .._console import note, note_data_folder

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


def _bench_serve(args: argparse.Namespace) -> int:
    """Start ``tsnet serve`` on a free loopback port (or use ``--url``) and measure it; 1 when an answer was wrong."""
    import httpx

    from webapp.load_bench import format_report, run

    home = None
    if args.url is None:
        from retrain.layout import DataLayout

        home = DataLayout.from_env().home if DataLayout.home_is_set() else None  # unset: a fresh temporary one
        if home is not None:
            note_data_folder("bench-serve", home)
        else:
            note("bench-serve", "data folder: a fresh temporary one ($TSNET_HOME is not set)")
    try:
        result = run(
            home=home,
            requests=args.requests,
            clients=args.clients,
            import_images=args.import_images,
            with_teacher=args.teacher,
            url=args.url,
        )
    except (httpx.HTTPError, OSError, RuntimeError) as error:  # refused, timed out, a server that never came up
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        note("bench-serve", f"error: could not measure {args.url or 'the started server'}: {detail}")
        return 1
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0 if result["all_correct"] and result["server_alive"] else 1


def _configure_bench_serve(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Exit status: 0 when every answer equalled the sequential one and the server stayed up, else 1."
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--requests", type=int, default=20, help="predictions sent at once (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="gradio_client clients (default: %(default)s)")
    parser.add_argument(
        "--import-images", type=int, default=10, help="photos imported meanwhile (default: %(default)s)"
    )
    parser.add_argument("--teacher", action="store_true", help="also explain every face with the teacher")
    parser.add_argument(
        "--url",
        help="measure this running server instead of starting one (started: data in $TSNET_HOME, else a fresh "
        "temporary folder)",
    )
    parser.set_defaults(handler=_bench_serve)


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``bench-serve`` to the ``tsnet`` command."""
    subparsers.add_command(
        "serve",
        _add_arguments,
        help="run the Gradio app: predict, annotate, retrain, models",
        description="Start the T-SNet Studio web app on the data directory $TSNET_HOME (default ./tsnet-data). "
        "TSNET_USERS='alice:pw,bob:pw2' gates annotate/retrain/promote behind a sign-in; prediction stays open.",
    )
    text = (
        "the app under load: concurrent 1920x1080 predictions from several clients plus an import; latency "
        "p50/p95, requests/s and whether every answer equals the sequential one"
    )
    subparsers.add_command("bench-serve", _configure_bench_serve, help=text, description=text)
