"""German-aware BM25 over the chunk table: tokens, filter conditions, and the search over
the segments that :mod:`.lexstate` keeps in step with the manifest.

Scoring is Lucene's BM25 (k1 1.2, b 0.75), the formula bm25s used here before; document
count, document frequencies and average length are taken over the live rows of all
segments at query time, so an index split into segments ranks exactly like one built anew.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .segment import Segment

K1, B = 1.2, 0.75

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


class Allowed:
    """The live rows passing a condition: how many, and whether a chunk id is one of them."""

    def __init__(self, index: "LexicalIndex", masks: list[np.ndarray]) -> None:
        self._index, self._masks = index, masks
        self.count = int(sum(int(m.sum()) for m in masks))

    def __contains__(self, chunk_id: str) -> bool:
        found = self._index.locate(chunk_id)
        return found is not None and bool(self._masks[found[0]][found[1]])


class LexicalIndex:
    """BM25 over segments (oldest first), each with a live-row mask (None: all rows live)."""

    def __init__(self, segments: Sequence[Segment], live: Sequence[np.ndarray | None], key: object = None) -> None:
        self.segments = list(segments)
        self.live = list(live)
        self.key = key                  # what the owner compares to know it is current
        self.n = sum(len(s) if m is None else int(m.sum()) for s, m in zip(self.segments, self.live))
        total = sum(float(s.dl.sum()) if m is None else float(s.dl[m].sum())
                    for s, m in zip(self.segments, self.live))
        self.avgdl = total / self.n if self.n else 1.0

    def __len__(self) -> int:
        return self.n

    def locate(self, chunk_id: str) -> tuple[int, int] | None:
        """(segment, row) of the live row holding ``chunk_id``; newest segment first."""
        for si in range(len(self.segments) - 1, -1, -1):
            row = self.segments[si].row_of(chunk_id)
            if row is not None and (self.live[si] is None or self.live[si][row]):
                return si, row
        return None

    def allowed(self, cond: Conditions | None) -> Allowed | None:
        """Live rows passing ``cond`` (None: no condition)."""
        if cond is None or cond.empty():
            return None
        masks = []
        for seg, live in zip(self.segments, self.live):
            m = seg.mask(cond)
            masks.append(m if live is None else m & live)
        return Allowed(self, masks)

    def _postings(self, term: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = []
        for si, (seg, live) in enumerate(zip(self.segments, self.live)):
            found = seg.postings(term)
            if found is None:
                continue
            rows, tf = found
            if live is not None:
                keep = live[rows]
                rows, tf = rows[keep], tf[keep]
            if len(rows):
                out.append((si, rows, tf))
        return out

    def search(self, query: str, n: int, cond: Conditions | None = None, *,
               prune: bool = True) -> list[tuple[str, float]]:
        """Top n (chunk_id, bm25 score) with score > 0 among live rows passing ``cond``.

        Terms are added rarest first. Once no row that none of them matched can reach the
        n-th best score any more (each remaining term adds less than its idf), the common
        terms are only looked up for the rows still in the race (MaxScore): in a million
        chunks "Stadt" or "Kosten" would otherwise cost half a million postings each. The
        result is the same as adding every posting (``prune=False``), up to ties."""
        if not self.n or n <= 0:
            return []
        terms = []
        for term in set(tokenize(query)):
            found = self._postings(term)
            df = sum(len(rows) for _, rows, _ in found)
            if df:
                terms.append((df, term, found, math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))))
        terms.sort(key=lambda t: (t[0], t[1]))
        rest = [sum(t[3] for t in terms[i:]) for i in range(len(terms))]
        scores: dict[int, np.ndarray] = {}
        racing: dict[int, np.ndarray] | None = None   # rows still in the race, once pruning started
        for i, (_df, _term, found, idf) in enumerate(terms):
            if prune and racing is None and i and (theta := self._nth(scores, n, cond)) > rest[i]:
                racing = {si: np.flatnonzero(acc + rest[i] >= theta) for si, acc in scores.items()}
            for si, rows, tf in found:
                seg = self.segments[si]
                acc = scores.get(si)
                if acc is None:
                    if racing is not None:
                        continue
                    acc = scores[si] = np.zeros(len(seg), dtype=np.float32)
                if racing is not None:   # look the racing rows up in this term's postings
                    want = racing[si]
                    pos = np.minimum(np.searchsorted(rows, want), len(rows) - 1)
                    hit = rows[pos] == want
                    rows, tf = want[hit], tf[pos[hit]]
                norm = K1 * (1.0 - B + B * seg.dl[rows] / self.avgdl)
                acc[rows] += (idf * tf / (tf + norm)).astype(np.float32)   # rows are unique per term
        best: list[tuple[float, int, int]] = []
        for si, acc in scores.items():
            rows = self._passing(si, acc, cond)
            if len(rows) > n:
                rows = rows[np.argpartition(-acc[rows], n - 1)[:n]]
            best += [(-float(acc[r]), si, int(r)) for r in rows]
        best.sort()
        return [(self.segments[si].chunk_id(row), -neg) for neg, si, row in best[:n]]

    def _passing(self, si: int, acc: np.ndarray, cond: Conditions | None) -> np.ndarray:
        rows = np.flatnonzero(acc)
        if cond is not None and not cond.empty():
            rows = rows[self.segments[si].mask(cond, rows)]
        return rows

    def _nth(self, scores: dict[int, np.ndarray], n: int, cond: Conditions | None) -> float:
        """The n-th best score so far among rows passing ``cond`` (0 while fewer than n)."""
        values = [acc[self._passing(si, acc, cond)] for si, acc in scores.items()]
        found = np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
        return float(np.partition(found, len(found) - n)[len(found) - n]) if len(found) >= n else 0.0
