"""T-SNet Studio's Gradio app: predict, annotate, retrain and models tabs over core, labeling and retrain.

``create_app()`` builds the app from the environment (``TSNET_HOME`` and friends), so a Hugging Face
Space's ``app.py`` is ``from webapp import create_app; create_app().launch()``; ``tsnet serve`` (and
``python -m webapp``) launches it from the command line. Telemetry is off unless the environment turns it
on: both variables are set before gradio or huggingface_hub is imported by this package.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from typing import TYPE_CHECKING  # noqa: E402

from .services import ModelUnavailable, Services, load_services  # noqa: E402
from .settings import Settings  # noqa: E402

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["ModelUnavailable", "Services", "Settings", "build_demo", "create_app", "load_services"]


def build_demo(services: Services) -> gr.Blocks:
    from .app import build_demo as build

    return build(services)


def create_app(services: Services | None = None) -> gr.Blocks:
    """The app on the embedded defaults (or on ``services``); raises :class:`ModelUnavailable` without a model."""
    return build_demo(services or load_services())
