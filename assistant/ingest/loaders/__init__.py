"""Turn a file into a :class:`~assistant.types.ParsedDoc`: text per page plus metadata.

One module per format (``pdf``, ``office``, ``html``, ``text``); ``base`` holds what they share
(limits, errors, decoding, sidecar metadata). :func:`load` parses in this process; untrusted
files go through :func:`assistant.ingest.sandbox.parse_file`, which calls it in a limited worker.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...config import IngestSettings
from ...types import ParsedDoc
from . import html, office, pdf, text
from .base import (
    SIDECAR_SUFFIXES,
    SUPPORTED_EXTENSIONS,
    LoadError,
    check_size,
    clean,
    decode_text,
    is_sidecar,
    merge_sidecar,
)

__all__ = ["SIDECAR_SUFFIXES", "SUPPORTED_EXTENSIONS", "LoadError", "check_size", "decode_text", "is_sidecar", "load"]

LOADERS: dict[str, Callable[[Path, IngestSettings], ParsedDoc]] = {
    ".pdf": pdf.load_pdf, ".docx": office.load_docx, ".odt": office.load_odt,
    ".html": html.load_html, ".htm": html.load_html,
    ".md": text.load_markdown, ".markdown": text.load_markdown, ".txt": text.load_txt,
}


def load(path: Path, *, settings: IngestSettings) -> ParsedDoc:
    """Parse one file in this process (untrusted input: :func:`assistant.ingest.sandbox.parse_file`)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in LOADERS:
        raise LoadError(f"Dateityp nicht unterstützt: {ext or '(ohne Endung)'}",
                        f"File type not supported: {ext or '(no extension)'}",
                        "Unterstützt: " + ", ".join(SUPPORTED_EXTENSIONS))
    check_size(path, settings)
    doc = LOADERS[ext](path, settings)
    merge_sidecar(path, doc)
    for page in doc.pages:
        page.text = clean(page.text)
    if not any(p.text.strip() for p in doc.pages):
        detail = "; ".join(doc.warnings[:3])
        raise LoadError(f"Kein Text gefunden{': ' + detail if detail else ''}",
                        f"No text found{': ' + detail if detail else ''}",
                        "Gescannte PDFs: tesseract-ocr und tesseract-ocr-deu installieren")
    doc.title = str(doc.meta.get("title") or doc.title or path.stem.replace("_", " ")).strip()
    return doc
