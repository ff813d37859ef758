"""The answer pipelines a suite can run: the product's own and two baselines measured beside it.

* ``default`` – the product: :func:`assistant.answer.chat.ask`.
* ``naive``   – what a first prototype does: the top 3 whole passages of the same hybrid search
  in a plain prompt (``prompts/baseline``), no sentence selection, no gates, no citation repair.
* ``oracle``  – the same plain prompt with the gold passage only (the item's gold sources, or the
  page it was asked about): what the model makes of perfect retrieval.

Run together on the same items, they tell how much the pipeline around the model adds.
"""
from __future__ import annotations

import time

from langchain_core.messages import HumanMessage, SystemMessage

from ..answer import chat, citations, prompts
from ..config import Settings
from ..errors import UsageError
from ..index import retrieval
from ..index.filters import Filters
from ..index.store import Store
from ..runtime import llm
from ..types import Answer, Citation, Hit
from . import metrics as M
from .suites import EvalItem

PIPELINES = ("default", "naive", "oracle")
NAIVE_K = 3
ORACLE_MAX_CHUNKS = 12     # a gold page of a long PDF is still one page; a whole long file is capped


def check(names: list[str]) -> list[str]:
    """Pipeline names from the command line (repeated flags or comma lists), validated, in order."""
    out = [n.strip() for raw in names for n in raw.split(",") if n.strip()]
    unknown = [n for n in out if n not in PIPELINES]
    if unknown:
        raise UsageError(f"Unbekannte Pipeline {', '.join(unknown)} (möglich: {', '.join(PIPELINES)})",
                         f"unknown pipeline {', '.join(unknown)} (use {', '.join(PIPELINES)})",
                         "--pipeline default,naive,oracle")
    return list(dict.fromkeys(out)) or ["default"]


def answer(pipeline: str, item: EvalItem, settings: Settings, *, store: Store, chat_model,
           filters: Filters | None = None) -> Answer:
    if pipeline == "default":
        return chat.ask(item.question, settings, filters=filters, chat_model=chat_model, store=store)
    t0 = time.perf_counter()
    if pipeline == "naive":
        hits = retrieval.search(item.question, settings, k=NAIVE_K, filters=filters, store=store)
    elif pipeline == "oracle":
        hits = gold_hits(item, store)
    else:
        check([pipeline])
        raise AssertionError(pipeline)
    return plain_answer(item.question, hits, settings, chat_model=chat_model, started=t0)


def gold_hits(item: EvalItem, store: Store) -> list[Hit]:
    """The chunks of the item's gold sources (page-exact where pages are given), in reading order."""
    hits: list[Hit] = []
    for gold in item.oracle_sources:
        for doc in store.documents():
            if M.file_name(doc.source) != gold.file and not doc.doc_id.startswith(gold.file):
                continue
            chunks = store.get_chunks([f"{doc.doc_id}:{i}" for i in range(doc.n_chunks)])
            chunks = [c for c in chunks if not gold.pages or c.page in gold.pages]
            for c in sorted(chunks, key=lambda c: c.chunk_index)[:ORACLE_MAX_CHUNKS]:
                hits.append(Hit(chunk=c, score=1.0, rank=len(hits) + 1))
    return hits


def plain_answer(question: str, hits: list[Hit], settings: Settings, *, chat_model=None,
                 started: float | None = None) -> Answer:
    """The plain prompt over whole passages; citations taken as the model wrote them."""
    t0 = started if started is not None else time.perf_counter()
    prompt = prompts.load("baseline")
    model = llm.model_label(settings)
    t_retrieval = time.perf_counter()
    timings = {"retrieval_ms": round((t_retrieval - t0) * 1000, 1)}
    if not hits:
        timings.update(first_token_ms=timings["retrieval_ms"], total_ms=timings["retrieval_ms"])
        return Answer(prompt["refusal"], [], True, model, timings, hits)
    blocks = [prompt["source"].format(n=n, title=h.chunk.title or M.file_name(h.chunk.source), text=h.chunk.text)
              for n, h in enumerate(hits, start=1)]
    messages = [SystemMessage(prompt["system"]),
                HumanMessage(prompt["user"].format(sources="\n".join(blocks), question=question))]
    chat_model = chat_model or llm.get_chat_model(settings)
    raw, first = "", None
    for piece in llm.stream_text(chat_model, messages):
        first = first or time.perf_counter()
        raw += piece
    t_end = time.perf_counter()
    timings.update(first_token_ms=round(((first or t_end) - t0) * 1000, 1), total_ms=round((t_end - t0) * 1000, 1))
    text = raw.strip()
    refused = not text or citations.is_refusal(text, prompt["refusal"])
    used = [n for n in dict.fromkeys(citations.cited_numbers(text)) if 1 <= n <= len(hits)]
    cites = [] if refused else [_citation(n, hits[n - 1], text) for n in used]
    out = Answer(text or prompt["refusal"], cites, refused, model, timings, hits)
    out.extra = {"prompt": prompt.id}
    return out


def _citation(n: int, hit: Hit, answer_text: str) -> Citation:
    c = hit.chunk
    return Citation(n=n, doc_id=c.doc_id, source=c.source, title=c.title, page=c.page,
                    quote=citations.best_quote(c.text, citations.claims_for(answer_text, n)), chunk_id=c.chunk_id,
                    paper_number=c.paper_number, url=c.url)

