"""Deterministic evaluation metrics: pure functions, no I/O, no model.

Text is compared after a German-aware normalisation, so that an answer is not marked
wrong for writing "1. April 2026" where the reference says "01.04.2026", "1,5 Mio. €"
for "1.500.000 Euro", "87 Prozent" for "87 %" or "Förderungen" for "Förderung".
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath, PureWindowsPath
from typing import Iterable, Sequence

from .. import text as T
from ..answer.citations import CITE, attributed_sentences, support
from .suites import GoldSource

MONTHS = {"januar": 1, "jaenner": 1, "februar": 2, "maerz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7,
          "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12}
_DATE_NUM = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})\b")
_DATE_WORD = re.compile(r"\b(\d{1,2})\.\s*(" + "|".join(MONTHS) + r")\s+(\d{4})\b")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+")
_UNITS = [(re.compile(p), r) for p, r in [
    (r"%", " prozent "), (r"€", " euro "), (r"\beur\b", " euro "),
    (r"\b(?:mio|millionen|million)\b\.?", " mio "), (r"\b(?:mrd|milliarden|milliarde)\b\.?", " mrd "),
]]
_SCALE = {"mio": 10 ** 6, "mrd": 10 ** 9}
_ENUM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
# tokens here are folded ("fuer"), so both spellings are stopwords
STOP = frozenset(T.STOPWORDS | T.FOLDED_STOPWORDS | {"bzw", "ca", "rund"})


# ------------------------------------------------------------------ retrieval
@dataclass(frozen=True)
class SourceRef:
    """Where a retrieved or cited passage comes from."""

    source: str                 # path, URL or file name
    page: int | None = None
    doc_id: str = ""


def file_name(source: str) -> str:
    name = PureWindowsPath(source).name if "\\" in source else PurePosixPath(source).name
    return name.lower()


def source_matches(ref: SourceRef, gold: GoldSource) -> bool:
    """File name match (or doc id prefix); when the gold source lists pages, the page must be one of them."""
    g = gold.file.strip().lower()
    if re.fullmatch(r"[0-9a-f]{12,64}", g) and ref.doc_id.lower().startswith(g):
        same = True
    else:
        same = file_name(ref.source) == file_name(g)
    if not same:
        return False
    return not gold.pages or (ref.page is not None and ref.page in gold.pages)


def gold_rank(retrieved: Sequence[SourceRef], gold: Sequence[GoldSource]) -> int | None:
    """1-based rank of the first retrieved passage from a gold source; None if none is."""
    for rank, ref in enumerate(retrieved, start=1):
        if any(source_matches(ref, g) for g in gold):
            return rank
    return None


def hit_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def gold_recall_at_k(retrieved: Sequence[SourceRef], gold: Sequence[GoldSource], k: int) -> float | None:
    """Share of the distinct gold documents found in the top k (for questions that need two documents)."""
    files = {g.file.lower() for g in gold}
    if not files:
        return None
    found = {g.file.lower() for g in gold for ref in retrieved[:k] if source_matches(ref, g)}
    return len(found) / len(files)


# ----------------------------------------------------------- normalisation
def _number(raw: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", raw):           # German thousands: 186.500
        raw = raw.replace(".", "")
    if raw.count(".") > 1 or ("." in raw and "," in raw):   # 1.1.12 (a product number): keep
        return raw
    raw = raw.replace(",", ".")
    if "." in raw:
        raw = raw.rstrip("0").rstrip(".")                   # 3,0 == 3 and 99,20 == 99,2
    return raw


def _dates(text: str) -> str:
    def iso(d: str, m: int, y: str) -> str:
        return f" d{y}{m:02d}{int(d):02d} " if 1 <= int(d) <= 31 and 1 <= m <= 12 else f" {d} {m} {y} "

    text = _DATE_NUM.sub(lambda mt: iso(mt.group(1), int(mt.group(2)), mt.group(3)), text)
    return _DATE_WORD.sub(lambda mt: iso(mt.group(1), MONTHS[mt.group(2)], mt.group(3)), text)


def norm_tokens(text: str) -> list[str]:
    """Folded, stopword-free tokens; dates as dYYYYMMDD, numbers normalised and scaled by Mio./Mrd.,
    words stemmed. Citation markers are ignored."""
    text = T.fold(CITE.sub(" ", text or ""))
    text = _dates(text)
    for pattern, repl in _UNITS:
        text = pattern.sub(repl, text)
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        if tok[0].isdigit():
            out.append(_number(tok))
        elif tok in _SCALE and out and _is_decimal(out[-1]):
            out[-1] = _scaled(out[-1], _SCALE[tok])
        elif tok in STOP or len(tok) < 2:
            continue
        else:
            out.append(T.stem(tok))
    return out


def _is_decimal(tok: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?", tok))


def _scaled(tok: str, factor: int) -> str:
    try:
        value = Decimal(tok) * factor
    except InvalidOperation:
        return tok
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _word_match(a: str, b: str) -> bool:
    """Same stem, or one inflected form of the other (offen/offener, Beschäftigte/Beschäftigten)."""
    if a == b:
        return True
    if a[0].isdigit() or b[0].isdigit():
        return False
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 4 and long_.startswith(short) and len(long_) - len(short) <= 3


# ---------------------------------------------------------- answer correctness
def token_f1(prediction: str, reference: str) -> float | None:
    """SQuAD-style token F1 on normalised tokens; None when there is no reference."""
    ref = norm_tokens(reference)
    if not ref:
        return None
    pred = norm_tokens(prediction)
    if not pred:
        return 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def fact_contained(fact: str, answer: str) -> bool:
    """Every normalised token of the fact occurs in the answer (numbers and dates exactly)."""
    need = norm_tokens(fact)
    if not need:
        return False
    have = set(norm_tokens(answer))
    return all(tok in have or any(_word_match(tok, h) for h in have) for tok in need)


def facts_recall(facts: Sequence[str], answer: str) -> float | None:
    if not facts:
        return None
    return sum(fact_contained(f, answer) for f in facts) / len(facts)


def missing_facts(facts: Sequence[str], answer: str) -> list[str]:
    return [f for f in facts if not fact_contained(f, answer)]


def answer_sentence_recall(sentences: Sequence[str], answer: str) -> float | None:
    """Share of the content words of the gold answer sentences that the answer carries.

    For extractive gold (annotated answer sentences) a fact is a content word: a stem of a
    folded, non-stopword token (``assistant.text.stems``). Citation markers in the answer do
    not count. None when the gold sentences have no content words."""
    gold = set().union(*(T.stems(s) for s in sentences)) if sentences else set()
    if not gold:
        return None
    return len(gold & T.stems(CITE.sub(" ", answer or ""))) / len(gold)


# ---------------------------------------------------------------- citations
def citation_validity(cited: Sequence[int], n_sources: int, removed: int = 0) -> float | None:
    """Share of [n] markers that resolve to a source shown to the model.

    ``removed`` counts markers the chat already stripped because they pointed nowhere."""
    total = len(cited) + removed
    if total == 0:
        return None
    valid = sum(1 for n in cited if 1 <= n <= n_sources)
    return valid / total


def gold_cited(cited: Sequence[SourceRef], gold: Sequence[GoldSource]) -> float | None:
    """1.0 when at least one citation is a gold source (page-exact where the gold lists pages)."""
    if not gold:
        return None
    return 1.0 if any(source_matches(ref, g) for ref in cited for g in gold) else 0.0


def citation_accuracy(cited: Sequence[SourceRef], gold: Sequence[GoldSource]) -> float | None:
    """Share of cited sources that are gold sources (page-exact where the gold lists pages)."""
    if not cited or not gold:
        return None
    return sum(1 for ref in cited if any(source_matches(ref, g) for g in gold)) / len(cited)


# ------------------------------------------------------------- faithfulness
@dataclass
class Faithfulness:
    score: float | None                 # supported sentences / checked sentences
    numbers: float | None               # sentences with numbers whose numbers are in a cited passage
    checked: int = 0
    unsupported: list[str] = field(default_factory=list)


def number_set(text: str) -> set[str]:
    return {t for t in norm_tokens(text) if t[0].isdigit() or (t.startswith("d") and t[1:].isdigit())}


def numbers_consistent(sentence: str, passage: str) -> bool:
    """Every number and date in the sentence also occurs in the passage (after normalisation)."""
    return number_set(sentence) <= number_set(passage)


def faithfulness(answer: str, passages: Sequence[str], *, threshold: float = 0.5) -> Faithfulness:
    """Share of answer sentences that a passage they cite supports (content-word overlap of at
    least ``threshold``) with consistent numbers and dates; each sentence of a Fundstelle quote cites
    the quote's source. Uncited sentences count as unsupported; sentences of fewer than three
    content words (transitions, headers) are not checked."""
    checked = supported = with_numbers = numbers_ok = 0
    unsupported = []
    for sent, numbers in attributed_sentences(answer):
        body = _ENUM.sub("", sent)
        if len(T.tokens(CITE.sub(" ", body))) < 3:
            continue
        checked += 1
        cited = [passages[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(passages)]
        has_numbers = bool(number_set(body))
        nums_good = any(numbers_consistent(body, p) for p in cited)
        if has_numbers:
            with_numbers += 1
            numbers_ok += nums_good
        if any(support(body, p) >= threshold and numbers_consistent(body, p) for p in cited):
            supported += 1
        else:
            unsupported.append(sent)
    return Faithfulness(score=supported / checked if checked else None,
                        numbers=numbers_ok / with_numbers if with_numbers else None,
                        checked=checked, unsupported=unsupported)


# ------------------------------------------------------------------ refusals
def refusal_scores(pairs: Iterable[tuple[bool, bool]]) -> dict[str, float | None]:
    """``pairs`` of (answerable, refused). The positive class is "should refuse" (unanswerable):
    precision = refusals that were right, recall = unanswerable questions refused,
    accuracy = items where refusing matched answerability, false_refusal_rate = answerable ones refused."""
    pairs = list(pairs)
    tp = sum(1 for a, r in pairs if r and not a)
    fp = sum(1 for a, r in pairs if r and a)
    fn = sum(1 for a, r in pairs if not r and not a)
    answerable = sum(1 for a, _ in pairs if a)
    return {"refusal_precision": tp / (tp + fp) if tp + fp else None,
            "refusal_recall": tp / (tp + fn) if tp + fn else None,
            "refusal_accuracy": sum(1 for a, r in pairs if r != a) / len(pairs) if pairs else None,
            "false_refusal_rate": fp / answerable if answerable else None}


# ------------------------------------------------------------------- latency
def percentile(values: Iterable[float | None], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), like numpy's default; None for no values."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(values: Iterable[float | None]) -> dict[str, float | None]:
    data = [v for v in values if v is not None]
    return {"p50": percentile(data, 50), "p95": percentile(data, 95),
            "mean": sum(data) / len(data) if data else None, "max": max(data) if data else None, "n": len(data)}


def mean(values: Iterable[float | None]) -> float | None:
    data = [v for v in values if v is not None]
    return sum(data) / len(data) if data else None
