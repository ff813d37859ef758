"""A folder on a WebDAV file store (openDesk/Nextcloud), through webdav4 (httpx underneath).

The guarantees of the OParl client, for WebDAV: requests go only to the host of the
configured URL (a redirect to another host is refused before anything is sent there), TLS
is verified (the system's CAs plus an optional city CA), every request has a timeout and
timeouts, connection errors, 429 and 5xx are retried a bounded number of times with
backoff; downloads are bounded in size. Plain http only to loopback, so an app password
never crosses a network unencrypted.

The password (a Nextcloud app password) comes from a file or ``PILOT_ASSISTANT_WEBDAV_PASSWORD``,
never from a flag, and appears in no message, log or repr.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import mimetypes
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .. import __version__
from ..errors import UsageError, UserError
from ..fsutil import commit, write_limited

PASSWORD_ENV = "PILOT_ASSISTANT_WEBDAV_PASSWORD"
NEXTCLOUD_FILES = "/remote.php/dav/files/"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_ENTRIES = 100_000      # files and folders in one synced tree
MAX_DEPTH = 32
SCHEMES = {"https": "https", "webdav": "https", "webdavs": "https", "davs": "https", "http": "http",
           "webdav+http": "http"}
_PORTS = {"http": 80, "https": 443}
URL_FIX = "https://cloud.stadt.de/remote.php/dav/files/NAME/ORDNER (Nextcloud: Dateien → Einstellungen → WebDAV)"


class DavError(UserError):
    """The folder as a whole cannot be used: login refused, folder missing, server unreachable."""


class Conflict(DavError):
    """A conditional write was refused: the file changed (or appeared) since we last saw it."""


class FileProblem(Exception):
    """One file cannot be fetched (too large, gone meanwhile); the others can."""


class _ForeignHost(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    path: str                  # relative to the folder, '/'-separated, decoded
    etag: str
    size: int | None = None
    modified: str = ""
    is_dir: bool = False


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)


# --- URLs and secrets --------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_url(url: str) -> tuple[str, str]:
    """(http(s) URL of the folder ending in '/', user named in the URL or "").

    ``webdav://`` and ``webdavs://`` mean HTTPS; plain HTTP (``http://``, ``webdav+http://``)
    is accepted for loopback only."""
    parts = urlsplit((url or "").strip())
    scheme = SCHEMES.get(parts.scheme.lower())
    if not scheme or not parts.hostname:
        raise UsageError(f"Keine WebDAV-URL: {url!r}", f"not a WebDAV URL: {url!r}", URL_FIX)
    if parts.password is not None:
        raise UsageError("Das Passwort gehört nicht in die URL", "the password does not belong in the URL",
                         f"--password-file DATEI oder {PASSWORD_ENV}")
    if "/apps/files" in parts.path or parts.path.startswith("/index.php"):
        raise UsageError(f"{url} ist die Web-Oberfläche, nicht die WebDAV-Adresse",
                         f"{url} is the web UI, not the WebDAV address", URL_FIX)
    if scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(f"Unverschlüsseltes http zu {parts.hostname} abgelehnt (das App-Passwort ginge im Klartext "
                         "über das Netz)", f"plain http to {parts.hostname} refused (the app password would cross "
                         "the network unencrypted)", "https:// oder webdav:// verwenden")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    path = quote(unquote(parts.path or "/"), safe="/@:+,;=!$&'()*~")
    return urlunsplit((scheme, netloc, path.rstrip("/") + "/", "", "")), unquote(parts.username or "")


def display_path(url: str) -> str:
    """Where a person finds the file in openDesk/Nextcloud: the path inside the user's files."""
    path = unquote(urlsplit(url).path)
    if NEXTCLOUD_FILES in path:
        rest = path.split(NEXTCLOUD_FILES, 1)[1]
        return "/" + (rest.split("/", 1)[1] if "/" in rest else "")
    return path


def read_password(password_file: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The app password from ``password_file`` (first line) or the environment."""
    environ = os.environ if environ is None else environ
    if password_file:
        path = Path(password_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"Passwortdatei {path} nicht lesbar ({getattr(exc, 'strerror', None) or exc})",
                             f"password file {path} unreadable", "Pfad und Leserechte prüfen (chmod 600)") from None
        password = (text.splitlines() or [""])[0].strip()
        if not password:
            raise UsageError(f"Passwortdatei {path} ist leer", f"password file {path} is empty",
                             "App-Passwort in die erste Zeile schreiben")
        return password
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    raise UsageError("Kein WebDAV-Passwort angegeben", "no WebDAV password given",
                     f"--password-file DATEI (erste Zeile: App-Passwort) oder Umgebungsvariable {PASSWORD_ENV}")


def etag_value(tag: str | None) -> str:
    """An ETag without W/ and quotes (servers quote it in some places and not in others)."""
    tag = (tag or "").strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    return tag.strip('"')


def safe_relative(path: str) -> str:
    """A folder-relative path from the server, refused if it could leave the folder."""
    parts = path.strip("/").split("/")
    if not path.strip("/") or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise DavError(f"Der Server nennt einen unzulässigen Pfad: {path!r}", f"the server sent an unsafe path: {path!r}",
                       "Server prüfen; der Abgleich bricht ab, damit nichts außerhalb des Ordners geschrieben wird")
    return "/".join(parts)


# --- the folder --------------------------------------------------------------------------

class Folder:
    """One WebDAV folder: list it (recursively), fetch, stat and write files in it."""

    def __init__(self, url: str, credentials: Credentials, *, timeout: float = 30.0, retries: int = 2,
                 ca_file: str = "", backoff: float = 0.5) -> None:
        import httpx
        from webdav4.client import Client

        self.url, _ = normalize_url(url)
        parts = urlsplit(self.url)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "", parts.port
        self.user = credentials.user
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.requests = self.retried = 0
        verify: Any = True
        if self.scheme == "https":
            verify = ssl.create_default_context()
            if ca_file:
                try:
                    verify.load_verify_locations(cafile=str(Path(ca_file).expanduser()))
                except (OSError, ssl.SSLError) as exc:
                    raise UsageError(f"CA-Datei {ca_file} nicht lesbar ({exc})", f"CA file {ca_file} unreadable",
                                     "webdav.ca_file: Zertifikat(e) der Stadt-CA als PEM") from None
        self.client = Client(self.url, auth=(credentials.user, credentials.password), retry=self._retry,
                             timeout=httpx.Timeout(timeout), verify=verify, trust_env=False,
                             follow_redirects=False, event_hooks={"request": [self._guard]},
                             headers={"User-Agent": f"pilot-assistant/{__version__} (WebDAV)"})

    def close(self) -> None:
        self.client.http.close()

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def file_url(self, rel: str) -> str:
        return self.url + quote(rel, safe="/")

    # --- transport -------------------------------------------------------------------------
    def _guard(self, request: Any) -> None:
        """Every request, redirects included, before it is sent: this host only."""
        url = request.url
        if (url.scheme, url.host, url.port or _PORTS[url.scheme]) != (self.scheme, self.host,
                                                                        self.port or _PORTS[self.scheme]):
            raise _ForeignHost(str(url.copy_with(username=None, password=None, query=None)))
        self.requests += 1

    def _retry(self, fn: Callable[[], Any]) -> Any:
        import httpx
        from webdav4.client import BadGatewayError, HTTPError

        for attempt in range(self.retries + 1):
            try:
                return fn()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, BadGatewayError) as exc:
                if attempt == self.retries or _tls_problem(exc):
                    raise
            except HTTPError as exc:
                if exc.status_code not in RETRY_STATUS or attempt == self.retries:
                    raise
            self.retried += 1
            time.sleep(min(self.backoff * 2 ** attempt, 30.0))
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _explained(self, de: str, en: str, rel: str = "") -> Iterator[None]:
        """Library and transport errors -> one DavError a person can act on."""
        import httpx
        from webdav4.client import HTTPError, IsAResourceError, ResourceConflict, ResourceNotFound

        where = display_path(self.file_url(rel))
        host = f"{self.host}:{self.port}" if self.port else self.host
        try:
            yield
        except (DavError, FileProblem):
            raise
        except _ForeignHost as exc:
            raise DavError(f"{de}: Weiterleitung zu einem fremden Host abgelehnt ({exc})",
                           f"{en}: redirect to another host refused ({exc})",
                           "Die WebDAV-Adresse direkt angeben (ohne Weiterleitung)") from None
        except ResourceNotFound:
            raise DavError(f"{de}: {where} gibt es auf {host} nicht (HTTP 404)",
                           f"{en}: {where} does not exist on {host} (HTTP 404)",
                           f"Pfad prüfen; die Adresse hat die Form {URL_FIX}") from None
        except IsAResourceError:
            raise DavError(f"{de}: {where} ist eine Datei, kein Ordner", f"{en}: {where} is a file, not a folder",
                           "Die Adresse des Ordners angeben") from None
        except ResourceConflict:
            raise DavError(f"{de}: der übergeordnete Ordner von {where} fehlt",
                           f"{en}: the parent folder of {where} is missing",
                           "Übergeordneten Ordner in openDesk anlegen") from None
        except HTTPError as exc:
            raise self._http_error(exc.status_code, de, en, exc.response.headers.get("location", "")) from None
        except httpx.TimeoutException:
            raise DavError(f"{de}: WebDAV-Server {host} antwortet nicht (Zeitüberschreitung nach {self.timeout:g} s, "
                           f"{self.retries + 1} Versuche)",
                           f"{en}: WebDAV server {host} does not answer (timeout after {self.timeout:g} s, "
                           f"{self.retries + 1} attempts)",
                           "Server prüfen, dann erneut starten (setzt fort); sonst webdav.timeout_s erhöhen") from None
        except httpx.TransportError as exc:
            if _tls_problem(exc):
                raise DavError(f"{de}: TLS-Zertifikat von {host} nicht vertrauenswürdig ({_reason(exc)})",
                               f"{en}: TLS certificate of {host} not trusted ({_reason(exc)})",
                               "Zertifikat der ausstellenden (Stadt-)CA als webdav.ca_file (PEM) eintragen; "
                               "eine Prüfung abzuschalten ist nicht vorgesehen") from None
            raise DavError(f"{de}: WebDAV-Server {host} nicht erreichbar ({_reason(exc)})",
                           f"{en}: WebDAV server {host} unreachable ({_reason(exc)})",
                           "Adresse, Port und Netz prüfen, dann erneut starten") from None
        except Exception as exc:  # noqa: BLE001  (a library error still reaches the person as a message)
            raise DavError(f"{de}: {type(exc).__name__}: {exc}", f"{en}: {type(exc).__name__}: {exc}",
                           "Serverprotokoll prüfen") from None

    def _http_error(self, status: int, de: str, en: str, location: str = "") -> DavError:
        if status == 401:
            return DavError(f"{de}: Anmeldung als {self.user!r} abgelehnt (HTTP 401): Benutzername oder App-Passwort "
                            "falsch", f"{en}: login as {self.user!r} refused (HTTP 401): wrong user name or app password",
                            "In openDesk/Nextcloud unter Einstellungen → Sicherheit ein App-Passwort erzeugen und in "
                            f"die Passwortdatei (--password-file) oder {PASSWORD_ENV} schreiben")
        if status == 403:
            return DavError(f"{de}: Zugriff für {self.user!r} verweigert (HTTP 403)",
                            f"{en}: access denied for {self.user!r} (HTTP 403)",
                            "Freigabe des Ordners für dieses Konto prüfen")
        if 300 <= status < 400:
            return DavError(f"{de}: der Server leitet weiter ({status} → {location or '?'}); Weiterleitungen werden "
                            "nicht verfolgt", f"{en}: the server redirects ({status} → {location or '?'}); "
                            "redirects are not followed", "Die Zieladresse direkt angeben")
        return DavError(f"{de}: HTTP {status}", f"{en}: HTTP {status}", "Serverprotokoll prüfen, dann erneut starten")

    # --- reading ---------------------------------------------------------------------------
    def walk(self) -> list[Entry]:
        """Every file below the folder (sub-folders included); the whole listing or an error."""
        import httpx

        base = urlsplit(self.url).path
        base_dec = unquote(base)
        out: list[Entry] = []
        queue: list[tuple[str, int]] = [("", 0)]
        seen = 0
        while queue:
            rel_dir, depth = queue.pop(0)
            with self._explained("Ordner auflisten", "listing the folder", rel_dir):
                items = self.client.ls(rel_dir, detail=True, allow_listing_resource=False)
            for item in items:
                href = unquote(httpx.URL(item["href"]).path)
                if not href.startswith(base_dec):
                    raise DavError(f"Der Server nennt eine Datei außerhalb des Ordners: {href!r}",
                                   f"the server listed a file outside the folder: {href!r}", "Server prüfen")
                rel = safe_relative(str(item["name"]))
                seen += 1
                if seen > MAX_ENTRIES:
                    raise DavError(f"Mehr als {MAX_ENTRIES} Einträge im Ordner", f"more than {MAX_ENTRIES} entries",
                                   "Einen kleineren Ordner angeben")
                if item.get("type") == "directory":
                    if depth + 1 > MAX_DEPTH:
                        raise DavError(f"Ordner tiefer als {MAX_DEPTH} Ebenen: {rel}", f"folders nested deeper "
                                       f"than {MAX_DEPTH}: {rel}", "Einen flacheren Ordner angeben")
                    queue.append((rel, depth + 1))
                else:
                    modified = item.get("modified")
                    out.append(Entry(rel, etag_value(item.get("etag")), item.get("content_length"),
                                     modified.isoformat() if modified else ""))
        return sorted(out, key=lambda e: e.path)

    def stat(self, rel: str) -> Entry | None:
        from webdav4.client import ResourceNotFound

        with self._explained("Datei prüfen", "checking the file", rel):
            try:
                info = self.client.info(rel)
            except ResourceNotFound:
                return None
        return Entry(rel, etag_value(info.get("etag")), info.get("content_length"),
                     info["modified"].isoformat() if info.get("modified") else "", info.get("type") == "directory")

    def download(self, rel: str, dest: Path, *, max_bytes: int) -> tuple[str, bool]:
        """Fetch ``rel`` into ``dest``: (ETag of what was fetched, whether ``dest`` changed).
        ``dest`` is replaced only when the bytes differ (an unchanged file keeps its mtime)."""
        from webdav4.client import HTTPError

        url = self.client.join_url(rel)
        part = dest.with_name(f".{dest.name}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)

        def once() -> tuple[str, str]:
            with self.client.http.stream("GET", url) as resp:
                if resp.status_code == 401 or resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                    raise HTTPError(resp)   # the login or the server: the whole run stops (after retries)
                if resp.status_code != 200:   # this file only: gone meanwhile, locked, not downloadable
                    raise FileProblem(f"HTTP {resp.status_code}")
                digest = write_limited(part, resp.iter_bytes(), max_bytes,
                                       declared=int(resp.headers.get("content-length") or 0),
                                       too_large=lambda n: FileProblem(f"Datei zu groß / file too large ({n})"))
                return etag_value(resp.headers.get("oc-etag") or resp.headers.get("etag")), digest
        try:
            with self._explained("Datei laden", "downloading", rel):
                etag, digest = self._retry(once)
            if dest.exists() and _sha256(dest) == digest:
                return etag, False
            commit(part, dest)
            return etag, True
        finally:
            part.unlink(missing_ok=True)

    # --- writing ---------------------------------------------------------------------------
    def ensure_folder(self) -> None:
        """The folder itself exists afterwards (created when missing; its parent must exist)."""
        if self.stat("") is not None:
            return
        with self._explained("Ordner anlegen", "creating the folder"):
            self.client.mkdir("")

    def put(self, rel: str, data: bytes, *, etag: str | None) -> str:
        """Write ``rel``; ``etag`` None: only if it does not exist yet, else only if it still has
        that ETag. Raises Conflict otherwise. Returns the new ETag. Not retried: a write whose
        answer was lost must not come back as a conflict with itself."""
        from webdav4.client import HTTPError

        headers = {"If-Match": f'"{etag}"'} if etag else {"If-None-Match": "*"}
        headers["Content-Type"] = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        with self._explained("Speichern", "saving", rel):
            try:
                resp = self.client.request("PUT", rel, content=data, headers=headers)
            except HTTPError as exc:
                if exc.status_code != 412:
                    raise
                where = display_path(self.file_url(rel))
                raise Conflict(f"{where} wurde seit dem letzten Speichern in openDesk geändert oder neu angelegt; "
                               "nicht überschrieben", f"{where} was changed (or created) in openDesk since the last "
                               "save; not overwritten", "Änderungen in openDesk prüfen, die Datei dort umbenennen oder "
                               "verschieben, dann erneut speichern") from None
        new = etag_value(resp.headers.get("oc-etag") or resp.headers.get("etag"))
        if not new:
            entry = self.stat(rel)
            new = entry.etag if entry else ""
        return new


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tls_problem(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "…"
