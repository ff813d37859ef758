"""The lexical index kept in step with the manifest, at a cost proportional to what changed.

The manifest is the truth: its chunk rows carry their stemmed tokens, and every commit that
adds or drops a document's rows appends the doc_id to a change log (``lexlog``) in the same
SQLite transaction. The lexical index is

* saved segments (``lexical/seg-*``), oldest first, each built from the rows as they were at
  its log position (watermark), named by a pointer file written atomically; plus
* a tail built in memory from the current rows of the documents logged after the newest
  segment's watermark.

A document logged after a segment's watermark is dead in that segment; its current rows (if
any) are in a newer segment or the tail. So adding, replacing or removing one document costs
reading that document's rows, never the archive: every process (CLI, UI, a second replica on
the same disk) reads the same log and sees a commit at its next search. Writers save the tail
as a segment once it holds ``FLUSH_ROWS`` rows and merge trailing segments of similar size
(each row is rewritten O(log n) times); a crash mid-save leaves the previous pointer in use.
An index from before segments (one bm25s directory) is rebuilt once, with a notice.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np

from ..fsutil import atomic_write
from .lexical import LexicalIndex
from .segment import ROW_SQL, Segment

log = logging.getLogger(__name__)

POINTER = "lexical.json"
FOLDER = "lexical"
VERSION = 2
FLUSH_ROWS = 2000        # tail rows worth saving as a segment
MERGE_FACTOR = 4         # a segment at most this much bigger than what follows it is merged with it
DEAD_SHARE = 0.3         # rebuild everything once this share of saved rows is dead
_IN_BATCH = 500


class LexicalState:
    """One per store; thread-safe (``lock`` is the manifest connection's lock)."""

    def __init__(self, index_dir: Path, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.index_dir = index_dir
        self.db = db
        self._lock = lock
        self._segments: list[Segment] = []
        self._pointer: list[str] | None = None     # segment names as loaded
        self._live: list[np.ndarray | None] = []
        self._seen = 0                             # log position read up to
        self._tail_docs: set[str] = set()
        self._view: LexicalIndex | None = None

    # --- reading ---------------------------------------------------------------------
    def current(self, *, strict: bool = False) -> LexicalIndex:
        """The index as of the last commit. ``strict`` (writers): save the tail when it is big
        enough, and report an unwritable index instead of searching an unsaved one."""
        with self._lock:
            pointer = self._read_pointer()
            if pointer is None:
                # an index built here but never saved (unwritable data dir) just catches up
                if self._view is None or self._pointer is not None:
                    return self._rebuild(strict=strict, notice=self._view is None and self._has_old())
            elif [s.get("dir") for s in pointer] != self._pointer:
                if not self._load(pointer):
                    return self._rebuild(strict=strict, notice=False)
            with self._snapshot():
                top = self._max_seq()
                if self._view is None or top != self._seen:
                    self._catch_up(top)
            if strict and self._tail_rows() >= FLUSH_ROWS:
                self._flush()
            return self._view

    def rebuild(self) -> LexicalIndex:
        """Build one segment from every row and save it, even if the saved index looks current."""
        with self._lock:
            return self._rebuild(strict=True, notice=False)

    def _tail_rows(self) -> int:
        return len(self._view.segments[-1]) if self._view and self._tail_docs else 0

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: the log position and the rows read under it agree (WAL snapshot)."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def _max_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM lexlog").fetchone()[0])

    def _catch_up(self, top: int) -> None:
        """Apply log entries (seen, top]: kill the documents' rows in older segments, rebuild the tail."""
        changed = self.db.execute("SELECT seq, doc_id FROM lexlog WHERE seq > ? AND seq <= ? ORDER BY seq",
                                  (self._seen, top)).fetchall()
        newest = self._segments[-1].watermark if self._segments else 0
        live = list(self._live)
        fresh = [False] * len(live)     # copied before the first change: views handed out stay as they were
        for seq, doc_id in changed:
            for si, seg in enumerate(self._segments):
                if seq > seg.watermark and (span := seg.doc_rows(doc_id)) is not None:
                    if not fresh[si]:
                        live[si] = np.ones(len(seg), dtype=bool) if live[si] is None else live[si].copy()
                        fresh[si] = True
                    live[si][span] = False
            if seq > newest:
                self._tail_docs.add(doc_id)
        self._seen, self._live = top, live
        segments, live = list(self._segments), list(live)
        if self._tail_docs:
            segments.append(Segment.build(self._rows_of(sorted(self._tail_docs)), top))
            live.append(None)
        self._view = LexicalIndex(segments, live, key=top)

    def _rows_of(self, doc_ids: list[str]) -> Iterator[tuple]:
        for start in range(0, len(doc_ids), _IN_BATCH):
            part = doc_ids[start:start + _IN_BATCH]
            yield from self.db.execute(f"{ROW_SQL} WHERE doc_id IN ({','.join('?' * len(part))}) "
                                       "ORDER BY doc_id, chunk_index", part)

    # --- the pointer and its segments ------------------------------------------------
    def _read_pointer(self) -> list[dict] | None:
        try:
            data = json.loads((self.index_dir / POINTER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("segments"), list):
            return None
        return data["segments"]

    def _has_old(self) -> bool:
        """An index from before segments is on disk (or a pointer this version cannot read)."""
        return (self.index_dir / POINTER).exists() or any(self.index_dir.glob("lexical-*"))

    def _load(self, pointer: list[dict]) -> bool:
        try:
            segments = [Segment.load(self.index_dir / FOLDER / s["dir"]) for s in pointer]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Lexikalischer Index unlesbar (%s), wird neu aufgebaut / lexical index unreadable, "
                        "rebuilding", exc)
            return False
        self._segments, self._pointer = segments, [s.name for s in segments]
        self._live = [None] * len(segments)
        self._seen = min((s.watermark for s in segments), default=0)
        self._tail_docs = set()
        self._view = None
        return True

    # --- writing ---------------------------------------------------------------------
    def _rebuild(self, *, strict: bool, notice: bool) -> LexicalIndex:
        if notice:
            n = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            log.warning("Suchindex (BM25) im alten Format: wird einmalig aus %d Abschnitten neu aufgebaut / "
                        "lexical index in the old format: rebuilding it once from %d chunks", n, n)
        with self._snapshot():
            top = self._max_seq()
            seg = Segment.build(self.db.execute(ROW_SQL + " ORDER BY doc_id, chunk_index"), top)
        self._segments, self._live, self._seen, self._tail_docs = [seg], [None], top, set()
        self._pointer = None
        self._view = LexicalIndex([seg], [None], key=top)
        try:
            self._publish(0, seg)
        except OSError:
            if strict:
                raise
        return self._view

    def _flush(self) -> None:
        """Save the tail as a segment, merged with the trailing segments of similar size."""
        saved = [len(s) for s in self._segments]
        dead = sum(int((~d).sum()) for d in self._live if d is not None)
        j, size = len(saved), self._tail_rows()
        while j > 0 and saved[j - 1] <= MERGE_FACTOR * size:
            j -= 1
            size += saved[j]
        if saved and dead > DEAD_SHARE * sum(saved):
            j = 0
        if j == 0:
            self._rebuild(strict=True, notice=False)
            return
        since = self._segments[j - 1].watermark
        with self._snapshot():
            top = self._max_seq()
            docs = sorted({d for (d,) in self.db.execute("SELECT doc_id FROM lexlog WHERE seq > ? AND seq <= ?",
                                                          (since, top))})
            seg = Segment.build(self._rows_of(docs), top)
        if not self._publish(j, seg):
            return   # another process saved meanwhile: its index is loaded at the next search
        if not self._load([{"dir": s.name} for s in self._segments[:j]] + [{"dir": seg.name}]):
            self._rebuild(strict=True, notice=False)
            return
        self.current()

    def _publish(self, keep: int, seg: Segment) -> bool:
        """Save ``seg`` after the first ``keep`` segments and switch the pointer to them; False
        (nothing saved) when another process switched the pointer since it was loaded here."""
        folder = self.index_dir / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        with self._save_lock():
            if keep and [s.get("dir") for s in (self._read_pointer() or [])] != self._pointer:
                return False
            seg.save(folder / f"seg-{seg.watermark}-{uuid.uuid4().hex[:8]}")
            names = [s.name for s in self._segments[:keep]] + [seg.name]
            atomic_write(self.index_dir / POINTER, json.dumps(
                {"version": VERSION, "segments": [{"dir": n} for n in names]}))
            self._pointer = names if keep == 0 else self._pointer
            for old in folder.glob("seg-*"):
                if old.name not in names:   # readers that mapped it keep their pages until they reload
                    shutil.rmtree(old, ignore_errors=True)
            for old in self.index_dir.glob("lexical-*"):   # the index from before segments
                shutil.rmtree(old, ignore_errors=True)
        return True

    @contextlib.contextmanager
    def _save_lock(self) -> Iterator[None]:
        """One saver per data dir: a reader rebuilding a legacy index and an ingest may meet here."""
        with open(self.index_dir / "lexical.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
