"""The ``tsnet_client`` cookie: every HTTP client gets a signed random id on its first request.

A pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` would buffer Gradio's event streams). A request
without a genuine cookie is handed one in its own headers too, so even its handler already sees the id the
response then sets. Browsers send it back on every same-origin request; ``gradio_client.Client`` keeps the
cookies of its first ``/config`` answer for all later calls. See :mod:`webapp.access` for what it is for.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import CLIENT_COOKIE, CLIENT_COOKIE_SECONDS, SessionBook

__all__ = ["ClientCookieMiddleware"]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


class ClientCookieMiddleware:
    """``Middleware(ClientCookieMiddleware, sessions=..., cross_site=...)`` in the app's middleware list."""

    def __init__(self, app: ASGIApp, sessions: SessionBook, cross_site: bool = False) -> None:
        self.app = app
        self.sessions = sessions
        self.cross_site = cross_site  # a Space is shown in an iframe on huggingface.co: the cookie must cross sites

    def _set_cookie(self, value: str, scope: Scope) -> bytes:
        secure = scope.get("scheme") == "https" or _header(scope, b"x-forwarded-proto") == "https"
        parts = [f"{CLIENT_COOKIE}={value}", "Path=/", f"Max-Age={CLIENT_COOKIE_SECONDS}", "HttpOnly"]
        parts += ["SameSite=None", "Secure"] if self.cross_site else ["SameSite=Lax"] + (["Secure"] if secure else [])
        return "; ".join(parts).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = cookie_parser(_header(scope, b"cookie"))
        if self.sessions.client_id(cookies.get(CLIENT_COOKIE)) is not None:
            await self.app(scope, receive, send)
            return
        value = self.sessions.new_cookie()
        cookies[CLIENT_COOKIE] = value
        header = "; ".join(f"{name}={text}" for name, text in cookies.items()).encode("latin-1")
        headers: list[Any] = [(key, text) for key, text in scope.get("headers", []) if key != b"cookie"]
        scope = {**scope, "headers": [*headers, (b"cookie", header)]}
        set_cookie = self._set_cookie(value, scope)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
