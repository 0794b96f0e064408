"""Who is acting: per-browser-session sign-in, Gradio's own auth, or Hugging Face OAuth on a Space.

Prediction stays open to everyone, so the app cannot use ``launch(auth=...)`` (that gates every
page). Instead each gated handler asks :func:`require_user`, which accepts, in order, an OAuth
profile (Spaces), ``request.username`` (when an operator did launch with Gradio auth) or the user
this session signed in as with the in-app form (``sign_in``). Sessions are keyed by Gradio's
``session_hash``, which a browser tab and a ``gradio_client.Client`` each keep for their lifetime.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field

import gradio as gr

from .settings import Settings

__all__ = ["Session", "SessionBook", "check_password", "resolve_user", "require_user"]


@dataclass
class Session:
    user: str | None = None
    skipped: set[str] = field(default_factory=set)  # queue items this session chose to skip


class SessionBook:
    """Per-session data shared by the handlers of one app (held by ``Services``, not a module global)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, request: gr.Request | None) -> Session:
        key = getattr(request, "session_hash", None) or "anonymous"
        with self._lock:
            return self._sessions.setdefault(key, Session())

    def forget(self, request: gr.Request | None) -> None:
        key = getattr(request, "session_hash", None)
        with self._lock:
            self._sessions.pop(key or "", None)


def check_password(users: dict[str, str], name: str, password: str) -> bool:
    """Constant-time comparison, and the same work for unknown names, so timing reveals nothing."""
    expected = users.get(name.strip(), "")
    return hmac.compare_digest(expected.encode(), password.encode()) and bool(expected)


def resolve_user(
    settings: Settings, sessions: SessionBook, request: gr.Request | None, profile: gr.OAuthProfile | None = None
) -> str | None:
    if profile is not None:
        return str(profile.username)
    username = getattr(request, "username", None)
    if username:
        return str(username)
    return sessions.get(request).user


def require_user(
    settings: Settings,
    sessions: SessionBook,
    request: gr.Request | None,
    profile: gr.OAuthProfile | None,
    action: str,
    fallback_name: str = "",
) -> str:
    """The acting user's name, or a ``gr.Error`` the UI shows as a toast and clients get as the message."""
    user = resolve_user(settings, sessions, request, profile)
    if not settings.gated:
        return user or fallback_name.strip() or "annotator"
    if user is None:
        raise gr.Error(f"Sign in to {action}.", title="Sign-in required")
    if user not in settings.users and user not in settings.allowed_users:
        raise gr.Error(f"{user} is not allowed to {action}.", title="Not allowed")
    return user
