"""From retrieved chunks to the passages a prompt may hold: pure functions.

On 2 CPU cores every prompt token costs time to first token (~160 tokens/s for the
1.5B model), so each passage is cut to the sentences that matter for the question,
in their original order. Sentences that read like instructions to a model are dropped
here, before the model sees them: the prompt's delimiters are the second line of
defence, not the only one.
"""
from __future__ import annotations

import re

from .. import text as T
from ..types import Hit

INJECTION = re.compile("|".join([
    r"(?:ignorier|missacht|übergeh)\w*\s+(?:\w+\s+){0,4}(?:anweisung|instruktion|vorgabe|regel|quelle|kontext|dokument|prompt)",
    r"ignore\s+(?:\w+\s+){0,4}(?:instruction|prompt|rule|direction|source|context)s?",
    r"disregard\s+(?:\w+\s+){0,4}(?:instruction|prompt|rule|source)",
    r"vergiss\s+(?:\w+\s+){0,4}(?:anweisung|regel|vorgabe|alles)",
    r"forget\s+(?:\w+\s+){0,4}(?:instruction|everything|rule)",
    # "neue Anweisungen zum Winterdienst" is council German: only a system instruction or a colon counts
    r"(?:neue|geänderte)\s+(?:systemanweisung\w*|anweisung\w*\s*:)",
    r"new\s+(?:system\s+instructions?|instructions?\s*:)",
    r"\bdu\s+bist\s+(?:jetzt|ab\s+sofort|nun|ab\s+jetzt)\b",
    r"\b(?:ab\s+sofort|ab\s+jetzt|von\s+nun\s+an)\s+bist\s+du\b",
    r"\byou\s+are\s+now\b",
    r"(?:^|[.!:]\s*)(?:please\s+)?act\s+as\b",   # the imperative, not "shall act as coordinator"
    r"\bnote\s+to\s+(?:the\s+)?(?:ai|assistant|model|llm|ki)\b",
    r"\bsystem\s*(?:prompt|nachricht|message)\s*:", r"^\s*(?:system|assistant)\s*:",
    r"antworte\s+(?:ab\s+jetzt\s+|nur\s+(?:noch\s+)?|ausschließlich\s+)(?:mit|auf|in)\b",
    r"(?:respond|answer|reply)\s+(?:only\s+)?(?:with|in)\s+[\"']",
    r"gib\s+(?:\w+\s+){0,3}(?:system)?prompt\w*\s+aus", r"reveal\s+(?:\w+\s+){0,3}prompt",
    r"</?\s*quelle", r"</?\s*quellen", r"<\|im_(?:start|end)\|>",
]), re.IGNORECASE | re.MULTILINE)
FAKE_TURN = re.compile(r"<\|im_start\|>.*?(?:<\|im_end\|>|\Z)", re.DOTALL)


def looks_like_instruction(sentence: str) -> bool:
    return bool(INJECTION.search(sentence))


def clean(text: str) -> str:
    """Neutralise characters that could close our delimiters, forge attributes or fake chat tokens."""
    return text.replace("<", "‹").replace(">", "›").replace('"', "“")


def safe_title(title: str, source: str) -> tuple[str, bool]:
    """A title fit for the prompt; an instruction-like title is replaced by the file name."""
    if looks_like_instruction(title):
        return clean(source.rsplit("/", 1)[-1]), True
    return clean(title), False


def select(hits: list[Hit], question: str, *, per_passage: int = 500, total: int = 1000) -> tuple[list[str], int]:
    """The sentences that matter, chosen across all hits, grouped back into their passages.

    Ranking sentences globally (content-word overlap with the question, the retriever's
    order breaking ties) spends the small prompt budget on evidence rather than filling
    it passage by passage. Returns one text per hit ("" when none of its sentences made
    it) and the number of instruction-like sentences dropped.
    """
    return select_texts([h.chunk.text for h in hits], question, per_passage=per_passage, total=total)


def select_texts(texts: list[str], question: str, *, per_passage: int, total: int) -> tuple[list[str], int]:
    """:func:`select` on plain passage texts."""
    q = T.stems(question)
    kept: list[list[str]] = []
    candidates: list[tuple[float, int, int]] = []
    dropped = 0
    for hi, text in enumerate(texts):
        # a fake chat turn may spread its instruction over lines that look harmless on their own
        passage, turns = FAKE_TURN.subn(" ", text)
        sents = T.sentences(passage)
        bad = [looks_like_instruction(s) for s in sents]
        dropped += turns + sum(bad)
        sents = [s for s, b in zip(sents, bad) if not b]
        kept.append(sents)
        candidates += [(len(T.stems(s) & q) + 1.0 / (hi + 2), hi, si) for si, s in enumerate(sents)]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: list[set[int]] = [set() for _ in texts]
    used, total_used = [0] * len(texts), 0
    for _, hi, si in candidates:
        n = len(kept[hi][si]) + 1
        if total_used + n <= total and used[hi] + n <= per_passage:
            chosen[hi].add(si)
            used[hi] += n
            total_used += n
    out = [clean(" ".join(kept[hi][si] for si in sorted(chosen[hi]))) for hi in range(len(texts))]
    if texts and not out[0] and kept[0]:   # the best hit is one overlong sentence: keep its start
        out[0] = clean(kept[0][0][:per_passage])
    return out, dropped
