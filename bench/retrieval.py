"""Search latency (query embedding included) at archive sizes up to a million chunks.

    .venv/bin/python bench/retrieval.py [--sizes 100000,1000000] [--queries 200] [--data-dir DIR]

Goal: p95 < 50 ms at 1M chunks. The chunks come from ``bench/corpusgen.py`` (German council
papers of sixty towns over twenty years, generated from the starter corpus); their vectors are
synthetic (really embedded texts of the chunk's topic plus noise), because embedding a million
chunks here would take two days. Queries are questions in the archive's words, embedded per
query as in production. With ``--data-dir`` an index is kept and reused by later runs (and by
``bench/ingest.py --big``). Prints per size: build time, disk use by part, the process's
resident memory, and p50/p95 of the whole search and of its parts.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from corpusgen import COMMITTEES, TOPICS, TOWNS, Vectors, generate  # noqa: E402

from assistant import config  # noqa: E402
from assistant.index import embeddings  # noqa: E402
from assistant.index.filters import Filters  # noqa: E402
from assistant.index.retrieval import search  # noqa: E402
from assistant.index.store import DocumentRecord, Store  # noqa: E402

FORMS = ["Wie hoch sind die Kosten für {topic} in {town}?", "Was hat der {committee} zu {topic} beschlossen?",
         "{topic} {town} Zuschuss Land", "Wann wurde über {topic} im {committee} beraten?",
         "Welche Förderung gibt es für {topic}?", "Stand der Umsetzung {topic} {year}",
         "Wer ist für {topic} in {town} zuständig?", "Eigenanteil der Stadt bei {topic}"]


def questions(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(FORMS).format(topic=rng.choice(TOPICS), town=rng.choice(TOWNS),
                                     committee=rng.choice(COMMITTEES), year=rng.randint(2008, 2026))
            for _ in range(n)]


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024 if out else 0.0


def build(store: Store, n: int, seed: int = 0, progress_every: int = 100_000) -> None:
    vectors = Vectors(seed)
    t0 = time.perf_counter()
    batch, size, done = [], 0, 0
    for doc in generate(n, seed):
        batch.append((DocumentRecord(source=doc.source, doc_id=doc.doc_id, collection=doc.chunks[0].collection,
                                     type="council", title=doc.title), doc.chunks, vectors(doc)))
        size += len(doc.chunks)
        if size >= 2000:
            store.add_documents(batch)
            done += size
            batch, size = [], 0
            if done // progress_every != (done - 2000) // progress_every:
                rate = done / (time.perf_counter() - t0)
                print(f"    {done} chunks, {rate:.0f}/s", flush=True)
    store.add_documents(batch)
    t_insert = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.rebuild_lexical()
    print(f"  built {n} chunks: insert {t_insert:.0f} s ({n / t_insert:.0f}/s), "
          f"lexical index {time.perf_counter() - t0:.1f} s", flush=True)


def measure(settings, store: Store, qs: list[str], filters: Filters | None = None) -> dict:
    for q in qs[:10]:                       # warm-up: model load, HNSW pages, lexical index
        search(q, settings, store=store, filters=filters)
    lat, emb, dense, lex = [], [], [], []
    cond = filters.resolve(store) if filters else None
    for q in qs:
        t0 = time.perf_counter()
        search(q, settings, store=store, filters=filters)
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v = embeddings.embed_query(q)
        t1 = time.perf_counter()
        store.dense_query(v, settings.retrieval.candidates, cond)
        t2 = time.perf_counter()
        store.lexical().search(q, settings.retrieval.candidates, cond)
        t3 = time.perf_counter()
        emb.append(t1 - t0), dense.append(t2 - t1), lex.append(t3 - t2)
    ms = lambda xs, p: 1000 * float(np.percentile(xs, p))  # noqa: E731
    return {"p50": ms(lat, 50), "p95": ms(lat, 95), "mean": 1000 * statistics.mean(lat),
            "embed": (ms(emb, 50), ms(emb, 95)), "dense": (ms(dense, 50), ms(dense, 95)),
            "lexical": (ms(lex, 50), ms(lex, 95))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", help="keep the indexes here and reuse them (default: a temp dir, deleted)")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"retrieval latency, {embeddings.threads()} cores, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, "
          f"k=5, candidates per retriever=30", flush=True)
    qs = questions(args.queries)
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-retrieval-")) / f"n{size}"
        settings = config.load({"data_dir": str(tmp)}, environ={}, config_file=tmp / "none.toml")
        store = Store(settings)
        try:
            if store.stats()["chunks"] != size:
                if store.stats()["chunks"]:
                    store.close()
                    shutil.rmtree(tmp)
                    store = Store(settings)
                build(store, size)
            t0 = time.perf_counter()
            store.lexical()
            store.collection.count()
            print(f"  {size:>7} chunks: opened in {time.perf_counter() - t0:.1f} s; disk: Chroma "
                  f"{disk_mb(settings.index_dir / 'chroma'):.0f} MB, manifest "
                  f"{disk_mb(settings.index_dir / 'manifest.sqlite3'):.0f} MB, lexical "
                  f"{disk_mb(settings.index_dir / 'lexical'):.0f} MB", flush=True)
            for label, filters in (("no filter", None), ("collection+date filter",
                                                         Filters(collection="council", date_from="2018"))):
                r = measure(settings, store, qs, filters)
                results[(size, label)] = r
                print(f"  {size:>7} chunks, {label:<22}: p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms  "
                      f"(mean {r['mean']:.1f}; parts p50/p95: embed {r['embed'][0]:.1f}/{r['embed'][1]:.1f}, "
                      f"dense {r['dense'][0]:.1f}/{r['dense'][1]:.1f}, "
                      f"lexical {r['lexical'][0]:.1f}/{r['lexical'][1]:.1f})", flush=True)
            now, peak = rss_mb()
            print(f"  {size:>7} chunks: resident memory of this process {now:.0f} MB (peak {peak:.0f} MB)", flush=True)
        finally:
            store.close()
            if not args.data_dir:
                shutil.rmtree(tmp.parent, ignore_errors=True)
    sizes = sorted({s for s, _ in results})
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        print(f"p95 without filter: {results[(a, 'no filter')]['p95']:.1f} ms at {a}, "
              f"{results[(b, 'no filter')]['p95']:.1f} ms at {b} (goal < 50 ms at 1,000,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
