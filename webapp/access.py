"""Who is acting: a signed client cookie bound to a server-side sign-in, Gradio's own auth, or Hugging Face OAuth.

Prediction stays open to everyone, so the app cannot use ``launch(auth=...)`` (that gates every page).
Instead each gated handler asks :func:`require_user`, which accepts, in order, an OAuth profile (Spaces),
``request.username`` (when an operator did launch with Gradio auth) or the user this client signed in as
with the in-app form.

The client is not Gradio's ``session_hash`` (chosen by the browser and visible in queue URLs): it is the
``tsnet_client`` cookie that :mod:`webapp.cookies` gives every browser and ``gradio_client.Client`` on its
first request, a random id signed with a per-server secret (itsdangerous). HttpOnly, so page scripts never
read it. A sign-in binds a user to that id on the server for ``session_seconds``; sign-out or expiry unbinds
it, so a replayed hash, a forged id or an old cookie acts as nobody. Failed sign-ins are throttled per name
and per client address and logged as one line, never with the password.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from itsdangerous import BadSignature, TimestampSigner

from .settings import Settings

__all__ = [
    "CLIENT_COOKIE",
    "Session",
    "SessionBook",
    "SignInThrottle",
    "check_password",
    "refuse",
    "require_user",
    "resolve_user",
]

log = logging.getLogger(__name__)

CLIENT_COOKIE = "tsnet_client"
CLIENT_COOKIE_SECONDS = 30 * 24 * 3600  # how long a client id is honoured; a sign-in expires much sooner
SESSION_SECONDS = 8 * 3600  # one working day signed in, then sign in again
MAX_NAME_LENGTH = 100


def refuse(message: str, title: str = "Not allowed") -> gr.Error:
    """A ``gr.Error`` for an expected refusal: shown to the user, never printed as a traceback on the server."""
    return gr.Error(message, title=title, print_exception=False)


@dataclass
class Session:
    user: str | None = None
    expires: float = 0.0  # clock time the sign-in ends
    skipped: set[str] = field(default_factory=set)  # queue items this client chose to skip


class SessionBook:
    """Clients by signed cookie id, and who is signed in on each (held by ``Services``, not a module global)."""

    def __init__(
        self,
        secret: bytes | None = None,
        session_seconds: float = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = TimestampSigner(secret or secrets.token_bytes(32), salt="tsnet-client")
        self.session_seconds = session_seconds
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # -- the cookie -----------------------------------------------------------------------------------
    def new_cookie(self) -> str:
        """A fresh signed client id for the ``tsnet_client`` cookie."""
        return self._signer.sign(secrets.token_urlsafe(18)).decode()

    def client_id(self, cookie: str | None) -> str | None:
        """The id inside a genuine, unexpired cookie value; None for anything forged, tampered or too old."""
        if not cookie or len(cookie) > 200:
            return None
        try:
            return self._signer.unsign(cookie, max_age=CLIENT_COOKIE_SECONDS).decode()
        except BadSignature:  # includes SignatureExpired
            return None

    def _client(self, request: gr.Request | None) -> str | None:
        cookies = getattr(request, "cookies", None) or {}
        return self.client_id(cookies.get(CLIENT_COOKIE))

    # -- sessions -------------------------------------------------------------------------------------
    def get(self, request: gr.Request | None) -> Session:
        """This client's session; a client without a valid cookie gets a fresh one that is not kept."""
        client = self._client(request)
        if client is None:
            return Session()
        with self._lock:
            session = self._sessions.setdefault(client, Session())
            if session.user is not None and self.clock() >= session.expires:
                session.user = None  # expired: acts as nobody until it signs in again
            return session

    def user(self, request: gr.Request | None) -> str | None:
        return self.get(request).user

    def sign_in(self, request: gr.Request | None, user: str) -> bool:
        """Bind ``user`` to this client until it signs out or the session expires; False without a client cookie."""
        client = self._client(request)
        if client is None:
            return False
        with self._lock:
            session = self._sessions.setdefault(client, Session())
            session.user, session.expires = user, self.clock() + self.session_seconds
        return True

    def sign_out(self, request: gr.Request | None) -> bool:
        """End this client's sign-in; True when there was one."""
        client = self._client(request)
        with self._lock:
            session = self._sessions.get(client or "")
            if session is None or session.user is None:
                return False
            session.user, session.expires = None, 0.0
        return True


class SignInThrottle:
    """At most ``limit`` failed sign-ins per name and per client address within ``window`` seconds."""

    def __init__(
        self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.limit, self.window, self.clock, self.max_keys = limit, window, clock, max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("name", name.strip().casefold()[:MAX_NAME_LENGTH]), ("address", address)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def wait_seconds(self, name: str, address: str) -> float:
        """0 when another attempt is allowed now, else how long until it is."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window - (now - times[0])
                for times in (self._recent(key, now) for key in self._keys(name, address))
                if len(times) >= self.limit
            ]
        return max(waits, default=0.0)

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_keys:  # many names tried: forget the quiet ones first
                for key in [key for key, times in self._failures.items() if not self._recent(key, now)]:
                    del self._failures[key]
                while len(self._failures) >= self.max_keys:
                    del self._failures[next(iter(self._failures))]
            for key in self._keys(name, address):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times

    def succeeded(self, name: str) -> None:
        """A right password clears that name's count (not the address's: one account cannot reset it)."""
        with self._lock:
            self._failures.pop(self._keys(name, "")[0], None)


def client_address(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


def loggable(name: object) -> str:
    """A user-typed name fit for one log line: quoted, escaped, shortened."""
    text = name if isinstance(name, str) else ""
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


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
    return sessions.user(request)


def require_user(
    settings: Settings,
    sessions: SessionBook,
    request: gr.Request | None,
    profile: gr.OAuthProfile | None,
    action: str,
    fallback_name: Any = "",
) -> str:
    """The acting user's name, or a ``gr.Error`` the UI shows as a toast and clients get as the message."""
    user = resolve_user(settings, sessions, request, profile)
    if not settings.gated:
        typed = fallback_name.strip() if isinstance(fallback_name, str) else ""
        return user or typed or "annotator"
    if user is None:
        raise refuse(f"Sign in to {action}.", title="Sign-in required")
    if user not in settings.users and user not in settings.allowed_users:
        raise refuse(f"{user} is not allowed to {action}.")
    return user
