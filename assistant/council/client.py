"""HTTP for the OParl sync: JSON and file GETs against one host, bounded retries with
exponential backoff on 5xx/429 and timeouts, conditional GET for files, and the small
atomic JSON records the sync keeps between runs."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlsplit

from .. import __version__
from ..errors import UsageError
from ..fsutil import atomic_write, commit, write_limited
from .mapping import Obj, SyncReport

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_JSON_BYTES = 64 * 2**20
MAX_REDIRECTS = 5
NOT_MODIFIED, CHANGED, SAME = "not_modified", "changed", "same"


class FetchError(Exception):
    """One request failed for good (after retries, or not retryable)."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


@dataclass
class Download:
    status: str                 # NOT_MODIFIED | CHANGED | SAME
    etag: str = ""
    last_modified: str = ""


class OParlClient:
    """JSON and file GETs against one OParl host, with bounded retries and backoff."""

    def __init__(self, url: str, report: SyncReport, *, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.5, max_wait: float = 30.0) -> None:
        import httpx

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"Keine http(s)-URL: {url}", f"Not an http(s) URL: {url}",
                             "URL des OParl-System-Objekts angeben, z. B. https://ris.example.de/oparl/v1/system")
        self.netloc = parts.netloc.lower()
        self.scheme = parts.scheme.lower()
        self.report = report
        self.retries, self.backoff, self.max_wait = retries, backoff, max_wait
        self.http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                 headers={"User-Agent": f"pilot-assistant/{__version__} (OParl-Sync)",
                                          "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def allowed(self, url: str) -> bool:
        """Same host, and never down from https to http (a link or redirect to http:// on an
        https host would send the requests, and their answers, unencrypted)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or (self.scheme == "https" and scheme != "https"):
            return False
        return parts.netloc.lower() == self.netloc

    def _open(self, url: str, headers: dict[str, str]):
        """Send a GET, following redirects only on the same host; the response is streamed."""
        import httpx

        for _ in range(MAX_REDIRECTS + 1):
            if not self.allowed(url):
                raise FetchError(f"fremder Host / foreign host refused: {url}")
            self.report.requests += 1
            try:
                resp = self.http.send(self.http.build_request("GET", url, headers=headers), stream=True)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from None
            if resp.is_redirect and resp.headers.get("location"):
                resp.close()
                url = urljoin(url, resp.headers["location"])
                continue
            if resp.status_code in RETRY_STATUS:
                resp.close()
                raise _Retry(f"HTTP {resp.status_code}", _retry_after(resp.headers.get("retry-after")))
            return resp
        raise FetchError(f"zu viele Weiterleitungen / too many redirects: {url}")

    def _retrying(self, fn: Callable[[], Any], url: str) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except _Retry as exc:
                if attempt == self.retries:
                    raise FetchError(f"{url}: {exc} (nach {self.retries} Wiederholungen)") from None
                self.report.retries += 1
                wait = exc.wait if exc.wait is not None else self.backoff * 2 ** attempt
                time.sleep(min(wait, self.max_wait))
        raise AssertionError("unreachable")

    def get_json(self, url: str) -> tuple[Obj, str | None]:
        """The object at ``url`` and the server's ``Date`` header."""
        import httpx

        def once() -> tuple[Obj, str | None]:
            resp = self._open(url, {})
            try:
                if resp.status_code != 200:
                    raise FetchError(f"{url}: HTTP {resp.status_code}")
                body = bytearray()
                for part in resp.iter_bytes():
                    body += part
                    if len(body) > MAX_JSON_BYTES:
                        raise FetchError(f"{url}: Antwort zu groß / response too large")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from None
            finally:
                resp.close()
            try:
                data = json.loads(bytes(body))
            except ValueError as exc:
                raise FetchError(f"{url}: kein JSON / not JSON ({exc})") from None
            if not isinstance(data, dict):
                raise FetchError(f"{url}: kein JSON-Objekt / not a JSON object")
            return data, resp.headers.get("date")
        return self._retrying(once, url)

    def download(self, url: str, dest: Path, *, max_bytes: int, etag: str = "",
                 last_modified: str = "") -> Download:
        """Fetch ``url`` into ``dest`` unless the server says 304; ``dest`` is replaced only
        when the bytes differ, so an unchanged file keeps its mtime and the ingest skips it."""
        import httpx

        headers = {"Accept": "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        part = dest.with_name(f".{dest.name}.part")

        def once() -> Download:
            resp = self._open(url, headers)
            try:
                if resp.status_code == 304:
                    return Download(NOT_MODIFIED, etag, last_modified)
                if resp.status_code != 200:
                    raise FetchError(f"{url}: HTTP {resp.status_code}")
                digest = write_limited(part, resp.iter_bytes(), max_bytes,
                                       declared=int(resp.headers.get("content-length") or 0),
                                       too_large=lambda n: FetchError(f"{url}: Datei zu groß / file too large ({n})"))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from None
            finally:
                resp.close()
            got = Download(CHANGED, resp.headers.get("etag", ""), resp.headers.get("last-modified", ""))
            from ..ingest.pipeline import file_hash

            if dest.exists() and file_hash(dest) == digest:
                part.unlink()
                got.status = SAME
            else:
                commit(part, dest)
            return got
        try:
            return self._retrying(once, url)
        finally:
            part.unlink(missing_ok=True)

    def iter_list(self, url: str) -> Iterator[tuple[list, str | None, str | None]]:
        """(items, next URL, Date header) per list page, following ``links.next``."""
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page, date = self.get_json(url)
            nxt = (page.get("links") or {}).get("next")
            nxt = urljoin(url, nxt) if nxt else None
            yield list(page.get("data") or []), nxt, date
            url = nxt


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None   # an HTTP-date: fall back to our own backoff




# --- small persistent records ------------------------------------------------------------

def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_if_different(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data)
    return True
