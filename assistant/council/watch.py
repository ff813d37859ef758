"""What the council asked the administration to deliver, and which of it is still open.

A task counts when a resolution sets it: a sentence that asks for a report or a paper
("Die Verwaltung berichtet …", "… ist bis … vorzulegen") or gives the administration a job
with a deadline, taken from a minutes' resolution text or accepted amendment, or from the
"Beschlussvorschlag" of a paper that a positive decision adopted. Its due date comes from
the text, read against the date of the resolution ("bis zum 31.03.2027", "erstmals im
vierten Quartal 2026", "innerhalb von sechs Monaten"); recurring reports are due one period
after the last report. A task is answered when a later paper of the same procedure is about
the same thing (its title, or the sentence with which it refers to the procedure).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import ical
from ..config import Settings
from .extract import category_of
from .mapping import Obj
from .procedures import Model, open_model
from .references import add_months, due_of, is_task, object_stems, overlap
from .trace import Node, names, nodes_for, procedure

ANSWERED = 0.5          # share of a task's content words a later paper must carry to answer it
ANSWER_KINDS = ("proposal", "report", "answer", "motion", "other")
PERIODS = {1: "monatlich", 3: "vierteljährlich", 6: "halbjährlich", 12: "jährlich"}


@dataclass
class OpenTask:
    reference: str              # the paper whose resolution set the task
    task: str
    due: str                    # ISO date
    source: str                 # where the task is written
    page: int | None
    title: str = ""             # the paper's title
    resolution: str = ""        # number of the minutes that decided it ("" if only OParl or prose says so)
    resolved_on: str = ""
    organization: str = ""
    recurring: str = ""         # "vierteljährlich", … ("" for a one-off task)
    answered_by: list[str] = field(default_factory=list)   # earlier reports of a recurring task
    overdue: bool = False
    days_left: int = 0
    doc_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Decision:
    date: str
    organization: str
    document: str


def _decisions(model: Model) -> dict[tuple[str, str], _Decision]:
    """Positive decisions per paper (scope, number): the latest one."""
    out: dict[tuple[str, str], _Decision] = {}
    minutes = {(d.scope, d.norm) for d in model.docs("category='minutes' AND norm IS NOT NULL")}
    rank: dict[tuple[str, str], tuple[str, int]] = {}
    for r in model.rows("SELECT e.norm, e.date, e.organization, e.result, e.origin, d.scope, d.reference, "
                        "d.category FROM events e JOIN docs d ON d.source=e.source WHERE e.kind='Beschluss'"):
        low = (r["result"] or "").lower()
        key = (r["scope"], r["norm"])
        if key in minutes or not r["date"] or "abgelehnt" in low or not any(
                w in low for w in ("angenommen", "beschlossen", "zugestimmt")):
            continue
        order = (r["date"], int(r["origin"] == "minutes"))   # the minutes beat a later paper recalling them
        if key not in rank or order > rank[key]:
            rank[key] = order
            out[key] = _Decision(r["date"], r["organization"],
                                 r["reference"] if r["category"] == "minutes" else "")
    from .mapping import day, ids
    from .references import normalize
    from .trace import body_scope

    bodies: dict = {}
    for cons in model.all_of("Consultation"):
        item = model.get(next(iter(ids(cons.get("agendaItem"))), None))
        paper = model.get(next(iter(ids(cons.get("paper"))), None))
        if not item or not paper or not re.search(r"beschlossen|angenommen|zugestimmt", str(item.get("result") or ""),
                                                  re.I):
            continue
        meeting = model.get(next(iter(ids(item.get("meeting") or cons.get("meeting"))), None)) or {}
        key = (body_scope(model, str(paper.get("body") or ""), bodies),
               normalize(str(paper.get("reference") or "")) or "")
        date = day(meeting.get("start"))
        if date and (key not in out or date > out[key].date):
            out[key] = _Decision(date, names(model, cons.get("organization")) or
                                 names(model, meeting.get("organization")), "")
    return out


def open_tasks(settings: Settings, *, today: dt.date | None = None, store=None) -> list[OpenTask]:
    """Tasks from resolutions that no later paper answers, soonest due first."""
    today = today or dt.date.today()
    from ..index.store import open_store

    with open_store(settings, store) as st, open_model(settings, st) as model:
        return _open(model, today, st)


@dataclass
class _Candidate:
    scope: str
    norm: str
    text: str
    source: str
    page: int | None
    doc_id: str
    decision: _Decision


def _from_documents(model: Model, decisions: dict[tuple[str, str], _Decision]) -> list[_Candidate]:
    out = []
    rows = model.rows("SELECT t.norm, t.basis, t.text, t.page, t.source, t.agenda_item, d.scope, d.doc_id, "
                      "d.reference AS doc_ref, d.meeting_date, d.date AS doc_date, d.organization AS doc_org, "
                      "d.oparl_meeting FROM tasks t JOIN docs d ON d.source=t.source "
                      "ORDER BY t.basis DESC, t.source, t.page")
    for r in rows:
        key = (r["scope"], r["norm"])
        if r["oparl_meeting"]:   # an OParl protocol: only while its agenda item exists
            number = (r["agenda_item"] or "").removeprefix("TOP ").strip()
            if not any(str(i.get("number") or "") == number for i in model.children("AgendaItem", r["oparl_meeting"])):
                continue
        if r["basis"] == "resolution":
            decision = _Decision(r["meeting_date"] or r["doc_date"], r["doc_org"], r["doc_ref"])
        elif key in decisions:
            decision = decisions[key]
        else:
            continue   # a proposal nobody has decided yet
        out.append(_Candidate(r["scope"], r["norm"], r["text"], r["source"], r["page"], r["doc_id"], decision))
    return out


def _from_oparl(model: Model, store) -> list[_Candidate]:
    """Tasks in an OParl agenda item's ``resolutionText`` (a positive result), cited to the
    meeting's file that documents the item."""
    from .. import text as T
    from .mapping import day, ids
    from .references import normalize
    from .trace import body_scope, meeting_file

    by_item: dict[str, list[Obj]] = {}
    for cons in model.all_of("Consultation"):
        for iid in ids(cons.get("agendaItem")):
            by_item.setdefault(iid, []).append(cons)
    out, bodies = [], {}
    for item in model.all_of("AgendaItem"):
        text = str(item.get("resolutionText") or "")
        if not text or not re.search(r"beschlossen|angenommen|zugestimmt", str(item.get("result") or ""), re.I):
            continue
        meeting = model.get(next(iter(ids(item.get("meeting"))), None)) or {}
        for cons in by_item.get(item["id"], []):
            paper = model.get(next(iter(ids(cons.get("paper"))), None))
            norm = normalize(str((paper or {}).get("reference") or ""))
            if not paper or not norm:
                continue
            label = f"TOP {item['number']}" if item.get("number") else ""
            source, doc_id, _, page = meeting_file(model, meeting, item, store, label, str(paper["reference"]))
            decision = _Decision(day(meeting.get("start")), names(model, cons.get("organization")) or
                                 names(model, meeting.get("organization")), "")
            for s in T.sentences(text):
                out.append(_Candidate(body_scope(model, str(paper.get("body") or ""), bodies), norm, s, source, page,
                                      doc_id, decision))
    return out


def _open(model: Model, today: dt.date, store=None) -> list[OpenTask]:
    decisions = _decisions(model)
    procedures: dict[tuple[str, str], list[Node]] = {}
    found: list[OpenTask] = []
    for c in _from_documents(model, decisions) + _from_oparl(model, store):
        key = (c.scope, c.norm)
        resolved = dt.date.fromisoformat(c.decision.date) if c.decision.date else None
        text = re.sub(r"^(?:\d{1,2}[.)]|[•\-*–])\s*", "", c.text).strip()
        due = due_of(text, resolved)
        first = due.first(resolved) if due else None
        if first is None or not is_task(text):
            continue
        nodes = nodes_for(model, c.norm, c.scope)
        if not nodes:
            continue
        if key not in procedures:
            procedures[key] = procedure(model, nodes[0])
        answers = _answers(model, text, procedures[key], nodes[0], c.decision.date)
        answered_by: list[str] = []
        if due.every_months:
            if answers:
                last = max(answers, key=lambda n: n.date)
                first = max(first, add_months(dt.date.fromisoformat(last.date), due.every_months))
                answered_by = [n.reference for n in sorted(answers, key=lambda n: n.date)]
        elif answers:
            continue
        if any(_same_task(t, nodes[0].reference, text, first) for t in found):
            continue
        found.append(OpenTask(reference=nodes[0].reference, task=text, due=first.isoformat(), source=c.source,
                              page=c.page, title=nodes[0].title, resolution=c.decision.document,
                              resolved_on=c.decision.date, organization=c.decision.organization,
                              recurring=PERIODS.get(due.every_months or 0, ""), answered_by=answered_by,
                              overdue=first < today, days_left=(first - today).days, doc_id=c.doc_id))
    return sorted(found, key=lambda t: (t.due, t.reference))


def _same_task(t: OpenTask, reference: str, text: str, due: dt.date) -> bool:
    """The same task written twice (a minutes' resolution restating the proposal)."""
    return t.reference == reference and t.due == due.isoformat() and \
        overlap(object_stems(text), object_stems(t.task)) >= 0.5


def _answers(model: Model, task: str, nodes: list[Node], paper: Node, resolved: str) -> list[Node]:
    """Later papers of the procedure that are about what the task asks for."""
    wanted = object_stems(task)
    if not wanted:
        return []
    inside = {n.norm for n in nodes}
    out = []
    for n in nodes:
        kind = n.category if n.category != "paper" else category_of(n.paper_type)
        if n.key == paper.key or kind not in ANSWER_KINDS or not n.date or n.date <= (resolved or ""):
            continue
        words = [n.title]
        sources = [d.source for d in n.docs]
        if sources:
            marks = ",".join("?" * len(sources))
            words += [r["quote"] for r in model.rows(f"SELECT norm, quote FROM links WHERE source IN ({marks})",
                                                     tuple(sources)) if r["norm"] in inside]
        if overlap(wanted, object_stems(" ".join(words))) >= ANSWERED:
            out.append(n)
    return out


# --- calendar ------------------------------------------------------------------------------------

def uid(task: OpenTask) -> str:
    digest = hashlib.sha256(f"{task.reference}\n{task.task}".encode("utf-8")).hexdigest()[:16]
    return f"ratsauftrag-{digest}@pilot-assistant.local"


def tasks_ics(tasks: list[OpenTask], *, reminder_days: int | None = 14, stamp: dt.datetime | None = None) -> bytes:
    """One all-day event per open task on its due date; the UID stays the same across exports,
    so importing an updated file moves an event instead of adding a copy."""
    stamp = ical.stamp_of(stamp)
    cal = ical.calendar("Offene Ratsaufträge", "Ratsauftraege")
    for t in tasks:
        short = t.task if len(t.task) <= 80 else t.task[:79] + "…"
        lines = [t.task, f"Vorgang: {t.reference} – {t.title}"]
        if t.resolved_on:
            lines.append(f"Beschluss vom {t.resolved_on}" + (f" ({t.organization})" if t.organization else "")
                         + (f", Niederschrift {t.resolution}" if t.resolution else ""))
        if t.recurring:
            lines.append(f"Wiederkehrend: {t.recurring}")
        lines.append(f"Fundstelle: {Path(t.source).name}" + (f", Seite {t.page}" if t.page else ""))
        ical.all_day(cal, uid=uid(t), stamp=stamp, day=dt.date.fromisoformat(t.due),
                     summary=f"Ratsauftrag {t.reference}: {short}", description="\n".join(lines),
                     category="Ratsauftrag", reminder_days=reminder_days,
                     reminder=f"In {reminder_days} Tagen fällig: Ratsauftrag {t.reference}")
    return cal.to_ical()


def write_ics(path: str | Path, tasks: list[OpenTask], **kwargs) -> Path:
    """The calendar of ``tasks`` written crash-safe to ``path``."""
    return ical.write(path, tasks_ics(tasks, **kwargs))
