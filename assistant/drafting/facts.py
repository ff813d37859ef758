"""What a draft knows without the model: computed figures, filled placeholders and the
requirement check. Pure functions; finance.py does the arithmetic, so the funding finder
and a proposal can never disagree on a number.
"""
from __future__ import annotations

import datetime as dt
import re

from .. import text as T
from ..answer import passages
from ..funding import finance
from ..funding.programmes import Programme
from . import templates
from .record import Draft, Idea, Requirement

_LABELS = {
    "de": {"budget": "Gesamtkosten des Vorhabens", "programme": "Förderprogramm", "rate": "Förderquote",
           "cap": "Höchstbetrag der Förderung", "grant": "Zuschuss (berechnet)", "own": "Eigenanteil (berechnet)",
           "deadline": "Antragsfrist", "duration": "Laufzeit", "months": "Monate", "none": "kein Programm gewählt",
           "capped": "durch Höchstbetrag begrenzt", "procedure": "Verfahren",
           "one-stage": "einstufig", "two-stage": "zweistufig"},
    "en": {"budget": "Total project cost", "programme": "Funding programme", "rate": "Funding rate",
           "cap": "Maximum grant", "grant": "Grant (computed)", "own": "Own contribution (computed)",
           "deadline": "Deadline", "duration": "Duration", "months": "months", "none": "no programme chosen",
           "capped": "limited by the maximum grant", "procedure": "Procedure",
           "one-stage": "one-stage", "two-stage": "two-stage"},
}


def financing_rows(fin: finance.Financing, programme: Programme | None, deadline: finance.DeadlineStatus | None,
                   months: int | None, language: str = "de") -> list[tuple[str, str, str]]:
    """The computed figures as (key, label, value); the export shows them all, the model a subset."""
    L = _LABELS.get(language, _LABELS["de"])
    rows = [("budget", L["budget"], finance.euro(fin.budget)),
            ("programme", L["programme"], f"{programme.name} ({programme.funder})" if programme else L["none"])]
    if programme:
        grant = finance.euro(fin.grant) + (f" ({L['capped']})" if fin.capped else "")
        own = finance.euro(fin.own_share) + (f" ({finance.percent(fin.own_share_rate)})"
                                             if fin.own_share_rate is not None else "")
        rows += [("rate", L["rate"], finance.percent(fin.funding_rate)), ("cap", L["cap"], finance.euro(fin.max_amount)),
                 ("grant", L["grant"], grant), ("own", L["own"], own)]
        if deadline:
            rows.append(("deadline", L["deadline"], deadline.message))
        rows.append(("procedure", L["procedure"], L.get(programme.procedure, programme.procedure)))
    if months:
        rows.append(("duration", L["duration"], f"{months} {L['months']}"))
    return rows


def prompt_facts(rows: list[tuple[str, str, str]], fin: finance.Financing, deadline: finance.DeadlineStatus | None,
                 programme: Programme | None) -> list[list[str]]:
    """What the model is told. Less than the table: given the cap next to the grant, the
    procedure or the funder's long name, the 1.5B model wrote "Förderung … also 15.000.000 €",
    "wird einstufig gestaltet" and copied the funder verbatim; a passed deadline is a warning
    for people, not material for a text."""
    drop = {"procedure"} | (set() if fin.capped else {"cap"}) | ({"deadline"} if deadline and deadline.passed else set())
    short = {"programme": programme.name} if programme else {}
    return [[label, short.get(key, value)] for key, label, value in rows if key not in drop]


def facts_lines(idea: Idea, table: list[list[str]], notes: list[str]) -> str:
    """The <fakten> block: computed figures only, one per line."""
    lines = [f"- {label}: {value}" for label, value in table]
    lines += [f"- Hinweis: {n}" for n in notes]
    return "\n".join(lines)


def project_block(idea: Idea) -> str:
    lines = [f"Titel: {idea.title}"]
    if idea.city:
        lines.append(f"Kommune: {idea.city}")
    if idea.department:
        lines.append(f"Federführung: {idea.department}")
    if idea.duration_months:
        lines.append(f"Laufzeit: {idea.duration_months} Monate")
    lines.append(f"Idee: {idea.description}")
    return passages.clean("\n".join(lines))


def fill(template_text: str, idea: Idea, programme: Programme | None, blank: str = "") -> str:
    """Placeholders -> idea values; ``blank`` stands in for what the idea leaves open."""
    values = {"title": idea.title, "idea": idea.description[:300], "city": idea.city, "department": idea.department,
              "programme": programme.name if programme else "", "duration": str(idea.duration_months or ""),
              "budget": finance.euro(idea.budget) if idea.budget is not None else ""}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1)) or (blank if m.group(1) in values else m.group(0)),
                  template_text).strip()


def check_requirements(programme: Programme | None, template: templates.Template,
                       texts: dict[str, str] | None = None) -> list[Requirement]:
    """The programme's required documents and criteria, each with the sections that address it.

    A section addresses a requirement when one of its ``covers`` words matches it, or when
    at least half of the requirement's content words occur in the section's heading,
    purpose or drafted text. Unmatched requirements are what is missing."""
    if programme is None:
        return []
    texts = texts or {}
    out = []
    for kind, items in (("document", programme.required_documents), ("criterion", programme.criteria)):
        for item in items:
            req, folded = T.stems(item), T.fold(item)
            hit = []
            for s in template.sections:
                if any(T.fold(c) in folded or (T.stems(c) and T.stems(c) <= req) for c in s.covers):
                    hit.append(s.id)
                    continue
                own = T.stems(f"{s.heading} {s.purpose} {texts.get(s.id, '')}")
                if req and len(req & own) >= max(1, (len(req) + 1) // 2):
                    hit.append(s.id)
            out.append(Requirement(kind, item, hit))
    return out



def attachments(tsec: templates.TemplateSection, programme: Programme | None) -> list[str]:
    """The template's standing attachments plus the programme's required documents."""
    items = list(tsec.items) + (list(programme.required_documents) if programme else [])
    seen, out = set(), []
    for item in items:
        if T.fold(item) not in seen:
            seen.add(T.fold(item))
            out.append(item)
    return out


def refresh(draft: Draft, template: templates.Template, programme: Programme | None, today: dt.date) -> None:
    """Recompute everything that does not need the model: figures, deadline against today,
    static texts, attachment lists, requirement check and the draft-level warnings."""
    idea = draft.idea
    fin = finance.compute_financing(idea.budget, programme)
    deadline = finance.deadline_status(programme, today) if programme else None
    draft.financing = fin.to_dict()
    draft.deadline = deadline.to_dict() if deadline else None
    draft.today = today.isoformat()
    rows = financing_rows(fin, programme, deadline, idea.duration_months, template.language)
    table = [[label, value] for _, label, value in rows]
    warnings = []
    if deadline and (deadline.passed or deadline.days_left == 0):
        warnings.append(deadline.message)
    if programme and programme.status == "closed" and not (deadline and deadline.passed):
        warnings.append(f"⚠ Das Programm {programme.name} ist derzeit geschlossen ({programme.call_rhythm}).")
    if programme and idea.budget is None:
        warnings.append("Kein Budget angegeben: Förderung und Eigenanteil sind nicht berechnet (--budget).")
    warnings += [f"Hinweis Finanzierung: {n}" for n in fin.notes]
    if programme and programme.uncertain:
        warnings.append("Unsichere Angaben im Förderprogramm (vor Antragstellung prüfen): "
                        + ", ".join(programme.uncertain))
    draft.warnings = warnings
    for sec in draft.sections:
        tsec = template.section(sec.id)
        if tsec is None:
            continue
        if tsec.kind == "computed" and tsec.compute == "financing":
            sec.table = table
        elif tsec.kind == "computed" and tsec.compute == "attachments":
            sec.items = attachments(tsec, programme)
        if tsec.kind == "static" and sec.status not in ("edited", "approved"):   # a person's edit wins
            sec.text = fill(tsec.text, idea, programme, blank="noch festzulegen")
        if not tsec.generates and sec.status in ("pending", "failed"):
            sec.status = "drafted"
    texts = {s.id: s.text for s in draft.sections}
    draft.requirements = check_requirements(programme, template, texts)
    draft.facts = prompt_facts(rows, fin, deadline, programme)
