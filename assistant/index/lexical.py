"""German-aware BM25 over the chunk table, persisted beside the Chroma index.

The index is derived data: it is rebuilt from the chunk rows in the manifest database
(each row keeps its tokens, so a rebuild never re-stems) and saved to a fresh directory
that a pointer file then names; a crash mid-save leaves the previous index in use.
"""
from __future__ import annotations

import json
import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..fsutil import atomic_write, fsync_dir

POINTER = "lexical.json"
FIELDS = ("collection", "type", "municipality", "source")

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss"})
# question words and filler that carry no topic; the bm25s list lacks them
_EXTRA_STOP = {"wann", "wer", "wem", "wen", "wessen", "warum", "weshalb", "wieso", "wieviel",
               "wieviele", "gibt", "geben", "gilt", "bitte", "welch", "worauf", "wofur", "womit",
               "wozu", "woher", "wohin", "darf", "durfen", "konnen", "kann", "muss", "mussen",
               "soll", "sollen", "ab", "bzw", "z", "b", "ca", "sowie", "beim", "wurde", "wurden"}

_stemmer = None
_stop: set[str] | None = None


def _stopwords() -> set[str]:
    global _stop
    if _stop is None:
        from bm25s.stopwords import STOPWORDS_GERMAN
        _stop = {w.lower().translate(_FOLD) for w in STOPWORDS_GERMAN} | _EXTRA_STOP
    return _stop


def _stem(words: list[str]) -> list[str]:
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer: German Snowball in C (also maps ae/oe/ue and ß)
        _stemmer = Stemmer.Stemmer("german")
    return _stemmer.stemWords(words)


def tokenize(text: str) -> list[str]:
    """Lowercase, fold umlauts/ß, drop stopwords and stem (German Snowball)."""
    text = unicodedata.normalize("NFC", text).lower().translate(_FOLD)
    stop = _stopwords()
    words = [w for w in _WORD.findall(text) if w not in stop and (len(w) > 1 or w.isdigit())]
    return _stem(words) if words else []


def date_int(iso: str, *, upper: bool = False) -> int:
    """ISO date (or a prefix: 2024, 2024-05) -> YYYYMMDD; missing parts pad low or high."""
    digits = re.sub(r"\D", "", iso or "")[:8]
    if len(digits) < 4:
        return 0
    pad = "1299" if upper else "0000"
    digits = digits + pad[len(digits) - 4:] if len(digits) < 8 else digits
    return int(digits)


@dataclass
class Conditions:
    """Filters resolved to plain values: each field -> allowed values (None = any)."""

    values: dict[str, list[str]] = field(default_factory=dict)
    date_min: int = 0
    date_max: int = 0

    def empty(self) -> bool:
        return not self.values and not self.date_min and not self.date_max

    def impossible(self) -> bool:
        """A field restricted to no value at all: nothing can match."""
        return any(len(v) == 0 for v in self.values.values())

    def chroma_where(self) -> dict | None:
        terms: list[dict] = []
        if self.impossible():   # Chroma refuses an empty $in; no id has this metadata
            return {"doc_id": {"$in": ["\0"]}}
        for name, allowed in self.values.items():
            terms.append({name: {"$in": list(allowed)}} if len(allowed) != 1 else {name: allowed[0]})
        if self.date_min:
            terms.append({"date_int": {"$gte": self.date_min}})
        if self.date_max:
            terms.append({"date_int": {"$lte": self.date_max}})
        if self.date_max and not self.date_min:
            terms.append({"date_int": {"$gt": 0}})   # unknown dates (0) are not "before"
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else {"$and": terms}


class LexicalIndex:
    """bm25s scores plus, per row, the chunk id and categorical filter columns."""

    def __init__(self, retriever, ids: list[str], columns: dict[str, tuple[list[str], np.ndarray]],
                 dates: np.ndarray, generation: int) -> None:
        self.retriever = retriever
        self.ids = ids
        self.columns = columns          # field -> (distinct values, int32 code per row)
        self.dates = dates              # int32 YYYYMMDD per row, 0 = unknown
        self.generation = generation
        self._rows: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, rows: Iterable[Sequence], generation: int) -> "LexicalIndex":
        """rows: (chunk_id, tokens 'a b c', collection, type, municipality, source, date_int)."""
        import bm25s

        ids: list[str] = []
        vocab: dict[str, int] = {}
        corpus_ids: list[list[int]] = []
        distinct: dict[str, dict[str, int]] = {f: {} for f in FIELDS}
        codes: dict[str, list[int]] = {f: [] for f in FIELDS}
        dates: list[int] = []
        for chunk_id, tokens, *cats, date in rows:
            ids.append(chunk_id)
            corpus_ids.append([vocab.setdefault(t, len(vocab)) for t in tokens.split()])
            for name, value in zip(FIELDS, cats):
                codes[name].append(distinct[name].setdefault(value or "", len(distinct[name])))
            dates.append(int(date or 0))
        retriever = None
        if ids:
            vocab.setdefault("", len(vocab))   # bm25s wants an id for "no token"
            retriever = bm25s.BM25(k1=1.2, b=0.75)
            retriever.index((corpus_ids, vocab), show_progress=False, create_empty_token=False)
        columns = {f: (list(distinct[f]), np.asarray(codes[f], dtype=np.int32)) for f in FIELDS}
        return cls(retriever, ids, columns, np.asarray(dates, dtype=np.int32), generation)

    def mask(self, cond: Conditions | None) -> np.ndarray | None:
        """Rows passing ``cond`` (None: no condition)."""
        if cond is None or cond.empty():
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        for name, allowed in cond.values.items():
            values, codes = self.columns[name]
            lookup = np.zeros(len(values) + 1, dtype=bool)
            wanted = set(allowed)
            lookup[[i for i, v in enumerate(values) if v in wanted]] = True
            keep &= lookup[codes]
        if cond.date_min:
            keep &= self.dates >= cond.date_min
        if cond.date_max:
            keep &= (self.dates <= cond.date_max) & (self.dates > 0)
        return keep

    def row_of(self, chunk_id: str) -> int | None:
        if self._rows is None:
            self._rows = {cid: i for i, cid in enumerate(self.ids)}
        return self._rows.get(chunk_id)

    def knows(self, word: str) -> bool:
        """Does any indexed text hold ``word`` (after this index's normalisation)? An empty index
        and a stopword know everything. German compounds count as known when their parts are
        ("Fachanwendungen": "Fach" + "anwendungen", also with a linking "s")."""
        vocab = self.retriever.vocab_dict if self.retriever is not None else {}
        if not vocab or not tokenize(word) or self._has(word, vocab):
            return True
        for i in range(4, len(word) - 3):
            left, right = word[:i], word[i:]
            if self._has(right, vocab) and (self._has(left, vocab) or (left.endswith("s") and self._has(left[:-1], vocab))):
                return True
        return False

    @staticmethod
    def _has(word: str, vocab: dict) -> bool:
        toks = tokenize(word)
        return bool(toks) and all(t in vocab for t in toks)

    def search(self, query: str, n: int, cond: Conditions | None = None) -> list[tuple[str, float]]:
        """Top n (chunk_id, bm25 score) with score > 0 among rows passing ``cond``."""
        if self.retriever is None or n <= 0:
            return []
        token_ids = sorted({self.retriever.vocab_dict[t] for t in tokenize(query)
                            if t in self.retriever.vocab_dict and t})
        if not token_ids:
            return []
        scores = self.retriever.get_scores_from_ids(token_ids)
        keep = self.mask(cond)
        if keep is not None:
            scores = np.where(keep, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- persistence -------------------------------------------------------------------
    def save(self, index_dir: Path) -> None:
        """Write to a new directory, then switch the pointer file atomically."""
        name = f"lexical-{self.generation}-{uuid.uuid4().hex[:8]}"
        target = index_dir / name
        target.mkdir(parents=True)
        meta = {"generation": self.generation, "ids": self.ids,
                "values": {f: self.columns[f][0] for f in FIELDS}}
        (target / "rows.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.savez(target / "columns.npz", dates=self.dates, **{f: self.columns[f][1] for f in FIELDS})
        if self.retriever is not None:
            self.retriever.save(str(target / "bm25"), show_progress=False)
        fsync_dir(target)
        atomic_write(index_dir / POINTER, json.dumps({"dir": name, "generation": self.generation}))
        for old in index_dir.glob("lexical-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, index_dir: Path) -> "LexicalIndex | None":
        """The saved index, or None when there is none (or it is unreadable: rebuild then)."""
        try:
            pointer = json.loads((index_dir / POINTER).read_text(encoding="utf-8"))
            target = index_dir / pointer["dir"]
            meta = json.loads((target / "rows.json").read_text(encoding="utf-8"))
            with np.load(target / "columns.npz") as arrays:
                columns = {f: (meta["values"][f], arrays[f]) for f in FIELDS}
                dates = arrays["dates"]
            retriever = None
            if meta["ids"]:
                import bm25s
                retriever = bm25s.BM25.load(str(target / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError):
            return None
        return cls(retriever, meta["ids"], columns, dates, int(meta["generation"]))

