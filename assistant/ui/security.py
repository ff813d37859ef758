"""The web surface's guard, an ASGI middleware around everything the server answers.

In the order it acts on a request:

1. ``/gradio_api/file=https://…`` makes Gradio *fetch* a URL server-side; an offline product
   has no use for that, and it is egress: refused.
2. Requests from another site are refused: a foreign ``Origin`` (or ``Sec-Fetch-Site:
   cross-site`` on anything but following a link), so no other page can read the token,
   log a colleague in under its own account, or act in their name. No CORS header ever
   leaves this server. Without login, the ``Host`` must be a loopback name (no DNS rebinding).
3. The identity (:mod:`assistant.access.identity`): every request except the login page
   needs a person; the :class:`~assistant.access.Person` goes into ``scope["state"]`` where
   the UI handlers read it (``UIContext.person``).
4. Security headers on every response. The page's inline scripts get a fresh nonce each
   time, so the Content-Security-Policy needs no ``'unsafe-inline'`` for scripts. Files
   from Gradio's file routes get ``Content-Security-Policy: sandbox`` and, unless they are
   plain images, ``Content-Disposition: attachment``: an uploaded HTML file never runs as
   this site.
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

from ..access.identity import Identity, Request, is_loopback_host

# Gradio's frontend needs inline styles and blob:/data: images; scripts only from here or with the nonce
CSP_TEMPLATE = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'nonce-{nonce}'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'self'",
    "base-uri 'self'",
    "form-action 'self'",
])
# for everything that is not the page itself (JSON, assets, files): nothing may run at all
CSP_STRICT = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CSP_SANDBOX = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'none'"
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
]
_OURS = {name for name, _ in HEADERS} | {b"content-security-policy"}
INLINE_IMAGES = (b"image/png", b"image/jpeg", b"image/gif", b"image/webp")
FILE_ROUTES = ("/gradio_api/file", "/file=", "/file/", "/gradio_api/stream")
# pages of ours that work without a person (the login form itself)
PUBLIC = {"/login", "/login/", "/logout", "/logout/"}
_SCRIPT = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)
MAX_PAGE_BYTES = 8 * 1024 * 1024


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


def _headers(scope) -> dict[str, str]:
    """Lower-case name -> value; a header sent twice is joined with ", " (so a second, forged
    user header makes the name invalid instead of picking one of them)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or []:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def _split_origin(url: str, default_scheme: str) -> tuple[str, str, int | None] | None:
    """(scheme, host name, port or None for the scheme's default) of an origin or a Host header."""
    parts = urlsplit(url if "://" in url else f"{default_scheme}://{url}")
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port == {"http": 80, "https": 443}.get(parts.scheme):
        port = None
    return parts.scheme, parts.hostname.lower(), port


def same_origin(origin: str, host: str, scheme: str) -> bool:
    """``origin`` names this server as the browser reached it (``host`` from the Host header).

    A Host without a port (a proxy that sets only the name) matches any port of that name; an
    https origin matches when we see plain http (TLS ended at a proxy we were not told about)."""
    theirs, mine = _split_origin(origin, scheme), _split_origin(host, scheme)
    if theirs is None or mine is None or theirs[1] != mine[1]:
        return False
    if theirs[0] != mine[0] and not (theirs[0] == "https" and mine[0] == "http"):
        return False
    explicit_port = ":" in host.rsplit("]", 1)[-1]
    return theirs[2] == mine[2] or not explicit_port


def request_of(scope, headers: dict[str, str] | None = None) -> Request:
    headers = headers if headers is not None else _headers(scope)
    client = scope.get("client")
    return Request(headers=headers, cookies=_cookies(headers.get("cookie", "")),
                   peer=client[0] if client else None,
                   scheme="https" if scope.get("scheme") in ("https", "wss") else "http")


class Guard:
    """See the module docstring. ``identity`` decides who a request comes from."""

    def __init__(self, app, identity: Identity) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        raw = scope.get("raw_path", b"").decode("latin-1") or path
        headers = _headers(scope)
        req = request_of(scope, headers)
        if _fetches_url(raw):
            await self._refuse(scope, send, 403, "Abrufen externer Adressen ist abgeschaltet / "
                                                 "fetching external URLs is disabled")
            return
        why = self._foreign(scope, req)
        if why:
            await self._refuse(scope, send, 403, why)
            return
        person = self.identity.resolve(req)
        if person is None and path not in PUBLIC:
            await self._unauthenticated(scope, send, headers)
            return
        state = scope.setdefault("state", {})
        state["pilot_person"] = person
        state["pilot_request"] = req
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        page = scope["method"] in ("GET", "HEAD") and not path.startswith(
            ("/gradio_api", "/assets", "/static", "/svelte", "/dokument", "/login", "/logout", "/theme.css",
             "/favicon", "/manifest.json", "/config", "/info"))
        if page:   # the page is rewritten (nonces): ask the inner app for it uncompressed
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        await self.app(scope, receive, _Responder(send, path, page).send)

    def _foreign(self, scope, req: Request) -> str:
        """Why the request counts as coming from another site ("" = it does not)."""
        host = self.identity.public_host(req)
        if self.identity.mode == "none":   # loopback only: a DNS name pointing here is someone else's page
            split = _split_origin(host, "http") if host else None
            if split is None or not is_loopback_host(split[1]):
                return "Unbekannter Host / unknown Host header (nur 127.0.0.1 oder localhost)"
        origin = req.headers.get("origin")
        scheme = "https" if self.identity.is_https(req) else "http"
        if origin is not None and (origin == "null" or not same_origin(origin, host, scheme)):
            return "Anfrage einer fremden Seite abgelehnt / cross-origin request refused"
        site = (req.headers.get("sec-fetch-site") or "").lower()
        if site in ("cross-site", "same-site"):
            navigating = (req.headers.get("sec-fetch-mode") == "navigate" and scope.get("method") in ("GET", "HEAD"))
            if not navigating:
                return "Anfrage einer fremden Seite abgelehnt / cross-site request refused"
        return ""

    async def _unauthenticated(self, scope, send, headers: dict[str, str]) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        if self.identity.mode == "password":
            if scope["method"] in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
                # relative, so it also works behind a proxy that serves us under a sub-path
                depth = max(0, scope.get("path", "/").count("/") - 1)
                target = ("../" * depth or "./") + "login"
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", target.encode()), (b"cache-control", b"no-store"),
                                        (b"content-length", b"0"), *self._base_headers(CSP_STRICT)]})
                await send({"type": "http.response.body", "body": b""})
                return
            await self._refuse(scope, send, 401, "Nicht angemeldet oder Sitzung abgelaufen / not signed in")
            return
        await self._refuse(scope, send, 403, "Keine Anmeldung: Zugriff nur über den Anmelde-Proxy / "
                                             "no identity: access only through the sign-in proxy")

    @staticmethod
    def _base_headers(csp: str) -> list[tuple[bytes, bytes]]:
        return [(b"content-security-policy", csp.encode()), *HEADERS]

    async def _refuse(self, scope, send, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403})
            return
        body = json.dumps({"error": text}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
                                *self._base_headers(CSP_STRICT)]})
        await send({"type": "http.response.body", "body": body})


class _Responder:
    """Wraps ``send``: drops CORS headers, sets ours, hardens file responses, adds script nonces
    to the page."""

    def __init__(self, send, path: str, page: bool) -> None:
        self._send, self.path, self.page = send, path, page
        self.start: dict[str, Any] | None = None
        self.buffer: bytearray | None = None
        self.nonce = secrets.token_urlsafe(18)

    async def send(self, message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k.lower(), v) for k, v in message.get("headers", [])]
            kept = [(k, v) for k, v in headers
                    if not k.startswith(b"access-control-") and k not in _OURS]
            own_csp = next((v for k, v in headers if k == b"content-security-policy"), None)
            ctype = next((v for k, v in headers if k == b"content-type"), b"").split(b";")[0].strip().lower()
            if self.path.startswith(FILE_ROUTES):
                csp = CSP_SANDBOX
                if ctype not in INLINE_IMAGES:   # a download, keeping the file name Gradio gave it
                    given = next((v for k, v in kept if k == b"content-disposition"), b"")
                    params = given.split(b";", 1)[1].strip() if b";" in given else b""
                    kept = [(k, v) for k, v in kept if k != b"content-disposition"]
                    kept.append((b"content-disposition", b"attachment" + (b"; " + params if params else b"")))
            elif own_csp is not None and own_csp.startswith(b"sandbox"):
                csp = own_csp.decode("latin-1")   # our document route decides for its files
            elif ctype == b"text/html":
                csp = CSP_TEMPLATE.format(nonce=self.nonce)
            else:
                csp = CSP_STRICT
            message = {**message, "headers": kept + [(b"content-security-policy", csp.encode()), *HEADERS]}
            if self.page and ctype == b"text/html":
                self.start, self.buffer = message, bytearray()
                return
            await self._send(message)
            return
        if message["type"] == "http.response.body" and self.buffer is not None:
            self.buffer += message.get("body", b"")
            if len(self.buffer) > MAX_PAGE_BYTES:   # not a page we know; pass it on unchanged
                await self._flush(bytes(self.buffer), message.get("more_body", False))
                return
            if not message.get("more_body", False):
                body = _SCRIPT.sub(b'<script nonce="' + self.nonce.encode() + b'"', bytes(self.buffer))
                await self._flush(body, False)
            return
        await self._send(message)

    async def _flush(self, body: bytes, more: bool) -> None:
        start, self.buffer = self.start, None
        if start is not None:
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            if not more:
                headers.append((b"content-length", str(len(body)).encode()))
            await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": more})
