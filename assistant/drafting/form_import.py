"""A funder's DOCX/ODT application form -> a template: its headings become sections.

Styled headings (Word "Überschrift 1/2", ODT outline levels) are used when present; forms
without styles usually number their headings ("2.1 Arbeitsplan"), so short numbered lines
count then. The text under a heading is the funder's instruction: it becomes the section's
guidance, and a length rule in it ("max. 2.000 Zeichen", "höchstens 1 Seite") its word limit.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError
from ..text import slug
from .templates import MAX_WORDS, Template, TemplateSection, parse

_NUMBERED = re.compile(r"^\s*((?:\d+\.)*\d+)\.?\s+(\S.{0,110})$")
_LIMIT = re.compile(r"(?:max(?:imal)?\.?|höchstens|bis zu|maximum|max\.?|up to)\s*(\d[\d.]*)\s*"
                    r"(wörter|worte|words|zeichen|characters|seiten?|pages?)", re.IGNORECASE)


def word_limit_from(guidance: str, default: int = 120) -> int:
    """'max. 2.000 Zeichen' / 'höchstens 1 Seite' / 'up to 300 words' -> words (capped)."""
    m = _LIMIT.search(guidance or "")
    if not m:
        return default
    n = int(m.group(1).replace(".", ""))
    unit = m.group(2).lower()
    words = n if unit.startswith(("w",)) else n // 7 if unit.startswith(("z", "c")) else n * 400
    return max(30, min(MAX_WORDS, words))


def headings_to_template(name: str, title: str, headings: list[tuple[int, str, str]]) -> Template:
    """(level, heading, text under it) -> Template: pure, so the form readers stay thin.

    A heading followed by a deeper one is a static parent; the text under a heading is the
    funder's instruction and becomes the section's guidance (and its word limit)."""
    if not headings:
        raise UsageError("Im Formular wurden keine Überschriften gefunden",
                         "no headings found in the form",
                         "Überschriften im Formular als 'Überschrift 1/2' formatieren oder nummerieren (1., 1.1)")
    base = min(level for level, _, _ in headings)
    sections, seen = [], set()
    for i, (level, heading, below) in enumerate(headings):
        parent = i + 1 < len(headings) and headings[i + 1][0] > level
        sid = slug(re.sub(r"^[\d.\s]+", "", heading)) or f"abschnitt-{i + 1}"   # "2.1 Ziele" -> "ziele"
        while sid in seen:
            sid += "-x"
        seen.add(sid)
        guidance = re.sub(r"\s+", " ", below).strip()[:800]
        query = re.sub(r"^[\d.\s]+", "", heading).strip()
        sections.append(TemplateSection(
            id=sid, heading=heading, level=min(4, level - base + 1), kind="static" if parent else "generated",
            purpose=query if not parent else "", guidance=guidance if not parent else "",
            word_limit=0 if parent else word_limit_from(guidance),
            queries=[] if parent else [f"{query} {{title}}"],
            source_types=[] if parent else ["council", "funding", "report"]))
    t = Template(name=slug(name) or "formular", title=title or name, version="1", sections=sections,
                 description=f"Aus Formular importiert: {title or name}")
    parse(t.to_yaml(), t.name)   # what we save must load again
    return t


def import_form(path: str | Path) -> Template:
    """Turn the headings of a funder's DOCX/ODT form into a template (not yet saved)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"Formular {p} nicht gefunden", f"form {p} not found", "Pfad prüfen")
    ext = p.suffix.lower()
    if ext == ".docx":
        headings = _docx_headings(p)
    elif ext == ".odt":
        headings = _odt_headings(p)
    else:
        raise UsageError(f"Formular muss .docx oder .odt sein, nicht {ext or 'ohne Endung'}",
                         f"form must be .docx or .odt, not {ext or 'no extension'}", "Als DOCX oder ODT speichern")
    return headings_to_template(p.stem, p.stem.replace("_", " ").replace("-", " "), headings)


def _collect(paragraphs: list[tuple[int | None, str]]) -> list[tuple[int, str, str]]:
    """(heading level or None, text) in order -> (level, heading, text under it)."""
    styled = any(level for level, _ in paragraphs)
    out: list[tuple[int, str, str]] = []
    for level, text in paragraphs:
        text = text.strip()
        if not text:
            continue
        if not styled:   # unstyled forms: short numbered lines ("2.1 Arbeitsplan") are the headings
            m = _NUMBERED.match(text)
            if m and len(text) < 90 and text[-1] not in ".;,:":
                level = m.group(1).count(".") + 1
        if level:
            out.append((level, text, ""))
        elif out:
            out[-1] = (out[-1][0], out[-1][1], f"{out[-1][2]} {text}".strip())
    return out


def _docx_headings(p: Path) -> list[tuple[int, str, str]]:
    import docx

    try:
        doc = docx.Document(str(p))
    except Exception as exc:   # python-docx raises several types for a broken package
        raise UsageError(f"DOCX {p.name} ist nicht lesbar: {exc}", f"DOCX {p.name} unreadable: {exc}",
                         "Datei in Word/LibreOffice öffnen und neu speichern") from None
    paras = []
    for para in doc.paragraphs:
        style = (para.style.name if para.style is not None else "") or ""
        m = re.match(r"^(?:heading|überschrift)\s*(\d)", style, re.IGNORECASE)
        paras.append((int(m.group(1)) if m else (1 if style.lower() == "title" else None), para.text))
    return _collect(paras)


def _odt_headings(p: Path) -> list[tuple[int, str, str]]:
    from odf import teletype
    from odf.opendocument import load

    try:
        doc = load(str(p))
    except Exception as exc:   # odfpy raises zip/xml errors for broken files
        raise UsageError(f"ODT {p.name} ist nicht lesbar: {exc}", f"ODT {p.name} unreadable: {exc}",
                         "Datei in LibreOffice öffnen und neu speichern") from None
    paras = []
    for el in _walk(doc.text):
        if el.qname[1] == "h":
            level = el.getAttribute("outlinelevel")
            paras.append((int(level) if level else 1, teletype.extractText(el)))
        elif el.qname[1] == "p":
            paras.append((None, teletype.extractText(el)))
    return _collect(paras)


def _walk(node):
    for child in node.childNodes:
        if getattr(child, "qname", None) and child.qname[1] in ("h", "p"):
            yield child
        elif getattr(child, "childNodes", None):
            yield from _walk(child)
