"""Collect the answer-or-refuse signals for many questions without generating answers.

The calibration (``scripts/calibrate_answerability.py``) needs, per question, the model's P(yes)
to "is the answer in these sources?" and the evidence scores. An evaluation run with
``CHECK_THRESHOLD=0`` yields them too, but also writes every answer (~4x the time); this asks only
the one-token check, so a few hundred train questions fit in the time of sixty answers.

    python scripts/answerability_signals.py evals/suites/integreat-de-train.yaml \\
        --data-dir DATA --sample 200 --seed 3 --out signals.json [--model GGUF --threads 2 | --backend ollama --ollama-model TAG]
    python scripts/calibrate_answerability.py signals.json

Writes ``{"items": [{"id", "answerable", "diagnostics": {"check": {...}}}]}``, the shape of an
evaluation run's ``run.json`` that the calibration reads; resumes from an existing ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from assistant import config
from assistant.answer import chat, prompts
from assistant.evaluation.runner import item_filters
from assistant.evaluation.suites import load_suite, sample
from assistant.fsutil import atomic_write
from assistant.index.store import open_store
from assistant.runtime import llm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--backend", choices=config.BACKENDS, default="")
    ap.add_argument("--ollama-model", default="")
    args = ap.parse_args(argv)
    given = {"llm.model": args.model, "llm.threads": args.threads, "llm.backend": args.backend,
             "llm.ollama_model": args.ollama_model}
    overrides = {"data_dir": args.data_dir, **{k: v for k, v in given.items() if v}}
    settings = config.load(overrides)
    items = load_suite(args.suite).items
    if args.sample:
        items = sample(items, args.sample, args.seed)
    out = Path(args.out)
    done = {i["id"]: i for i in json.loads(out.read_text(encoding="utf-8"))["items"]} if out.exists() else {}
    prompt = prompts.load("chat")
    chat_model = llm.get_chat_model(settings)
    with open_store(settings) as store:
        for n, item in enumerate(items, 1):
            if item.id in done:
                continue
            t0 = time.perf_counter()
            # searched as `eval` searches it (an item's municipality scopes it), so the weights fit
            hits = chat.search(item.question, settings, store=store, filters=item_filters(item, None))
            ev = chat.choose_evidence(hits, item.question, settings)
            check = None
            if ev.best is not None:
                p_yes = llm.yes_probability(chat_model, chat.build_messages(item.question, ev, None, prompt, "check"))
                check = {"p_yes": p_yes, **ev.features}
            done[item.id] = {"id": item.id, "answerable": item.answerable, "diagnostics": {"check": check}}
            atomic_write(out, json.dumps({"items": list(done.values())}, ensure_ascii=False))
            print(f"{n}/{len(items)} {item.id} {check} {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
