"""Citation checks on an answer: pure functions, no I/O.

Numbers that point to no source are removed and counted; sentences a small model left
uncited get the source that supports them (by content-word overlap), and sentences no
source supports are reported, never silently kept as if grounded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import text as T

HOLDS = 0.3   # share of a claim's content words a cited passage must contain to count as its source
CITE = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass
class CheckedAnswer:
    text: str
    used: list[int]            # valid source numbers in order of first use
    removed: int               # citation numbers that pointed nowhere
    added: int                 # citations attributed by overlap
    unsupported: list[str]     # sentences without a supporting source
    corrected: int = 0         # citations moved to the source that actually holds the claim


def cited_numbers(answer: str) -> list[int]:
    out = []
    for m in CITE.finditer(answer):
        out.extend(int(x) for x in re.split(r"\s*[,;]\s*", m.group(1)))
    return out


def strip_invalid(answer: str, n_sources: int) -> tuple[str, int]:
    """Drop [n] with n outside 1..n_sources; rewrite [1, 9] as [1]."""
    removed = 0

    def fix(m: re.Match) -> str:
        nonlocal removed
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        good = [n for n in nums if 1 <= n <= n_sources]
        removed += len(nums) - len(good)
        return "".join(f" [{n}]" for n in dict.fromkeys(good))

    return CITE.sub(fix, answer), removed


def support(sentence: str, passage: str) -> float:
    """Share of the sentence's content stems that occur in the passage (0..1)."""
    s = T.stems(CITE.sub("", sentence))
    if not s:
        return 0.0
    return len(s & T.stems(passage)) / len(s)


def numbers_consistent(sentence: str, passage: str) -> bool:
    """Every number in the sentence also appears in the passage (dates, amounts, rates)."""
    return T.numbers(CITE.sub("", sentence)) <= T.numbers(passage)


def check(answer: str, passages: list[str], *, threshold: float = 0.5) -> CheckedAnswer:
    """Validate citations and attribute uncited, supported sentences."""
    answer, removed = strip_invalid(answer, len(passages))
    # each passage is normalised once, not once per answer sentence
    p_stems = [T.stems(p) for p in passages]
    p_numbers = [T.numbers(p) for p in passages]
    lines, added, corrected, unsupported = [], 0, 0, []
    for line in answer.splitlines():   # keep the answer's lists and paragraphs as written
        indent = line[: len(line) - len(line.lstrip())]
        out = []
        for sent in T.split_line(line):
            nums = cited_numbers(sent)
            if not CITE.sub("", sent).strip() and out and set(nums) <= set(cited_numbers(out[-1])):
                continue   # "… bereitgestellt [1]. [1]": the model repeats the citation it just gave
            if len(T.tokens(CITE.sub("", sent))) < 2:
                out.append(sent)
                continue
            claim = CITE.sub("", sent)
            c_stems, c_numbers = T.stems(claim), T.numbers(claim)
            scores = [len(c_stems & ps) / len(c_stems) if c_stems and c_numbers <= pn else 0.0
                      for ps, pn in zip(p_stems, p_numbers)]
            best = max(range(len(scores)), key=scores.__getitem__, default=None)
            if not nums:
                if best is not None and scores[best] >= threshold:
                    sent = _append_citation(sent, best + 1)
                    added += 1
                else:
                    unsupported.append(sent)
            elif all(scores[n - 1] < HOLDS for n in nums):
                # the model cited a source that does not hold the claim: point to the one that does
                if best is not None and scores[best] >= threshold:
                    sent = _append_citation(CITE.sub("", sent), best + 1)
                    corrected += 1
                else:
                    unsupported.append(sent)
            out.append(sent)
        lines.append(indent + " ".join(out))
    text = "\n".join(lines).strip()
    used = list(dict.fromkeys(cited_numbers(text)))
    return CheckedAnswer(text, used, removed, added, unsupported, corrected)


def drop_unverified_numbers(answer: str, passages: list[str]) -> tuple[str, list[str]]:
    """Remove sentences with a number or date that no passage holds: a small model joins a figure
    to the wrong subject or invents one, and an invented figure with a citation is worse than none."""
    known = set().union(*(T.numbers(p) for p in passages)) if passages else set()
    lines, removed = [], []
    for line in answer.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        kept = []
        for sent in T.split_line(line):
            if T.numbers(CITE.sub("", sent)) <= known:
                kept.append(sent)
            else:
                removed.append(sent)
        if kept or not line.strip():
            lines.append(indent + " ".join(kept))
    return "\n".join(lines).strip(), removed


def _append_citation(sentence: str, n: int) -> str:
    m = re.search(r"[.!?:]$", sentence)
    return f"{sentence[:-1]} [{n}]{sentence[-1]}" if m else f"{sentence} [{n}]"


def best_quote(passage: str, claim: str, max_chars: int = 300) -> str:
    """The passage sentence that best supports the claim (shown as the citation's quote)."""
    sents = T.sentences(passage) or [passage]
    best = max(sents, key=lambda s: (len(T.stems(s) & T.stems(claim)), -abs(len(s) - 160)))
    return best if len(best) <= max_chars else best[: max_chars - 1] + "…"


# the Fundstelle as prompts/chat/v2 "quote" writes it; its runs of one passage are joined by "[…]"
QUOTED = re.compile(r"Fundstelle \[(\d+)\]: „(.*)“")


def attributed_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the source numbers it cites. Every sentence of a
    Fundstelle quote cites its source, though only the quote's opening carries the number."""
    out: list[tuple[str, list[int]]] = []
    for line in (answer or "").splitlines():
        m = QUOTED.fullmatch(line.strip())
        if m:
            out += [(s, [int(m.group(1))]) for s in T.sentences(m.group(2).replace(" […] ", "\n"))]
        else:
            out += [(s, cited_numbers(s)) for s in T.sentences(line)]
    return out


def claims_for(answer: str, n: int) -> str:
    """All answer sentences citing source n (to pick its quote)."""
    return " ".join(s for s, ns in attributed_sentences(answer) if n in ns)


NO_EVIDENCE = ("finde ich dazu nichts", "nicht aufgefuehrt", "keine angaben", "keine informationen",
               "nicht enthalten", "nicht genannt", "nicht angegeben", "nicht beantworten", "no information",
               "not mentioned")


def is_refusal(answer: str, refusal: str) -> bool:
    """The prescribed sentence, or a short answer that opens by saying the sources lack it."""
    a = T.fold(answer)
    if T.fold(refusal).rstrip(".") in a:
        return True
    sents = T.sentences(CITE.sub("", answer))
    return bool(sents) and len(sents) <= 2 and any(p in T.fold(sents[0]) for p in NO_EVIDENCE)
