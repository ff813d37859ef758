"""A real WebDAV server on loopback for the sync and save-to tests: WsgiDAV served by cheroot,
laid out like Nextcloud/openDesk (``/remote.php/dav/files/USER/`` mapped to ``root/USER``),
basic auth with one (app) password per user, each user sees only their own files.

Test switches: ``hang(substr, method)`` makes matching requests wait (until ``release()`` or
the server stops) without answering, like a server that hangs; ``held`` is set once one
waits. ``redirect(substr, location)`` answers matching requests with 302 to ``location``. ``tls=(cert, key)`` serves HTTPS (see ``self_signed``). Every request is logged as
(method, path, status); status 0 while (or if) it is not answered.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from pathlib import Path
from urllib.parse import quote, unquote

PREFIX = "/remote.php/dav/files"


class NextcloudDav:
    def __init__(self, root: Path, users: dict[str, str] | None = None, *,
                 tls: tuple[Path, Path] | None = None) -> None:
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp

        self.root = Path(root)
        self.users = users or {"anna": "app-passwort-anna"}
        for user in self.users:
            (self.root / user).mkdir(parents=True, exist_ok=True)
        app = WsgiDAVApp({
            "host": "127.0.0.1", "port": 0,
            "provider_mapping": {f"{PREFIX}/{u}": str(self.root / u) for u in self.users},
            "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                                   "default_to_digest": False},
            "simple_dc": {"user_mapping": {f"{PREFIX}/{u}": {u: {"password": p}} for u, p in self.users.items()}},
            "verbose": 1, "logging": {"enable": False}, "dir_browser": {"enable": False},
            "lock_storage": True,
        })
        self.log: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._hang: tuple[str, str | None] | None = None
        self._redirect: tuple[str, str] | None = None
        self.held = threading.Event()
        self._go = threading.Event()
        self.server = wsgi.Server(("127.0.0.1", 0), self._wrap(app), numthreads=8, shutdown_timeout=1)
        if tls:
            from cheroot.ssl.builtin import BuiltinSSLAdapter

            self.server.ssl_adapter = BuiltinSSLAdapter(str(tls[0]), str(tls[1]))
        self.scheme = "https" if tls else "http"
        self.server.prepare()
        self.port = self.server.bind_addr[1]
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # --- switches and views ----------------------------------------------------------------
    def url(self, user: str = "anna", path: str = "") -> str:
        return f"{self.base}{PREFIX}/{user}/" + quote(path.strip("/"))

    def folder(self, user: str = "anna") -> Path:
        return self.root / user

    def hang(self, substring: str, method: str | None = None) -> None:
        self.held, self._go = threading.Event(), threading.Event()
        self._hang = (substring, method)

    def redirect(self, substring: str | None, location: str = "") -> None:
        self._redirect = (substring, location) if substring else None

    def release(self) -> None:
        self._hang = None
        self._go.set()

    def requests(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.log if method is None or m == method]

    # --- the WSGI wrapper ------------------------------------------------------------------
    def _wrap(self, app):
        def wrapped(environ, start_response):
            method, path = environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))
            with self._lock:
                self.log.append((method, path, 0))
                at = len(self.log) - 1
            hang = self._hang
            if hang and hang[0] in path and hang[1] in (None, method):
                self.held.set()
                self._go.wait(120)   # bounded: a test that forgets to release still ends
            redirect = self._redirect
            if redirect and redirect[0] in path:
                with self._lock:
                    self.log[at] = (method, path, 302)
                start_response("302 Found", [("Location", redirect[1]), ("Content-Length", "0")])
                return [b""]

            def recording(st, headers, exc_info=None):   # WsgiDAV answers while the body is read
                with self._lock:
                    self.log[at] = (method, path, int(st.split()[0]))
                return start_response(st, headers, exc_info)

            return app(environ, recording)
        return wrapped

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "NextcloudDav":
        self._thread = threading.Thread(target=self.server.serve, daemon=True, name="webdav-test-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self.server.stop()
        if self._thread:
            self._thread.join(10)


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throw-away certificate for ``host`` (IP SAN) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
