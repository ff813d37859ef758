"""The funder's checklist: requirements and selection criteria of a programme, each with where
the call states it, the section that answers it and its coverage (met, open, n/a).

Items come from the programme's front matter (``required_documents``, ``criteria``) located
in the programme's own text, or from an uploaded call (a funding document in the index):
its sentences that state an obligation or a criterion, with their page. Pure functions.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import text as T
from ..funding.programmes import Programme
from ..types import Chunk
from . import templates
from .record import Requirement, Section

STATUS_LABELS = {"de": {"met": "erfüllt", "open": "offen", "n/a": "entfällt"},
                 "en": {"met": "met", "open": "open", "n/a": "not applicable"}}
# second-stage documents are not part of a first-stage application: they cannot be "open" yet
_LATER = re.compile(r"zweite[nr]? stufe|nach aufforderung|nicht in der ersten stufe|second stage", re.IGNORECASE)
_OBLIGATION = re.compile(r"\b(?:muss|müssen|einzureichen|beizufügen|vorzulegen|nachzuweisen|voraussetzung|"
                         r"(?:auswahl|bewertungs|förder)kriteri\w*|erforderlich|antragsberechtigt|"
                         r"must|shall|required|eligib\w*|award criteri\w*)\b", re.IGNORECASE)


def _where(item: str, body: str) -> str:
    """The heading of the programme text's section that best states the item."""
    parts = re.split(r"\n(?=#{1,3} )", body or "")
    want = T.stems(item)
    best, score = "", 0.0
    for part in parts:
        head = part.splitlines()[0].lstrip("# ").strip() if part.strip().startswith("#") else ""
        if not head or not want:
            continue
        s = len(want & T.stems(part)) / len(want)
        if s > score:
            best, score = head, s
    return best if score >= 0.5 else ""


def programme_items(programme: Programme, language: str = "de") -> list[Requirement]:
    """The programme's documents and criteria (English wording where the file has it)."""
    docs = programme.required_documents_en if language == "en" and programme.required_documents_en else \
        programme.required_documents
    crits = programme.criteria_en if language == "en" and programme.criteria_en else programme.criteria
    out = []
    for kind, items, originals in (("document", docs, programme.required_documents),
                                   ("criterion", crits, programme.criteria)):
        for item, original in zip(items, list(originals) + [""] * len(items)):
            out.append(Requirement(kind, item, source=Path(programme.path).name if programme.path else programme.id,
                                   where=_where(original or item, programme.body)))
    return out


def call_items(chunks: list[Chunk], limit: int = 25) -> list[Requirement]:
    """Requirement and criterion sentences of an uploaded call, each with its page."""
    out: list[Requirement] = []
    seen: set[str] = set()
    for c in sorted(chunks, key=lambda c: (c.page or 0, c.chunk_index)):
        for sent in T.split_line(re.sub(r"\s+", " ", c.text)):   # PDF lines break mid-sentence
            s = sent.strip(" -•*")
            if not (30 <= len(s) <= 300) or not _OBLIGATION.search(s) or T.fold(s) in seen:
                continue
            seen.add(T.fold(s))
            kind = "criterion" if re.search(r"kriteri|criteri|bewert", s, re.IGNORECASE) else "document"
            out.append(Requirement(kind, s, source=Path(c.source).name, page=c.page, where=c.section))
            if len(out) >= limit:
                return out
    return out


def match_sections(item: Requirement, template: templates.Template, texts: dict[str, str]) -> list[str]:
    """Sections that answer the item: a ``covers`` word of the section occurs in it, or at least
    half of its content words occur in the section's heading, purpose or text."""
    req, folded = T.stems(item.text), T.fold(item.text)
    hit = []
    for s in template.sections:
        if any(T.fold(c) in folded or (T.stems(c) and T.stems(c) <= req) for c in s.covers):
            hit.append(s.id)
            continue
        own = T.stems(f"{s.heading} {s.purpose} {texts.get(s.id, '')}")
        if req and len(req & own) >= max(1, (len(req) + 1) // 2):
            hit.append(s.id)
    return hit


def assess(items: list[Requirement], template: templates.Template, sections: list[Section],
           procedure: str = "one-stage", marks: dict[str, str] | None = None) -> list[Requirement]:
    """Map each item to its sections and set its coverage.

    met: a mapped section has content (text, table or list); open: no section answers it yet,
    or the sections are still empty; n/a: a later-stage document of a two-stage procedure, or
    marked so by a person (``marks``: item text -> "n/a" / "met" / "open")."""
    texts = {s.id: s.text for s in sections}
    filled = {s.id for s in sections if (s.text or s.table or s.items) and s.status not in ("pending", "failed")}
    marks = marks or {}
    out = []
    for item in items:
        item.sections = match_sections(item, template, texts)
        if item.text in marks:
            item.status = marks[item.text]
            item.note = next((n for n in [item.note] if n.startswith("von Hand")), "von Hand gesetzt")
        elif _LATER.search(item.text) and (procedure == "two-stage" or "stufe" in item.text.lower()):
            item.status, item.note = "n/a", "erst in einer späteren Verfahrensstufe"
        elif any(sid in filled for sid in item.sections):
            item.status = "met"
        else:
            item.status = "open"
            item.note = "kein Abschnitt beantwortet das" if not item.sections else "Abschnitt noch leer"
        out.append(item)
    return out


def coverage(items: list[Requirement]) -> dict[str, int]:
    counts = {"met": 0, "open": 0, "n/a": 0}
    for r in items:
        counts[r.status if r.status in counts else ("met" if r.covered else "open")] += 1
    return counts
