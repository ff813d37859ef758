"""German-aware text normalisation shared by citation checks, context selection and metrics.

Pure functions, no I/O. Folding umlauts and ß lets "Förderquote" match "Foerderquote";
a small stopword list keeps overlap scores about content words.
"""
from __future__ import annotations

import re
import unicodedata

STOPWORDS = frozenset("""
aber alle allem allen aller alles als also am an ander andere anderen auch auf aus bei beim bin bis bist da
dabei damit dann das dass dem den denn der des dessen die dies diese diesem diesen dieser dieses doch dort du
durch ein eine einem einen einer eines er es etwa euch für gegen hat hatte haben hier hin hinter ich ihm ihn
ihr ihre im in indem ins ist ja jede jedem jeden jeder jedes jetzt kann kein keine können man mehr mit muss
nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so soll sollen sondern sowie über
um und uns unser unter vom von vor war waren was weil welche welchem welchen welcher welches wenn wer werden
wie wieder will wir wird wo wurde wurden zu zum zur zwischen the a an and or of to in is are for on with
""".split())

_WORD = re.compile(r"\w+", re.UNICODE)
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def fold(text: str) -> str:
    """Lowercase, umlauts/ß to ASCII digraphs, other accents stripped."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# tokens() compares *folded* words with STOPWORDS, so "für", "über", "können" pass as content words.
# Changing that moves every overlap feature the answerability model was calibrated on; code that
# must not count them subtracts this set instead (one place to switch when tokens() is fixed).
FOLDED_STOPWORDS = frozenset(fold(w) for w in STOPWORDS)


def tokens(text: str, *, stop: bool = True) -> list[str]:
    """Content tokens: folded words, stopwords and 1-letter words dropped (numbers kept)."""
    out = []
    for w in _WORD.findall(fold(text)):
        if stop and (w in STOPWORDS or (len(w) < 2 and not w.isdigit())):
            continue
        out.append(w)
    return out


def stem(token: str) -> str:
    """A light German suffix stripper: enough to match Förderung/Förderungen, Kommune/Kommunen."""
    for suffix in ("ungen", "heiten", "keiten", "ung", "en", "er", "es", "e", "n", "s"):
        if len(token) > len(suffix) + 3 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token


def stems(text: str) -> set[str]:
    return {stem(t) for t in tokens(text)}


# A sentence ends at . ! ? … (and closing quotes/brackets) before whitespace and a capital,
# digit, opening quote, bracket or bullet.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'»«“”)\]]*\s+(?=[\"„»(\[A-ZÄÖÜ0-9•–-])")
# words that end with a dot without ending the sentence (lower case, dot removed)
ABBREVIATIONS = frozenset("""z b d h u a o e i s v f ff nr abs art ca bzw ggf vgl inkl dr prof gem usw etc str
tel mio mrd tsd bspw evtl lt max min insb sog jr st hr fr zzgl abzgl einschl ziff lfd kap anl bd aufl ebd allg
jan feb mär apr jun jul aug sep sept okt nov dez rd bzgl u.a z.b d.h i.v ggfs""".split())


def sentence_starts(text: str, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets where a new sentence begins inside ``text[start:end]`` (not ``start`` itself).

    No cut after abbreviations ("z. B.", "Nr.", "ca."), single letters or day and month
    numbers ("12. März")."""
    end = len(text) if end is None else end
    cuts = []
    for m in _SENTENCE_END.finditer(text, start, end):
        if text[m.start()] == ".":
            word = re.search(r"(\S+)$", text[max(start, m.start() - 40):m.start()])
            w = word.group(1).lower().strip("(\"'„") if word else ""
            if w in ABBREVIATIONS or (len(w) == 1 and w.isalpha()) or (w.isdigit() and len(w) <= 2):
                continue
        cuts.append(m.end())
    return cuts


def split_line(line: str) -> list[str]:
    """Sentences of one line."""
    line = line.strip()
    bounds = [0, *sentence_starts(line), len(line)]
    return [p for p in (line[a:b].strip() for a, b in zip(bounds, bounds[1:])) if p]


def sentences(text: str) -> list[str]:
    """Split into sentences; list items and lines are sentences of their own."""
    return [s for line in text.splitlines() for s in split_line(line)]


# a second question joined by "und" ("Wer entwickelt openDesk, und wie viele Beschäftigte …?"):
# the conjunction before a question word, optionally behind a preposition ("und ab wann", "und aus welchen")
_PART_JOIN = re.compile(r",?\s+(?:und|sowie)\s+(?=(?:(?:ab|aus|an|auf|bei|bis|für|in|mit|nach|seit|von|zu)\s+)?"
                        r"(?:wie|was|welche[mnrs]?|wer|wem|wen|wessen|warum|wieso|weshalb|wo\w*|wann|ob)\b)",
                        re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The questions a compound question asks ("Seit wann …, und was kostete …?" -> two); one
    part for an ordinary question. A part shorter than three words stays with its neighbour."""
    parts = [p.strip(" ,") for p in _PART_JOIN.split(question.strip())]
    out: list[str] = []
    for p in parts:
        if out and len(tokens(p, stop=False)) < 3:
            out[-1] = f"{out[-1]} und {p}"
        else:
            out.append(p)
    return out if len(out) > 1 else [question.strip()]


MD_HEADING = re.compile(r"[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*")   # a whole line (fullmatch)
WRAPPED = 60     # a line this long that stops mid-sentence was wrapped (PDF page, hard-wrapped Markdown) ...
WRAP_HEADING = 80   # ... unless it is a numbered heading ("6. Datenschutz, Beteiligung")
_WRAP = re.compile(r"(?m)^(?!\d+(?:\.\d+)*\.?\s[^\n]{0,%d}$)([^\n]{%d,}(?<![.!?:;]))[ \t]*\n[ \t]*"
                   r"(?![-*•#|]|\d+[.)]\s|\n)" % (WRAP_HEADING, WRAPPED))


def unwrap(text: str) -> str:
    """Join the line wraps of a PDF page or a hard-wrapped Markdown paragraph again: a long line
    that does not end a sentence continues on the next, unless that one opens a list item, a
    heading or a table row (short lines and numbered lines are headings and cells; they stay apart)."""
    return _WRAP.sub(r"\1 ", text)


def hard_wrapped(source: str) -> bool:
    """Formats whose line ends are layout, not structure (plain text and office files keep one
    paragraph or item per line)."""
    return source.lower().rsplit("?", 1)[0].endswith((".pdf", ".md", ".markdown"))


def slug(text: str, limit: int = 40, *, default: str = "") -> str:
    """Lower-case ASCII words joined by "-" (umlauts folded): ids and file names from titles."""
    s = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return s[:limit].strip("-") or default


NUMBER = re.compile(r"\d[\d.,]*\d|\d")


def numbers(text: str) -> set[str]:
    """Numbers as written, normalised (1.000.000 == 1000000; 3,5 == 3.5)."""
    out = set()
    for n in NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(\.\d{3})+", n):
            n = n.replace(".", "")
        out.add(n.replace(",", "."))
    return out


_MARKUP = [
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M), ""),          # headings
    (re.compile(r"(\*\*|__)(\S(?:.*?\S)?)\1"), r"\2"),           # bold
    (re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])"), r"\1"),   # italics
    (re.compile(r"`([^`]*)`"), r"\1"),                             # inline code
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),                 # links and images
    (re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}.*$", re.M), ""),          # table rules
    (re.compile(r"[ \t]*\|[ \t]*"), " · "),                           # table cells
]


def plain(markdown: str) -> str:
    """Markdown as a reader sees it (for snippets): no #, ** or table pipes, text kept."""
    for pattern, repl in _MARKUP:
        markdown = pattern.sub(repl, markdown)
    return re.sub(r"(?: · )(?:\s*·\s*)+", " · ", markdown)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>!|$&~#])")
_AUTOLINK = re.compile(r"(://|(?<![\w.])www\.)", re.IGNORECASE)


def md_escape(text: str) -> str:
    """Plain text safe inside Markdown: every character that could start markup (a link, an
    image, emphasis, code, a tag, an entity, a table, math) is backslash-escaped and bare URLs
    are kept from becoming links, so a document title stays text. Line breaks become spaces."""
    out = _MD_SPECIAL.sub(r"\\\1", " ".join(str(text or "").split()))
    return _AUTOLINK.sub(lambda m: "\\:\\/\\/" if m.group(0) == "://" else m.group(0)[:3] + "\\.", out)
