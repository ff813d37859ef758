"""Typed records that cross module boundaries (ingest -> store -> chat -> UI/CLI)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DOC_TYPES = ("council", "funding", "report", "other")   # what a document is; filters and templates use it


@dataclass
class Chunk:
    """A passage of one document; never spans two PDF pages, so ``page`` is exact."""

    chunk_id: str
    doc_id: str                 # content hash of the whole file
    text: str
    source: str                 # path or URL
    title: str = ""
    type: str = "other"         # council | funding | report | other
    collection: str = "default"
    page: int | None = None     # 1-based for paged formats (PDF); None otherwise
    section: str = ""           # nearest heading
    chunk_index: int = 0
    char_start: int = 0         # offsets into the page (or whole text when unpaged)
    char_end: int = 0
    date: str = ""              # ISO date of the document, "" when unknown
    municipality: str = ""
    meta: dict[str, Any] = field(default_factory=dict)   # front matter, paper number, ...

    @property
    def paper_number(self) -> str:
        return str(self.meta.get("paper_number") or self.meta.get("drucksache") or "")

    @property
    def url(self) -> str:
        """Where the document lives on the web (OParl ``web_url``, a sidecar's ``url``); "" if unknown."""
        return str(self.meta.get("url") or self.meta.get("web_url") or "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the ranks each retriever gave it."""

    chunk: Chunk
    score: float
    rank: int = 0
    dense_rank: int | None = None
    lexical_rank: int | None = None
    similarity: float | None = None   # cosine similarity of the dense retriever, if it found it
    query_ranks: tuple[int | None, ...] = ()   # several queries fused (a question and its parts): its rank in each

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {"rank": self.rank, "score": round(self.score, 6), "doc_id": c.doc_id,
                "source": c.source, "title": c.title, "page": c.page, "section": c.section,
                "chunk_id": c.chunk_id, "text": c.text, "url": c.url, "paper_number": c.paper_number}


@dataclass
class Citation:
    n: int
    doc_id: str
    source: str
    title: str
    page: int | None
    quote: str
    chunk_id: str = ""
    paper_number: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    answer: str
    citations: list[Citation]
    refused: bool
    model: str
    timings: dict[str, float]
    sources: list[Hit] = field(default_factory=list)      # everything shown to the model
    removed_citations: int = 0                            # [n] that pointed nowhere
    extra: dict[str, Any] = field(default_factory=dict)   # diagnostics: added citations, prompt id, ...

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "citations": [c.to_dict() for c in self.citations],
                "refused": self.refused, "model": self.model, "timings": self.timings,
                "removed_citations": self.removed_citations, **self.extra,
                "sources": [h.to_dict() for h in self.sources]}


@dataclass
class Page:
    """Text of one page (PDF) or of the whole document (unpaged formats: number None)."""

    number: int | None
    text: str
    ocr: bool = False


@dataclass
class ParsedDoc:
    """What a loader returns: pages with text, plus document metadata (front matter, sidecar, PDF info)."""

    source: str
    title: str
    pages: list[Page]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)   # e.g. "Seite 3: keine Textebene"
