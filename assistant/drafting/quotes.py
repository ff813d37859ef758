"""Verbatim findings for a section the model could not ground.

When every sentence the model wrote for a German section failed the checks (or none cited a
source), the section would reach the author empty or uncited although its evidence was
retrieved and judged relevant. A small model phrases that evidence badly, but the evidence
itself is citable as it stands: the best one or two sentences of the section's passages,
quoted word for word with their source, are grounded by construction and give the author
something to rewrite. English sections never get them (the sources are German).
"""
from __future__ import annotations

import re
from typing import Sequence

from .. import text as T
from ..answer import evidence
from ..answer.passages import looks_like_instruction
from ..types import Hit
from .record import Section

MIN_CHARS, MAX_CHARS = 40, 320   # a statement, not a heading; short enough to quote
MIN_SIMILARITY = 0.80            # e5 cosine to the section's query: on the section's topic
_NOT_PROSE = re.compile(r"^\s*(?:#|\||[-*•]\s*$)|https?://|\]\(")


def quotable(sentence: str) -> bool:
    """A whole sentence of prose: starts and ends like one, no markup, table row or link."""
    s = sentence.strip()
    return (MIN_CHARS <= len(s) <= MAX_CHARS and bool(re.match(r"[„\"(]?[A-ZÄÖÜ0-9]", s))
            and bool(re.search(r"[.!?][“\")]?$", s)) and not _NOT_PROSE.search(s))


def sentences(text: str) -> list[str]:
    """Sentences of a passage with the line wraps of its PDF page joined again: a long line
    that does not end a sentence continues on the next, unless that one opens a list item
    (short lines and numbered lines are headings and table cells, which stay apart)."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    return [s.lstrip("-*• ").strip() for s in T.sentences(T.unwrap(text))]


def pick(hits: Sequence[Hit], query: str, terms: set[str], limit: int = 2,
         topic: set[str] = frozenset(), related: set[str] = frozenset()) -> list[tuple[int, str]]:
    """Up to ``limit`` (hit index, sentence) pairs: the sentences closest in meaning to the
    section's ``query`` that are about the project (share one of its distinctive ``terms``, or
    come from a paper the profile names: ``related`` doc ids) and, when the section has a
    topic of its own (``topic``: stems such as Datenschutz), on that topic. At most one per
    passage, best first. A passage's first sentence counts only when the passage starts with
    it (chunks may begin mid-sentence)."""
    candidates = []
    for p, hit in enumerate(hits):
        sents = sentences(hit.chunk.text)
        starts_whole = bool(re.match(r"\s*(?:[-*•#]|[„\"(]?[A-ZÄÖÜ0-9])", hit.chunk.text))
        candidates.append([evidence.Sentence(p, i, s) for i, s in enumerate(sents)
                           if (i or starts_whole) and quotable(s) and not looks_like_instruction(s)])
    ranked = evidence.score(query, candidates) if any(candidates) else []
    out: list[tuple[int, str]] = []
    for s in ranked:
        if len(out) >= limit:
            break
        words = T.stems(s.text)
        on_topic = not topic or bool(topic & words)
        # a paper the profile names as related is about this project even where a sentence does
        # not name it; any other paper's sentence must (another project's "no impact assessment
        # needed" is no finding for this one)
        on_project = bool(terms & words) or hits[s.passage].chunk.doc_id in related
        if s.sim < MIN_SIMILARITY or not (on_project and on_topic) or any(p == s.passage for p, _ in out):
            continue
        out.append((s.passage, s.text))
    return out


def add_quotes(sec: Section, hits: Sequence[Hit], query: str, terms: set[str], limit: int = 2,
               topic: set[str] = frozenset(), related: set[str] = frozenset()) -> int:
    """Append verbatim findings to a section that has no cited sentence; their passages become
    the section's cited sources. Returns how many were added."""
    if re.search(r"\[\d+\]", sec.text) or not hits:
        return 0
    found = pick(hits, query, terms, limit, topic, related)
    if not found:
        return 0
    by_chunk = {r.chunk_id: r for r in sec.sources}
    n = max((r.n for r in sec.sources), default=0)
    lines = []
    for p, sentence in found:
        ref = by_chunk.get(hits[p].chunk.chunk_id)
        if ref is None:
            continue
        if not ref.n:
            n += 1
            ref.n, ref.quote = n, sentence
        body, end = (sentence[:-1], ".") if sentence.endswith(".") else (sentence, "")
        lines.append(f"- „{body}“ [{ref.n}]{end}")   # the number inside the sentence, as the checks read it
    if not lines:
        return 0
    sec.sources.sort(key=lambda r: (r.n == 0, r.n))
    intro = "Fundstellen aus den Unterlagen (wörtlich):"
    sec.text = "\n\n".join(x for x in (sec.text.strip(), intro + "\n" + "\n".join(lines)) if x)
    sec.warnings.append(f"{len(lines)} wörtliche Fundstelle(n) eingefügt, weil kein geprüfter Modellsatz eine Quelle "
                        "zitiert: bitte ausformulieren oder streichen.")
    return len(lines)
