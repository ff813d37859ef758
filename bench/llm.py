"""LLM backend overhead: time to first token and tokens/s for a ~1,500-token German prompt,
through the project's backend (LangChain chat model) against a direct call of the same
engine in the same run. Prints figures and the overhead ratio (goal: <= 1.05).

    .venv/bin/python bench/llm.py [--model NAME|PATH] [--threads 2] [--runs 3] [--max-tokens 64]

If llama-cpp-python is installed (optional; it compiles ~7 min), it is measured too,
so the choice of the embedded default can be re-checked on any machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402

from assistant import config  # noqa: E402
from assistant.runtime import gguf, llm  # noqa: E402

PARAGRAPH = ("Der Stadtrat hat die Verwaltung beauftragt, eine Innovationsstrategie zu erarbeiten. Dazu gehören "
             "Pilotprojekte zu künstlicher Intelligenz, Cloud-Diensten und Datenplattformen, eine Prüfung von "
             "Fördermitteln des Bundes, des Landes und der Europäischen Union sowie Kriterien für Open-Source-"
             "Lösungen, digitale Souveränität, Datenschutz und IT-Sicherheit nach BSI-Grundschutz. ")


def prompt(tokens: int = 1500) -> list:
    words = int(tokens / 2.6)   # measured: ~2.6 Qwen tokens per word of this German text
    text = (PARAGRAPH * (words // len(PARAGRAPH.split()) + 1))
    text = " ".join(text.split()[:words])
    return [SystemMessage("Du bist ein Assistent der Stadtverwaltung. Antworte auf Deutsch."),
            HumanMessage(f"Unterlagen:\n{text}\n\nFasse die Unterlagen in drei Sätzen zusammen.")]


def measure(stream_fn, runs: int) -> dict:
    ttft, tps, total = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        first, n = None, 0
        for _piece in stream_fn():
            first = first or time.perf_counter()
            n += 1
        t1 = time.perf_counter()
        ttft.append((first or t1) - t0)
        total.append(t1 - t0)
        tps.append((n - 1) / max(t1 - (first or t1), 1e-9) if n > 1 else 0.0)
    return {"ttft_s": statistics.median(ttft), "tok_s": statistics.median(tps), "total_s": statistics.median(total)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=gguf.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--data-dir", default="data")
    a = ap.parse_args()
    s = config.load({"llm.model": a.model, "llm.threads": a.threads, "llm.max_tokens": a.max_tokens,
                     "llm.temperature": 0.0, "data_dir": a.data_dir})
    chat = llm.get_chat_model(s)
    engine = chat.engine
    msgs = prompt()
    body = chat._body(msgs, None)
    body["cache_prompt"] = False      # both paths process the full prompt every run: a fair comparison
    n_prompt = engine.complete({**body, "max_tokens": 1})["usage"]["prompt_tokens"]

    results = {}
    # alternate the two paths so machine noise hits both alike
    for _ in range(a.runs):
        for name, fn in (("direct xllamacpp", lambda: engine.stream(body)),
                         ("project backend", lambda: llm.stream_text(chat.bind(cache_prompt=False), msgs))):
            r = measure(fn, 1)
            for k, v in r.items():
                results.setdefault(name, {}).setdefault(k, []).append(v)
    print(f"model {engine.info.name}, prompt {n_prompt} tokens, {a.max_tokens} new tokens, {a.threads} threads, "
          f"{a.runs} runs (median)")
    print(f"{'path':<20}{'TTFT s':>10}{'tok/s':>10}{'total s':>10}")
    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    for name, r in med.items():
        print(f"{name:<20}{r['ttft_s']:>10.2f}{r['tok_s']:>10.1f}{r['total_s']:>10.2f}")
    ratio = med["project backend"]["total_s"] / med["direct xllamacpp"]["total_s"]
    print(f"overhead ratio (total time, project/direct): {ratio:.3f}  (goal <= 1.05)")
    try:
        import llama_cpp  # optional native build
    except ImportError:
        print("llama-cpp-python: not installed (optional: pip install llama-cpp-python, ~7 min compile)")
        return
    native = llama_cpp.Llama(model_path=str(engine.info.path), n_ctx=s.llm.n_ctx, n_threads=a.threads, verbose=False)
    oai = [{"role": "system" if m.type == "system" else "user", "content": m.content} for m in msgs]

    def native_stream():
        for c in native.create_chat_completion(oai, max_tokens=a.max_tokens, temperature=0.0, stream=True):
            if c["choices"][0]["delta"].get("content"):
                yield c

    r = measure(native_stream, a.runs)
    print(f"{'llama-cpp-python':<20}{r['ttft_s']:>10.2f}{r['tok_s']:>10.1f}{r['total_s']:>10.2f}")


if __name__ == "__main__":
    main()
