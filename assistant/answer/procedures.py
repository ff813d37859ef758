"""Procedure questions in chat, answered from the council trace instead of the model.

"Was wurde aus dem Antrag 0087/2025?", "Wie ist der Stand der Vorlage zur Innovationsstrategie?",
"Welche Berichtsaufträge an die Verwaltung sind noch offen?": the answer lists the steps
(or the open tasks) with one citation each, so every date and result points to its file and
page. Questions about a paper's content ("Was beantragte die Ratsgruppe mit 0087/2025?")
are not procedure questions; they go to the normal retrieval.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import replace

from .. import text as T
from ..config import Settings
from ..council.trace import Step, Trace, step_chunk, trace
from ..council.watch import OpenTask, open_tasks
from ..errors import UserError
from ..index.filters import Filters
from ..index.store import open_store
from ..types import Answer, Chunk, Citation, Hit
from . import citations

MODEL = "Ratsvorgang (ohne Sprachmodell)"
_INTENT = re.compile(
    r"\bwas\s+(?:ist|wurde)\s+(?:eigentlich\s+)?aus\b|\bwas\s+ist\s+mit\b.*\bgeworden\b|\baus\b.*\bgeworden\b"
    r"|\b(?:wie\s+ist\s+der\s+)?(?:aktuelle[rn]?\s+)?stand\s+(?:des|der|zum|zur|beim|bei|von)\b"
    r"|\b(?:verlauf|werdegang|historie|zeitleiste|beratungsfolge|ratsvorgang|vorgang)\b"
    r"|\bwie\s+ging\s+es\b.*\bweiter\b|\bwelche\s+gremien\b|\bbeschlusslage\b"
    r"|\b(?:wann|wo|von\s+wem|durch\s+wen|wie)\b.{0,80}\b(?:beschlossen|entschieden|beraten|abgestimmt|angenommen|"
    r"abgelehnt)\b|\bauf\s+welchen\s+beschluss\b", re.IGNORECASE)
_OPEN = re.compile(r"\b(?:offen\w*|ausstehend\w*|fällig\w*|unerledigt\w*)\b.{0,60}\b(?:\w*auftr[aä]g\w*|"
                   r"berichtspflicht\w*|zusage\w*|aufgabe\w*|frist\w*)\b|\b(?:\w*auftr[aä]g\w*|berichtspflicht\w*|"
                   r"zusage\w*|aufgabe\w*)\b.{0,60}\b(?:offen|ausstehend|fällig|unerledigt)\b", re.IGNORECASE)
_FILLER = re.compile(r"\b(?:was|wurde|wurden|ist|aus|eigentlich|wie|der|die|das|dem|den|des|zum|zur|zu|mit|von|"
                     r"geworden|stand|aktuelle[rn]?|verlauf|werdegang|vorgang|ratsvorgang|beschlusslage|wann|wo|"
                     r"welche[rnms]?|gremien|beschlossen|entschieden|beraten|abgestimmt|angenommen|abgelehnt|"
                     r"über|betreffend|bitte|eigentlich|inzwischen|denn|es|ging|weiter|auf|beschluss|stützt|sich|"
                     r"unser|unsere[rnms]?|im|rat|stadtrat)\b", re.IGNORECASE)


def detect(question: str) -> str | None:
    """The paper number, else the topic, a procedure question is about; None for other questions."""
    q = question or ""
    if not _INTENT.search(q):
        return None
    from ..council.references import find_refs

    numbers = list(dict.fromkeys(r.number for r in find_refs(q)))
    if len(numbers) == 1:
        return numbers[0]
    if numbers:
        return None   # two papers named: a comparison, not one procedure
    topic = " ".join(_FILLER.sub(" ", re.sub(r"[?!.,;:„“\"]", " ", q)).split())
    return topic if T.tokens(topic) else None


def asks_open_tasks(question: str) -> bool:
    """"Welche Prüfaufträge an die Verwaltung sind noch offen?" and the like."""
    return bool(_OPEN.search(question or ""))


def _de(day: str) -> str:
    try:
        return dt.date.fromisoformat(day).strftime("%d.%m.%Y")
    except ValueError:
        return day or "ohne Datum"


def _hit(chunk: Chunk | None, step_source: str, title: str, page: int | None, text: str, n: int) -> Hit:
    if chunk is None:   # a cited file that is not indexed (yet): the step's own words stand in
        chunk = Chunk(chunk_id=f"step:{n}", doc_id="", text=text, source=step_source, title=title, page=page,
                      type="council")
    return Hit(chunk=chunk, score=1.0, rank=n)


def _line(s: Step) -> str:
    what = s.kind + (f" ({s.agenda_item})" if s.agenda_item else "")
    who = f" – {s.organization}" if s.organization else ""
    if s.category == "paper":
        return f"{_de(s.date)}: {what} {s.reference}{who}"
    result = f": {s.result}" if s.result else ""
    return f"{_de(s.date)}: {what}{who} zu {s.reference}{result}"


def answer_from_trace(tr: Trace, store=None) -> Answer:
    """The timeline as an answer, one citation per step (the candidates, if the question was ambiguous)."""
    steps = tr.candidates or tr.steps
    if tr.candidates:
        lines = ["Mehrere Ratsvorgänge passen zu dieser Frage. Bitte nennen Sie die Drucksachen-Nummer:"]
    else:
        lines = [f"Ratsvorgang {tr.reference} „{tr.title}“ – {len(steps)} Schritte:"]
    hits, cites = [], []
    for n, s in enumerate(steps, 1):
        text = _line(s) if not tr.candidates else f"{s.reference} ({_de(s.date)}): {s.kind} „{s.title}“"
        chunk = step_chunk(store, s)
        hits.append(_hit(chunk, s.source, s.title, s.page, s.quote or text, n))
        quote = s.quote or citations.best_quote(hits[-1].chunk.text, text)
        cites.append(Citation(n=n, doc_id=hits[-1].chunk.doc_id, source=s.source, title=s.title, page=s.page,
                              quote=quote if len(quote) <= 300 else quote[:299] + "…",
                              chunk_id=hits[-1].chunk.chunk_id, paper_number=s.reference))
        lines.append(f"{n}. {text} [{n}]")
    if tr.related and not tr.candidates:
        lines.append("Verwandt, aber nicht Teil des Vorgangs: "
                     + ", ".join(f"{r.reference} ({r.kind})" for r in tr.related[:5] if r.kind) + ".")
    return Answer("\n".join(lines), cites, False, MODEL, {}, hits,
                  extra={"procedure": tr.reference, "prompt": "council-trace", "steps": len(steps)})


def answer_from_tasks(tasks: list[OpenTask], today: dt.date, store=None) -> Answer:
    """The open tasks with due dates, one citation each (where the task is written)."""
    if not tasks:
        return Answer("In den vorliegenden Ratsunterlagen finde ich keine offenen Aufträge mit Frist.", [], True, MODEL,
                      {}, [])
    lines = [f"Offene Aufträge an die Verwaltung (Stand {_de(today.isoformat())}):"]
    hits, cites = [], []
    for n, t in enumerate(tasks, 1):
        state = "überfällig" if t.overdue else f"fällig am {_de(t.due)}"
        step = Step(date=t.due, kind="Auftrag", organization=t.organization, reference=t.reference, title=t.title,
                    result="", source=t.source, page=t.page, doc_id=t.doc_id, quote=t.task)
        hits.append(_hit(step_chunk(store, step), t.source, t.title, t.page, t.task, n))
        cites.append(Citation(n=n, doc_id=hits[-1].chunk.doc_id, source=t.source, title=t.title, page=t.page,
                              quote=t.task, chunk_id=hits[-1].chunk.chunk_id, paper_number=t.reference))
        extra = f" ({t.recurring}, zuletzt {', '.join(t.answered_by)})" if t.answered_by else \
            f" ({t.recurring})" if t.recurring else ""
        lines.append(f"{n}. {t.reference}: {t.task} – {state}{extra} [{n}]")
    return Answer("\n".join(lines), cites, False, MODEL, {}, hits, extra={"prompt": "council-open"})


def readable(st, filters: Filters | None):
    """Does a step's document lie in a collection the asker may read? (steps without an indexed
    document, e.g. an OParl consultation, carry no text of their own and stay)."""
    allowed = None if filters is None or filters.collection is None else (
        {filters.collection} if isinstance(filters.collection, str) else set(filters.collection))

    def ok(doc_id: str) -> bool:
        if allowed is None or not doc_id:
            return True
        source = st.source_of(doc_id)
        record = st.document(source) if source else None
        return record is None or record.collection in allowed
    return ok


def only_readable(tr: Trace, ok) -> Trace:
    """The trace without the steps and candidates whose document ``ok`` (see :func:`readable`) refuses."""
    return replace(tr, steps=[s for s in tr.steps if ok(s.doc_id)],
                   candidates=[s for s in tr.candidates if ok(s.doc_id)])


def respond(question: str, settings: Settings, *, store=None, today: dt.date | None = None,
            filters: Filters | None = None) -> Answer | None:
    """An answer from the council trace when the question asks for a procedure or the open
    tasks and the model knows it; None otherwise (the caller answers as usual). Steps and
    tasks from collections outside ``filters.collection`` are left out, as retrieval leaves them out."""
    wanted = detect(question)
    open_q = asks_open_tasks(question)
    if wanted is None and not open_q:
        return None
    today = today or dt.date.today()
    t0 = time.perf_counter()
    with open_store(settings, store) as st:
        ok = readable(st, filters)
        try:
            if open_q and wanted is None or open_q and not re.search(r"\d", wanted or ""):
                tasks = [t for t in open_tasks(settings, today=today, store=st) if ok(t.doc_id)]
                if not tasks:
                    return None
                answer = answer_from_tasks(tasks, today, st)
            else:
                tr = only_readable(trace(wanted or question, settings, store=st, today=today), ok)
                if not tr.steps and not tr.candidates:
                    return None
                answer = answer_from_trace(tr, st)
        except UserError:
            return None   # not a known paper or topic: ordinary retrieval may still find something
    ms = round((time.perf_counter() - t0) * 1000, 1)
    answer.timings = {"retrieval_ms": ms, "first_token_ms": ms, "total_ms": ms}
    return answer
