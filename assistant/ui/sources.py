"""The sources panel and the page viewer (no gradio here: plain data and HTML strings).

Everything from a document is escaped before it reaches the page: a hostile file
must not inject markup into the UI.
"""
from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..types import Answer, Hit

log = logging.getLogger("assistant.ui")

SNIPPET_CHARS = 320
MAX_RENDER_PX = 1400          # longest side of a rendered PDF page: a huge page must not eat RAM

PLACEHOLDER = '<div class="pa-sources-empty">Hier erscheinen die Quellen zu Ihrer Frage.</div>'


def from_hits(hits: list[Hit]) -> list[dict[str, Any]]:
    """One display record per retrieved chunk, numbered like the [n] the model cites."""
    out = []
    for n, hit in enumerate(hits, 1):
        c = hit.chunk
        out.append({"n": n, "doc_id": c.doc_id, "source": c.source, "title": c.title or Path(c.source).name,
                    "page": c.page, "paper_number": c.paper_number, "collection": c.collection,
                    "snippet": c.text, "cited": False})
    return out


def mark_cited(views: list[dict[str, Any]], answer: Answer) -> list[dict[str, Any]]:
    cited = {c.n for c in answer.citations}
    return [{**v, "cited": v["n"] in cited} for v in views]


def from_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Display records for a stored answer (conversation loaded from the history)."""
    return [{"n": c.get("n"), "doc_id": c.get("doc_id", ""), "source": c.get("source", ""),
             "title": c.get("title") or Path(c.get("source", "")).name, "page": c.get("page"),
             "paper_number": c.get("paper_number", ""), "collection": "", "snippet": c.get("quote", ""),
             "cited": True} for c in citations]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def plain(text: str) -> str:
    """Text from a document as inert Markdown: no HTML, no links, no emphasis."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text or "").split()), quote=False))


def where(view: dict[str, Any]) -> str:
    parts = []
    if view.get("page"):
        parts.append(f"S. {view['page']}")
    if view.get("paper_number"):
        parts.append(f"Drucksache {view['paper_number']}")
    return " · ".join(parts)


def label(view: dict[str, Any]) -> str:
    loc = where(view)
    return f"[{view['n']}] {view['title']}" + (f" – {loc}" if loc else "")


def snippet(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1].rstrip() + "…"


def render(views: list[dict[str, Any]], *, note: str = "") -> str:
    if not views:
        return PLACEHOLDER if not note else f'<div class="pa-sources-empty">{html.escape(note)}</div>'
    cards = [f'<div class="pa-sources-note">{html.escape(note)}</div>'] if note else []
    for v in views:
        loc = where(v)
        badge = '<span class="pa-badge">zitiert</span>' if v.get("cited") else ""
        meta = " · ".join(x for x in (Path(v.get("source") or "").name, v.get("collection") or "") if x)
        cards.append(
            f'<div class="pa-source{" pa-cited" if v.get("cited") else ""}" data-n="{int(v["n"] or 0)}">'
            f'<div class="pa-source-head"><span class="pa-n">[{int(v["n"] or 0)}]</span> '
            f'<span class="pa-title">{html.escape(v["title"] or "")}</span>'
            + (f' <span class="pa-where">{html.escape(loc)}</span>' if loc else "")
            + f"{badge}</div>"
            f'<div class="pa-snippet">{html.escape(snippet(v.get("snippet", "")))}</div>'
            + (f'<div class="pa-meta">{html.escape(meta)}</div>' if meta else "")
            + "</div>")
    return "\n".join(cards)


def answer_markdown(text: str, citations: list[dict[str, Any]]) -> str:
    """The chat bubble of an answer: its text plus the cited sources, so a copied answer keeps them."""
    if not citations:
        return text
    lines = [text, "", "**Quellen:**"]
    for c in citations:
        page = f", S. {c['page']}" if c.get("page") else ""
        paper = f" (Drucksache {c['paper_number']})" if c.get("paper_number") else ""
        title = (c.get("title") or Path(c.get("source", "")).name).replace("[", "(").replace("]", ")")
        lines.append(f"- [{c['n']}] {title}{paper}{page}")
    return "\n".join(lines)


def is_pdf(view: dict[str, Any]) -> bool:
    src = Path(view.get("source") or "")
    return src.suffix.lower() == ".pdf" and src.is_file()


def render_pdf_page(source: str, page: int):
    """The page as a PIL image, scaled so its longest side stays within MAX_RENDER_PX."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(source)
    try:
        if not 1 <= page <= len(pdf):
            return None
        pg = pdf[page - 1]
        width, height = pg.get_size()   # points
        scale = min(2.0, MAX_RENDER_PX / max(width, height, 1.0))
        return pg.render(scale=scale).to_pil().convert("RGB")
    finally:
        pdf.close()


def file_link(view: dict[str, Any], documents_dir: Path) -> str:
    """A link to the stored file (PDF at the page), only for files under the document store:
    Gradio serves nothing else (``allowed_paths``)."""
    try:
        src = Path(view.get("source") or "").resolve()
        src.relative_to(Path(documents_dir).resolve())
    except (OSError, ValueError):
        return ""
    if not src.is_file():
        return ""
    anchor = f"#page={view['page']}" if view.get("page") and src.suffix.lower() == ".pdf" else ""
    name = src.name.replace("[", "(").replace("]", ")")
    # relative URL: keeps working behind a reverse proxy under a sub-path
    return f"[Originaldatei öffnen: {name}](gradio_api/file={quote(str(src))}{anchor})"


MISSING_PAGE = "(Diese Stelle ist nicht mehr im Index – das Dokument wurde gelöscht oder neu eingelesen.)"


def page_text(view: dict[str, Any], store) -> str:
    """The cited page's text from the index ("" when it is gone)."""
    return store.page_text(view["doc_id"], view.get("page")) if view.get("doc_id") else ""


def open_page(view: dict[str, Any], text: str, documents_dir: Path) -> tuple[str, Any, str]:
    """The page viewer's content for one cited place: a head line (label, link to the stored
    file), the rendered PDF page (or None) and the page's ``text`` (see :func:`page_text`)."""
    image = None
    if view.get("page") and is_pdf(view):
        try:
            image = render_pdf_page(view["source"], int(view["page"]))
        except Exception:   # a PDF that indexed but does not render: the text is still there
            log.warning("cannot render %s page %s", view["source"], view["page"], exc_info=True)
    link = file_link(view, documents_dir)
    head = f"**{label(view)}**" + (f"  \n{link}" if link else "")
    return head, image, text or MISSING_PAGE
