"""The index: Chroma (dense), a SQLite manifest + chunk table (truth), and a BM25 index.

Crash safety, in write order for one document:
1. ``pending`` row for the new doc_id committed (a journal of what may be half-written);
2. chunks upserted into Chroma (deterministic ids ``doc_id:index``, so a retry overwrites);
3. one SQLite transaction: chunk rows, manifest row, old doc_id queued for deletion,
   pending row dropped, generation bumped;
4. the replaced doc_id's chunks deleted from Chroma.
A kill -9 anywhere leaves either the old or the new version committed; ``reconcile``
deletes whatever Chroma holds beyond the committed rows.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .chunking import embedding_text
from .config import Settings
from .errors import StorageError
from .lexical import Conditions, LexicalIndex, date_int, tokenize
from .types import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
  source TEXT PRIMARY KEY, doc_id TEXT NOT NULL, mtime REAL, size INTEGER,
  collection TEXT, type TEXT, title TEXT, n_chunks INTEGER DEFAULT 0,
  status TEXT NOT NULL, error TEXT DEFAULT '', ingested_at TEXT);
CREATE INDEX IF NOT EXISTS documents_doc ON documents(doc_id);
CREATE TABLE IF NOT EXISTS chunks (
  chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, chunk_index INTEGER, page INTEGER,
  collection TEXT, type TEXT, municipality TEXT, source TEXT, date_int INTEGER,
  data TEXT NOT NULL, tokens TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, chunk_index);
CREATE TABLE IF NOT EXISTS pending (doc_id TEXT PRIMARY KEY, at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_COLUMNS = ("source", "doc_id", "mtime", "size", "collection", "type", "title", "n_chunks",
            "status", "error", "ingested_at")
_COLS = ", ".join(_COLUMNS)
INDEXED, FAILED, DUPLICATE = "indexed", "failed", "duplicate"
UPSERT_BATCH = 1000
NO_PAGE = -1   # Chroma metadata cannot hold None


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten_metadata(chunk: Chunk) -> dict[str, Any]:
    """Chroma-legal scalars only: no None, no dicts/lists."""
    meta: dict[str, Any] = {
        "doc_id": chunk.doc_id, "source": chunk.source, "title": chunk.title, "type": chunk.type,
        "collection": chunk.collection, "page": NO_PAGE if chunk.page is None else int(chunk.page),
        "section": chunk.section, "chunk_index": chunk.chunk_index, "char_start": chunk.char_start,
        "char_end": chunk.char_end, "date": chunk.date, "date_int": date_int(chunk.date),
        "municipality": chunk.municipality}
    for key, value in (chunk.meta or {}).items():
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, (list, tuple, set)):
            value = ", ".join(str(v) for v in value)
        elif not isinstance(value, (str, int, float, bool)):
            value = str(value)
        meta[f"m_{key}"] = value
    return meta


def unflatten_metadata(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    page = meta.get("page", NO_PAGE)
    return Chunk(chunk_id=chunk_id, doc_id=meta.get("doc_id", ""), text=text or "",
                 source=meta.get("source", ""), title=meta.get("title", ""),
                 type=meta.get("type", "other"), collection=meta.get("collection", "default"),
                 page=None if page in (None, NO_PAGE) else int(page), section=meta.get("section", ""),
                 chunk_index=int(meta.get("chunk_index", 0)), char_start=int(meta.get("char_start", 0)),
                 char_end=int(meta.get("char_end", 0)), date=meta.get("date", ""),
                 municipality=meta.get("municipality", ""),
                 meta={k[2:]: v for k, v in meta.items() if k.startswith("m_")})


def _storage_error(exc: BaseException, where: Path | str) -> StorageError:
    return StorageError(
        f"Index in {where} kann nicht geschrieben werden ({exc}). Bereits indexierte Dokumente bleiben erhalten.",
        f"Cannot write the index in {where} ({exc}). Documents already indexed are kept.",
        "Speicherplatz und Schreibrechte des Datenverzeichnisses prüfen (--data-dir)")


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index_dir = Path(settings.index_dir)
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.index_dir / "manifest.sqlite3", timeout=30,
                                      isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable against process kills
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(exc, self.index_dir) from None
        self._collection = None
        self._lexical: LexicalIndex | None = None
        self._lexical_saved = False
        self._lock = threading.RLock()   # one connection shared by UI threads: one transaction at a time

    # --- Chroma ------------------------------------------------------------------------
    @property
    def collection(self):
        if self._collection is None:
            self._collection = self._open_collection()
        return self._collection

    def _open_collection(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        from .embeddings import chroma_embedding_function

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if self.settings.store.url:
                from urllib.parse import urlparse
                url = urlparse(self.settings.store.url)
                client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                             ssl=url.scheme == "https", settings=chroma_settings)
            else:
                client = chromadb.PersistentClient(path=str(self.index_dir / "chroma"),
                                                   settings=chroma_settings)
            # never without our EF: Chroma's default one downloads a model
            return client.get_or_create_collection(
                self.collection_name, embedding_function=chroma_embedding_function(),
                configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:   # chromadb raises many types (Rust, HTTP, sqlite)
            if self.settings.store.url:
                raise StorageError(f"Chroma-Server {self.settings.store.url} nicht erreichbar: {exc}",
                                   f"Chroma server {self.settings.store.url} unreachable: {exc}",
                                   "`chroma run` starten oder store.url leeren") from None
            raise _storage_error(exc, self.index_dir / "chroma") from None

    @property
    def collection_name(self) -> str:
        name = f"{self.settings.store.collection_prefix or 'pilot'}_chunks"
        return name if len(name) >= 3 else f"{name}___"

    def dense_query(self, embedding: np.ndarray, n: int,
                    cond: Conditions | None = None) -> list[tuple[str, float]]:
        """(chunk_id, cosine distance), nearest first."""
        if n <= 0:
            return []
        where = cond.chroma_where() if cond else None
        res = self.collection.query(query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                                    n_results=n, where=where, include=["distances"])
        return list(zip(res["ids"][0], (float(d) for d in res["distances"][0])))

    # --- manifest ----------------------------------------------------------------------
    def _generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

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

    def touch(self, source: str, mtime: float, size: int) -> None:
        """Same bytes, new mtime: remember it so the next run skips the hash."""
        self._write(lambda: self.db.execute("UPDATE documents SET mtime=?, size=? WHERE source=?",
                                            (mtime, size, source)))

    def record_status(self, record: DocumentRecord) -> None:
        """A failed or duplicate file with no indexed version: keep the reason for `status`."""
        record.ingested_at = record.ingested_at or _now()
        self._write(self._upsert_row, record)

    def _upsert_row(self, r: DocumentRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO documents(source, doc_id, mtime, size, collection, type, title, "
            "n_chunks, status, error, ingested_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (r.source, r.doc_id, r.mtime, r.size, r.collection, r.type, r.title, r.n_chunks,
             r.status, r.error, r.ingested_at))

    # --- writes ------------------------------------------------------------------------
    def add_document(self, record: DocumentRecord, chunks: list[Chunk],
                     embeddings: np.ndarray | None = None) -> None:
        """Index one document's chunks and commit its manifest row (replacing the source's old version)."""
        if embeddings is None:
            from .embeddings import embed_passages
            embeddings = embed_passages([embedding_text(c) for c in chunks])
        self._write(lambda: self.db.execute("INSERT OR REPLACE INTO pending VALUES(?, ?)",
                                            (record.doc_id, time.time())))
        try:
            for start in range(0, len(chunks), UPSERT_BATCH):
                part = chunks[start:start + UPSERT_BATCH]
                self.collection.upsert(ids=[c.chunk_id for c in part],
                                       embeddings=np.asarray(embeddings[start:start + len(part)]),
                                       documents=[c.text for c in part],
                                       metadatas=[flatten_metadata(c) for c in part])
        except StorageError:
            raise
        except Exception as exc:
            raise _storage_error(exc, self.index_dir / "chroma") from None
        record.n_chunks, record.status, record.error = len(chunks), INDEXED, ""
        record.ingested_at = _now()
        old = self._write(self._commit_document, record, chunks)
        if old:
            self._drop_chroma(old)

    def _commit_document(self, record: DocumentRecord, chunks: list[Chunk]) -> str | None:
        prev = self.document(record.source)
        old = prev.doc_id if prev and prev.status == INDEXED and prev.doc_id != record.doc_id else None
        if old and not self._shared(old, record.source):
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (old,))
            self.db.execute("INSERT OR REPLACE INTO pending VALUES(?, ?)", (old, time.time()))
        else:
            old = None
        self.db.execute("DELETE FROM chunks WHERE doc_id=?", (record.doc_id,))
        self.db.executemany(
            "INSERT INTO chunks VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            [(c.chunk_id, c.doc_id, c.chunk_index, c.page, c.collection, c.type, c.municipality,
              c.source, date_int(c.date), json.dumps(c.to_dict(), ensure_ascii=False, default=str),
              " ".join(tokenize(embedding_text(c)))) for c in chunks])
        self._upsert_row(record)
        self.db.execute("DELETE FROM pending WHERE doc_id=?", (record.doc_id,))
        self._bump()
        return old

    def _shared(self, doc_id: str, except_source: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id=? AND status=? AND source<>?",
                               (doc_id, INDEXED, except_source)).fetchone() is not None

    def _drop_chroma(self, doc_id: str) -> None:
        try:
            self.collection.delete(where={"doc_id": doc_id})
        except Exception as exc:
            raise _storage_error(exc, self.index_dir / "chroma") from None
        self._write(lambda: self.db.execute("DELETE FROM pending WHERE doc_id=?", (doc_id,)))

    def remove_source(self, source: str) -> bool:
        """Forget one source (and its chunks). False when it was not in the manifest."""
        def forget() -> str | None:
            prev = self.document(source)
            if prev is None:
                return None
            self.db.execute("DELETE FROM documents WHERE source=?", (source,))
            # duplicates of this file lose their original: drop them so the next ingest re-adds them
            self.db.execute("DELETE FROM documents WHERE doc_id=? AND status=?", (prev.doc_id, DUPLICATE))
            if prev.status == INDEXED:
                self.db.execute("DELETE FROM chunks WHERE doc_id=?", (prev.doc_id,))
                self.db.execute("INSERT OR REPLACE INTO pending VALUES(?, ?)", (prev.doc_id, time.time()))
                self._bump()
                return prev.doc_id
            return ""
        doc_id = self._write(forget)
        if doc_id:
            self._drop_chroma(doc_id)
        return doc_id is not None

    def reconcile(self, *, full: bool = False) -> int:
        """Delete Chroma chunks of uncommitted documents; returns how many doc_ids were cleaned.

        The pending journal covers kills mid-write; when Chroma's count still disagrees
        with the committed rows (or ``full``), every id in Chroma is checked."""
        cleaned = 0
        committed = lambda d: self.db.execute(  # noqa: E731
            "SELECT 1 FROM chunks WHERE doc_id=? LIMIT 1", (d,)).fetchone() is not None
        for (doc_id,) in self.db.execute("SELECT doc_id FROM pending").fetchall():
            if committed(doc_id):
                self._write(lambda: self.db.execute("DELETE FROM pending WHERE doc_id=?", (doc_id,)))
            else:
                self._drop_chroma(doc_id)
                cleaned += 1
        expected = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if not full and self.collection.count() == expected:
            return cleaned
        known = {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}
        stray = [i for i in self._all_ids() if i not in known]
        for start in range(0, len(stray), UPSERT_BATCH):
            self.collection.delete(ids=stray[start:start + UPSERT_BATCH])
        cleaned += len({i.rsplit(":", 1)[0] for i in stray})
        if self.collection.count() < expected:
            # Chroma lost rows (e.g. power loss): forget those documents so ingest redoes them
            present = Counter(i.rsplit(":", 1)[0] for i in self._all_ids())
            for source, doc_id, n in self.db.execute(
                    "SELECT source, doc_id, n_chunks FROM documents WHERE status=?", (INDEXED,)).fetchall():
                if present.get(doc_id, 0) < n:
                    self.remove_source(source)
                    cleaned += 1
        return cleaned

    def _all_ids(self) -> Iterable[str]:
        offset, page = 0, 5000
        while True:
            ids = self.collection.get(include=[], limit=page, offset=offset)["ids"]
            yield from ids
            if len(ids) < page:
                return
            offset += page

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

    # --- lexical -----------------------------------------------------------------------
    def lexical(self, *, strict: bool = False) -> LexicalIndex:
        """The BM25 index for the current generation: cached, loaded, or rebuilt when stale.

        A rebuild is saved for the next process; on the search path (``strict=False``) an
        unwritable data dir only costs that, while ingest (``strict=True``) reports it."""
        gen = self._generation()
        with self._lock:   # UI threads: load or rebuild once
            current = self._lexical is not None and self._lexical.generation == gen
            if not current:
                loaded = LexicalIndex.load(self.index_dir)
                if loaded is not None and loaded.generation == gen:
                    self._lexical, self._lexical_saved, current = loaded, True, True
            if not current or (strict and not self._lexical_saved):
                rows = self.db.execute("SELECT chunk_id, tokens, collection, type, municipality, source, "
                                       "date_int FROM chunks ORDER BY rowid")
                self._lexical, self._lexical_saved = LexicalIndex.build(rows, gen), False
                try:
                    self._lexical.save(self.index_dir)
                    self._lexical_saved = True
                except OSError as exc:
                    if strict:
                        raise _storage_error(exc, self.index_dir) from None
            return self._lexical

    def rebuild_lexical(self) -> LexicalIndex:
        """Rebuild from the chunk rows and save, even if the saved index looks current."""
        with self._lock:
            self._lexical = None
            return self.lexical(strict=True)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
