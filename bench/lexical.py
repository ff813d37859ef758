"""Incremental lexical search: the three candidates measured on the same chunk rows, in one run.

    .venv/bin/python bench/lexical.py --data-dir /tmp/bench/n100000 [--queries 200]

Reads the stemmed tokens of a kept benchmark index (``bench/retrieval.py --data-dir``) and
compares, for BM25 over the same tokens (the project's German stemming, done once at ingest):

* bm25s rebuilt from all rows (what every ingest paid before segments): build time, query time;
* segments (``assistant.index.segment`` + ``LexicalIndex``, what the store uses): build time,
  query time, and adding one 30-chunk document (a tail segment built from its rows);
* SQLite FTS5 with ``bm25()`` over the same tokens (a contentless table, rows added in place):
  build time, query time (OR of the query's stems, ``ORDER BY rank LIMIT``), adding one document.

``--scale N`` adds the segments' figures at N rows drawn from the kept index's own stems
(same term frequencies and chunk lengths, sampled with numpy), for sizes whose chunks cannot be
generated and stemmed in time on a busy machine.

Chroma's own sparse/BM25 index and its ``Rrf`` ranking need its Search API, which chromadb
1.5 offers only on Chroma Cloud and the distributed server, neither embedded nor `chroma run`;
the script checks the embedded client and says so.
"""
from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from retrieval import questions  # noqa: E402

from assistant.index.lexical import LexicalIndex, tokenize  # noqa: E402
from assistant.index.segment import ROW_SQL, Segment  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    return 1000 * float(np.percentile(xs, p))


def timed(fn, qs):
    lat = []
    for q in qs:
        t0 = time.perf_counter()
        fn(q)
        lat.append(time.perf_counter() - t0)
    return pct(lat, 50), pct(lat, 95)


def chroma_search_api() -> str:
    import tempfile

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=tempfile.mkdtemp(), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("probe", configuration={"hnsw": {"space": "cosine"}},
                                          embedding_function=None)
    col.add(ids=["a"], embeddings=[[0.1] * 4])
    try:
        from chromadb import Knn, Search
        col.search(Search().rank(Knn(query=[0.1] * 4)).limit(1))
    except Exception as exc:   # what the embedded client answers
        return f"not available embedded ({type(exc).__name__}: {str(exc)[:120]})"
    return "available embedded"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--scale", type=int, default=0, help="also measure segments at this many sampled rows")
    ap.add_argument("--only-scale", action="store_true", help="skip the comparison at the kept index's size")
    args = ap.parse_args()
    db = sqlite3.connect(args.data_dir / "index" / "manifest.sqlite3")
    rows = db.execute(ROW_SQL + " ORDER BY doc_id, chunk_index").fetchall()
    qs = questions(args.queries)
    load = os.getloadavg()
    print(f"{len(rows)} chunk rows; load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}", flush=True)

    # one 30-chunk document added to the index: the change an upload makes
    rng = random.Random(1)
    new_doc = [(f"newdoc:{i}", "newdoc", i, " ".join(rng.choice(rows)[3].split()[:60]), "council", "council", "",
                "/new.pdf", 20260101) for i in range(30)]

    t0 = time.perf_counter()
    seg = Segment.build(rows, 0)
    seg_build = time.perf_counter() - t0
    if args.only_scale:
        scaled(seg, args.scale, qs)
        return 0
    index = LexicalIndex([seg], [None])
    s50, s95 = timed(lambda q: index.search(q, 30), qs)
    t0 = time.perf_counter()
    tail = Segment.build(new_doc, 1)
    grown = LexicalIndex([seg, tail], [None, None])
    seg_add = time.perf_counter() - t0
    print(f"segments:  build all {seg_build:.1f} s; query p50 {s50:.1f} ms p95 {s95:.1f} ms; "
          f"add one document {1000 * seg_add:.0f} ms ({len(grown)} rows)", flush=True)

    import bm25s
    t0 = time.perf_counter()
    vocab: dict[str, int] = {}
    corpus = [[vocab.setdefault(t, len(vocab)) for t in r[3].split()] for r in rows]
    vocab.setdefault("", len(vocab))
    ref = bm25s.BM25(k1=1.2, b=0.75)
    ref.index((corpus, vocab), show_progress=False, create_empty_token=False)
    bm_build = time.perf_counter() - t0

    def bm_query(q: str) -> None:
        ids = sorted({vocab[t] for t in tokenize(q) if t in vocab})
        if ids:
            scores = ref.get_scores_from_ids(ids)
            np.argpartition(-scores, 29)[:30]
    b50, b95 = timed(bm_query, qs)
    print(f"bm25s:     build all {bm_build:.1f} s (paid again after every ingest before segments); "
          f"query p50 {b50:.1f} ms p95 {b95:.1f} ms", flush=True)
    del corpus

    fts = sqlite3.connect(":memory:")
    fts.execute("CREATE VIRTUAL TABLE t USING fts5(tokens, content='', tokenize='unicode61 remove_diacritics 0')")
    t0 = time.perf_counter()
    fts.executemany("INSERT INTO t(rowid, tokens) VALUES(?, ?)", ((i, r[3]) for i, r in enumerate(rows)))
    fts.commit()
    fts_build = time.perf_counter() - t0

    def fts_query(q: str) -> None:
        stems = sorted({t for t in tokenize(q) if t})
        if stems:
            match = " OR ".join(f'"{t}"' for t in stems)
            fts.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 30", (match,)).fetchall()
    f50, f95 = timed(fts_query, qs)
    t0 = time.perf_counter()
    fts.executemany("INSERT INTO t(rowid, tokens) VALUES(?, ?)", ((len(rows) + i, r[3]) for i, r in enumerate(new_doc)))
    fts.commit()
    fts_add = time.perf_counter() - t0
    print(f"FTS5:      build all {fts_build:.1f} s; query p50 {f50:.1f} ms p95 {f95:.1f} ms; "
          f"add one document {1000 * fts_add:.0f} ms", flush=True)
    print(f"Chroma sparse/BM25 + Rrf (Search API) in chromadb: {chroma_search_api()}")
    if args.scale:
        scaled(seg, args.scale, qs)
    return 0


def scaled(seg: Segment, n: int, qs: list[str]) -> None:
    """Segments at ``n`` rows whose stems follow ``seg``'s term and length distributions."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    df = np.diff(np.asarray(seg.indptr)).astype(np.float64)
    lengths = rng.choice(np.asarray(seg.dl, dtype=np.int64), size=n)
    terms = rng.choice(len(df), size=int(lengths.sum()), p=df / df.sum()).astype(np.int64)
    key = terms * n + np.repeat(np.arange(n, dtype=np.int64), lengths)
    del terms
    key, tf = np.unique(key, return_counts=True)
    indptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // n, minlength=len(df)), out=indptr[1:])
    zeros = np.zeros(n, dtype=np.int32)
    big = Segment(watermark=0, terms=list(seg.terms), indptr=indptr, rows=(key % n).astype(np.int32),
                  tf=tf.astype(np.float32), dl=lengths.astype(np.float32), docs=[f"d{i}" for i in range(n // 25 + 1)],
                  doc=(np.arange(n) // 25).astype(np.int32), index=(np.arange(n) % 25).astype(np.int32),
                  columns={f: (seg.columns[f][0][:1] or [""], zeros) for f in seg.columns}, dates=zeros)
    del key
    built = time.perf_counter() - t0
    index = LexicalIndex([big], [None])
    s50, s95 = timed(lambda q: index.search(q, 30), qs)
    e50, e95 = timed(lambda q: index.search(q, 30, prune=False), qs)
    tail = Segment.build([(f"newdoc:{i}", "newdoc", i, " ".join(seg.terms[t] for t in rng.integers(0, len(df), 60)),
                           "council", "council", "", "/new.pdf", 20260101) for i in range(30)], 1)
    t0 = time.perf_counter()
    grown = LexicalIndex([big, tail], [None, None])
    grown.search(qs[0], 30)
    add = time.perf_counter() - t0
    print(f"segments at {n} sampled rows ({len(big.rows)} postings, sampled in {built:.0f} s): "
          f"query p50 {s50:.1f} ms p95 {s95:.1f} ms (every posting added: p50 {e50:.1f} ms p95 {e95:.1f} ms); "
          f"one more document searchable in {1000 * add:.0f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
