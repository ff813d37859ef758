"""Chat latency over the starter corpus on a warm server, beside the raw engine for the same prompts.

For 20 questions (the last one has no answer in the corpus): time until the sources are shown,
until the first words of the answer (the "Fundstelle", the best evidence sentence with its
citation, shown before the model has read anything), until the model's own first token, and
until the full answer (p50/p95). In the same run the raw llama.cpp engine processes exactly
the answer prompts the pipeline built, without retrieval, check or post-processing: the
difference is what the pipeline around the model costs.

Goals: first words p50 <= 3 s and p95 <= 6 s, full answer p50 <= 15 s (default 1.5B model, 2 cores).

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

from langchain_core.messages import convert_to_openai_messages  # noqa: E402

from assistant import config  # noqa: E402
from assistant.answer import chat, prompts  # noqa: E402
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
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def pipeline_run(settings, questions, chat_model) -> dict:
    rows = []
    for q in questions:
        t0 = time.perf_counter()
        marks: dict[str, float] = {}
        for ev in chat.ask_stream(q, settings, chat_model=chat_model):
            now = time.perf_counter() - t0
            if ev.kind == "sources":
                marks.setdefault("sources", now)
            elif ev.kind in ("quote", "token"):
                marks.setdefault("words", now)     # the first words a person reads
                if ev.kind == "token":
                    marks.setdefault("model", now)
            elif ev.kind == "done":
                answer = ev.answer
        total = time.perf_counter() - t0
        rows.append({"sources": marks["sources"], "words": marks.get("words", total),
                     "model": marks.get("model"), "total": total, "refused": answer.refused})
        model = f"{rows[-1]['model']:6.2f}s" if rows[-1]["model"] is not None else "   –   "
        print(f"  {'R' if answer.refused else ' '} words {rows[-1]['words']:5.2f}s  model {model}  "
              f"total {total:6.2f}s  {q[:60]}", flush=True)
    return rows


def raw_engine_run(settings, questions) -> list[dict]:
    """The same answer prompts straight into the engine: no retrieval, no check, no post-processing."""
    engine = llm.EmbeddedEngine.get(settings)
    prompt = prompts.load("chat")
    rows = []
    for q in questions:
        hits = chat.search(q, settings)
        ev = chat.choose_evidence(hits, q, settings)
        if ev.best is None:
            continue
        body = {"messages": convert_to_openai_messages(chat.build_messages(q, ev, None, prompt, "answer")),
                "max_tokens": settings.llm.max_tokens, "temperature": settings.llm.temperature,
                "cache_prompt": True, "repeat_penalty": 1.1}
        t0 = time.perf_counter()
        first = None
        for _ in engine.stream(body):
            first = first or time.perf_counter() - t0
        rows.append({"model": first or time.perf_counter() - t0, "total": time.perf_counter() - t0})
    return rows


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
    chat_model = llm.get_chat_model(s)
    chat.warm_up(s, chat_model)                                  # as `serve` does at start-up
    list(chat.ask_stream("Was ist die Innovationsstrategie?", s, chat_model=chat_model))   # warm server
    print("pipeline:")
    rows = pipeline_run(s, qs, chat_model)
    raw = [] if a.no_baseline or s.llm.backend != "llamacpp" else raw_engine_run(s, qs)
    answered = [r for r in rows if r["model"] is not None]
    print(f"\nmodel {llm.model_label(s)}, {a.threads} threads, {len(qs)} questions "
          f"({len(rows) - len(answered)} refused or answered from the Fundstelle alone)")
    print(f"{'':<30}{'p50':>8}{'p95':>8}")
    for label, values in (("sources shown", [r["sources"] for r in rows]),
                          ("first words (Fundstelle)", [r["words"] for r in rows]),
                          ("model's first token", [r["model"] for r in answered]),
                          ("full answer", [r["total"] for r in rows]),
                          ("raw engine: first token", [r["model"] for r in raw]),
                          ("raw engine: full answer", [r["total"] for r in raw])):
        if values:
            print(f"{label:<30}{statistics.median(values):>8.2f}{pct(values, .95):>8.2f}")
    if raw and answered:
        print(f"model's first token, pipeline / raw engine: "
              f"{statistics.median(r['model'] for r in answered) / statistics.median(r['model'] for r in raw):.2f}x "
              "(the pipeline first asks the model whether the sources answer; that read is cached)")
    print("goals: first words p50 <= 3 s, p95 <= 6 s; full answer p50 <= 15 s (1.5B, 2 cores, warm server)")


if __name__ == "__main__":
    main()
