"""One PDF page as a PNG for the page viewer, rendered in a limited worker.

PDFium is native code fed with uploaded files: a page can take minutes (a shading whose
PostScript function runs for every pixel) or gigabytes. So the page is rendered the way
files are parsed, in a worker of :mod:`assistant.ingest.sandbox` with a wall-clock limit
(``serve.render_timeout_s``) and the ingest memory limit; the web server only receives PNG
bytes of a bounded size.
"""
from __future__ import annotations

import dataclasses
import functools
import io
from pathlib import Path
from typing import TYPE_CHECKING

from .loaders import LoadError

if TYPE_CHECKING:
    from ..config import IngestSettings, Settings

MAX_RENDER_PX = 1400          # longest side of a rendered page: a huge page must not eat RAM


def _render_png(path: Path, *, settings: "IngestSettings", page: int) -> bytes:
    """Runs inside the worker."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise LoadError(f"Seite {page} gibt es nicht", f"no page {page}", "Quelle neu auswählen")
        pg = pdf[page - 1]
        width, height = pg.get_size()   # points
        scale = min(2.0, MAX_RENDER_PX / max(width, height, 1.0))
        image = pg.render(scale=scale).to_pil().convert("RGB")
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)
        return out.getvalue()
    finally:
        pdf.close()


def render_page(source: str | Path, page: int, settings: "Settings") -> bytes:
    """PNG bytes of ``page`` (1-based); raises :class:`LoadError` (time or memory limit, broken file)."""
    from .sandbox import parse_file

    limits = dataclasses.replace(settings.ingest, timeout_s=float(settings.serve.render_timeout_s))
    data = parse_file(Path(source), limits, loader=functools.partial(_render_png, page=int(page)))
    if not isinstance(data, bytes):
        raise LoadError("Seite konnte nicht dargestellt werden", "page could not be rendered", "Text der Seite lesen")
    return data
