"""Two runs side by side: metric deltas and per-item regressions and improvements.

Averages hide trade-offs (a new model fixes five questions and breaks three), so the
comparison is per item first; the aggregate deltas come second.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .results import ITEM_KEYS, METRICS, Run, higher_is_better

ITEM_LABELS = {"rr": "Rang-Kehrwert", "hit@5": "Treffer@5", "token_f1": "Token-F1", "facts_recall": "Fakten",
               "citation_accuracy": "Quellen korrekt", "faithfulness": "Belegt", "refusal_correct": "Ablehnung richtig",
               "judge_correctness": "LLM-Urteil"}


@dataclass
class ItemChange:
    id: str
    kind: str                                   # regression | improvement | mixed | added | removed
    deltas: dict[str, list[float | None]] = field(default_factory=dict)   # metric -> [before, after]
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    base: str
    new: str
    metrics: dict[str, dict[str, float | None]]   # metric -> before, after, delta
    items: list[ItemChange]
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    context: dict[str, list[str]] = field(default_factory=dict)   # e.g. model: [before, after]

    @property
    def regressions(self) -> list[ItemChange]:
        return [c for c in self.items if c.kind in ("regression", "mixed")]

    @property
    def improvements(self) -> list[ItemChange]:
        return [c for c in self.items if c.kind in ("improvement", "mixed")]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["regressions"] = [c.id for c in self.regressions]
        d["improvements"] = [c.id for c in self.improvements]
        return d


def compare_runs(base: Run, new: Run, *, min_delta: float = 0.05) -> Comparison:
    """Changes from ``base`` to ``new``. A per-item metric counts as changed when it moves by at
    least ``min_delta``; refusing or answering differently is always a change."""
    metrics = {}
    for name in METRICS:
        before, after = base.summary.aggregates.get(name), new.summary.aggregates.get(name)
        if before is None and after is None:
            continue
        delta = after - before if before is not None and after is not None else None
        metrics[name] = {"before": before, "after": after, "delta": delta}

    old_items = {i.id: i for i in base.items}
    new_items = {i.id: i for i in new.items}
    changes, unchanged = [], 0
    # with --limit a run holds a sample: items outside the other run's sample were not run, not added/removed
    only_new = [i for i in new_items if i not in old_items]
    only_old = [i for i in old_items if i not in new_items]
    for item_id, after in new_items.items():
        before = old_items.get(item_id)
        if before is None:
            if base.limit is None:
                changes.append(ItemChange(item_id, "added"))
            continue
        change = _item_change(item_id, before, after, min_delta)
        if change is None:
            unchanged += 1
        else:
            changes.append(change)
    if new.limit is None:
        changes += [ItemChange(i, "removed") for i in only_old]
    order = {"regression": 0, "mixed": 1, "improvement": 2, "added": 3, "removed": 4}
    changes.sort(key=lambda c: (order[c.kind], c.id))
    warnings = _warnings(base, new)
    if (only_new or only_old) and (base.limit or new.limit):
        warnings.append(f"{len(only_new) + len(only_old)} Einträge liegen nur in einem der Läufe (Stichprobe) "
                        "und werden nicht verglichen.")
    return Comparison(base=base.run_id, new=new.run_id, metrics=metrics, items=changes, unchanged=unchanged,
                      warnings=warnings, context=_context(base, new))


def _item_change(item_id: str, before, after, min_delta: float) -> ItemChange | None:
    worse = better = False
    deltas: dict[str, list[float | None]] = {}
    for key in ITEM_KEYS:
        a, b = before.metrics.get(key), after.metrics.get(key)
        if a is None or b is None or abs(b - a) < min_delta:
            continue
        deltas[key] = [a, b]
        if (b > a) == higher_is_better(key):
            better = True
        else:
            worse = True
    notes = []
    if before.gold_rank != after.gold_rank:
        notes.append(f"Gold-Rang {_rank(before.gold_rank)} → {_rank(after.gold_rank)}")
    if before.refused is not None and after.refused is not None and before.refused != after.refused:
        notes.append("beantwortet → abgelehnt" if after.refused else "abgelehnt → beantwortet")
    lost = [f for f in after.missing_facts if f not in before.missing_facts]
    gained = [f for f in before.missing_facts if f not in after.missing_facts]
    if lost:
        notes.append("Fakten fehlen jetzt: " + ", ".join(lost))
    if gained:
        notes.append("Fakten jetzt enthalten: " + ", ".join(gained))
    if bool(after.error) != bool(before.error):
        notes.append(f"Fehler: {after.error}" if after.error else "Fehler behoben")
        worse, better = worse or bool(after.error), better or bool(before.error)
    if not (worse or better):
        return None
    kind = "mixed" if worse and better else "regression" if worse else "improvement"
    return ItemChange(item_id, kind, deltas, notes)


def _rank(rank: int | None) -> str:
    return str(rank) if rank else "–"


def _warnings(base: Run, new: Run) -> list[str]:
    out = []
    if base.suite.get("sha256") != new.suite.get("sha256"):
        out.append("Die Suite hat sich geändert; Einträge werden über ihre id verglichen.")
    if base.mode != new.mode:
        out.append(f"Unterschiedliche Modi ({base.mode} / {new.mode}): Antwortmetriken fehlen in einem Lauf.")
    if base.fingerprint.get("index", {}).get("sha256") != new.fingerprint.get("index", {}).get("sha256"):
        out.append("Der Index (Dokumentbestand) unterscheidet sich zwischen den Läufen.")
    if base.limit != new.limit:
        out.append(f"Unterschiedliche Stichproben (--limit {base.limit} / {new.limit}).")
    return out


def _context(base: Run, new: Run) -> dict[str, list[str]]:
    out = {}
    for key in ("model", "prompt", "embedding_model"):
        a, b = str(base.fingerprint.get(key, "–")), str(new.fingerprint.get(key, "–"))
        out[key] = [a, b]
    out["commit"] = [str(base.fingerprint.get("git", {}).get("commit", "–"))[:10],
                     str(new.fingerprint.get("git", {}).get("commit", "–"))[:10]]
    return out


def to_markdown(c: Comparison, *, max_items: int = 50) -> str:
    lines = [f"Vergleich `{c.base}` → `{c.new}`", ""]
    for key, (a, b) in c.context.items():
        lines.append(f"- {key}: {a}" + (f" → **{b}**" if a != b else ""))
    lines += [f"- ⚠ {w}" for w in c.warnings]
    lines += ["", "| Kennzahl | vorher | nachher | Δ |", "|---|---:|---:|---:|"]
    for name, d in c.metrics.items():
        lines.append(f"| {METRICS[name][0]} (`{name}`) | {_fmt(d['before'])} | {_fmt(d['after'])} | "
                     f"{_delta(name, d['delta'])} |")
    lines += ["", f"**{len(c.regressions)} Verschlechterungen, {len(c.improvements)} Verbesserungen, "
                  f"{c.unchanged} unverändert.**", ""]
    for title, group in (("Verschlechterungen", c.regressions), ("Verbesserungen", c.improvements),
                         ("Neu / entfernt", [i for i in c.items if i.kind in ("added", "removed")])):
        if not group:
            continue
        lines += [f"**{title}**", ""]
        for ch in group[:max_items]:
            parts = [f"{ITEM_LABELS.get(k, k)} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in ch.deltas.items()]
            text = "; ".join(parts + ch.notes) or ch.kind
            lines.append(f"- `{ch.id}`: {text}")
        if len(group) > max_items:
            lines.append(f"- … und {len(group) - max_items} weitere")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3f}"


def _delta(name: str, d: float | None) -> str:
    if d is None or abs(d) < 1e-12:
        return "±0" if d is not None else "–"
    good = (d > 0) == higher_is_better(name)
    return f"{'+' if d > 0 else ''}{_fmt(d)} {'▲' if good else '▼'}"
