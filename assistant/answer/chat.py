"""Where a question becomes a cited answer.

question (+ history) -> hybrid retrieval -> relevance gate -> compressed, delimited
passages in a versioned prompt -> streamed tokens -> citation check. Callers get
events: the sources first (so the UI can show them before the answer streams), then
tokens, then the final :class:`Answer`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from .. import text as T
from ..config import Settings
from ..errors import UsageError
from ..index import retrieval
from ..index.filters import Filters
from ..index.store import open_store
from ..runtime import llm
from ..types import Answer, Citation, Hit
from . import citations, passages, prompts

MAX_QUESTION_CHARS = 4000


@dataclass
class ChatEvent:
    kind: str                       # "sources" | "token" | "done"
    text: str = ""
    sources: list[Hit] = field(default_factory=list)
    answer: Answer | None = None


def check_question(question: str) -> str:
    q = (question or "").strip()
    if not q:
        raise UsageError("Bitte eine Frage eingeben.", "Please enter a question.", "Frage eintippen")
    if len(q) > MAX_QUESTION_CHARS:
        raise UsageError(f"Die Frage ist zu lang ({len(q)} Zeichen, höchstens {MAX_QUESTION_CHARS}).",
                         f"The question is too long ({len(q)} characters, at most {MAX_QUESTION_CHARS}).",
                         "Frage kürzen; lange Texte als Dokument hochladen")
    return q


def retrieval_query(question: str, history: list[dict] | None) -> str:
    """Follow-ups ("Und bis wann?") carry too little to retrieve on; prepend the last question."""
    if history and len(T.tokens(question)) < 6:
        last = next((m["content"] for m in reversed(history) if m.get("role") == "user"), "")
        return f"{last} {question}".strip()
    return question


def build_messages(question: str, texts: list[str], hits: list[Hit], history: list[dict] | None,
                   prompt: prompts.Prompt) -> list[BaseMessage]:
    blocks = []
    for n, (text, hit) in enumerate(zip(texts, hits), start=1):
        if not text:
            continue
        page = f' seite="{hit.chunk.page}"' if hit.chunk.page else ""
        title, _ = passages.safe_title(hit.chunk.title, hit.chunk.source)
        blocks.append(prompt["source"].format(n=n, title=title, page=page, text=text))
    msgs: list[BaseMessage] = [SystemMessage(prompt["system"])]
    for m in (history or [])[-4:]:   # two turns keep follow-ups coherent without bloating the prompt
        msgs.append((HumanMessage if m.get("role") == "user" else AIMessage)(str(m.get("content", ""))[:600]))
    msgs.append(HumanMessage(prompt["user"].format(sources="\n".join(blocks), question=passages.clean(question))))
    return msgs


def _refusal_text(prompt: prompts.Prompt, hits: list[Hit], unknown: list[str] | None = None) -> str:
    lines = [prompt["refusal"]]
    if unknown:
        lines.append(f"(Ohne Treffer in den Unterlagen: {', '.join(unknown)})")
    if hits:
        lines.append("\nNächstliegende Quellen:")
        for h in hits[:3]:
            page = f", S. {h.chunk.page}" if h.chunk.page else ""
            lines.append(f"- {h.chunk.title or h.chunk.source}{page}")
    return "\n".join(lines)


def make_citations(answer: str, used: list[int], hits: list[Hit]) -> list[Citation]:
    out = []
    for n in used:
        c = hits[n - 1].chunk
        out.append(Citation(n=n, doc_id=c.doc_id, source=c.source, title=c.title, page=c.page,
                            quote=citations.best_quote(c.text, citations.claims_for(answer, n)),
                            chunk_id=c.chunk_id, paper_number=c.paper_number, url=c.url))
    return out


def ask_stream(question: str, settings: Settings, *, history: list[dict] | None = None,
               filters: Filters | None = None, chat_model=None, store=None) -> Iterator[ChatEvent]:
    question = check_question(question)
    # --- procedure questions ("Was wurde aus Antrag 0087/2025?"): the council trace answers,
    # one citation per step, without the model (answer/procedures.py) ---
    from . import procedures

    traced = procedures.respond(question, settings, store=store)
    if traced is not None:
        yield ChatEvent("sources", sources=traced.sources)
        yield ChatEvent("token", text=traced.answer)
        yield ChatEvent("done", answer=traced)
        return
    # --- everything else: retrieval and the model ---
    prompt = prompts.load("chat")
    t0 = time.perf_counter()
    with open_store(settings, store) as store:
        hits = retrieval.search(retrieval_query(question, history), settings, k=settings.retrieval.k,
                                filters=filters, store=store)
        unknown = passages.unknown_terms(question, store.lexical().knows)
        if hits and max(h.similarity or 0.0 for h in hits) >= settings.retrieval.unknown_term_similarity:
            unknown = []
    t_retrieval = time.perf_counter()
    yield ChatEvent("sources", sources=hits)
    timings = {"retrieval_ms": round((t_retrieval - t0) * 1000, 1)}
    model = llm.model_label(settings)

    if unknown or not passages.relevant(hits, question, min_similarity=settings.retrieval.min_score):
        text = _refusal_text(prompt, hits, unknown)
        yield ChatEvent("token", text=text)
        timings.update(first_token_ms=timings["retrieval_ms"], total_ms=round((time.perf_counter() - t0) * 1000, 1))
        yield ChatEvent("done", answer=Answer(text, [], True, model, timings, hits))
        return

    texts, dropped = passages.select(hits, question, total=settings.retrieval.context_chars,
                                       per_passage=settings.retrieval.context_chars_per_passage)
    dropped += sum(passages.safe_title(h.chunk.title, h.chunk.source)[1] for h in hits)
    messages = build_messages(question, texts, hits, history, prompt)
    chat_model = chat_model or llm.get_chat_model(settings)
    raw, first = "", None
    for piece in llm.stream_text(chat_model, messages):
        first = first or time.perf_counter()
        raw += piece
        yield ChatEvent("token", text=piece)
    t_end = time.perf_counter()
    timings.update(first_token_ms=round(((first or t_end) - t0) * 1000, 1), total_ms=round((t_end - t0) * 1000, 1))

    if citations.is_refusal(raw, prompt["refusal"]) or not raw.strip():
        answer = Answer(_refusal_text(prompt, hits), [], True, model, timings, hits)
    else:
        checked = citations.check(raw.strip(), [h.chunk.text for h in hits])
        if len(T.tokens(citations.CITE.sub("", checked.text))) < 3:
            # Small models sometimes answer with a bare "[1]": give the cited passage's own words.
            n = checked.used[0] if checked.used else 1
            quote = citations.best_quote(hits[n - 1].chunk.text, question)
            checked = citations.CheckedAnswer(f"Laut Quelle [{n}]: „{quote}“", [n], checked.removed, 0, [], 0)
            dropped_note = True
        else:
            dropped_note = False
        answer = Answer(checked.text, make_citations(checked.text, checked.used, hits), False, model, timings,
                        hits, removed_citations=checked.removed)
        answer.extra = {"added_citations": checked.added, "corrected_citations": checked.corrected, "unsupported_sentences": checked.unsupported,
                        "dropped_instructions": dropped, "prompt": prompt.id,
                        "extractive": dropped_note}
    yield ChatEvent("done", answer=answer)


def warm_up(settings: Settings, chat_model=None) -> None:
    """Process the fixed system prompt once, so llama.cpp holds it in its KV cache before the
    first question (it would otherwise add ~4 s to that question's first token)."""
    if settings.llm.backend != "llamacpp":   # Ollama keeps its own cache per loaded model
        return
    prompt = prompts.load("chat")
    chat_model = chat_model or llm.get_chat_model(settings)
    chat_model.invoke([SystemMessage(prompt["system"]), HumanMessage("Hallo")], max_tokens=1)


def ask(question: str, settings: Settings, **kw) -> Answer:
    """The whole answer at once (CLI, evaluation, scripts)."""
    answer = None
    for event in ask_stream(question, settings, **kw):
        if event.kind == "done":
            answer = event.answer
    assert answer is not None
    return answer
