"""Every generated sentence checked against what the model was given.

A sentence stays only when (1) each number, date and name in it occurs in the profile, the
computed facts or a passage it cites, and (2) it is supported: a cited passage shares its
content (``citations.support``, the chat's check) or, uncited, the profile does. Sentences
that fail are taken out and kept in ``Section.removed`` for the author to see and restore.

"Names" are what a reader would take for a fact about someone: acronyms (BSI, RKI),
internal capitals (openDesk, LLMoin), words with digits (OPS.2.2) and place names. English
sections cite German passages; there the content check falls back to the multilingual
embedding model, because shared stems cannot work across languages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import text as T
from ..answer import citations

# places a model tends to bring from its training data (states, large cities, countries)
PLACES = frozenset(T.fold(p) for p in """
Baden-Württemberg Bayern Berlin Brandenburg Bremen Hamburg Hessen Mecklenburg-Vorpommern Niedersachsen
Nordrhein-Westfalen Rheinland-Pfalz Saarland Sachsen Sachsen-Anhalt Schleswig-Holstein Thüringen
München Köln Frankfurt Stuttgart Düsseldorf Leipzig Dortmund Essen Dresden Hannover Nürnberg Duisburg Bochum
Wuppertal Bielefeld Bonn Münster Mannheim Karlsruhe Augsburg Wiesbaden Mönchengladbach Gelsenkirchen Aachen
Braunschweig Kiel Chemnitz Halle Magdeburg Freiburg Krefeld Mainz Lübeck Erfurt Oberhausen Rostock Kassel Hagen
Potsdam Saarbrücken Hamm Ludwigshafen Oldenburg Mülheim Osnabrück Leverkusen Darmstadt Heidelberg Solingen Herne
Regensburg Neuss Paderborn Ingolstadt Offenbach Fürth Würzburg Ulm Heilbronn Pforzheim Wolfsburg Göttingen Bottrop
Reutlingen Koblenz Bremerhaven Erlangen Trier Recklinghausen Jena Remscheid Salzgitter Moers Siegen Gütersloh
Hildesheim Kusel Linz Wien Zürich Paris Lyon Brüssel Amsterdam Kopenhagen Barcelona Wien Straßburg
Deutschland Österreich Schweiz Frankreich Dänemark Niederlande Belgien Italien Spanien Polen Schweden Finnland
Germany Austria Switzerland France Denmark Netherlands Belgium Italy Spain Poland Sweden Finland
""".split())
_TOKEN = re.compile(r"[A-Za-zÄÖÜäöüß][\w.-]*[\w]|[A-ZÄÖÜ]")
_ACRONYM = re.compile(r"^(?:[A-ZÄÖÜ0-9]{2,}[\w.-]*|[a-zäöü]+[A-ZÄÖÜ][\w-]*|[A-ZÄÖÜ][a-zäöü]+[A-ZÄÖÜ][\w-]*|\w*\d\w*)$")
# words with capitals that are not names (units, roman numerals, common abbreviations)
_COMMON = frozenset(T.fold(w) for w in "EU KI IT EUR II III IV VI VII DSGVO".split())
# the prompt's own vocabulary: a sentence about "the sources" or "the profile" talks about the task, not the project
_META = re.compile(r"(?<![-\w])(?<![Oo]pen )(?:quellen?|sources?|steckbrief\w*|fakten|projektsteckbrief)(?![-\w])", re.IGNORECASE)
SEMANTIC_MIN = 0.83     # e5 cosine of a sentence and a passage that states it (cross-language)
ECHO_RUN = 5            # words in a row shared with the section's task text: the task echoed back


def names(text: str) -> set[str]:
    """Name-like tokens as written (see the module doc). A compound is judged by its parts:
    "KI-Assistentin" and "IT-Sicherheit" are nouns, the "BSI" of "BSI-Standard" is a name."""
    out = set()
    for tok in _TOKEN.findall(citations.CITE.sub("", text)):
        tok = tok.strip(".-")
        if T.fold(tok) in PLACES:
            out.add(tok)
            continue
        for part in tok.split("-"):
            part = part.strip(".")
            if len(part) < 2 or T.fold(part) in _COMMON:
                continue
            if _ACRONYM.match(part) or T.fold(part) in PLACES:
                out.add(part)
    return out


def unknown_names(sentence: str, allowed: str) -> list[str]:
    known = T.fold(allowed)
    return sorted(n for n in names(sentence) if T.fold(n) not in known)


def unknown_numbers(sentence: str, allowed_numbers: set[str]) -> list[str]:
    """Numbers and dates of the sentence found nowhere in what the model was given; list
    markers ("1.") and project months up to the duration are structure, not facts."""
    out = []
    body = citations.CITE.sub("", re.sub(r"^\s*(?:\d+[.)]|[-*•])\s+", "", sentence))
    for raw in T.NUMBER.findall(body):
        norm = next(iter(T.numbers(raw)), raw)
        if norm not in allowed_numbers and raw not in out:
            out.append(raw)
    return out


def _runs(text: str, n: int = ECHO_RUN) -> set[tuple[str, ...]]:
    words = T.tokens(citations.CITE.sub("", text), stop=False)
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def echoes(claim: str, task: str, titles: list[str]) -> bool:
    """The model wrote back its task (``ECHO_RUN`` words in a row of the section's purpose or
    guidance) or a source's title with next to nothing of its own: "… erfahren haben: [1]
    openDesk: der souveräne Arbeitsplatz des Bundes [2]". Naming a paper inside a real
    statement stays."""
    if task and _runs(claim) & _runs(task):
        return True
    own = set(T.tokens(claim))
    for title in titles:
        if title and T.fold(title) in T.fold(claim) and len(own - set(T.tokens(title))) < 4:
            return True
    return False


@dataclass
class Verdict:
    text: str                                    # the section text without the failing sentences
    removed: list[str] = field(default_factory=list)      # "sentence — reason"
    numbers: list[str] = field(default_factory=list)      # unsupported numbers/dates found (before removal)
    names: list[str] = field(default_factory=list)
    unsupported: int = 0                                  # sentences without support (removed)
    checked: int = 0                                      # sentences checked
    supported_citations: int = 0
    citations: int = 0


def _semantic(sentence: str, passages: list[str]) -> float:
    """Best e5 cosine between the sentence and the passages (0 when the model is unavailable)."""
    if not passages:
        return 0.0
    try:
        import numpy as np

        from ..index.embeddings import embed_passages, embed_query
    except Exception:   # no embedding model: the stem check alone decides
        return 0.0
    q = embed_query(citations.CITE.sub("", sentence))
    p = embed_passages(passages)
    return float(np.max(p @ q))


def check_text(text: str, passages: list[str], allowed: str, *, language: str = "de",
               profile: str = "", months: int | None = None, task: str = "",
               titles: list[str] | None = None) -> Verdict:
    """Check each sentence of a section against its cited passages (``passages[n-1]`` for [n])
    and ``allowed`` (profile + computed facts). ``task``: the section's purpose and guidance,
    ``titles``: its sources' titles (see :func:`echoes`). Returns the kept text and what was
    removed."""
    allowed_numbers = T.numbers(allowed) | {str(i) for i in range(0, max(12, months or 0) + 1)}
    v = Verdict(text="")
    p_numbers = [T.numbers(p) for p in passages]
    lines = []
    for line in text.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        kept = []
        for sent in T.split_line(line):
            claim = citations.CITE.sub("", sent).strip()
            if len(T.tokens(claim)) < 2:
                kept.append(sent)
                continue
            v.checked += 1
            cited = [n for n in citations.cited_numbers(sent) if 1 <= n <= len(passages)]
            given = allowed + " " + " ".join(passages[n - 1] for n in cited)
            nums = unknown_numbers(sent, allowed_numbers | set().union(*[p_numbers[n - 1] for n in cited]))
            nms = unknown_names(sent, given)
            reason = ""
            if _META.search(claim):
                reason = "spricht über die Vorlage statt über das Vorhaben"
            elif echoes(claim, task, titles or []):
                reason = "wiederholt die Aufgabe oder einen Quellentitel"
            elif nums or nms:
                v.numbers += nums
                v.names += nms
                reason = "nicht belegt: " + ", ".join(nums + nms)
            else:
                held = [citations.support(sent, passages[n - 1]) >= citations.HOLDS for n in cited]
                if cited and not any(held) and language != "de":
                    held = [_semantic(sent, [passages[n - 1] for n in cited]) >= SEMANTIC_MIN]
                v.citations += len(cited)
                v.supported_citations += sum(1 for h in held if h) if cited and any(held) else 0
                own = citations.support(sent, profile or allowed)
                if cited and not any(held):
                    reason = "die zitierte Quelle stützt den Satz nicht"
                elif not cited and own < 0.5 and not (language != "de" and _semantic(sent, [profile or allowed]) >= SEMANTIC_MIN):
                    reason = "ohne Beleg in Quellen oder Projektsteckbrief"
            if reason:
                v.removed.append(f"{claim} — {reason}")
                v.unsupported += 1
            else:
                kept.append(sent)
        if kept:
            lines.append(indent + " ".join(kept))
        elif not line.strip():
            lines.append("")
    v.text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return v


# ----------------------------------------------------------------------------- language

_DE = frozenset("der die das und ist nicht mit für auf den dem des ein eine einer wird werden sich von zu im "
                "zur zum auch als bei nach oder über durch sind wurde wir sie es".split())
_EN = frozenset("the and is are of to in for with on by this that be will from as an at it its which "
                "their these our has have was were into through".split())


def language_of(sentence: str) -> str:
    """"de", "en" or "" (undecided: too few function words) by function-word counts."""
    words = re.findall(r"[a-zäöüß]+", sentence.lower())
    de = sum(w in _DE for w in words)   # umlauts alone do not count: German names stand in English text
    en = sum(w in _EN for w in words)
    if de + en < 2:
        return ""
    return "de" if de > en else "en" if en > de else ""


def foreign_sentences(text: str, language: str) -> list[str]:
    """Sentences of ``text`` clearly in another language than ``language``."""
    return [s for s in T.sentences(text) if language_of(s) not in ("", language)]
