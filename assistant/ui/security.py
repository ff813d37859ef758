"""The web surface's own guard rails, as a plain ASGI middleware around Gradio's app.

- Security headers on every response. The Content-Security-Policy keeps the browser
  on this server: an answer or a document that smuggles in ``![](https://…)`` or a
  script cannot make the browser load or send anything elsewhere.
- ``/gradio_api/file=https://…`` makes Gradio *fetch* a URL server-side; an offline
  product has no use for that, and it is egress, so it is refused.
- The login route learns the client address, for the per-client rate limit in
  :mod:`assistant.auth` (Gradio's ``auth=`` callable only gets user and password).
"""
from __future__ import annotations

import asyncio
import contextvars
from typing import Awaitable, Callable
from urllib.parse import unquote

from ..auth import Authenticator

CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("pilot_client", default=None)

# Gradio's frontend needs inline scripts/styles (its config is an inline <script>) and blob:/data: images.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'self'",
    "frame-ancestors 'self'",
    "base-uri 'self'",
    "form-action 'self'",
])
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
]
_OURS = {name for name, _ in HEADERS}


def _fetches_url(path: str) -> bool:
    """True for Gradio's ``file=<http(s) URL>`` routes, however the URL is encoded."""
    decoded = path
    for _ in range(3):   # double/triple encoding must not slip through
        decoded = unquote(decoded)
    low = decoded.lower()
    if "file=" not in low:
        return False
    target = low.split("file=", 1)[1].lstrip("/\\ ")
    return "://" in target or target.startswith(("http:", "https:", "ftp:", "//"))


class SecurityMiddleware:
    def __init__(self, app, **_: object) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _fetches_url(scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "")):
            await self._refuse(send)
            return
        client = scope.get("client")
        token = CLIENT.set(client[0] if client else None)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                message = {**message, "headers": headers + HEADERS}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            CLIENT.reset(token)

    @staticmethod
    async def _refuse(send) -> None:
        body = "Abrufen externer Adressen ist abgeschaltet / fetching external URLs is disabled".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *HEADERS]})
        await send({"type": "http.response.body", "body": body})


def gradio_auth(authenticator: Authenticator) -> Callable[[str, str], Awaitable[bool]]:
    """An async ``auth=`` callable: scrypt runs off the event loop, with the client address."""

    async def check(username: str, password: str) -> bool:
        return await asyncio.to_thread(authenticator.verify, username, password, CLIENT.get())

    return check
