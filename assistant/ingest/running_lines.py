"""Running heads and feet of paged documents: the lines a council PDF repeats on every page.

"Musterstadt · Beschlussvorlage · Drucksache 0036/2026 27.01.2026" above every page and
"… Seite 2 von 3" below it are page furniture, not content. Left in, they are embedded into every
chunk of the document, match any question about the document ("Antrag", "Drucksache") and were
quoted as the Fundstelle instead of the sentence that answers. A line counts as running when it
stands among the first or last lines of at least 60 % of the pages (and of two at least), with
its digits ignored (page numbers, dates change); a short page offers fewer edge lines, so that
its content is not taken for furniture. The first page keeps its running heads, so the
document's number and date stay findable once; running feet go from every page.
"""
from __future__ import annotations

import re
from collections import Counter

EDGE_LINES = 3          # lines at the top and at the bottom of a page that may be furniture ...
LINES_PER_EDGE_LINE = 4  # ... one per this many lines of the page
MIN_SHARE = 0.6         # of the pages that must carry the line there

_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def _key(line: str) -> str:
    return _SPACE.sub(" ", _DIGITS.sub("#", line)).strip().casefold()


def _edges(lines: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the first and the last few non-empty lines."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    n = min(EDGE_LINES, max(1, len(filled) // LINES_PER_EDGE_LINE))
    return filled[:n], filled[-n:]


def strip_running_lines(pages: list[str]) -> list[str]:
    """``pages`` without their running heads (kept on the first page) and feet; the same list's
    texts when no line repeats, or when there are fewer than two pages."""
    if len(pages) < 2:
        return list(pages)
    split = [p.splitlines() for p in pages]
    heads: Counter[str] = Counter()
    feet: Counter[str] = Counter()
    for lines in split:
        top, bottom = _edges(lines)
        heads.update({_key(lines[i]) for i in top} - {""})
        feet.update({_key(lines[i]) for i in bottom} - {""})
    need = max(2, MIN_SHARE * sum(1 for p in pages if p.strip()))
    running_heads = {k for k, n in heads.items() if n >= need}
    running_feet = {k for k, n in feet.items() if n >= need}
    if not running_heads and not running_feet:
        return list(pages)
    out = []
    for number, (text, lines) in enumerate(zip(pages, split)):
        top, bottom = _edges(lines)
        drop = {i for i in bottom if _key(lines[i]) in running_feet}
        if number > 0:
            drop |= {i for i in top if _key(lines[i]) in running_heads}
        out.append(text if not drop else "\n".join(line for i, line in enumerate(lines) if i not in drop))
    return out
