"""Chat latency over the starter corpus with the embedded default.

For 20 questions: time until the sources are shown, time to first token, total time
(p50/p95), plus the prompt size the model had to process. Goals: sources
p50 < 1 s, first token p50 <= 3 s with the 1.5B model on 2 cores. As a baseline in the
same run, the same questions with the plain approach (all top-k passages in full,
no compression) show what prompt compression buys.

    .venv/bin/python bench/chat.py [--model NAME|PATH] [--threads 2] [--questions 20] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import config  # noqa: E402
from assistant.answer import chat, passages  # noqa: E402
from assistant.ingest import pipeline  # noqa: E402
from assistant.runtime import gguf, llm  # noqa: E402

QUESTIONS = [
    "Welches Budget hat der Rat für Pilotprojekte der Innovationsstrategie bereitgestellt?",
    "Wie viele Fachanwendungen hängen von Microsoft-Komponenten ab?",
    "Was kostet der KI-Assistent-Pilot in Musterstadt?",
    "Welche Kriterien nennt die Cloud-Strategie für Open-Source-Lösungen?",
    "Welche Ergebnisse hatte die openDesk-Evaluation?",
    "Wie hoch ist die Förderquote im Programm Digitales Rathaus in Bayern?",
    "Welche Unterlagen verlangt mFUND für einen Antrag?",
    "Was hat Schleswig-Holstein beim Umstieg auf Open Source erreicht?",
    "Welche Probleme hatte München mit LiMux?",
    "Was ist MUCGPT?",
    "Welche Datenschutzanforderungen gelten für den KI-Assistenten?",
    "Wer ist an der urbanen Datenplattform beteiligt?",
    "Welche Fristen gelten für Horizon Europe?",
    "Was empfiehlt der Zwischenbericht zum KI-Assistenten?",
    "Welche Rolle spielt BSI IT-Grundschutz in Musterstadt?",
    "Was fördert das Programm Modellprojekte Smart Cities?",
    "Welche Erfahrungen haben Kommunen mit Chatbots gemacht?",
    "Wann hat der Stadtrat die Innovationsstrategie beschlossen?",
    "Wie hoch ist der Eigenanteil bei der urbanen Datenplattform?",
    "Was kostet ein Parkausweis in Musterstadt?",   # not in the corpus: must refuse
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(settings, questions, compress: bool) -> dict:
    rows = []
    original = passages.select
    if not compress:   # baseline: every passage in full, as a plain RAG prompt would
        passages.select = lambda hits, q, **kw: ([h.chunk.text for h in hits], 0)
    try:
        chat_model = llm.get_chat_model(settings)
        for q in questions:
            t0 = time.perf_counter()
            t_sources = first = None
            for ev in chat.ask_stream(q, settings, chat_model=chat_model):
                if ev.kind == "sources":
                    t_sources = time.perf_counter()
                elif ev.kind == "token" and first is None:
                    first = time.perf_counter()
                elif ev.kind == "done":
                    answer = ev.answer
            t1 = time.perf_counter()
            rows.append({"sources": t_sources - t0, "first": (first or t1) - t0, "total": t1 - t0,
                         "refused": answer.refused})
            print(f"  {'R' if answer.refused else ' '} {rows[-1]['first']:6.2f}s first token, "
                  f"{rows[-1]['total']:6.2f}s total  {q[:60]}", flush=True)
    finally:
        passages.select = original
    return {k: [r[k] for r in rows] for k in ("sources", "first", "total")} | {
        "refused": sum(r["refused"] for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=gguf.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--data-dir", default=str(ROOT / "data"))
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args()
    s = config.load({"llm.model": a.model, "llm.threads": a.threads, "data_dir": a.data_dir})
    rep = pipeline.ingest([ROOT / "corpus"], s)
    print(f"index: {rep.to_dict().get('counts', '')}")
    qs = QUESTIONS[: a.questions]
    variants = [("compressed (project)", True)] + ([] if a.no_baseline else [("full passages (baseline)", False)])
    results = {}
    for name, compress in variants:
        print(f"{name}:")
        results[name] = run(s, qs, compress)
    print(f"\nmodel {llm.model_label(s)}, {a.threads} threads, {len(qs)} questions")
    print(f"{'variant':<26}{'sources p50':>12}{'p95':>7}{'1st tok p50':>12}{'p95':>7}{'total p50':>10}{'p95':>7}")
    for name, r in results.items():
        print(f"{name:<26}{statistics.median(r['sources']):>12.2f}{pct(r['sources'], .95):>7.2f}"
              f"{statistics.median(r['first']):>12.2f}{pct(r['first'], .95):>7.2f}"
              f"{statistics.median(r['total']):>10.2f}{pct(r['total'], .95):>7.2f}")
    if len(results) == 2:
        a_, b_ = results.values()
        print(f"first-token ratio baseline/project: {statistics.median(b_['first']) / statistics.median(a_['first']):.2f}x")
    print("goals: sources p50 < 1 s; first token p50 <= 3 s (1.5B, 2 cores)")


if __name__ == "__main__":
    main()
