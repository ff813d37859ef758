"""One immutable piece of the lexical index: term postings with frequencies, per-row lengths
and the filter columns of the chunks it was built from.

Scores are not stored: BM25 needs the collection's document count, document frequencies and
average length, which change with every other segment; :class:`~.lexical.LexicalIndex`
computes them over all live rows at query time, so any split into segments scores exactly
like one index built from all rows.

On disk a segment is a directory of ``.npy`` arrays (the postings are memory-mapped, so a
million-chunk index costs page cache, not heap) and a ``meta.json`` with the term list,
the document ids and the distinct filter values.
"""
from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..fsutil import fsync_dir

FIELDS = ("collection", "type", "municipality", "source")
FORMAT = 1
# what Segment.build reads per chunk row, in this order
ROW_SQL = ("SELECT chunk_id, doc_id, chunk_index, tokens, collection, type, municipality, source, date_int "
           "FROM chunks")


@dataclass
class Segment:
    watermark: int                      # change-log position the rows were read at
    terms: list[str]
    indptr: np.ndarray                  # int64 (terms + 1): postings of term t are [indptr[t], indptr[t+1])
    rows: np.ndarray                    # int32 row per posting, ascending within a term
    tf: np.ndarray                      # float32 term frequency per posting
    dl: np.ndarray                      # float32 tokens per row
    docs: list[str]                     # distinct doc ids; rows of one doc are contiguous
    doc: np.ndarray                     # int32 code into ``docs`` per row
    index: np.ndarray                   # int32 chunk_index per row
    columns: dict[str, tuple[list[str], np.ndarray]]   # field -> (distinct values, int32 code per row)
    dates: np.ndarray                   # int32 YYYYMMDD per row, 0 = unknown
    name: str = ""                      # directory name once saved
    _vocab: dict[str, int] | None = field(default=None, repr=False)
    _doc_codes: dict[str, int] | None = field(default=None, repr=False)
    _doc_start: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.dl)

    @property
    def vocab(self) -> dict[str, int]:
        if self._vocab is None:
            self._vocab = {t: i for i, t in enumerate(self.terms)}
        return self._vocab

    # --- build -------------------------------------------------------------------------
    @classmethod
    def build(cls, rows: Iterable[Sequence], watermark: int) -> "Segment":
        """rows as :data:`ROW_SQL` reads them, ordered by doc_id, chunk_index."""
        vocab: dict[str, int] = {}
        term_ids = array("i")
        lengths = array("i")
        docs: list[str] = []
        doc = array("i")
        index = array("i")
        dates = array("i")
        distinct: dict[str, dict[str, int]] = {f: {} for f in FIELDS}
        codes: dict[str, array] = {f: array("i") for f in FIELDS}
        for _chunk_id, doc_id, chunk_index, tokens, *cats, date in rows:
            ids = [vocab.setdefault(t, len(vocab)) for t in tokens.split()]
            term_ids.extend(ids)
            lengths.append(len(ids))
            if not docs or docs[-1] != doc_id:
                docs.append(doc_id)
            doc.append(len(docs) - 1)
            index.append(int(chunk_index))
            dates.append(int(date or 0))
            for name, value in zip(FIELDS, cats):
                codes[name].append(distinct[name].setdefault(value or "", len(distinct[name])))
        n = len(lengths)
        lens = np.frombuffer(lengths, dtype=np.int32) if n else np.zeros(0, np.int32)
        tids = np.frombuffer(term_ids, dtype=np.int32) if len(term_ids) else np.zeros(0, np.int32)
        # one key per (term, row): sorting groups postings by term with rows ascending
        key = tids.astype(np.int64) * max(n, 1) + np.repeat(np.arange(n, dtype=np.int64), lens)
        del tids
        key, tf = np.unique(key, return_counts=True)
        term_of = key // max(n, 1)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_of, minlength=len(vocab)), out=indptr[1:])
        rows_arr = (key % max(n, 1)).astype(np.int32)
        del key, term_of
        as_arr = lambda a: np.frombuffer(a, dtype=np.int32).copy() if len(a) else np.zeros(0, np.int32)  # noqa: E731
        return cls(watermark=watermark, terms=list(vocab), indptr=indptr, rows=rows_arr,
                   tf=tf.astype(np.float32), dl=lens.astype(np.float32), docs=docs, doc=as_arr(doc),
                   index=as_arr(index), columns={f: (list(distinct[f]), as_arr(codes[f])) for f in FIELDS},
                   dates=as_arr(dates), _vocab=vocab)

    # --- reads -------------------------------------------------------------------------
    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.vocab.get(term)
        if t is None:
            return None
        lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
        return self.rows[lo:hi], self.tf[lo:hi]

    def chunk_id(self, row: int) -> str:
        return f"{self.docs[self.doc[row]]}:{int(self.index[row])}"

    def doc_rows(self, doc_id: str) -> slice | None:
        """The rows of one document (contiguous), or None when it is not in this segment."""
        if self._doc_codes is None:
            self._doc_codes = {d: i for i, d in enumerate(self.docs)}
            self._doc_start = np.searchsorted(self.doc, np.arange(len(self.docs) + 1))
        code = self._doc_codes.get(doc_id)
        if code is None:
            return None
        return slice(int(self._doc_start[code]), int(self._doc_start[code + 1]))

    def row_of(self, chunk_id: str) -> int | None:
        doc_id, _, idx = chunk_id.rpartition(":")
        span = self.doc_rows(doc_id)
        if span is None or not idx.isdigit():
            return None
        i = int(idx)
        guess = span.start + i
        if guess < span.stop and self.index[guess] == i:
            return guess
        hit = np.flatnonzero(self.index[span] == i)
        return span.start + int(hit[0]) if len(hit) else None

    def mask(self, cond, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Which rows (all, or those given) pass ``cond`` (a :class:`~.lexical.Conditions`); None: no condition."""
        if cond is None or cond.empty():
            return None
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
        keep = np.ones(len(self) if rows is None else len(rows), dtype=bool)
        for name, allowed in cond.values.items():
            values, codes = self.columns[name]
            lookup = np.zeros(len(values) + 1, dtype=bool)
            wanted = set(allowed)
            lookup[[i for i, v in enumerate(values) if v in wanted]] = True
            keep &= lookup[pick(codes)]
        dates = pick(self.dates)
        if cond.date_min:
            keep &= dates >= cond.date_min
        if cond.date_max:
            keep &= (dates <= cond.date_max) & (dates > 0)
        return keep

    # --- persistence -------------------------------------------------------------------
    def save(self, target: Path) -> None:
        """Write into the new directory ``target`` (the caller publishes it afterwards)."""
        target.mkdir(parents=True)
        arrays = {"indptr": self.indptr, "rows": self.rows, "tf": self.tf, "dl": self.dl, "doc": self.doc,
                  "index": self.index, "dates": self.dates, **{f"col_{f}": self.columns[f][1] for f in FIELDS}}
        for name, arr in arrays.items():
            with open(target / f"{name}.npy", "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr))
                fh.flush()
                os.fsync(fh.fileno())
        meta = {"format": FORMAT, "watermark": self.watermark, "terms": self.terms, "docs": self.docs,
                "values": {f: self.columns[f][0] for f in FIELDS}}
        with open(target / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(meta, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(target)
        fsync_dir(target.parent)
        self.name = target.name

    @classmethod
    def load(cls, target: Path) -> "Segment":
        """Raises OSError/ValueError/KeyError when the directory is missing or damaged."""
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"segment format {meta.get('format')}")
        big = {"rows", "tf", "indptr"}

        def arr(name: str) -> np.ndarray:
            return np.load(target / f"{name}.npy", mmap_mode="r" if name in big else None)

        seg = cls(watermark=int(meta["watermark"]), terms=meta["terms"], indptr=arr("indptr"), rows=arr("rows"),
                  tf=arr("tf"), dl=arr("dl"), docs=meta["docs"], doc=arr("doc"), index=arr("index"),
                  columns={f: (meta["values"][f], arr(f"col_{f}")) for f in FIELDS}, dates=arr("dates"),
                  name=target.name)
        if not (len(seg.doc) == len(seg.dl) == len(seg.index) == len(seg.dates)
                and len(seg.indptr) == len(seg.terms) + 1 and len(seg.rows) == len(seg.tf) == int(seg.indptr[-1])):
            raise ValueError(f"segment {target.name} is inconsistent")
        return seg
