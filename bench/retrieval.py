"""Search latency (query embedding included) at 10k and 100k chunks. Prints figures; goal p95 < 50 ms at 100k.

    .venv/bin/python bench/retrieval.py [--sizes 10000,100000] [--queries 200] [--data-dir DIR]

To reach 100k chunks fast, chunks are synthetic: German sentences recombined from a word
pool, with embeddings of 200 really embedded passages plus noise (so the HNSW graph is
not degenerate). Queries are real questions, embedded per query as in production.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from assistant import config  # noqa: E402
from assistant.index import embeddings  # noqa: E402
from assistant.index.filters import Filters  # noqa: E402
from assistant.index.retrieval import search  # noqa: E402
from assistant.index.store import DocumentRecord, Store  # noqa: E402
from assistant.types import Chunk  # noqa: E402

WORDS = ("Gemeinderat Beschluss Förderung Radweg Haushalt Kita Gebühren Straßenbeleuchtung Digitalisierung "
         "Bürgerbüro Termin Antrag Zuschuss Land Bund Kommune Verwaltung Ausschuss Sitzung Vorlage Kosten "
         "Eigenanteil Glasfaser Klimaschutz Stelle Projekt Evaluation Bericht Jahr Prozent Euro Mittel "
         "Investition Schule Sanierung Freibad Wohnungen Bebauungsplan Verkehr Parkplätze Ladepunkte "
         "Energie Wärmeplanung Photovoltaik Dach Feuerwehr Fahrzeug Beschaffung Ausschreibung Vergabe "
         "Personal Stellenplan Satzung Gebührenordnung Abfall Wasser Abwasser Friedhof Bibliothek Museum "
         "Tourismus Wirtschaftsförderung Gewerbegebiet Breitband Schulträger Jugend Senioren Integration").split()
QUERIES = ["Wie hoch ist der Zuschuss des Landes für Radwege?", "Wann öffnet das Bürgerbüro samstags?",
           "Welche Kosten entstehen für die Digitalisierung der Schulen?", "Eigenanteil Glasfaserausbau",
           "Stellenplan Klimaschutzmanagement Förderung", "Sanierung Freibad Haushalt 2025",
           "Was beschloss der Ausschuss zur Wärmeplanung?", "Photovoltaik auf Dächern kommunaler Gebäude"]


def build(store: Store, n: int, rng: random.Random) -> float:
    base_texts = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(200)]
    base = embeddings.embed_passages(base_texts)
    noise = np.random.default_rng(1)
    t0 = time.perf_counter()
    per_doc = 1000
    for d in range(0, n, per_doc):
        m = min(per_doc, n - d)
        doc_id = f"bench{d // per_doc:05d}"
        chunks = [Chunk(chunk_id=f"{doc_id}:{i}", doc_id=doc_id, source=f"/bench/{doc_id}.pdf", page=i // 3 + 1,
                        text=" ".join(rng.choice(WORDS) for _ in range(60)), chunk_index=i,
                        collection="bench" if d % 2000 else "other", type="council",
                        date=f"20{15 + (i % 10)}-01-01") for i in range(m)]
        vecs = base[[rng.randrange(200) for _ in range(m)]] + noise.normal(0, 0.03, (m, embeddings.DIMENSION))
        vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
        store.add_document(DocumentRecord(source=chunks[0].source, doc_id=doc_id), chunks, vecs)
    t_insert = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.rebuild_lexical()
    print(f"  insert {n} chunks: {t_insert:.1f} s ({n / t_insert:.0f}/s); lexical rebuild {time.perf_counter() - t0:.1f} s")
    return t_insert


def measure(settings, store: Store, runs: int, filters: Filters | None = None) -> dict:
    for q in QUERIES:                       # warm-up: model load, HNSW pages, lexical index
        search(q, settings, store=store, filters=filters)
    lat, emb, dense, lex = [], [], [], []
    for i in range(runs):
        q = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}")
        t0 = time.perf_counter()
        search(q, settings, store=store, filters=filters)
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v = embeddings.embed_query(q)
        t1 = time.perf_counter()
        store.dense_query(v, settings.retrieval.candidates)
        t2 = time.perf_counter()
        store.lexical().search(q, settings.retrieval.candidates)
        t3 = time.perf_counter()
        emb.append(t1 - t0), dense.append(t2 - t1), lex.append(t3 - t2)
    ms = lambda xs, p: 1000 * float(np.percentile(xs, p))  # noqa: E731
    return {"p50": ms(lat, 50), "p95": ms(lat, 95), "mean": 1000 * statistics.mean(lat),
            "embed_p50": ms(emb, 50), "dense_p50": ms(dense, 50), "lexical_p50": ms(lex, 50)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", help="keep the index here (default: a temp dir, deleted)")
    args = ap.parse_args()
    rng = random.Random(0)
    print(f"retrieval latency, {embeddings.threads()} cores, k=5, candidates per retriever=30")
    for size in [int(s) for s in args.sizes.split(",")]:
        tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-retrieval-")) / f"n{size}"
        settings = config.load({"data_dir": str(tmp)}, environ={}, config_file=tmp / "none.toml")
        store = Store(settings)
        try:
            if store.collection.count() != size:
                build(store, size, rng)
            for label, filters in (("no filter", None), ("collection+date filter",
                                                         Filters(collection="bench", date_from="2020"))):
                r = measure(settings, store, args.queries, filters)
                print(f"  {size:>7} chunks, {label:<22}: p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms  "
                      f"(mean {r['mean']:.1f}; parts p50: embed {r['embed_p50']:.1f}, dense {r['dense_p50']:.1f}, "
                      f"lexical {r['lexical_p50']:.1f})")
        finally:
            store.close()
            if not args.data_dir:
                shutil.rmtree(tmp.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
