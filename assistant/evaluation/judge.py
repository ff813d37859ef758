"""Optional LLM-judged scores through the configured backend (``--judge``; off by default).

On 2 CPU cores a judge call costs as much as an answer, and small local judges are
unreliable graders, so these scores are a nightly/release aid next to the
deterministic metrics, never a replacement. The judge gives a grade 1..5 that is
mapped to 0..1; an unparsable reply is recorded as None with the raw text.
"""
from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from ..runtime import llm
from ..types import Answer
from .suites import EvalItem

VERSION = "judge/v1"   # bump when the wording changes: judged scores are only comparable within a version
SYSTEM = ("Du bist eine strenge, unparteiische Prüferin für Antworten eines Verwaltungsassistenten. "
          "Du bewertest nur, was gefragt ist, und antwortest ausschließlich im verlangten Format.")
CORRECTNESS = """Frage: {question}

Referenzantwort (richtig): {reference}

Zu prüfende Antwort: {answer}

Stimmt die zu prüfende Antwort inhaltlich mit der Referenzantwort überein? Fehlende Kernaussagen
und falsche Zahlen oder Daten sind Fehler, andere Formulierungen nicht.
Note 1 = falsch, 3 = teilweise richtig, 5 = vollständig richtig.
Antworte nur mit einer Zeile: Note: <1-5>"""
FAITHFUL = """Quellen:
{sources}

Antwort: {answer}

Ist jede Aussage der Antwort durch die Quellen belegt? Aussagen, die in keiner Quelle stehen, sind Fehler.
Note 1 = überwiegend unbelegt, 3 = teilweise belegt, 5 = vollständig belegt.
Antworte nur mit einer Zeile: Note: <1-5>"""
_GRADE = re.compile(r"note\s*[:=]?\s*([1-5])\b|^\s*([1-5])\s*$", re.IGNORECASE | re.MULTILINE)


def parse_grade(reply: str) -> int | None:
    """The grade from a judge reply ("Note: 4", or a bare "4"); None when there is none."""
    m = _GRADE.search(reply or "")
    return int(m.group(1) or m.group(2)) if m else None


def to_score(grade: int | None) -> float | None:
    return (grade - 1) / 4 if grade is not None else None


def _ask(chat_model, prompt: str) -> str:
    return "".join(llm.stream_text(chat_model, [SystemMessage(SYSTEM), HumanMessage(prompt)])).strip()


def judge_answer(item: EvalItem, answer: Answer, chat_model, *, passage_chars: int = 600) -> dict[str, Any]:
    """Judged correctness (answerable items with a reference) and faithfulness (answered items)."""
    out: dict[str, Any] = {"version": VERSION}
    if answer.refused:
        if item.answerable:
            out["judge_correctness"] = 0.0   # a refusal of an answerable question is wrong; no call needed
        return out
    reference = item.reference or "; ".join(item.facts)
    if item.answerable and reference:
        reply = _ask(chat_model, CORRECTNESS.format(question=item.question, reference=reference, answer=answer.answer))
        out["correctness_reply"] = reply[:300]
        out["judge_correctness"] = to_score(parse_grade(reply))
    cited = {c.n for c in answer.citations}
    shown = [(n, h) for n, h in enumerate(answer.sources, start=1) if n in cited] or \
        list(enumerate(answer.sources, start=1))
    if shown:
        sources = "\n".join(f"[{n}] {h.chunk.text[:passage_chars]}" for n, h in shown)
        reply = _ask(chat_model, FAITHFUL.format(sources=sources, answer=answer.answer))
        out["faithfulness_reply"] = reply[:300]
        out["judge_faithfulness"] = to_score(parse_grade(reply))
    return out
