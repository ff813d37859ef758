"""A WebDAV folder (openDesk/Nextcloud) -> the index, incremental by ETag.

A run lists the whole folder, sub-folders included, before it changes anything: a wrong
password, a missing folder or a server that hangs ends the run there, and the index keeps
what it had. Then files that were indexed but are no longer listed are removed (tombstones,
as in the OParl sync), and files whose ETag differs from the one recorded when they were
last indexed are downloaded into a local mirror and handed to the normal, sandboxed ingest,
``webdav.batch_files`` at a time. The state is saved after every step, so a killed run
continues with the files it had not done; a file that failed keeps its old version in the
index and is tried again next time. Unsupported types are skipped without a download;
files over ``ingest.max_file_mb`` fail alone. Each file's sidecar carries its URL in the
folder, so a citation can link back to it.

Layout under ``<data_dir>/webdav/<host>/<key>/`` (key: hash of folder URL and user)::

    state.json          url, user, collection, files {path: etag, size}, run marker, last_complete
    files/<path>        the downloaded file + <name>.meta.yaml (url, webdav_path)
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

import yaml

from ..config import Settings, SourceSettings
from ..errors import UsageError
from ..fsutil import atomic_write, exclusive
from .access import bind_collection
from .webdav import Credentials, DavError, Entry, FileProblem, Folder, display_path, normalize_url, read_password

STATE_VERSION = 1
FILE_STATUSES = ("new", "changed", "unchanged", "deleted", "skipped", "failed")
Progress = Callable[[dict], None]


@dataclass
class SyncReport:
    url: str
    collection: str
    files: Counter = field(default_factory=Counter)
    ingest: Counter = field(default_factory=Counter)   # the pipeline's statuses (ingested, replaced, …)
    chunks_added: int = 0
    listed: int = 0
    resumed: bool = False
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 3 if self.files["failed"] else 0

    def to_dict(self) -> dict:
        return {"url": self.url, "collection": self.collection, "listed": self.listed,
                "files": {s: self.files.get(s, 0) for s in FILE_STATUSES}, "ingest": dict(self.ingest),
                "chunks_added": self.chunks_added, "resumed": self.resumed, "requests": self.requests,
                "retries": self.retries, "seconds": round(self.seconds, 3), "errors": self.errors,
                "ok": not self.files["failed"]}


def sync(url: str, settings: Settings, *, user: str, password: str, collection: str = "default",
         type: str | None = None, progress: Progress | None = None) -> SyncReport:
    """Bring the index up to date with the WebDAV folder at ``url`` (sub-folders included)."""
    from ..index.store import Store

    folder_url, url_user = normalize_url(url)
    user = user or url_user
    if not user:
        raise UsageError("--user fehlt (Anmeldename in openDesk/Nextcloud)", "--user is missing", "--user NAME")
    collection = bind_collection(settings, collection, folder_url)
    started = time.perf_counter()
    report = SyncReport(folder_url, collection)
    root = state_dir(settings, folder_url, user)
    root.mkdir(parents=True, exist_ok=True)
    wd = settings.webdav
    folder = Folder(folder_url, Credentials(user, password), timeout=wd.timeout_s, retries=wd.retries,
                    ca_file=wd.ca_file)
    try:
        with _lock(root / "sync.lock"), Store(settings) as store:
            _Run(settings, folder, store, report, root, user, collection, type,
                 progress or (lambda e: None)).run()
    finally:
        report.requests, report.retries = folder.requests, folder.retried
        folder.close()
        report.seconds = time.perf_counter() - started
    return report


def sync_source(source: SourceSettings, settings: Settings, *, progress: Progress | None = None) -> SyncReport:
    """One ``[[sources]]`` entry."""
    return sync(source.url, settings, user=source.user, password=read_password(source.password_file),
                collection=source.collection, type=source.type or None, progress=progress)


def due(source: SourceSettings, settings: Settings, now: float | None = None) -> bool:
    """Whether ``sync all`` should run this source: never completed, or longer ago than its interval."""
    folder_url, _ = normalize_url(source.url)
    state = _read_state(state_dir(settings, folder_url, source.user) / "state.json")
    last = state.get("last_complete_ts")
    if not isinstance(last, (int, float)) or state.get("run"):
        return True
    return (now if now is not None else time.time()) - last >= source.interval_minutes * 60


def state_dir(settings: Settings, folder_url: str, user: str) -> Path:
    from urllib.parse import urlsplit

    parts = urlsplit(folder_url)
    key = hashlib.sha256(f"{folder_url}\0{user}".encode()).hexdigest()[:16]
    host = (parts.hostname or "host") + (f"_{parts.port}" if parts.port else "")
    return Path(settings.data_dir).resolve() / "webdav" / host / key


def _lock(path: Path) -> ContextManager[None]:
    return exclusive(path, UsageError("Ein anderer Abgleich dieses Ordners läuft bereits",
                                      "another sync of this folder is running",
                                      "Warten, bis er fertig ist (ein abgebrochener setzt beim nächsten Start fort)"))


def _read_state(path: Path) -> dict:
    import json

    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else {}


def _resumable(exc: DavError) -> DavError:
    """A run that stopped: say that nothing indexed is lost and that the next run goes on."""
    return type(exc)(f"{exc.de}. Bereits Indexiertes bleibt erhalten; der nächste Abgleich setzt fort.",
                     f"{exc.en}. What is indexed stays; the next sync resumes.", exc.fix)


class _Run:
    def __init__(self, settings: Settings, folder: Folder, store, report: SyncReport, root: Path, user: str,
                 collection: str, type_: str | None, progress: Progress) -> None:
        self.settings, self.folder, self.store, self.report = settings, folder, store, report
        self.collection, self.type, self.progress = collection, type_, progress
        self.state_file = root / "state.json"
        self.files_dir = root / "files"
        self.state = _read_state(self.state_file) or {"version": STATE_VERSION, "files": {}}
        self.state.update(url=folder.url, user=user)
        self.max_bytes = settings.ingest.max_file_mb * 2**20

    def _save(self) -> None:
        import json

        atomic_write(self.state_file, json.dumps(self.state, ensure_ascii=False, indent=1))

    def local(self, rel: str) -> Path:
        return self.files_dir.joinpath(*rel.split("/"))

    def run(self) -> None:
        from ..ingest.loaders import SUPPORTED_EXTENSIONS, is_sidecar

        try:
            entries = self.folder.walk()
        except DavError as exc:
            raise _resumable(exc) from None
        if self.state.get("run"):
            self.report.resumed = True
        self.state["run"] = {"started": _now()}
        self.report.listed = len(entries)
        self.progress({"event": "listed", "files": len(entries)})
        known: dict[str, dict] = self.state.setdefault("files", {})
        listed = {e.path for e in entries}
        todo: list[Entry] = []
        for e in entries:
            name = e.path.rsplit("/", 1)[-1]
            if any(p.startswith(".") for p in e.path.split("/")) or is_sidecar(Path(name)) \
                    or Path(name).suffix.lower() not in SUPPORTED_EXTENSIONS:
                self.report.files["skipped"] += 1
                continue
            rec = known.get(e.path)
            # a file indexed into another collection before counts as changed: it moves
            if rec and rec.get("etag") == _version(e) and self._indexed(e.path):
                self.report.files["unchanged"] += 1
            elif e.size is not None and e.size > self.max_bytes:
                self._fail(e.path, f"Datei zu groß / file too large ({e.size} > {self.max_bytes} Bytes)")
            else:
                todo.append(e)
        self._delete([p for p in known if p not in listed])
        self._save()
        step = max(1, self.settings.webdav.batch_files)
        for i in range(0, len(todo), step):
            self._batch(todo[i:i + step], known)
        self.state.pop("run", None)
        self.state["collection"] = self.collection
        self.state["last_complete"], self.state["last_complete_ts"] = _now(), time.time()
        self._save()

    def _indexed(self, rel: str) -> bool:
        from ..index.store import DUPLICATE, INDEXED

        doc = self.store.document(str(self.local(rel)))
        return doc is not None and doc.status in (INDEXED, DUPLICATE) and doc.collection == self.collection

    def _fail(self, rel: str, reason: str) -> None:
        self.report.files["failed"] += 1
        self.report.errors.append(f"{rel}: {reason}")

    def _delete(self, gone: list[str]) -> None:
        if not gone:
            return
        with self.store.writer_lock():
            for rel in gone:
                path = self.local(rel)
                self.store.remove_source(str(path))
                for p in (path, path.with_name(path.name + ".meta.yaml")):
                    p.unlink(missing_ok=True)
                del self.state["files"][rel]
                self.report.files["deleted"] += 1
                self.progress({"event": "deleted", "path": rel})
            self.store.lexical(strict=True)

    def _batch(self, batch: list[Entry], known: dict[str, dict]) -> None:
        from ..ingest.pipeline import ingest

        fetched: dict[str, tuple[Entry, str]] = {}   # local path -> (entry, etag of the bytes fetched)
        for e in batch:
            path = self.local(e.path)
            try:
                etag, _ = self.folder.download(e.path, path, max_bytes=self.max_bytes)
                self._sidecar(e.path, path)
            except FileProblem as exc:
                self._fail(e.path, str(exc))
                continue
            except OSError as exc:
                self._fail(e.path, f"lokal nicht speicherbar / cannot store locally: {exc.strerror or exc}")
                continue
            except DavError as exc:
                raise _resumable(exc) from None
            fetched[str(path)] = (e, etag or _version(e))
            self.progress({"event": "downloaded", "path": e.path})
        if not fetched:
            return
        result = ingest(list(fetched), self.settings, collection=self.collection, type=self.type, store=self.store)
        self.report.chunks_added += result.chunks_added
        for fr in result.files:
            e, etag = fetched[fr.source]
            self.report.ingest[fr.status] += 1
            if fr.status == "failed":
                self._fail(e.path, fr.reason)
                continue
            self.report.files["changed" if e.path in known else "new"] += 1
            known[e.path] = {"etag": etag, "size": e.size}
        self._save()
        self.progress({"event": "batch", "files": dict(self.report.files)})

    def _sidecar(self, rel: str, path: Path) -> None:
        meta = {"url": self.folder.file_url(rel), "webdav_path": display_path(self.folder.file_url(rel))}
        data = yaml.safe_dump(meta, allow_unicode=True, sort_keys=True)
        sidecar = path.with_name(path.name + ".meta.yaml")
        try:
            if sidecar.read_text(encoding="utf-8") == data:
                return
        except OSError:
            pass
        atomic_write(sidecar, data)


def _version(e: Entry) -> str:
    """What says "changed": the ETag, or modification time and size from a server without ETags."""
    return e.etag or f"m:{e.modified}:{e.size}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
