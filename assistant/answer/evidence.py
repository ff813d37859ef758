"""Choose the evidence a prompt shows: sentences scored by meaning and by words, with their
neighbours, the budget spent on the best passages.

A passage of a municipal page is mostly about the question's topic but rarely answers it
in more than two or three sentences, often a run of consecutive lines (a heading, then the
rule, then its exceptions). So each sentence of the retrieved passages is scored by the
embedding model (cosine of e5 query and passage vectors) plus the share of the question's
content words it holds; the best sentences become anchors, each with the sentences that
follow (and one before) in its passage, until the character budget is spent, taking at most
``max_passages`` passages. Instruction-like sentences never reach the prompt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .. import text as T
from ..index import embeddings
from ..types import Hit
from .passages import FAKE_TURN, clean, looks_like_instruction


@dataclass
class Sentence:
    passage: int          # index into the hits
    index: int            # position among that passage's sentences
    text: str
    sim: float = 0.0      # cosine similarity to the question (e5)
    overlap: float = 0.0  # share of the question's content stems in the sentence
    relevance: float = 0.0  # sim + weight x overlap: how well the sentence itself fits the question
    score: float = 0.0      # relevance - rank penalty: the order in which the prompt takes sentences
    heading: str = ""     # the heading it stands under (embedded with it: "Umfang: Rund 16.000 …")
    is_heading: bool = False
    part_scores: tuple[float, ...] = ()   # its score for each part of a compound question

    @property
    def quotable(self) -> bool:
        """Fit to stand first in the Fundstelle and to carry the evidence scores: not a heading, not a
        bare label or title line ("Grundschule"), which match the topic and answer nothing."""
        return (not self.is_heading and bool(_STARTS_LIKE_A_SENTENCE.match(self.text))
                and len(T.tokens(_URL.sub(" ", self.text))) >= 3)


@dataclass
class Evidence:
    """The chosen sentences, by passage. Passages keep their retrieval rank as their number [n]
    (the sources panel shows the same numbers); ``order`` lists the passages shown, best first."""

    hits: list[Hit]
    chosen: dict[int, list[Sentence]]     # hit index -> its chosen sentences, in reading order
    order: list[int]                      # hit indices shown in the prompt, best first
    best: Sentence | None = None          # the best-scoring sentence (the "Fundstelle")
    dropped: int = 0                      # instruction-like sentences removed
    features: dict[str, float] = field(default_factory=dict)
    ranked: list[Sentence] = field(default_factory=list)   # the shown sentences, best first
    part_best: list[Sentence] = field(default_factory=list)  # a compound question: each part's best statement

    def text(self, p: int) -> str:
        """The shown text of passage ``p`` (hit index), one sentence per line, delimiter-safe."""
        return clean("\n".join(s.text for s in self.chosen.get(p, [])))

    def texts(self) -> list[str]:
        """One text per hit, "" for passages not shown (so [n] stays the hit's rank)."""
        return [self.text(p) for p in range(len(self.hits))]

    def window(self, sentence: Sentence, after: int = 2) -> list[Sentence]:
        """``sentence`` and the chosen ones right after it in its passage (the quote shown first)."""
        sents = self.chosen[sentence.passage]
        start = next(i for i, s in enumerate(sents) if s.index == sentence.index)
        run = [sents[start]]
        for s in sents[start + 1:start + 1 + after]:
            if s.index != run[-1].index + 1:
                break
            run.append(s)
        return run

    def quotes(self, after: int, *, second_after: int = 1, second_within: float = 0.0,
               other_within: float = 0.0) -> list[list[Sentence]]:
        """The Fundstelle: the best sentence's window, and a second run. Answers often stand in two
        places (the rule and its exception, the two halves of a two-part question, the retriever's
        first and second page); on integreat-de train, dev and the starter suite a second run carries
        more of the gold answer per character than a longer first window does.

        The second run is the best statement of *another* passage when its relevance comes within
        ``other_within`` of the best sentence's (the rank penalty orders what the prompt reads; it
        should not hide a second page that fits the question as well), else the next statement shown
        when its score is within ``second_within`` of the best one. A compound question's second run
        is the best statement for its second part."""
        if self.best is None:
            return []
        first = self.window(self.best, after=after)
        out, taken = [first], {id(s) for s in first}
        second_part = next((s for s in self.part_best[1:] if id(s) not in taken), None)
        if second_part is not None:
            return [*out, [s for s in self.window(second_part, after=second_after) if id(s) not in taken]]
        statements = [s for s in self.ranked if s.quotable and id(s) not in taken]
        elsewhere = max((s for s in statements if s.passage != self.best.passage), key=lambda s: s.relevance,
                        default=None)
        if other_within > 0 and elsewhere is not None and elsewhere.relevance >= self.best.relevance - other_within:
            out.append(self.window(elsewhere, after=second_after))
        elif second_within > 0 and statements and statements[0].score >= self.best.score - second_within:
            out.append([s for s in self.window(statements[0], after=second_after) if id(s) not in taken])
        return out


# a wrapped line's second half ("geleistet (https://…).") starts in lower case or with a bracketed link;
# a Markdown list item may open in bold ("- **Innovationsmaßnahmen (IA):** 70 % …") and is a statement
_STARTS_LIKE_A_SENTENCE = re.compile(r"[-*•„\"']?\s*(?:\*\*|__)?(?:\((?!https?:)|[A-ZÄÖÜ0-9§])")
_URL = re.compile(r"https?://\S+")


def split(hits: Sequence[Hit]) -> tuple[list[list[Sentence]], int]:
    """Every passage's sentences, instruction-like ones (and fake chat turns) removed; each knows
    the heading it stands under (the chunk's section until a Markdown heading in the text)."""
    out, dropped = [], 0
    for p, hit in enumerate(hits):
        text, turns = FAKE_TURN.subn(" ", hit.chunk.text)
        sents = T.sentences(T.unwrap(text) if T.hard_wrapped(hit.chunk.source) else text)
        bad = [looks_like_instruction(s) for s in sents]
        dropped += turns + sum(bad)
        heading, kept = hit.chunk.section.strip(), []
        for s in (s for s, b in zip(sents, bad) if not b):
            m = T.MD_HEADING.fullmatch(s)
            if m:
                heading = m.group(1)
            kept.append(Sentence(p, len(kept), s, heading="" if m else heading, is_heading=bool(m)))
        out.append(kept)
    return out, dropped


def embedding_text(s: Sentence) -> str:
    """A section's lines often answer only under their heading ("## Umfang" / "Rund 16.000
    Arbeitsplätze."): the heading goes into what is embedded, not into what is shown."""
    return f"{s.heading}: {s.text}" if s.heading and s.heading not in s.text else s.text


def score(question: str, passages: list[list[Sentence]], *, w_overlap: float = 0.5, rank_penalty: float = 0.2,
          query_vector: np.ndarray | None = None, parts: Sequence[str] = (),
          part_ranks: Sequence[Sequence[int | None]] = ()) -> list[Sentence]:
    """Score every sentence in place; return them best first (ties: earlier passage, earlier sentence).

    ``rank_penalty`` per retrieval rank: the retriever judged the whole passage, and its order is the
    better page-level signal, so the best passage's good sentences come before the next passage's.
    With two or more ``parts`` (a compound question) each sentence also gets a score per part."""
    flat = [s for sents in passages for s in sents]
    if not flat:
        return []
    qv = query_vector if query_vector is not None else embeddings.embed_query(question)
    vectors = embeddings.embed_passages([embedding_text(s) for s in flat])
    q = T.stems(question)
    parts = list(parts) if len(parts) > 1 else []
    part_q = [T.stems(p) for p in parts]
    part_sims = [vectors @ embeddings.embed_query(p) for p in parts]
    for i, s in enumerate(flat):
        stems = T.stems(s.text)
        s.sim = float(vectors[i] @ qv)
        s.overlap = _share(q, stems)
        s.relevance = s.sim + w_overlap * s.overlap
        s.score = s.relevance - rank_penalty * s.passage
        s.part_scores = tuple(float(sims[i]) + w_overlap * _share(pq, stems)
                              - rank_penalty * _rank(part_ranks, s.passage, k)
                              for k, (pq, sims) in enumerate(zip(part_q, part_sims)))
    return sorted(flat, key=lambda s: (-s.score, s.passage, s.index))


def _rank(part_ranks: Sequence[Sequence[int | None]], passage: int, k: int) -> int:
    """The passage's 0-based rank in part ``k``'s own search (behind all hits when that search missed
    it); without the parts' searches, its rank among the hits."""
    if not part_ranks:
        return passage
    r = part_ranks[passage][k]
    return r - 1 if r is not None else len(part_ranks)


def _share(question: set[str], stems: set[str]) -> float:
    """The share of the question's content stems among ``stems``."""
    return len(question & stems) / len(question) if question else 0.0


def by_parts(ranked: list[Sentence]) -> list[Sentence]:
    """A compound question's sentences taken in turn from each part's ranking (the best for part 1,
    the best for part 2, the second best for part 1, …): the whole question's score would spend the
    budget on the half that more sentences match. One part: ``ranked`` unchanged."""
    n = len(ranked[0].part_scores) if ranked else 0
    if n < 2:
        return ranked
    rankings = [sorted(ranked, key=lambda s, k=k: (-s.part_scores[k], s.passage, s.index)) for k in range(n)]
    out, seen = [], set()
    for row in zip(*rankings):
        for s in row:
            if id(s) not in seen:
                seen.add(id(s))
                out.append(s)
    return out


def select(hits: Sequence[Hit], question: str, *, total: int, max_passages: int = 2, before: int = 1,
           after: int = 4, w_overlap: float = 0.5, rank_penalty: float = 0.2,
           query_vector: np.ndarray | None = None, parts: Sequence[str] = ()) -> Evidence:
    """The evidence for ``question`` from ``hits`` within ``total`` characters (see the module doc);
    for a compound question (``parts``, see ``text.question_parts``) the best sentences of each part."""
    passages, dropped = split(hits)
    part_ranks = [h.query_ranks[1:] for h in hits] if all(len(h.query_ranks) == len(parts) + 1 for h in hits) else []
    ranked = by_parts(score(question, passages, w_overlap=w_overlap, rank_penalty=rank_penalty,
                            query_vector=query_vector, parts=parts, part_ranks=part_ranks))
    chosen: dict[int, set[int]] = {}
    order: list[int] = []
    used = 0
    for anchor in ranked:
        p = anchor.passage
        if p not in chosen and len(order) >= max_passages:
            continue
        sents = passages[p]
        lo, hi = max(0, anchor.index - before), min(len(sents), anchor.index + after + 1)
        new = [i for i in range(lo, hi) if i not in chosen.get(p, set())]
        cost = sum(len(sents[i].text) + 1 for i in new)
        if used + cost > total:
            if anchor.index in chosen.get(p, set()):
                continue
            new, cost = [anchor.index], len(anchor.text) + 1   # the anchor alone still fits?
            if used + cost > total:
                continue
        chosen.setdefault(p, set()).update(new)
        if p not in order:
            order.append(p)
        used += cost
    kept = {p: [passages[p][i] for i in sorted(chosen[p])] for p in order}
    if not kept and ranked:   # one overlong best sentence: its start
        best = ranked[0]
        best.text = best.text[:total]
        kept, order = {best.passage: [best]}, [best.passage]
    # the Fundstelle and the answer-or-refuse scores come from sentences that can answer something
    in_prompt = {id(s) for sents in kept.values() for s in sents}
    shown = [s for s in ranked if id(s) in in_prompt]
    best = next((s for s in shown if s.quotable), shown[0] if shown else None)
    ev = Evidence(hits=list(hits), chosen=kept, order=order, best=best, dropped=dropped, ranked=shown)
    if shown and len(shown[0].part_scores) > 1:
        ev.part_best = [max((s for s in shown if s.quotable), key=lambda s, k=k: s.part_scores[k], default=best)
                        for k in range(len(shown[0].part_scores))]
    scored = [s for s in ranked if s.quotable] or ranked
    if scored:
        sims = sorted((s.sim for s in scored), reverse=True)
        ev.features = {"max_sim": sims[0], "max_overlap": max(s.overlap for s in scored),
                       "max_score": max(s.relevance for s in scored),
                       # how far the best sentence stands out from the rest of what was retrieved
                       "sim_margin": sims[0] - float(np.mean(sims))}
    return ev
