"""The sources panel and the page viewer (no gradio here: plain data and HTML strings).

Everything from a document is escaped before it reaches the page: a hostile file
must not inject markup into the UI. A document a person uploaded and no editor has
confirmed is marked as such, and its self-declared Drucksachen-Nr. is not shown as if
it were official.
"""
from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

from .. import text as T
from ..text import md_escape
from ..types import Answer, Hit
from .files import url_for

log = logging.getLogger("assistant.ui")

SNIPPET_CHARS = 320

PLACEHOLDER = '<div class="pa-sources-empty">Hier erscheinen die Quellen zu Ihrer Frage.</div>'


def from_hits(hits: list[Hit], uploaded: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One display record per retrieved chunk, numbered like the [n] the model cites.
    ``uploaded``: source -> who uploaded it, for uploads no editor has confirmed."""
    uploaded = uploaded or {}
    out = []
    for n, hit in enumerate(hits, 1):
        c = hit.chunk
        out.append({"n": n, "doc_id": c.doc_id, "source": c.source, "title": c.title or Path(c.source).name,
                    "page": c.page, "paper_number": c.paper_number, "collection": c.collection,
                    "snippet": c.text, "cited": False, "uploaded_by": uploaded.get(c.source, ""),
                    "url": c.url})
    return out


def mark_cited(views: list[dict[str, Any]], answer: Answer) -> list[dict[str, Any]]:
    cited = {c.n for c in answer.citations}
    return [{**v, "cited": v["n"] in cited} for v in views]


def from_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Display records for a stored answer (conversation loaded from the history)."""
    return [{"n": c.get("n"), "doc_id": c.get("doc_id", ""), "source": c.get("source", ""),
             "title": c.get("title") or Path(c.get("source", "")).name, "page": c.get("page"),
             "paper_number": c.get("paper_number", ""), "collection": "", "snippet": c.get("quote", ""),
             "cited": True, "uploaded_by": c.get("uploaded_by", ""), "url": c.get("url", "")} for c in citations]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def plain(text: str) -> str:
    """Text from a document as inert Markdown: no HTML, no links, no emphasis."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text or "").split()), quote=False))


def where(view: dict[str, Any]) -> str:
    parts = []
    if view.get("page"):
        parts.append(f"S. {view['page']}")
    if view.get("paper_number") and not view.get("uploaded_by"):
        parts.append(f"Drucksache {view['paper_number']}")
    return " · ".join(parts)


def upload_note(view: dict[str, Any]) -> str:
    who = view.get("uploaded_by")
    return f"Nutzer-Upload von {who}, Angaben ungeprüft" if who else ""


def label(view: dict[str, Any]) -> str:
    loc = where(view)
    return f"[{view['n']}] {view['title']}" + (f" – {loc}" if loc else "")


def snippet(text: str) -> str:
    text = " ".join(T.plain(text or "").split()).strip(" ·")
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1].rstrip() + "…"


def render(views: list[dict[str, Any]], *, note: str = "") -> str:
    if not views:
        return PLACEHOLDER if not note else f'<div class="pa-sources-empty">{html.escape(note)}</div>'
    cards = [f'<div class="pa-sources-note">{html.escape(note)}</div>'] if note else []
    for v in views:
        loc = where(v)
        badge = '<span class="pa-badge">zitiert</span>' if v.get("cited") else ""
        if v.get("uploaded_by"):
            badge += f' <span class="pa-upload">{html.escape(upload_note(v))}</span>'
        meta = " · ".join(x for x in (Path(v.get("source") or "").name, v.get("collection") or "") if x)
        cards.append(
            f'<div class="pa-source{" pa-cited" if v.get("cited") else ""}" data-n="{int(v["n"] or 0)}">'
            f'<div class="pa-source-head"><span class="pa-n">[{int(v["n"] or 0)}]</span> '
            f'<span class="pa-title">{html.escape(v["title"] or "")}</span>'
            + (f' <span class="pa-where">{html.escape(loc)}</span>' if loc else "")
            + f"{badge}</div>"
            f'<div class="pa-snippet">{html.escape(snippet(v.get("snippet", "")))}</div>'
            + (f'<div class="pa-meta">{html.escape(meta)}</div>' if meta else "")
            + origin_link(v.get("url") or "")
            + "</div>")
    return "\n".join(cards)


def origin_link(url: str) -> str:
    """Where the document lives (a file in an openDesk folder, a council paper's page): http(s) only."""
    if not url.lower().startswith(("https://", "http://")):
        return ""
    return (f'<div class="pa-meta"><a href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer">Am Ablageort öffnen</a></div>')


def answer_markdown(text: str, citations: list[dict[str, Any]]) -> str:
    """The chat bubble of an answer: its text plus the cited sources, so a copied answer keeps them.
    Titles and numbers come from documents: escaped, so they stay plain text."""
    if not citations:
        return text
    lines = [text, "", "**Quellen:**"]
    for c in citations:
        page = f", S. {int(c['page'])}" if c.get("page") else ""
        paper = f" (Drucksache {md_escape(c['paper_number'])})" if c.get("paper_number") and not c.get("uploaded_by") \
            else ""
        title = md_escape(c.get("title") or Path(c.get("source", "")).name)
        note = f" – _{md_escape(upload_note(c))}_" if c.get("uploaded_by") else ""
        lines.append(f"- [{int(c['n'])}] {title}{paper}{page}{note}")
    return "\n".join(lines)


def is_pdf(view: dict[str, Any]) -> bool:
    src = Path(view.get("source") or "")
    return src.suffix.lower() == ".pdf" and src.is_file()


def file_link(view: dict[str, Any]) -> str:
    """A link to the original through the document route (PDF at the page); "" without a file."""
    src = Path(view.get("source") or "")
    if not view.get("doc_id") or not src.is_file():
        return ""
    pdf = src.suffix.lower() == ".pdf"
    how = "im Browser öffnen" if pdf else "herunterladen"
    return f"[Originaldatei {how}: {md_escape(src.name)}]({url_for(view['doc_id'], view.get('page'), pdf)})"
