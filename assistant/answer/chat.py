"""Where a question becomes a cited answer.

question (+ history) -> hybrid retrieval (a compound question's parts searched too) -> evidence
sentences chosen by meaning and words (``evidence``; for each part in turn) -> the best one shown at
once as the "Fundstelle" -> the model asked whether the sources answer the question, that and
the evidence scores decide (``answerability``) -> the model phrases a short answer from the same
cached prompt prefix -> citations checked, sentences with numbers no source holds removed.

Callers get events: the sources, the Fundstelle (both before the model has read anything),
the answer's tokens, then the final :class:`Answer`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from .. import text as T
from ..config import AnswerSettings, Settings
from ..errors import UsageError
from ..index import retrieval
from ..index.filters import Filters
from ..index.store import open_store
from ..runtime import llm
from ..types import Answer, Citation, Hit
from . import answerability, citations, evidence, passages, prompts

MAX_QUESTION_CHARS = 4000


@dataclass
class ChatEvent:
    kind: str                       # "sources" | "quote" | "token" | "done"
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


def build_messages(question: str, ev: evidence.Evidence, history: list[dict] | None, prompt: prompts.Prompt,
                   task: str) -> list[BaseMessage]:
    """System, the last turns, then sources + question + task: everything before the task is the
    same for the check and the answer, so the second request reuses the first one's KV cache."""
    blocks = []
    for p in ev.order:
        hit = ev.hits[p]
        title, _ = passages.safe_title(hit.chunk.title, hit.chunk.source)
        page = f", Seite {hit.chunk.page}" if hit.chunk.page else ""
        blocks.append(prompt["source"].format(n=p + 1, title=title + page, text="\n" + ev.text(p) + "\n"))
    msgs: list[BaseMessage] = [SystemMessage(prompt["system"])]
    for m in (history or [])[-4:]:   # two turns keep follow-ups coherent without bloating the prompt
        msgs.append((HumanMessage if m.get("role") == "user" else AIMessage)(str(m.get("content", ""))[:600]))
    msgs.append(HumanMessage(prompt["user"].format(sources="\n".join(blocks), question=passages.clean(question),
                                                   task=prompt[task])))
    return msgs


def choose_evidence(hits: list[Hit], question: str, settings: Settings) -> evidence.Evidence:
    """The evidence a chat prompt shows, with the configured budget and weights (also for the
    benchmark and the calibration, so they measure what users get)."""
    a = settings.answer
    return evidence.select(hits, question, total=settings.retrieval.context_chars, max_passages=a.max_passages,
                           before=a.before, after=a.after, w_overlap=a.overlap_weight, rank_penalty=a.rank_penalty,
                           parts=search_parts(question))


def search_parts(question: str) -> list[str]:
    """A compound question's parts as they are searched and scored; a part that names too little to
    search on ("wo läuft es?") is replaced by the whole question."""
    parts = T.question_parts(question)
    return [p if len(T.stems(p)) >= 2 else question for p in parts] if len(parts) > 1 else parts


def search(question: str, settings: Settings, *, history: list[dict] | None = None, filters: Filters | None = None,
           store=None) -> list[Hit]:
    """The passages a chat answer reads: the question (with the last one for a short follow-up) and,
    for a compound question, each of its parts searched, their rankings fused."""
    parts = search_parts(question)
    queries = [retrieval_query(question, history), *(parts if len(parts) > 1 else [])]
    return retrieval.search_many(queries, settings, k=settings.retrieval.k, filters=filters, store=store)


def fundstelle(ev: evidence.Evidence, a: AnswerSettings) -> list[dict]:
    """What is shown at once, one entry per passage ({"n", "text"}, best first): the best run of
    sentences and a close second, from another passage or the same (``evidence.Evidence.quotes``);
    two runs of one passage in reading order, joined by "[…]"."""
    runs = ev.quotes(a.quote_sentences, second_after=a.second_quote_sentences, second_within=a.second_quote_within,
                     other_within=a.second_quote_elsewhere_within)
    by_passage: dict[int, list[list[evidence.Sentence]]] = {}
    for run in runs:
        by_passage.setdefault(run[0].passage, []).append(run)
    return [{"n": p + 1, "text": " […] ".join(" ".join(s.text for s in run)
                                              for run in sorted(rs, key=lambda r: r[0].index))}
            for p, rs in by_passage.items()]


def _refusal_text(prompt: prompts.Prompt, hits: list[Hit], note: str = "") -> str:
    lines = [f"{prompt['refusal']} {note}".strip()]
    if hits:
        lines.append("\nNächstliegende Quellen:")
        for h in hits[:3]:   # titles come from documents: escaped, and a file name, never a server path
            page = f", S. {h.chunk.page}" if h.chunk.page else ""
            lines.append(f"- {T.md_escape(h.chunk.title or Path(h.chunk.source).name)}{page}")
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

    traced = procedures.respond(question, settings, store=store, filters=filters)
    if traced is not None:
        yield ChatEvent("sources", sources=traced.sources)
        yield ChatEvent("token", text=traced.answer)
        yield ChatEvent("done", answer=traced)
        return
    # --- everything else: retrieval and the model ---
    prompt = prompts.load("chat")
    a = settings.answer
    t0 = time.perf_counter()
    with open_store(settings, store) as store:
        hits = search(question, settings, history=history, filters=filters, store=store)
    yield ChatEvent("sources", sources=hits)
    ev = choose_evidence(hits, question, settings)
    timings = {"retrieval_ms": _ms(t0)}
    model = llm.model_label(settings)
    extra: dict = {"prompt": prompt.id, "dropped_instructions": ev.dropped
                   + sum(passages.safe_title(h.chunk.title, h.chunk.source)[1] for h in hits)}

    def refuse(reason: str, decision: answerability.Decision | None = None, note: str = "") -> ChatEvent:
        text = _refusal_text(prompt, hits, note)
        timings.setdefault("first_token_ms", _ms(t0))
        timings["total_ms"] = _ms(t0)
        out = Answer(text, [], True, model, timings, hits)
        out.extra = {**extra, "refusal_reason": reason, **({"check": _check(decision)} if decision else {})}
        return ChatEvent("done", answer=out)

    # off the corpus's topics, or evidence so weak that even a certain "yes" from the model could
    # not carry it, or a year the sources do not speak of: no model call
    weak = (ev.best is None or ev.features["max_sim"] < a.min_similarity
            or not answerability.decide(1.0, ev.features, a).answer)
    quotes = [] if weak else fundstelle(ev, a)
    note = "" if weak else _year_note(question, ev, [q["n"] - 1 for q in quotes])
    if weak or note:
        done = refuse("year_missing" if note else "no_evidence", note=note)
        yield ChatEvent("token", text=done.answer.answer)
        yield done
        return
    quote = "\n\n".join(prompt["quote"].format(**q) for q in quotes)
    extra["quote"], extra["quotes"] = quotes[0], quotes
    yield ChatEvent("quote", text=quote)
    timings["quote_ms"] = _ms(t0)

    chat_model = chat_model or llm.get_chat_model(settings)
    p_yes = llm.yes_probability(chat_model, build_messages(question, ev, history, prompt, "check")) \
        if a.check else None
    decision = answerability.decide(p_yes, ev.features, a)
    timings["check_ms"] = _ms(t0)
    extra["check"] = _check(decision)
    if not decision.answer:
        yield refuse("check", decision)
        return

    raw, first = "", None
    for piece in llm.stream_text(chat_model, build_messages(question, ev, history, prompt, "answer")):
        first = first or time.perf_counter()
        raw += piece
        yield ChatEvent("token", text=piece)
    t_end = time.perf_counter()
    timings.update(first_token_ms=round(((first or t_end) - t0) * 1000, 1), total_ms=_ms(t0))
    texts = ev.texts()
    body, extractive = _answer_body(raw, texts, prompt)
    checked = citations.check(body, texts) if body else citations.CheckedAnswer("", [], 0, 0, [])
    kept, removed_sentences = citations.drop_unverified_numbers(checked.text, texts)
    text = quote if not kept.strip() else f"{quote}\n\n{kept}"
    used = list(dict.fromkeys([*(q["n"] for q in quotes), *citations.cited_numbers(kept)]))
    answer = Answer(text, make_citations(text, used, hits), False, model, timings, hits,
                    removed_citations=checked.removed)
    answer.extra = {**extra, "added_citations": checked.added, "corrected_citations": checked.corrected,
                    "unsupported_sentences": checked.unsupported, "removed_sentences": removed_sentences,
                    "extractive": extractive}
    yield ChatEvent("done", answer=answer)


def _year_note(question: str, ev: evidence.Evidence, quoted: list[int]) -> str:
    """Why a question about a year is refused before the model ("" when it is not): no shown source
    mentions the year, or the Fundstelle speaks of other years only (its figures are theirs)."""
    missing = answerability.missing_years(question, [*ev.texts(), *(ev.hits[p].chunk.title for p in ev.order)])
    if missing:
        return (f"Das Jahr {missing[0]} kommt" if len(missing) == 1 else
                f"Die Jahre {', '.join(missing)} kommen") + " in den gefundenen Stellen nicht vor."
    others = answerability.other_years(question, [*(ev.text(p) for p in quoted), *(ev.hits[p].chunk.title for p in quoted)])
    if others:
        asked = ", ".join(dict.fromkeys(answerability.YEAR.findall(question)))
        return f"Die passendste Stelle nennt {', '.join(others)}, nicht {asked}."
    return ""


def _answer_body(raw: str, texts: list[str], prompt: prompts.Prompt) -> tuple[str, bool]:
    """The model's answer, or "" when it refused or said nothing of substance: the Fundstelle then
    stands alone (the check already found the answer in the sources)."""
    raw = raw.strip()
    if not raw or citations.is_refusal(raw, prompt["refusal"]) or len(T.tokens(citations.CITE.sub("", raw))) < 3:
        return "", True
    return raw, False


def _check(decision: answerability.Decision) -> dict:
    return {"answer": decision.answer, "score": decision.score, **decision.signals}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def warm_up(settings: Settings, chat_model=None) -> None:
    """Process the fixed system prompt once, so llama.cpp holds it in its KV cache before the
    first question (it would otherwise add seconds to that question's first words)."""
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
