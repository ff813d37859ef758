"""Plain text and Markdown (with YAML front matter as metadata)."""
from __future__ import annotations

import re
from pathlib import Path

from ... import frontmatter
from ...config import IngestSettings
from ...types import Page, ParsedDoc
from .base import decode_text, normalise_meta


def load_txt(path: Path, settings: IngestSettings) -> ParsedDoc:
    return ParsedDoc(source=str(path), title="", pages=[Page(None, decode_text(path.read_bytes()))])


def load_markdown(path: Path, settings: IngestSettings) -> ParsedDoc:
    text = decode_text(path.read_bytes())
    doc = ParsedDoc(source=str(path), title="", pages=[])
    try:
        meta, body = frontmatter.split(text)
        doc.meta.update(normalise_meta(meta))
    except (frontmatter.FrontMatterError, ValueError) as exc:   # bad front matter must not lose the document
        why = exc.de if isinstance(exc, frontmatter.FrontMatterError) else str(exc)
        body = frontmatter.strip_broken(text)
        kept = " (Block als Text behalten / block kept as text)" if body is text else ""
        doc.warnings.append(f"Front Matter ignoriert (ignored): {why}{kept}")
    m = re.search(r"^#\s+(.+)$", body, re.M)
    doc.title = str(doc.meta.get("title") or (m.group(1) if m else ""))
    doc.pages.append(Page(None, body))
    return doc
