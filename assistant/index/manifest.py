"""The manifest: a SQLite database (WAL) beside the vector index, and the source of truth.

Per source path one row (doc_id = sha256 of the bytes, mtime, size, status, ...), plus one
row per chunk (its JSON and its BM25 tokens). A document counts as indexed once its row is
committed; Chroma and the BM25 index are rebuilt from, or reconciled against, these rows.
``lexlog`` lists, in commit order, the doc_ids whose chunk rows were added or dropped: the
lexical index (:mod:`.lexstate`) follows it instead of re-reading every row.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import StorageError
from ..types import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
  source TEXT PRIMARY KEY, doc_id TEXT NOT NULL, mtime REAL, size INTEGER,
  collection TEXT, type TEXT, title TEXT, n_chunks INTEGER DEFAULT 0,
  status TEXT NOT NULL, error TEXT DEFAULT '', ingested_at TEXT, sidecar_stat TEXT DEFAULT '',
  sidecar_hash TEXT);
CREATE INDEX IF NOT EXISTS documents_doc ON documents(doc_id);
CREATE TABLE IF NOT EXISTS chunks (
  chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, chunk_index INTEGER, page INTEGER,
  collection TEXT, type TEXT, municipality TEXT, source TEXT, date_int INTEGER,
  data TEXT NOT NULL, tokens TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, chunk_index);
CREATE TABLE IF NOT EXISTS pending (doc_id TEXT PRIMARY KEY, at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS lexlog (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL);
"""
_COLUMNS = ("source", "doc_id", "mtime", "size", "collection", "type", "title", "n_chunks",
            "status", "error", "ingested_at", "sidecar_stat", "sidecar_hash")
# columns added after the first release: (name, SQL type) for ALTER TABLE on older manifests
_ADDED = (("sidecar_stat", "TEXT DEFAULT ''"), ("sidecar_hash", "TEXT"))
_COLS = ", ".join(_COLUMNS)
INDEXED, FAILED, DUPLICATE = "indexed", "failed", "duplicate"


@dataclass
class DocumentRecord:
    source: str
    doc_id: str
    mtime: float = 0.0
    size: int = 0
    collection: str = "default"
    type: str = "other"
    title: str = ""
    n_chunks: int = 0
    status: str = INDEXED
    error: str = ""
    ingested_at: str = ""
    # the .meta.yaml sidecar(s): name/size/mtime (cheap check) and content hash; "" = none.
    # None: a row from before sidecars were tracked (the next ingest records them).
    sidecar_stat: str = ""
    sidecar_hash: str | None = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



def _storage_error(exc: BaseException, where: Path | str) -> StorageError:
    return StorageError(
        f"Index in {where} kann nicht geschrieben werden ({exc}). Bereits indexierte Dokumente bleiben erhalten.",
        f"Cannot write the index in {where} ({exc}). Documents already indexed are kept.",
        "Speicherplatz und Schreibrechte des Datenverzeichnisses prüfen (--data-dir)")



class Manifest:
    """SQLite side of :class:`assistant.index.store.Store` (reads and single-statement writes)."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.index_dir / "manifest.sqlite3", timeout=30,
                                      isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable against process kills
            self.db.executescript(SCHEMA)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(exc, self.index_dir) from None
        self._lock = threading.RLock()   # one connection shared by UI threads: one transaction at a time

    def _migrate(self) -> None:
        for name, sql_type in _ADDED:
            have = {r[1] for r in self.db.execute("PRAGMA table_info(documents)")}
            if name not in have:
                try:
                    self.db.execute(f"ALTER TABLE documents ADD COLUMN {name} {sql_type}")
                except sqlite3.OperationalError:   # another process added it meanwhile
                    if name not in {r[1] for r in self.db.execute("PRAGMA table_info(documents)")}:
                        raise

    def _generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _log_chunks(self, doc_id: str) -> None:
        """Inside the transaction that adds or drops ``doc_id``'s chunk rows."""
        self.db.execute("INSERT INTO lexlog(doc_id) VALUES(?)", (doc_id,))

    def generation(self) -> int:
        """Grows with every committed change of documents: derived data (the BM25 index, the
        council procedures) compare it to know whether they are current."""
        return self._generation()

    def _bump(self) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES('generation', 1) ON CONFLICT(key) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def _write(self, fn, *args):
        """Run fn inside one IMMEDIATE transaction; storage failures become StorageError."""
        with self._lock:
            return self._transaction(fn, *args)

    def _transaction(self, fn, *args):
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(*args)
                self.db.execute("COMMIT")
                return out
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.index_dir) from None

    def document(self, source: str) -> DocumentRecord | None:
        row = self.db.execute(f"SELECT {_COLS} FROM documents WHERE source=?", (source,)).fetchone()
        return self._record(row) if row else None

    def documents(self, collection: str | None = None, status: str | None = INDEXED) -> list[DocumentRecord]:
        sql, args = f"SELECT {_COLS} FROM documents WHERE 1=1", []
        if collection is not None:
            sql, args = sql + " AND collection=?", [*args, collection]
        if status is not None:
            sql, args = sql + " AND status=?", [*args, status]
        return [self._record(r) for r in self.db.execute(sql + " ORDER BY source", args)]

    def source_of(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT source FROM documents WHERE doc_id=? AND status=?",
                              (doc_id, INDEXED)).fetchone()
        return row[0] if row else None

    def _record(self, row: Sequence) -> DocumentRecord:
        return DocumentRecord(**dict(zip(_COLUMNS, row)))

    def touch(self, source: str, mtime: float, size: int, sidecar_stat: str | None = None,
              sidecar_hash: str | None = None) -> None:
        """Same bytes (and sidecar), new mtime: remember it so the next run skips the hash."""
        if sidecar_hash is None:
            self._write(lambda: self.db.execute("UPDATE documents SET mtime=?, size=? WHERE source=?",
                                                (mtime, size, source)))
        else:
            self._write(lambda: self.db.execute(
                "UPDATE documents SET mtime=?, size=?, sidecar_stat=?, sidecar_hash=? WHERE source=?",
                (mtime, size, sidecar_stat or "", sidecar_hash, source)))

    def record_status(self, record: DocumentRecord) -> None:
        """A failed or duplicate file with no indexed version: keep the reason for `status`."""
        record.ingested_at = record.ingested_at or _now()
        self._write(self._upsert_row, record)

    def _upsert_row(self, r: DocumentRecord) -> None:
        self.db.execute(
            f"INSERT OR REPLACE INTO documents({_COLS}) VALUES({','.join('?' * len(_COLUMNS))})",
            tuple(getattr(r, c) for c in _COLUMNS))

    # --- reads -------------------------------------------------------------------------
    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks in the order asked for; unknown ids are left out."""
        if not ids:
            return []
        found: dict[str, Chunk] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ",".join("?" * len(part))
            for cid, data in self.db.execute(f"SELECT chunk_id, data FROM chunks WHERE chunk_id IN ({marks})", part):
                found[cid] = Chunk(**json.loads(data))
        return [found[i] for i in ids if i in found]

    def pages(self, doc_id: str) -> list[int | None]:
        """The pages a document's chunks lie on, in order ([None] for an unpaged file)."""
        rows = self.db.execute("SELECT DISTINCT page FROM chunks WHERE doc_id=? ORDER BY page", (doc_id,))
        return [r[0] for r in rows]

    def page_chunks(self, doc_id: str, page: int | None) -> list[Chunk]:
        """The chunks of one page (or of the whole unpaged document), in order."""
        sql = "SELECT data FROM chunks WHERE doc_id=? AND " + ("page IS NULL" if page is None else "page=?")
        args = (doc_id,) if page is None else (doc_id, page)
        return [Chunk(**json.loads(d)) for (d,) in self.db.execute(sql + " ORDER BY chunk_index", args)]

    def page_text(self, doc_id: str, page: int | None) -> str:
        """The text of one page (or the whole unpaged document), stitched from its chunks."""
        sql = "SELECT data FROM chunks WHERE doc_id=? AND " + ("page IS NULL" if page is None else "page=?")
        args = (doc_id,) if page is None else (doc_id, page)
        text, end = "", 0
        for (data,) in self.db.execute(sql + " ORDER BY chunk_index", args):
            c = json.loads(data)
            if c["char_start"] >= end or not text:
                text += ("\n\n" if text else "") + c["text"]
            else:   # overlapping chunk: append only the part past what we have
                text += c["text"][max(0, end - c["char_start"]):]
            end = max(end, c["char_end"])
        return text

    def stats(self) -> dict[str, Any]:
        per: dict[str, dict[str, int]] = {}
        for coll, typ, docs, chunks in self.db.execute(
                "SELECT collection, type, COUNT(*), SUM(n_chunks) FROM documents WHERE status=? "
                "GROUP BY collection, type", (INDEXED,)):
            per.setdefault(coll, {})[typ] = {"documents": docs, "chunks": chunks or 0}
        totals = self.db.execute("SELECT COUNT(*), COALESCE(SUM(n_chunks), 0) FROM documents WHERE status=?",
                                 (INDEXED,)).fetchone()
        failed = self.db.execute("SELECT COUNT(*) FROM documents WHERE status=?", (FAILED,)).fetchone()[0]
        return {"documents": totals[0], "chunks": totals[1], "failed": failed, "collections": per}

    def municipalities(self) -> set[str]:
        """The municipality names the indexed chunks carry (what a municipality filter can match)."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT municipality FROM chunks") if r[0]}

    def resolve_sources(self, source: str) -> list[str]:
        """A source filter as given (file, folder, relative path) -> indexed sources it names."""
        cands = {source}
        try:
            cands.add(str(Path(source).expanduser().resolve()))
        except OSError:
            pass
        out = set()
        for cand in cands:
            prefix = cand.rstrip("/") + "/"
            out |= {r[0] for r in self.db.execute(
                "SELECT source FROM documents WHERE status=? AND (source=? OR substr(source, 1, ?)=?)",
                (INDEXED, cand, len(prefix), prefix))}
        return sorted(out) or [source]

    @contextlib.contextmanager
    def writer_lock(self, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """One writer per data dir across processes: reconcile would otherwise take another
        ingest's not-yet-committed chunks for debris of a crash and delete them."""
        with open(self.index_dir / "writer.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def close(self) -> None:
        self.db.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
