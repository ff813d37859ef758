"""DOCX (python-docx) and ODT (odfpy) -> Markdown-ish text with headings, lists and tables.

Both run after :func:`assistant.ingest.loaders.base.check_archive` has refused zip bombs. DOCX runs
formatted as hidden (``w:vanish``, directly or through a style) are left out: Word does not
show them, so they must not reach the index either.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from ...config import IngestSettings
from ...types import Page, ParsedDoc
from .base import LoadError, check_archive, corrupt, heading

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFF = {"0", "false", "off"}


def load_docx(path: Path, settings: IngestSettings) -> ParsedDoc:
    check_archive(path)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks = list(document.iter_inner_content())
        title = document.core_properties.title or ""
        hidden = _hidden_styles(document)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 -- python-docx raises many types on broken packages
        raise corrupt("DOCX", exc) from None
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            lines.extend(_table_lines([["\n".join(_visible_text(p._p, hidden) for p in c.paragraphs)
                                        for c in row.cells] for row in block.rows]))
            continue
        text = _visible_text(block._p, hidden).strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        m = re.match(r"(?i)(heading|überschrift)\s*(\d)", style)
        if m or style.lower() in ("title", "titel"):
            lines += ["", heading(int(m.group(2)) if m else 1, text), ""]
        elif "list" in style.lower() or (block._p.pPr is not None and block._p.pPr.numPr is not None):
            lines.append(f"- {text}")
        else:
            lines += [text, ""]
    return ParsedDoc(source=str(path), title=title.strip(), pages=[Page(None, "\n".join(lines))])


def _hidden_styles(document: Any) -> set[str]:
    """Ids of the styles whose font is hidden (``w:vanish``), following ``basedOn``."""
    out: set[str] = set()
    try:
        styles = list(document.styles)
    except Exception:  # noqa: BLE001 -- a broken styles part only loses this refinement
        return out
    for style in styles:
        base, steps = style, 0
        while base is not None and steps < 20:
            flag = getattr(getattr(base, "font", None), "hidden", None)
            if flag is not None:
                if flag and style.style_id:
                    out.add(style.style_id)
                break
            base, steps = getattr(base, "base_style", None), steps + 1
    return out


def _vanished(rpr: Any, hidden_styles: set[str]) -> bool | None:
    """True/False when run properties say (not) hidden, None when they don't say."""
    if rpr is None:
        return None
    vanish = rpr.find(_W + "vanish")
    if vanish is not None:
        return (vanish.get(_W + "val") or "true").lower() not in _OFF
    style = rpr.find(_W + "rStyle")
    return True if style is not None and style.get(_W + "val") in hidden_styles else None


def _visible_text(p: Any, hidden_styles: set[str]) -> str:
    """A paragraph's text like python-docx's ``CT_P.text``, without hidden runs."""
    ppr = p.find(_W + "pPr")
    pstyle = ppr.find(_W + "pStyle") if ppr is not None else None
    para_hidden = pstyle is not None and pstyle.get(_W + "val") in hidden_styles
    parts = []
    for child in p.iterchildren(_W + "r", _W + "hyperlink"):
        for run in ([child] if child.tag == _W + "r" else child.iterchildren(_W + "r")):
            flag = _vanished(run.find(_W + "rPr"), hidden_styles)
            if not (para_hidden if flag is None else flag):
                parts.append(run.text)
    return "".join(parts)


def _table_lines(rows: list[list[str]]) -> list[str]:
    out = []
    for cells in rows:
        seen: list[str] = []
        for cell in cells:          # merged cells repeat their text in every grid column
            cell = " ".join(cell.split())
            if cell and (not seen or seen[-1] != cell):
                seen.append(cell)
        if seen:
            out.append(" | ".join(seen))
    return ["", *out, ""] if out else out


class _SaxReport(io.TextIOBase):
    """Stands in for stdout while odfpy loads: on a parse error odfpy swallows the exception and
    print()s the whole XML part. Keep only the root element of each part that failed."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: list[str] = []
        self.pending = False

    def write(self, s: str) -> int:
        if "SAX FAILED" in s:
            self.pending = True
            self.failed.append("?")
        elif self.pending and s.strip():
            m = re.match(r"\s*(?:<\?xml[^>]*\?>\s*)?<([\w:.-]+)", s[:2000])
            self.failed[-1], self.pending = (m.group(1) if m else "?"), False
        return len(s)


# parts whose loss costs only the title or the styling, not the text
_ODT_MINOR_PARTS = {"office:document-styles", "office:document-settings", "office:document-meta"}


def load_odt(path: Path, settings: IngestSettings) -> ParsedDoc:
    check_archive(path)
    from odf import teletype
    from odf.namespaces import DCNS, TABLENS, TEXTNS
    from odf.opendocument import load as odf_load
    from odf.table import TableCell, TableRow

    report = _SaxReport()
    try:
        with contextlib.redirect_stdout(report):
            document = odf_load(str(path))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise corrupt("ODT", exc) from None
    broken = [part for part in report.failed if part not in _ODT_MINOR_PARTS]
    if broken or getattr(document, "text", None) is None:
        de, en = (f"XML-Fehler in {broken[0]}", f"XML error in {broken[0]}") if broken else \
            ("kein Textteil", "no text part")
        raise LoadError(f"ODT beschädigt oder unlesbar ({de})", f"ODT corrupt or unreadable ({en})",
                        "Datei neu exportieren bzw. im Originalprogramm neu speichern")
    doc = ParsedDoc(source=str(path), title="", pages=[])
    doc.warnings += [f"ODT: {part} fehlerhaft, ignoriert (XML error, ignored)" for part in report.failed]
    lines: list[str] = []

    def walk(node: Any, depth: int = 0, in_list: bool = False) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (TEXTNS, "h"):
                level = child.getAttribute("outlinelevel") or ""
                level = int(level) if re.fullmatch(r"[0-9]{1,3}", level) else 1
                lines.extend(["", heading(level, teletype.extractText(child)), ""])
            elif qname == (TEXTNS, "p"):
                text = teletype.extractText(child).strip()
                if text:
                    lines.extend([f"- {text}"] if in_list else [text, ""])
            elif qname == (TEXTNS, "list"):
                walk(child, depth + 1, True)
                lines.append("")
            elif qname == (TABLENS, "table"):
                lines.extend(_table_lines([[teletype.extractText(c) for c in r.getElementsByType(TableCell)]
                                           for r in child.getElementsByType(TableRow)]))
            elif qname is not None and depth < 50 and qname[1] not in ("tracked-changes", "sequence-decls"):
                walk(child, depth + 1, in_list)

    walk(document.text)
    for node in getattr(getattr(document, "meta", None), "childNodes", ()):
        if getattr(node, "qname", None) == (DCNS, "title"):
            doc.title = teletype.extractText(node).strip()
    doc.pages.append(Page(None, "\n".join(lines)))
    return doc
