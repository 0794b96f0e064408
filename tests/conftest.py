"""Shared fixtures: the local Hugging Face Hub stand-in (see tests/support/hub_server.py)."""

from tests.support.hub_server import hub_server  # noqa: F401
