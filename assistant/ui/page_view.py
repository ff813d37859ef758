"""The page viewer shared by the chat and the council tab: one cited place as a head line with a
link to the original, the rendered PDF page and the page's text, for a person who may read it."""
from __future__ import annotations

import io
import logging
from typing import Any

from ..access import Person
from ..access import collections as colls
from ..ingest.loaders import LoadError
from ..ingest.render import render_page
from . import sources
from .context import UIContext

MISSING_PAGE = "(Diese Stelle ist nicht mehr im Index – das Dokument wurde gelöscht oder neu eingelesen.)"
log = logging.getLogger("assistant.ui")


def open_place(ctx: UIContext, view: dict[str, Any], person: Person) -> tuple[str, Any, str]:
    """(head Markdown, PIL image or None, page text). Raises UserError when ``person`` may not
    read the document's collection: a stored answer or trace may cite a collection closed since."""
    text = ""
    if view.get("doc_id"):
        with ctx.store() as store:
            source = store.source_of(view["doc_id"])
            record = store.document(source) if source else None
            if record is not None:
                colls.require_read(ctx.settings, person, record.collection)
                text = store.page_text(view["doc_id"], view.get("page"))
    if not text:
        return f"**{sources.label(view)}**", None, MISSING_PAGE
    image, note = None, ""
    if view.get("page") and sources.is_pdf(view):
        try:   # PDFium runs in a limited worker: a page that would render for minutes is cut off
            image = _png_to_image(render_page(view["source"], int(view["page"]), ctx.settings))
        except LoadError as exc:
            note = f"  \n⚠️ Seite konnte nicht als Bild dargestellt werden: {exc.de}. Der Text steht unten."
        except Exception:   # a PDF that indexed but does not render: the text is still there
            log.warning("cannot render page %s of a document", view["page"], exc_info=True)
            note = "  \n⚠️ Seite konnte nicht als Bild dargestellt werden. Der Text steht unten."
    link = sources.file_link(view)
    return f"**{sources.label(view)}**" + (f"  \n{link}" if link else "") + note, image, text


def _png_to_image(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image
