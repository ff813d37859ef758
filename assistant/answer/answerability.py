"""Answer or refuse: the evidence scores and the model's own judgement, combined.

Neither alone separates the questions a municipal page answers from the on-topic ones it
does not: e5 similarity is high for both, and the small model says "yes" too often when
asked to refuse in its answer prompt. A logistic score over four signals does better (and a year the
question names that no shown source mentions refuses before either is asked, ``missing_years``, and so
does a Fundstelle that speaks of other years only, ``other_years``):

* ``p_yes``       – the model's probability of "Ja" to "is the answer in these sources?",
                    read from the first token's log-probabilities (one token, cached prefix);
* ``max_sim``     – e5 cosine of the best evidence sentence to the question;
* ``max_overlap`` – share of the question's content words in the best sentence;
* ``sim_margin``  – how far that similarity stands above the mean of all retrieved sentences: a
                    page on the topic that does not answer is uniformly similar; an answer stands
                    out, and this holds in corpora whose similarities run lower (long PDF lines).

The weights live in ``[answer]`` of the configuration; ``scripts/calibrate_answerability.py``
fits them to a stored evaluation run (on the train split, never on dev).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..config import AnswerSettings


@dataclass
class Decision:
    answer: bool
    score: float
    signals: dict[str, float] = field(default_factory=dict)


def decide(p_yes: float | None, features: dict[str, float], s: AnswerSettings) -> Decision:
    signals = {"p_yes": 0.5 if p_yes is None else p_yes, "max_sim": features.get("max_sim", 0.0),
               "max_overlap": features.get("max_overlap", 0.0), "sim_margin": features.get("sim_margin", 0.0)}
    z = (s.check_bias + s.check_yes * signals["p_yes"] + s.check_similarity * signals["max_sim"]
         + s.check_overlap * signals["max_overlap"] + s.check_margin * signals["sim_margin"])
    score = 1.0 / (1.0 + math.exp(-z))
    return Decision(score >= s.check_threshold, round(score, 4), {k: round(v, 4) for k, v in signals.items()})


# a year the question names ("2026") and the periods a source spans ("2021–2027", "2021 bis 2027")
YEAR = re.compile(r"(?<![\d.,])(19[5-9]\d|20\d\d)(?![\d,])")
_ANY_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")
_PERIOD = re.compile(r"(?<!\d)((?:19|20)\d\d)\s*(?:–|-|bis(?: zum| einschließlich)?)\s*((?:19|20)\d\d)(?!\d)")


def missing_years(question: str, texts: list[str]) -> list[str]:
    """The years the question asks about that no shown source mentions or spans. Figures are
    reported per year: a source from 2024 does not answer "Wie viel gibt die Stadt 2026 aus?", and
    neither the similarity of the sentence nor the small model notices the year."""
    asked = dict.fromkeys(YEAR.findall(question))
    if not asked:
        return []
    shown = " ".join(texts)
    present = set(_ANY_YEAR.findall(shown))   # also inside dates: "bis zum 31.12.2026"
    spans = [(int(a), int(b)) for a, b in _PERIOD.findall(shown)]
    return [y for y in asked if y not in present and not any(a <= int(y) <= b for a, b in spans)]


def other_years(question: str, quoted: list[str]) -> list[str]:
    """The years the passage quoted as the answer names when it names none the question asks about:
    "Im Haushaltsjahr 2024 hat die Stadt 1.184.000 Euro ausgegeben" does not answer "Wie viel gibt
    die Stadt 2026 aus?", even when another shown source mentions 2026 in passing."""
    asked = set(YEAR.findall(question))
    if not asked or len(missing_years(question, quoted)) < len(asked):
        return []
    return sorted(set(_ANY_YEAR.findall(" ".join(quoted))))
