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
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9\"„(\[])")


def fold(text: str) -> str:
    """Lowercase, umlauts/ß to ASCII digraphs, other accents stripped."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_FOLD)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


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


_NO_END = re.compile(r"(?:\b\d{1,2}|\b(?:z|B|d|h|u|a|v|Nr|S|Abs|Art|bzw|ca|vgl|gem|Dr|Prof|Str|Tel|inkl|ggf|evtl|usw|etc|Mio|Mrd|Ziff|Anl|lfd|i\.V|o|St))\.$")


def split_line(line: str) -> list[str]:
    """Sentences of one line; no split after ordinals ("12. März") or abbreviations ("z. B.", "Nr.")."""
    parts: list[str] = []
    for piece in _SENT.split(line.strip()):
        if parts and _NO_END.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {piece}"
        elif piece:
            parts.append(piece)
    return [p.strip() for p in parts if p.strip()]


def sentences(text: str) -> list[str]:
    """Split into sentences; list items and lines are sentences of their own."""
    return [s for line in text.splitlines() for s in split_line(line)]


NUMBER = re.compile(r"\d[\d.,]*\d|\d")


def numbers(text: str) -> set[str]:
    """Numbers as written, normalised (1.000.000 == 1000000; 3,5 == 3.5)."""
    out = set()
    for n in NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(\.\d{3})+", n):
            n = n.replace(".", "")
        out.add(n.replace(",", "."))
    return out
