"""What a draft knows without the model: computed figures and form blocks, filled
placeholders, the checklist and what a generated sentence may draw on. Pure functions; finance.py does the arithmetic, so the funding finder
and a proposal can never disagree on a number.
"""
from __future__ import annotations

import datetime as dt
import re

from .. import text as T
from ..answer import passages
from ..funding import finance
from ..funding.programmes import Programme
from . import checklist, forms, templates
from .record import Draft, Idea, Requirement, Section

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


def project_block(idea: Idea, language: str = "de") -> str:
    """The profile as the model sees it: every fact a sentence may state about the project."""
    en = language == "en"
    lines = [f"{'Title' if en else 'Titel'}: {idea.title}"]
    for label_de, label_en, value in (
            ("Kommune", "Municipality", idea.city), ("Federführung", "Lead department", idea.department),
            ("Ziel", "Goal", idea.goal), ("Zielgruppe", "Target group",
                                          f"{idea.staff} {idea.target_group}".strip() if idea.staff and not
                                          idea.target_group.startswith(str(idea.staff)) else idea.target_group),
            ("Beginn", "Start", idea.start or ""),
            ("Laufzeit", "Duration", f"{idea.duration_months} {'months' if en else 'Monate'}" if idea.duration_months else ""),
            ("Budget", "Budget", finance.euro(idea.budget) if idea.budget is not None else ""),
            ("Bezug (Drucksachen)", "Related council papers", ", ".join(idea.related_papers))):
        if value:
            lines.append(f"{label_en if en else label_de}: {value}")
    if idea.description and T.fold(idea.description) != T.fold(idea.title):
        lines.append(f"{'Idea' if en else 'Idee'}: {idea.description}")
    return passages.clean("\n".join(lines))


def allowed_text(draft: Draft) -> str:
    """Everything a sentence may take a number, date or name from besides its cited passages:
    the profile, the computed tables and lists, and the programme's name and funder."""
    parts = [project_block(draft.idea), draft.programme_name, draft.idea.city]
    parts += [" ".join(map(str, r)) for r in draft.facts]
    for s in draft.sections:
        if s.kind in ("computed", "static"):
            parts += [" ".join(map(str, r)) for r in s.table] + list(s.items)
        if s.kind == "static":   # the template's own fixed text (e.g. who takes part: BSI, Personalrat)
            parts.append(s.text)
    return "\n".join(p for p in parts if p)


def fill(template_text: str, idea: Idea, programme: Programme | None, blank: str = "") -> str:
    """Placeholders -> idea values; ``blank`` stands in for what the idea leaves open."""
    values = {"title": idea.title, "idea": idea.description[:300], "city": idea.city, "department": idea.department,
              "programme": programme.name if programme else "", "duration": str(idea.duration_months or ""),
              "budget": finance.euro(idea.budget) if idea.budget is not None else "", "goal": idea.goal,
              "target_group": idea.target_group, "staff": str(idea.staff or ""), "start": idea.start or ""}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1)) or (blank if m.group(1) in values else m.group(0)),
                  template_text).strip()


def check_requirements(programme: Programme | None, template: templates.Template,
                       texts: dict[str, str] | None = None, sections: list[Section] | None = None,
                       language: str = "de", marks: dict[str, str] | None = None,
                       call_items: list[Requirement] | None = None) -> list[Requirement]:
    """The checklist (checklist.py): each document and criterion of the programme, and of an
    uploaded call, with where it is stated, the sections that address it and its coverage."""
    if programme is None and not call_items:
        return []
    texts = texts or {}
    if sections is None:   # only texts given: treat every section with text as written
        sections = [Section(s.id, s.heading, text=texts.get(s.id, ""), status="drafted" if texts.get(s.id) else "pending")
                    for s in template.sections]
    items = checklist.programme_items(programme, language) if programme else []
    items += [Requirement(r.kind, r.text, source=r.source, page=r.page, where=r.where) for r in call_items or []]
    return checklist.assess(items, template, sections, programme.procedure if programme else "one-stage", marks)


def attachments(tsec: templates.TemplateSection, programme: Programme | None) -> list[str]:
    """The template's standing attachments plus the programme's required documents."""
    items = list(tsec.items) + (list(programme.required_documents) if programme else [])
    seen, out = set(), []
    for item in items:
        if T.fold(item) not in seen:
            seen.add(T.fold(item))
            out.append(item)
    return out


def _warnings(draft: Draft, programme: Programme | None, fin: finance.Financing,
              deadline: finance.DeadlineStatus | None) -> list[str]:
    idea, en = draft.idea, draft.language == "en"
    out = []
    if deadline and (deadline.passed or deadline.days_left == 0):
        out.append(deadline.message if not en else
                   f"⚠ Deadline {'passed on' if deadline.passed else 'is today:'} {deadline.deadline}")
    if programme and programme.status == "closed" and not (deadline and deadline.passed):
        out.append(f"⚠ Das Programm {programme.name} ist derzeit geschlossen ({programme.call_rhythm})." if not en else
                   "⚠ The funding programme is currently closed.")
    if programme and idea.budget is None:
        out.append("Kein Budget angegeben: Förderung und Eigenanteil sind nicht berechnet (--budget)." if not en else
                   "No budget given: grant and own contribution are not computed.")
    if not en:
        out += [f"Hinweis Finanzierung: {n}" for n in fin.notes]
    elif fin.notes:
        out.append("Note on financing: check rate and maximum grant with the funder before applying.")
    if programme and programme.uncertain:
        out.append(("Unsichere Angaben im Förderprogramm (vor Antragstellung prüfen): " if not en else
                    "Uncertain programme data (check before applying): ") + ", ".join(programme.uncertain))
    return out


def refresh(draft: Draft, template: templates.Template, programme: Programme | None, today: dt.date) -> None:
    """Recompute everything that does not need the model: figures, form blocks, the time plan,
    static texts, attachment lists, the checklist and the draft-level warnings."""
    idea = draft.idea
    fin = finance.compute_financing(idea.budget, programme)
    deadline = finance.deadline_status(programme, today) if programme else None
    draft.financing = fin.to_dict()
    draft.deadline = deadline.to_dict() if deadline else None
    draft.today = today.isoformat()
    lang = template.language
    rows = financing_rows(fin, programme, deadline, idea.duration_months, lang)
    draft.warnings = _warnings(draft, programme, fin, deadline)
    for sec in draft.sections:
        tsec = template.section(sec.id)
        if tsec is None:
            continue
        kind = tsec.compute if tsec.kind == "computed" else ""
        if kind == "financing":
            sec.table = forms.financing_table(idea, programme, fin, deadline, lang) if idea.costs or \
                draft.template_version not in ("1", "") else [[label, value] for _, label, value in rows]
        elif kind == "attachments":
            sec.items = attachments(tsec, programme)
        elif kind == "header":
            sec.table = forms.header_rows(idea, today, lang)
        elif kind == "consultation":
            sec.table = forms.consultation_rows(idea)
        elif kind == "timeplan":
            sec.table = forms.timeplan_rows(idea, lang)
        elif kind == "workplan":
            sec.table = forms.work_packages(idea, lang)
        elif kind == "kpis":
            sec.items = forms.kpi_items(idea, lang)
        elif kind == "budget_impact":
            sec.table = forms.budget_impact_rows(idea, programme, fin)
        elif kind == "decision" and sec.status not in ("edited",):
            sec.text = forms.decision_text(idea, programme, fin)
        if tsec.kind == "static" and sec.status not in ("edited", "approved"):   # a person's edit wins
            sec.text = fill(tsec.text, idea, programme, blank=forms.OPEN.get(lang, forms.OPEN["de"]))
        if not tsec.generates and sec.status in ("pending", "failed"):
            sec.status = "drafted"
    draft.requirements = check_requirements(programme, template, sections=draft.sections, language=lang,
                                            marks={r.text: r.status for r in draft.requirements
                                                   if r.note.startswith("von Hand gesetzt")},
                                            call_items=draft.call_items)
    draft.facts = prompt_facts(rows, fin, deadline, programme)
