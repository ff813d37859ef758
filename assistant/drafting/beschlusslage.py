"""The council's decisions on the papers a project idea cites, at the head of a Beschlussvorlage's
"Ausgangslage": written from the procedure trace (``council.beschlusslage``), not by the model,
so every date and result carries its citation."""
from __future__ import annotations

import re
from pathlib import Path

from .. import council
from ..answer import citations
from ..config import Settings
from .record import Idea, Section, SourceRef

SECTIONS = ("ausgangslage", "beschlusslage")   # template sections that open with the Beschlusslage


def add_beschlusslage(sec: Section, idea: Idea, settings: Settings, store=None) -> bool:
    """Prepend the Beschlusslage of the papers ``idea`` cites to ``sec`` (its citations first,
    the model's renumbered after them). False when the idea cites no paper the model knows."""
    if sec.id not in SECTIONS:
        return False
    found = council.beschlusslage(f"{idea.title}\n{idea.description}", settings, store=store)
    if not found.text:
        return False
    k = len(found.sources)

    def shift(m: re.Match) -> str:
        nums = [int(x) + k for x in re.split(r"\s*[,;]\s*", m.group(1))]
        return "".join(f" [{n}]" for n in nums)

    body = citations.CITE.sub(shift, sec.text).strip()
    sec.text = found.text + ("\n\n" + body if body else "")
    own = [SourceRef(n=n, title=h.chunk.title or Path(h.chunk.source).name, source=h.chunk.source, type="council",
                     page=h.chunk.page, paper_number=h.chunk.paper_number, doc_id=h.chunk.doc_id,
                     chunk_id=h.chunk.chunk_id, quote=citations.best_quote(h.chunk.text, found.text))
           for n, h in enumerate(found.sources, 1)]
    for s in sec.sources:
        if s.n:
            s.n += k
    sec.sources = own + sec.sources
    if found.missing:
        sec.warnings.append("Nicht in den Ratsunterlagen gefunden: " + ", ".join(found.missing))
    if sec.status == "failed" and sec.text:
        sec.status, sec.error = "drafted", ""
    return True
