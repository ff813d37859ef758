"""Who sent a request: the one identity source of a running server.

Three sources, chosen with ``serve.identity`` (command line ``serve --identity``):

``none``
    No login; everything belongs to the person at the machine (``lokal``, role admin).
    Allowed only on a loopback address: :meth:`Identity.check_bind` refuses anything else.
``password``
    The password file ``serve.auth_file`` (scrypt hashes, :mod:`assistant.auth`) and our own
    session cookie: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` behind https. Sessions
    expire when idle and absolutely, and end when the password line changes or the account
    is removed (checked on every request).
``proxy``
    A reverse proxy that has already authenticated the person (oauth2-proxy, Keycloak
    gatekeeper) passes the name and groups in headers (``serve.proxy_user_header``,
    ``serve.proxy_groups_header``). Those headers are believed only on connections from
    ``serve.trusted_proxies``; from anywhere else the request has no identity at all.

``resolve`` takes plain values (headers with lower-case names, cookies, the TCP peer), so
the web layer and tests call it the same way.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from ..auth import USER_RE, Authenticator
from ..errors import ConfigError, UsageError
from .person import GROUP_RE, Person, local_person, split_list
from .roles import person_for
from .sessions import SessionStore, fingerprint

if TYPE_CHECKING:
    from ..config import Settings

MODES = ("none", "password", "proxy")
COOKIE = "pilot_session"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_GROUPS = 200


def is_loopback_host(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_networks(value: str | list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for item in split_list(value):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"serve.trusted_proxies: {item!r} ist keine IP-Adresse oder kein Netz",
                              f"serve.trusted_proxies: {item!r} is not an IP address or network",
                              "IP-Adressen oder Netze angeben, z. B. 127.0.0.1 oder 10.20.0.0/24 "
                              "(keine Hostnamen)") from None
    return nets


def mode_of(settings: "Settings") -> str:
    mode = (settings.serve.identity or "").strip().lower()
    if not mode:
        return "password" if settings.serve.auth_file else "none"
    if mode not in MODES:
        raise ConfigError(f"serve.identity {mode!r} unbekannt; möglich: {', '.join(MODES)}",
                          f"Unknown serve.identity {mode!r}; choose one of: {', '.join(MODES)}",
                          "--identity password (mit --auth-file) oder --identity proxy (mit --trusted-proxy)")
    return mode


@dataclass
class Request:
    """What identity needs from an HTTP request."""

    headers: Mapping[str, str]          # lower-case names
    cookies: Mapping[str, str]
    peer: str | None                    # the TCP peer's address
    scheme: str = "http"


class Identity:
    def __init__(self, settings: "Settings", *, authenticator: Authenticator | None = None,
                 sessions: SessionStore | None = None) -> None:
        s = settings.serve
        self.settings = settings
        self.mode = mode_of(settings)
        self.trusted = parse_networks(s.trusted_proxies)
        self.user_header = (s.proxy_user_header or "").strip().lower()
        self.groups_header = (s.proxy_groups_header or "").strip().lower()
        self.authenticator = None
        if self.mode == "password":
            if not s.auth_file and authenticator is None:
                raise ConfigError("serve.identity = password braucht eine Passwortdatei",
                                  "serve.identity = password needs an auth file",
                                  "--auth-file DATEI (pilot-assistant user add NAME --auth-file DATEI)")
            self.authenticator = authenticator or Authenticator(s.auth_file)   # a broken file stops us here
        if self.mode == "proxy":
            if not self.trusted:
                raise ConfigError("serve.identity = proxy braucht die Adresse des Proxys",
                                  "serve.identity = proxy needs the proxy's address",
                                  "--trusted-proxy 127.0.0.1 (bzw. serve.trusted_proxies)")
            if not self.user_header:
                raise ConfigError("serve.proxy_user_header ist leer", "serve.proxy_user_header is empty",
                                  'z. B. proxy_user_header = "X-Forwarded-User"')
        if self.mode == "none" and s.auth_file:
            raise ConfigError("serve.identity = none, aber eine Passwortdatei ist gesetzt",
                              "serve.identity = none but an auth file is set",
                              "--identity password oder serve.auth_file leeren")
        self.sessions = sessions or SessionStore(idle_s=s.session_idle_minutes * 60.0,
                                                 max_s=s.session_max_hours * 3600.0)

    # --- the bind rule -----------------------------------------------------------------
    def check_bind(self, host: str) -> None:
        """Refuse a non-loopback address without an identity source: everyone would be ``lokal``."""
        if self.mode == "none" and not is_loopback_host(host):
            raise UsageError(
                f"Ohne Anmeldung startet der Server nur auf 127.0.0.1, nicht auf {host}: sonst wären alle "
                "Personen im Netz dieselbe Person (sie sähen und löschten die Verläufe der anderen).",
                f"Without an identity source the server binds loopback only, not {host}.",
                "--auth-file DATEI (eigene Anmeldung) oder --identity proxy --trusted-proxy ADRESSE "
                "(Anmelde-Proxy, siehe deploy/README.md), oder --host 127.0.0.1")

    # --- addresses behind a proxy ------------------------------------------------------
    def trusted_peer(self, peer: str | None) -> bool:
        if not peer or not self.trusted:
            return False
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def client_address(self, req: Request) -> str | None:
        """The browser's address: the TCP peer, or, from a trusted proxy, the last address in
        ``X-Forwarded-For`` that is not itself a trusted proxy."""
        if not self.trusted_peer(req.peer):
            return req.peer
        hops = [h.strip() for h in (req.headers.get("x-forwarded-for") or "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted_peer(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return req.peer
        return req.peer

    def is_https(self, req: Request) -> bool:
        if self.trusted_peer(req.peer):
            proto = (req.headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower()
            if proto:
                return proto == "https"
        return req.scheme == "https"

    def public_host(self, req: Request) -> str:
        """host[:port] the browser used (a trusted proxy may name it in X-Forwarded-Host)."""
        if self.trusted_peer(req.peer) and req.headers.get("x-forwarded-host"):
            return req.headers["x-forwarded-host"].split(",")[0].strip().lower()
        return (req.headers.get("host") or "").strip().lower()

    # --- who is it ---------------------------------------------------------------------
    def resolve(self, req: Request) -> Person | None:
        """The person behind ``req``, or None (no valid session / not from the trusted proxy)."""
        if self.mode == "none":
            return local_person()
        if self.mode == "password":
            session = self.sessions.get(req.cookies.get(COOKIE), self._fingerprint)
            return person_for(self.settings, session.user, source="password") if session else None
        if not self.trusted_peer(req.peer):
            return None
        name = (req.headers.get(self.user_header) or "").strip()
        if not USER_RE.match(name):
            return None
        groups = []
        if self.groups_header:
            for g in split_list(req.headers.get(self.groups_header) or "")[:MAX_GROUPS]:
                if GROUP_RE.match(g):
                    groups.append(g)
        return person_for(self.settings, name, source="proxy", groups=groups)

    def _fingerprint(self, user: str) -> str | None:
        encoded = self.authenticator.users().get(user) if self.authenticator else None
        return fingerprint(encoded) if encoded else None

    # --- password login ----------------------------------------------------------------
    def login(self, user: str, password: str, client: str | None) -> str | None:
        """A new session token, or None (wrong password, unknown user, locked out)."""
        if self.authenticator is None:
            return None
        user = (user or "").strip()
        if not self.authenticator.verify(user, password, client):
            return None
        fp = self._fingerprint(user)
        return self.sessions.create(user, fp) if fp else None

    def logout(self, token: str | None) -> None:
        self.sessions.revoke(token)

    def locked_for(self, user: str, client: str | None) -> float:
        return self.authenticator.limiter.blocked((user or "").strip(), client) if self.authenticator else 0.0
