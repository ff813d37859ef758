"""Where a draft becomes a document: ODT (odfpy), DOCX (python-docx), PDF and Markdown.

The draft is first laid out as a list of blocks (pure, tested once); each format only
renders blocks, so headings, citations, computed tables and the provenance appendix are
the same in every format. PDF: LibreOffice converts the ODT when installed (the layout
people will print); otherwise fpdf2 renders the blocks with DejaVu Sans from matplotlib.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, UserError
from ..fsutil import atomic_path
from .record import Draft

FORMATS = (".odt", ".docx", ".pdf", ".md", ".xlsx")   # .xlsx: the AZA cost plan (costplan.py)
SOFFICE_TIMEOUT_S = 120

_TEXT = {
    "de": {"draft": "Entwurf – KI-gestützt erstellt, vor Verwendung fachlich prüfen", "city": "Kommune",
           "dept": "Federführung", "programme": "Förderprogramm", "date": "Stand", "sources": "Quellen",
           "missing": "[Abschnitt noch nicht erstellt]", "appendix": "Anhang: Herkunft und Prüfung",
           "per_section": "Quellen je Abschnitt", "requirements": "Anforderungen des Förderprogramms",
           "consulted": "gelesen, nicht zitiert", "covered": "abgedeckt durch", "open": "offen",
           "document": "Unterlage", "criterion": "Kriterium", "model": "Modell", "prompt": "Prompt",
           "template": "Vorlage", "created": "Erstellt", "id": "Entwurfs-ID", "words": "Wörter", "page": "S.",
           "none": "keine Quellen", "notes": "Hinweise", "watermark": "ENTWURF – nicht freigegeben",
           "released": "KI-gestützt erstellt; alle Abschnitte im Vier-Augen-Prinzip geprüft und freigegeben",
           "review": "Prüfung", "checklist": "Checkliste des Fördergebers", "kind": "Art", "item": "Anforderung",
           "where": "Fundstelle", "section": "Abschnitt", "status": "Stand", "met": "erfüllt", "n/a": "entfällt",
           "entwurf": "Entwurf", "geprueft": "geprüft", "freigegeben": "freigegeben", "by": "von",
           "coverage": "Abdeckung"},
    "en": {"draft": "Draft – prepared with AI assistance, review before use", "city": "Municipality",
           "dept": "Lead department", "programme": "Funding programme", "date": "Date", "sources": "Sources",
           "missing": "[section not drafted yet]", "appendix": "Annex: provenance and checks",
           "per_section": "Sources per section", "requirements": "Requirements of the funding programme",
           "consulted": "read, not cited", "covered": "covered by", "open": "missing",
           "document": "Document", "criterion": "Criterion", "model": "Model", "prompt": "Prompt",
           "template": "Template", "created": "Created", "id": "Draft id", "words": "words", "page": "p.",
           "none": "no sources", "notes": "Notes", "watermark": "DRAFT – not released",
           "released": "Prepared with AI assistance; every section reviewed and released by a second person",
           "review": "Review", "checklist": "Funder's checklist", "kind": "Type", "item": "Requirement",
           "where": "Stated in", "section": "Section", "status": "Status", "met": "met", "n/a": "not applicable",
           "entwurf": "draft", "geprueft": "reviewed", "freigegeben": "released", "by": "by",
           "coverage": "Coverage"},
}


@dataclass
class Block:
    kind: str                    # watermark | title | meta | warning | heading | para | bullets | table | small
    text: str = ""
    level: int = 0
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def source_name(source: str) -> str:
    """Where a source lives, as a reader may see it: a URL, or the file name (never a server path)."""
    if source.startswith(("http://", "https://")):
        return source
    return Path(source.split(":", 1)[-1] if source.startswith("programme:") else source).name


def _source_line(ref, L: dict) -> str:
    page = f", {L['page']} {ref.page}" if ref.page else ""
    number = f"[{ref.n}] " if ref.n else ""
    if L is _TEXT["en"]:   # an English document names its German sources by file, not by a German title
        paper = f" (council paper {ref.paper_number})" if ref.paper_number else ""
        return f"{number}{source_name(ref.source)}{paper}{page} (German-language source)"
    paper = f" (Drucksache {ref.paper_number})" if ref.paper_number else ""
    return f"{number}{ref.title}{paper}{page} – {source_name(ref.source)}"


def _last_review(sec, L: dict) -> str:
    for c in reversed(sec.history):
        if c.what.startswith("review:"):
            return f"{L[sec.review]} {L['by']} {c.who}, {c.when[:16].replace('T', ' ')}"
    return L.get(sec.review, sec.review)


def text_blocks(text: str) -> list[Block]:
    """Section text -> paragraphs and bullet lists ('- ', '* ', '• ' lines)."""
    out: list[Block] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s[:2] in ("- ", "* ", "• "):
            if not out or out[-1].kind != "bullets":
                out.append(Block("bullets"))
            out[-1].items.append(s[2:].strip())
        else:
            out.append(Block("para", s))
    return out


def blocks(draft: Draft) -> list[Block]:
    L = _TEXT.get(draft.language, _TEXT["de"])
    idea = draft.idea
    meta = [f"{L['city']}: {idea.city}" if idea.city else "", f"{L['dept']}: {idea.department}" if idea.department else "",
            f"{L['programme']}: {draft.programme_name}" if draft.programme_name else "",
            f"{L['date']}: {(draft.updated or draft.created)[:10]}"]
    out = [] if draft.released else [Block("watermark", L["watermark"])]
    out += [Block("title", f"{draft.template_title}: {idea.title}"), Block("meta", " · ".join(m for m in meta if m)),
            Block("meta", L["released"] if draft.released else L["draft"])]
    out += [Block("warning", w) for w in draft.warnings]
    for sec in draft.sections:
        out.append(Block("heading", sec.heading, level=sec.level))
        if sec.table:
            out.append(Block("table", rows=[list(r) for r in sec.table]))
        if sec.kind != "static" and sec.word_limit and sec.status in ("pending", "failed") and not sec.text:
            out.append(Block("para", L["missing"]))
        out += text_blocks(sec.text)
        if sec.items:
            out.append(Block("bullets", items=list(sec.items)))
        if sec.cited:
            out.append(Block("small", f"{L['sources']}:"))
            out.append(Block("small", "\n".join(_source_line(r, L) for r in sec.cited)))
    out.append(Block("heading", L["appendix"], level=1))
    out.append(Block("bullets", items=[f"{L['model']}: {draft.model}", f"{L['prompt']}: {draft.prompt}",
                                       f"{L['template']}: {draft.template}@{draft.template_version}",
                                       f"{L['created']}: {draft.created}", f"{L['date']}: {draft.updated}",
                                       f"{L['id']}: {draft.id}"]))
    if draft.requirements:
        out += checklist_blocks(draft, L)
    out.append(Block("heading", L["per_section"], level=2))
    for sec in draft.sections:
        if not sec.sources and not sec.model:
            out.append(Block("small", f"{sec.heading} – {L['review']}: {_last_review(sec, L)}"))
            continue
        refs = [_source_line(r, L) if r.n else f"{_source_line(r, L)} ({L['consulted']})" for r in sec.sources]
        out.append(Block("para", f"{sec.heading} – {sec.words} {L['words']}"
                                 + (f", {sec.model}, {sec.prompt}" if sec.model else "")
                                 + f"; {L['review']}: {_last_review(sec, L)}"))
        notes = [] if draft.language != "de" else [f"{L['notes']}: {w}" for w in sec.warnings]
        out.append(Block("bullets", items=refs + notes or [L["none"]]))
    return out


def checklist_blocks(draft: Draft, L: dict) -> list[Block]:
    """The funder's checklist with coverage: each item, where the call states it, the section
    that answers it and met / open / n/a."""
    heads = {s.id: s.heading for s in draft.sections}
    counts = {"met": 0, "open": 0, "n/a": 0}
    rows = [[L["kind"], L["item"], L["where"], L["section"], L["status"]]]
    for r in draft.requirements:
        status = r.status or ("met" if r.covered else "open")
        counts[status] = counts.get(status, 0) + 1
        where = ", ".join(x for x in (source_name(r.source) if r.source else "",
                                      f"{L['page']} {r.page}" if r.page else "", r.where) if x)
        rows.append([L[r.kind], r.text, where or "–", ", ".join(heads.get(i, i) for i in r.sections) or "–",
                     ("✓ " if status == "met" else "⚠ " if status == "open" else "– ") + L.get(status, status)])
    summary = f"{L['coverage']}: {counts['met']} {L['met']}, {counts['open']} {L['open']}, {counts['n/a']} {L['n/a']}"
    return [Block("heading", L["checklist"], level=1), Block("para", summary), Block("table", rows=rows)]


# ----------------------------------------------------------------------------- formats


def to_markdown(bl: list[Block]) -> str:
    out = []
    for b in bl:
        if b.kind == "watermark":
            out.append(f"**{b.text}**")
        elif b.kind == "title":
            out.append(f"# {b.text}")
        elif b.kind == "heading":
            out.append(f"{'#' * min(6, b.level + 1)} {b.text}")
        elif b.kind == "meta":
            out.append(f"*{b.text}*")
        elif b.kind == "warning":
            out.append(f"> **{b.text}**")
        elif b.kind == "bullets":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "table":
            rows = [[c.replace("|", "\\|") for c in r] for r in b.rows]
            width = max(len(r) for r in rows)
            out.append("\n".join([f"| {' | '.join(rows[0])} |", "|" + "---|" * width]
                                 + [f"| {' | '.join(r)} |" for r in rows[1:]]))
        elif b.kind == "small":
            out.append("  \n".join(f"<small>{ln}</small>" for ln in b.text.splitlines()))
        else:
            out.append(b.text)
    return "\n\n".join(out) + "\n"


def write_odt(bl: list[Block], path: Path) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.style import ListLevelProperties, ParagraphProperties, Style, TableColumnProperties, TextProperties
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, ListLevelStyleBullet, ListStyle, P

    doc = OpenDocumentText()

    def pstyle(name: str, size: str, bold: bool = False, **kw) -> Style:
        st = Style(name=name, family="paragraph", **kw)
        st.addElement(TextProperties(fontsize=size, fontweight="bold" if bold else "normal",
                                     fontfamily="Liberation Sans"))
        st.addElement(ParagraphProperties(margintop="0.15cm", marginbottom="0.15cm"))
        doc.styles.addElement(st)
        return st

    heads = {n: pstyle(f"Heading_20_{n}", size, True, displayname=f"Heading {n}", defaultoutlinelevel=str(n))
             for n, size in ((1, "15pt"), (2, "13pt"), (3, "12pt"), (4, "11pt"))}
    title, body = pstyle("Title", "19pt", True), pstyle("Text_20_body", "11pt", displayname="Text body")
    small, warn = pstyle("Source_20_list", "9pt", displayname="Source list"), pstyle("Warning", "11pt", True)
    bullets = ListStyle(name="Bullets")
    level = ListLevelStyleBullet(level=1, bulletchar="•")
    level.addElement(ListLevelProperties(spacebefore="0.4cm", minlabelwidth="0.5cm"))
    bullets.addElement(level)
    doc.automaticstyles.addElement(bullets)
    col = Style(name="col", family="table-column")
    col.addElement(TableColumnProperties(columnwidth="8cm"))
    doc.automaticstyles.addElement(col)
    mark = next((b.text for b in bl if b.kind == "watermark"), "")
    if mark:   # on every page, in the header: a printed page cannot lose it
        from odf.style import Header, MasterPage, PageLayout, PageLayoutProperties

        layout = PageLayout(name="Seite")
        layout.addElement(PageLayoutProperties(pagewidth="21cm", pageheight="29.7cm", margintop="1.5cm",
                                               marginbottom="2cm", marginleft="2cm", marginright="2cm"))
        doc.automaticstyles.addElement(layout)
        master = MasterPage(name="Standard", pagelayoutname=layout)
        header = Header()
        header.addElement(P(stylename=warn, text=mark))
        master.addElement(header)
        doc.masterstyles.addElement(master)
    for i, b in enumerate(bl):
        if b.kind == "watermark":
            doc.text.addElement(P(stylename=warn, text=b.text))
        elif b.kind == "heading":
            doc.text.addElement(H(outlinelevel=min(4, b.level), stylename=heads[min(4, b.level)], text=b.text))
        elif b.kind in ("title", "meta", "para", "warning"):
            doc.text.addElement(P(stylename={"title": title, "warning": warn}.get(b.kind, body), text=b.text))
        elif b.kind == "small":
            for ln in b.text.splitlines():
                doc.text.addElement(P(stylename=small, text=ln))
        elif b.kind == "bullets":
            lst = List(stylename=bullets)
            for item in b.items:
                li = ListItem()
                li.addElement(P(stylename=body, text=item))
                lst.addElement(li)
            doc.text.addElement(lst)
        elif b.kind == "table" and b.rows:
            table = Table(name=f"Tabelle{i}")
            table.addElement(TableColumn(numbercolumnsrepeated=max(len(r) for r in b.rows), stylename=col))
            for r in b.rows:
                tr = TableRow()
                for c in r:
                    cell = TableCell(valuetype="string")
                    cell.addElement(P(stylename=body, text=c))
                    tr.addElement(cell)
                table.addElement(tr)
            doc.text.addElement(table)
    doc.save(str(path))


def write_docx(bl: list[Block], path: Path) -> None:
    import docx
    from docx.shared import Pt

    doc = docx.Document()
    mark = next((b.text for b in bl if b.kind == "watermark"), "")
    if mark:
        head = doc.sections[0].header.paragraphs[0]
        head.text = mark
        head.runs[0].bold = True
    for b in bl:
        if b.kind == "watermark":
            continue   # in the header of every page
        if b.kind == "title":
            doc.add_heading(b.text, level=0)
        elif b.kind == "heading":
            doc.add_heading(b.text, level=min(9, b.level))
        elif b.kind == "bullets":
            for item in b.items:
                doc.add_paragraph(item, style="List Bullet")
        elif b.kind == "table" and b.rows:
            table = doc.add_table(rows=0, cols=max(len(r) for r in b.rows))
            table.style = "Table Grid"
            for r in b.rows:
                cells = table.add_row().cells
                for cell, value in zip(cells, r):
                    cell.text = value
        elif b.kind == "small":
            for ln in b.text.splitlines():
                doc.add_paragraph().add_run(ln).font.size = Pt(9)
        else:
            run = doc.add_paragraph().add_run(b.text)
            run.bold = b.kind in ("warning", "watermark")
            run.italic = b.kind == "meta"
    doc.save(str(path))


def write_pdf(bl: list[Block], path: Path) -> str:
    """PDF through LibreOffice when installed, else fpdf2; returns the renderer used."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice:
        with tempfile.TemporaryDirectory(prefix="pa-pdf-") as tmp:
            odt = Path(tmp) / "draft.odt"
            write_odt(bl, odt)
            try:   # a private profile: a user's running LibreOffice would otherwise swallow the job
                subprocess.run([soffice, f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--norestore",
                                "--convert-to", "pdf", "--outdir", tmp, str(odt)], capture_output=True,
                               timeout=SOFFICE_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                pass
            pdf = Path(tmp) / "draft.pdf"
            if pdf.is_file() and pdf.stat().st_size > 0:
                shutil.copyfile(pdf, path)
                return "libreoffice"
    _fpdf(bl, path)
    return "fpdf2"


def _fpdf(bl: list[Block], path: Path) -> None:
    import matplotlib
    from fpdf import FPDF

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    mark = next((b.text for b in bl if b.kind == "watermark"), "")

    class _PDF(FPDF):
        def header(self) -> None:
            if mark:
                self.set_font("DejaVu", "B", 9)
                self.cell(0, 5, mark, new_x="LMARGIN", new_y="NEXT")

    pdf = _PDF(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, 18)
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def para(text: str, size: float, style: str = "", gap: float = 2.0) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(width, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    for b in bl:
        if b.kind == "title":
            para(b.text, 18, "B", 4)
        elif b.kind == "heading":
            pdf.start_section(b.text, level=max(0, b.level - 1))   # PDF outline = heading levels
            para(b.text, {1: 14, 2: 12.5}.get(b.level, 11.5), "B")
        elif b.kind == "bullets":
            for item in b.items:
                para(f"•  {item}", 10.5, gap=1)
        elif b.kind == "table":
            for r in b.rows:
                para("  |  ".join(r), 10, gap=1)
            pdf.ln(2)
        elif b.kind == "small":
            para(b.text, 8.5, gap=1)
        else:
            para(b.text, 10.5, "B" if b.kind in ("warning", "watermark") else "")
    pdf.output(str(path))


# ----------------------------------------------------------------------------- entry point


def export(draft: Draft, path: str | Path) -> Path:
    """Write the draft to ``path``; the extension picks the format. Atomic: a failed export
    never leaves a half-written file where the previous one was."""
    target = Path(path).expanduser()
    ext = target.suffix.lower()
    if target.is_dir():
        raise UserError(f"{target} ist ein Verzeichnis, keine Datei", f"{target} is a directory, not a file",
                        f"--out {target / ('entwurf' + (ext if ext in FORMATS else '.odt'))}")
    if ext not in FORMATS:
        raise UsageError(f"Unbekanntes Exportformat {ext or '(ohne Endung)'}: möglich sind {', '.join(FORMATS)}",
                         f"unknown export format {ext or '(no extension)'}: use {', '.join(FORMATS)}",
                         "--out entwurf.odt")
    bl = blocks(draft)
    try:
        with atomic_path(target, suffix=ext) as tmp:
            if ext == ".xlsx":
                from .costplan import write_costplan

                write_costplan(draft, tmp)
            elif ext == ".md":
                tmp.write_text(to_markdown(bl), encoding="utf-8")
            elif ext == ".odt":
                write_odt(bl, tmp)
            elif ext == ".docx":
                write_docx(bl, tmp)
            else:
                write_pdf(bl, tmp)
    except OSError as exc:
        raise UserError(f"Export nach {target} nicht möglich: {exc.strerror or exc}",
                        f"cannot export to {target}: {exc.strerror or exc}",
                        "Anderen Pfad für --out wählen oder Schreibrechte prüfen") from None
    return target
