"""What a run produces: per-item results, the summary, the run record (run.json).

``summarise`` is pure: it only averages what the items carry, so aggregates can be
recomputed from a stored run.json (and a changed metric definition shows up as a
changed per-item value, not as a mystery in the average).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import metrics as M

RETRIEVAL_KS = (1, 3, 5, 10)
DEPTH = max(RETRIEVAL_KS)      # passages retrieved per question for the retrieval metrics

# name -> (German label, short English note, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    **{f"hit@{k}": (f"Treffer@{k}", f"a gold source among the top {k} passages", True) for k in RETRIEVAL_KS},
    "mrr": ("MRR", "mean reciprocal rank of the first gold passage (top 10)", True),
    "recall@5": ("Quellen-Recall@5", "share of the gold documents found in the top 5", True),
    "token_f1": ("Token-F1", "normalised token F1 of answer vs. reference", True),
    "facts_recall": ("Fakten enthalten", "share of the key facts found in the answer", True),
    "answer_sentence_recall": ("Antwortsätze enthalten", "share of the gold answer sentences' content words in the answer", True),
    "gold_cited": ("Goldquelle zitiert", "answerable questions whose answer cites a gold source", True),
    "cited": ("Mit Quelle", "answered questions whose answer cites at least one source", True),
    "citation_validity": ("Quellenangaben gültig", "share of [n] that resolve to a shown source", True),
    "citation_accuracy": ("Quellenangaben korrekt", "share of cited sources that are gold sources", True),
    "faithfulness": ("Belegt (Proxy)", "share of answer sentences supported by a cited passage", True),
    "numbers_consistency": ("Zahlen stimmig", "sentences whose numbers/dates occur in a cited passage", True),
    "refusal_accuracy": ("Ablehnung richtig", "refuses exactly the unanswerable questions", True),
    "refusal_precision": ("Ablehnung Präzision", "refusals that were right", True),
    "refusal_recall": ("Ablehnung Recall", "unanswerable questions refused", True),
    "false_refusal_rate": ("Falsche Ablehnungen", "answerable questions refused", False),
    "judge_correctness": ("Richtigkeit (LLM-Urteil)", "judge: answer agrees with the reference (0..1)", True),
    "judge_faithfulness": ("Belegt (LLM-Urteil)", "judge: answer supported by the sources (0..1)", True),
    "retrieval_p50_ms": ("Suche p50 (ms)", "retrieval latency, median", False),
    "retrieval_p95_ms": ("Suche p95 (ms)", "retrieval latency, 95th percentile", False),
    "first_token_p50_ms": ("Erstes Token p50 (ms)", "time to first token, median", False),
    "first_token_p95_ms": ("Erstes Token p95 (ms)", "time to first token, 95th percentile", False),
    "total_p50_ms": ("Antwortzeit p50 (ms)", "time to the full answer, median", False),
    "total_p95_ms": ("Antwortzeit p95 (ms)", "time to the full answer, 95th percentile", False),
}
# per-item means; the item stores the reciprocal rank as "rr", averaged into "mrr"
MEAN_METRICS = [*(f"hit@{k}" for k in RETRIEVAL_KS), "mrr", "recall@5", "token_f1", "facts_recall",
                "answer_sentence_recall", "gold_cited", "cited",
                "citation_validity", "citation_accuracy", "faithfulness", "numbers_consistency",
                "judge_correctness", "judge_faithfulness"]
HEADLINE = ["hit@5", "mrr", "answer_sentence_recall", "facts_recall", "gold_cited", "citation_accuracy", "faithfulness",
            "refusal_accuracy"]
# per-item metrics where a drop between runs is a regression (compare.py)
ITEM_KEYS = ["rr", "hit@5", "token_f1", "facts_recall", "answer_sentence_recall", "gold_cited", "citation_accuracy",
             "faithfulness", "refusal_correct", "judge_correctness"]


def higher_is_better(metric: str) -> bool:
    return METRICS.get(metric, ("", "", True))[2]


@dataclass
class ItemResult:
    id: str
    question: str
    answerable: bool
    tags: list[str] = field(default_factory=list)
    gold: list[str] = field(default_factory=list)          # gold source labels ("datei.pdf#3")
    retrieved: list[dict[str, Any]] = field(default_factory=list)   # rank, file, page, doc_id
    gold_rank: int | None = None
    answer: str | None = None
    refused: bool | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)   # n, file, page, gold
    removed_citations: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    missing_facts: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)   # why it answered or refused (see answer.extra)
    error: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ItemResult":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class RunSummary:
    aggregates: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    per_tag: dict[str, dict[str, float | None]] = field(default_factory=dict)
    latency: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class Run:
    run_id: str
    created: str
    suite: dict[str, Any]
    mode: str                                   # "retrieval" (no LLM) | "answer"
    config: dict[str, Any]
    fingerprint: dict[str, Any]
    items: list[ItemResult]
    summary: RunSummary
    judge: bool = False
    limit: int | None = None
    seconds: float = 0.0
    report: dict[str, str] = field(default_factory=dict)
    pipeline: str = ""                          # who answered: default | naive | oracle ("" for retrieval runs)
    sample: dict[str, Any] = field(default_factory=dict)   # {n, seed, ids} when a fixed sample ran
    path: Path | None = None                   # the run's folder (not stored in run.json)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path | None = None) -> "Run":
        summary = RunSummary(**d.get("summary", {}))
        items = [ItemResult.from_dict(i) for i in d.get("items", [])]
        return cls(run_id=d["run_id"], created=d.get("created", ""), suite=d.get("suite", {}),
                   mode=d.get("mode", "answer"), config=d.get("config", {}), fingerprint=d.get("fingerprint", {}),
                   items=items, summary=summary, judge=d.get("judge", False), limit=d.get("limit"),
                   seconds=d.get("seconds", 0.0), report=d.get("report", {}), pipeline=d.get("pipeline", ""),
                   sample=d.get("sample", {}), path=path)

    def headline(self) -> dict[str, float | None]:
        return {m: self.summary.aggregates.get(m) for m in HEADLINE if m in self.summary.aggregates}


RETRIEVAL_METRICS = [*(f"hit@{k}" for k in RETRIEVAL_KS), "mrr", "recall@5", "retrieval_p50_ms", "retrieval_p95_ms"]
JUDGE_METRICS = ["judge_correctness", "judge_faithfulness"]


def expected_metrics(mode: str, judge: bool = False) -> list[str]:
    """The aggregates a run of this mode reports (as null when nothing could be measured),
    so scripts and gates see a stable set of keys."""
    if mode == "retrieval":
        return RETRIEVAL_METRICS
    return [m for m in METRICS if judge or m not in JUDGE_METRICS]


def summarise(items: list[ItemResult], *, mode: str = "answer", judge: bool = False, tags: bool = True) -> RunSummary:
    agg: dict[str, float | None] = {}
    for name in MEAN_METRICS:
        key = "rr" if name == "mrr" else name
        values = [i.metrics.get(key) for i in items if i.metrics.get(key) is not None]
        if values:
            agg[name] = sum(values) / len(values)
    answered = [i for i in items if i.refused is not None]
    if answered:
        agg.update(M.refusal_scores((i.answerable, bool(i.refused)) for i in answered))
    latency = {}
    for key, label in (("retrieval_ms", "retrieval"), ("first_token_ms", "first_token"), ("total_ms", "total")):
        values = [i.timings.get(key) for i in items if i.timings.get(key) is not None]
        if values:
            latency[label] = M.latency_summary(values)
            agg[f"{label}_p50_ms"] = latency[label]["p50"]
            agg[f"{label}_p95_ms"] = latency[label]["p95"]
    expected = expected_metrics(mode, judge)
    agg = {m: agg.get(m) for m in METRICS if m in agg or m in expected}
    counts = {"items": len(items), "answerable": sum(i.answerable for i in items),
              "unanswerable": sum(not i.answerable for i in items),
              "with_gold": sum(bool(i.gold) for i in items), "errors": sum(bool(i.error) for i in items)}
    if answered:
        counts["refused"] = sum(bool(i.refused) for i in answered)
    per_tag = {}
    if tags:
        for tag in sorted({t for i in items for t in i.tags}):
            sub = summarise([i for i in items if tag in i.tags], mode=mode, judge=judge, tags=False)
            per_tag[tag] = {"n": len([i for i in items if tag in i.tags]),
                            **{m: sub.aggregates[m] for m in HEADLINE if sub.aggregates.get(m) is not None}}
    return RunSummary(aggregates=agg, counts=counts, per_tag=per_tag, latency=latency)
