"""From raw model output to a finished section: pure functions, no I/O.

A small model repeats the heading, writes markdown, overruns the word limit and stops
mid-sentence when max_tokens hits; citations get the same check as chat and are then
renumbered per section. Numbers that appear in neither the facts nor the sources are
flagged for review, never silently kept as if grounded.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import text as T
from ..answer import citations
from ..types import Chunk, Hit
from . import templates
from .record import Section, SourceRef, now


def unverified_numbers(text: str, allowed: str) -> list[str]:
    """Numbers (as written) in the text that appear in neither facts, idea nor sources; small
    integers are list items and project months."""
    known = T.numbers(allowed)
    out: list[str] = []
    for raw in T.NUMBER.findall(citations.CITE.sub("", text)):
        norm = next(iter(T.numbers(raw)), raw)
        if norm not in known and not (norm.isdigit() and int(norm) <= 12) and raw not in out:
            out.append(raw)
    return out


_ECHO = re.compile(r"^\s*(?:\**\s*)(?:aufgabe|abschnitt|zweck(?: des abschnitts)?|inhalt|hinweise|antwort|text)\s*\**\s*:",
                   re.IGNORECASE)


_MARKUP_LINE = re.compile(r"^\s*<quelle\b.*?</quelle>\s*(?:\[\d+\])?\s*$", re.MULTILINE | re.IGNORECASE)
_MARKUP = re.compile(r"</?\s*(?:quellen?|projekt|fakten)\b[^>]*>", re.IGNORECASE)


def tidy(raw: str, heading: str) -> str:
    """Model output -> section text: no repeated heading or echoed task lines, no markdown
    headings or bold (exports format headings themselves)."""
    bare = T.fold(re.sub(r"^[\d.\s]+", "", heading))
    out = []
    raw = _MARKUP_LINE.sub("", raw)
    for line in _MARKUP.sub("", raw).strip().splitlines():
        plain = re.sub(r"\((?:h(?:oe|ö)chstens|max).*?\)", " ", line, flags=re.I)
        plain = T.fold(re.sub(r"[#*:\d.()\s]+", " ", plain)).strip()
        if (not out and not line.strip()) or plain == bare:
            continue   # leading blank lines, the heading repeated
        if m := _ECHO.match(line):
            rest = line[m.end():].strip()
            if re.match(r"^\s*\**\s*(?:aufgabe|abschnitt|zweck|inhalt|hinweise)", line, re.I) or not rest:
                continue   # the task echoed back, or an empty "Text:" cue
            line = rest
        out.append(re.sub(r"^\s*#+\s*", "", line))
    return re.sub(r"\*\*(.+?)\*\*", r"\1", "\n".join(out)).strip()


def trim_words(text: str, limit: int, slack: float = 1.15, *, truncated: bool = False) -> tuple[str, bool]:
    """Cut to whole sentences within limit x slack words, and drop a last sentence that
    max_tokens cut off mid-way (``truncated``: the model hit its budget, so even an
    unpunctuated list item is unfinished). Returns (text, whether anything was cut)."""
    def words(s: str) -> int:
        return len(re.findall(r"\w+", citations.CITE.sub("", s)))

    out, total, cut = [], 0, False
    for line in text.splitlines():
        kept = []
        for sent in T.split_line(line):
            if limit and total + words(sent) > limit * slack:
                cut = True
                break
            kept.append(sent)
            total += words(sent)
        if kept:
            out.append(line[: len(line) - len(line.lstrip())] + " ".join(kept))
        elif not line.strip():
            out.append("")
        if cut:
            break
    while out and not out[-1].strip():
        out.pop()
    last = out[-1] if out else ""
    if last and not re.search(r"[.!?:;)\]\"“»]$", last.rstrip()) and (truncated or not _LIST_ITEM.match(last)):
        sents = T.split_line(last)
        if len(sents) > 1:
            out[-1] = last[: len(last) - len(last.lstrip())] + " ".join(sents[:-1])
            cut = True
        elif len(out) > 1:
            out.pop()
            cut = True
    return "\n".join(out).strip(), cut


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def renumber(text: str, used: list[int]) -> str:
    """[3] [1] -> [1] [2]: each section's sources are numbered in order of first citation."""
    mapping = {old: new for new, old in enumerate(used, 1)}

    def fix(m: re.Match) -> str:
        nums = [mapping[int(x)] for x in re.split(r"\s*[,;]\s*", m.group(1)) if int(x) in mapping]
        return "".join(f" [{n}]" for n in dict.fromkeys(nums))

    return citations.CITE.sub(fix, text)



_FIGURE = re.compile(r"\d[\d.,]*\s*(?:%|€|Euro|EUR|Prozent|Mio\b|Tsd\b)", re.IGNORECASE)


def drop_figures(text: str) -> tuple[str, int]:
    """Remove sentences that state amounts or rates: in a computed section the table beside
    the text holds the figures, and a model restating them pairs them up wrongly."""
    out, dropped = [], 0
    for line in text.splitlines():
        kept = [s for s in T.split_line(line) if not _FIGURE.search(s)]
        dropped += len(T.split_line(line)) - len(kept)
        if kept or not line.strip():
            out.append(line[: len(line) - len(line.lstrip())] + " ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip(), dropped


def finish_section(sec: Section, tsec: templates.TemplateSection, raw: str, hits: list[Hit], allowed: str,
                   dropped: int, *, truncated: bool = False) -> None:
    """Raw model text -> checked, renumbered section text with its sources and warnings (pure)."""
    text, cut = trim_words(tidy(raw, sec.heading), tsec.word_limit, truncated=truncated)
    figures = 0
    if tsec.kind == "computed":
        text, figures = drop_figures(text)
    checked = citations.check(text, [h.chunk.text for h in hits])
    quotes = {n: citations.best_quote(hits[n - 1].chunk.text, citations.claims_for(checked.text, n))
              for n in checked.used}
    sec.text = renumber(checked.text, checked.used)
    sec.sources = [_ref(new, hits[old - 1].chunk, quotes[old]) for new, old in enumerate(checked.used, 1)]
    sec.sources += [_ref(0, h.chunk, "") for i, h in enumerate(hits, 1) if i not in checked.used]
    sec.removed_citations, sec.unsupported = checked.removed, len(checked.unsupported)
    sec.warnings = []
    if not hits:
        sec.warnings.append("Keine passenden Quellen gefunden: Aussagen ohne Beleg prüfen.")
    if cut:
        sec.warnings.append(f"Gekürzt: auf ganze Sätze innerhalb der Wortgrenze ({tsec.word_limit} Wörter).")
    numbers = unverified_numbers(sec.text, allowed + " " + " ".join(h.chunk.text for h in hits))
    if numbers:
        sec.warnings.append("Zahlen ohne Beleg in Fakten oder Quellen, bitte prüfen: " + ", ".join(numbers))
    if figures:
        sec.warnings.append(f"{figures} Sätze mit Beträgen oder Quoten entfernt: die berechneten Zahlen stehen in der Tabelle.")
    if dropped:
        sec.warnings.append(f"{dropped} anweisungsartige Sätze in Quellen wurden ignoriert.")
    if sec.text or figures:   # a computed section whose text only restated figures: the table stands alone
        sec.status, sec.error = "drafted", ""
    else:
        sec.status, sec.error = "failed", "Das Modell lieferte keinen Text."
    sec.updated = now()


def _ref(n: int, c: Chunk, quote: str) -> SourceRef:
    return SourceRef(n=n, title=c.title or Path(c.source).name, source=c.source, type=c.type, page=c.page,
                     paper_number=c.paper_number, doc_id=c.doc_id, chunk_id=c.chunk_id, quote=quote)
