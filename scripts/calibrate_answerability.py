"""Fit the answer-or-refuse weights (``[answer] check_*``) to a stored evaluation run.

Usage (on the train split, never on the split you report):

    PILOT_ASSISTANT_ANSWER__CHECK_THRESHOLD=0 pilot-assistant eval evals/suites/integreat-de-train.yaml \\
        --sample 60 --seed 3 --data-dir DATA          # threshold 0: every question is answered, signals kept
    python scripts/calibrate_answerability.py DATA/runs/<run_id>/run.json [--max-false-refusals 0.10]

Each answered item of the run carries the signals (``diagnostics.check``: the model's P(yes), the best
sentence's e5 similarity, its word overlap and how far it stands out from the other sentences;
``scripts/answerability_signals.py`` collects them for a few hundred questions without writing answers).
A logistic regression on them, with the label "the suite says the question is answerable", gives the
weights; the threshold is the highest that keeps false refusals of answerable questions at or below the
limit. Prints a ``[answer]`` block for pilot-assistant.toml, the figures it reaches on the run itself (an
optimistic estimate) and cross-validated ones (``--folds``); check them on another split.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

WEIGHTS = {"p_yes": "check_yes", "max_sim": "check_similarity", "max_overlap": "check_overlap",
           "sim_margin": "check_margin"}
SIGNALS = tuple(WEIGHTS)


def probability(x: np.ndarray, bias: float, w: np.ndarray) -> np.ndarray:
    """The logistic score ``answerability.decide`` computes, for many items at once."""
    return 1 / (1 + np.exp(-(x @ w + bias)))


def load(path: Path, signals: tuple[str, ...] = SIGNALS) -> tuple[np.ndarray, np.ndarray]:
    run = json.loads(path.read_text(encoding="utf-8"))
    xs, ys = [], []
    for item in run["items"]:
        check = (item.get("diagnostics") or {}).get("check")
        if not check:
            continue   # refused before the model was asked, or an error: no signals
        xs.append([check.get(s, 0.0) for s in signals])
        ys.append(1.0 if item["answerable"] else 0.0)
    if not xs:
        raise SystemExit("Der Lauf enthält keine Signale (diagnostics.check) – mit CHECK_THRESHOLD=0 laufen lassen.")
    return np.array(xs, dtype=float), np.array(ys)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 20000, lr: float = 0.5) -> tuple[float, np.ndarray]:
    """Logistic regression by gradient descent on standardised signals (returns raw-scale weights).
    Classes are weighted to equal total weight: unanswerable questions are the minority. Weights are
    kept at zero or above: a stronger signal never argues for refusing, whatever a small sample says."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(x.shape[1]), 0.0
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    for _ in range(steps):
        p = probability(z, b, w)
        g = (p - y) * cw
        w = np.maximum(0.0, w - lr * (z.T @ g / len(y) + l2 * w / len(y)))
        b -= lr * g.mean()
    raw_w = w / sd
    return b - float(mu @ raw_w), raw_w


def rates(score: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    refuse = score < threshold
    false_refusals = float(refuse[y == 1].mean()) if (y == 1).any() else 0.0
    refused_unanswerable = float(refuse[y == 0].mean()) if (y == 0).any() else 0.0
    return false_refusals, refused_unanswerable


def threshold_for(score: np.ndarray, y: np.ndarray, max_false_refusals: float) -> float:
    """The highest threshold that refuses at most ``max_false_refusals`` of the answerable items."""
    ok = [t for t in sorted(set(np.round(score, 4))) if rates(score, y, t)[0] <= max_false_refusals]
    return max(ok) if ok else 0.0


def auc(score: np.ndarray, y: np.ndarray) -> float:
    if not 0 < y.mean() < 1:
        return math.nan
    return float(np.mean([(a > u) + 0.5 * (a == u) for a in score[y == 1] for u in score[y == 0]]))


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int, max_false_refusals: float) -> tuple[float, float, float]:
    """Out-of-sample figures: fit and threshold on k-1 folds, score the held-out fold."""
    fold = np.random.default_rng(0).permutation(len(y)) % folds
    held_out, fr, ur = np.zeros(len(y)), [], []
    for f in range(folds):
        train, test = fold != f, fold == f
        bias, w = fit(x[train], y[train])
        t = threshold_for(probability(x[train], bias, w), y[train], max_false_refusals)
        held_out[test] = probability(x[test], bias, w)
        a, b = rates(held_out[test], y[test], t)
        fr.append(a)
        ur.append(b)
    return auc(held_out, y), float(np.mean(fr)), float(np.mean(ur))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run.json of an eval run with [answer] check_threshold = 0")
    ap.add_argument("--max-false-refusals", type=float, default=0.10)
    ap.add_argument("--signals", default=",".join(SIGNALS),
                    help="comma-separated subset to compare (the others get weight 0)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds for the out-of-sample figures (0: none)")
    args = ap.parse_args()
    signals = tuple(args.signals.split(","))
    if not set(signals) <= set(SIGNALS):
        raise SystemExit(f"--signals: nur {', '.join(SIGNALS)}")
    x, y = load(args.run, signals)
    bias, w = fit(x, y)
    score = probability(x, bias, w)
    threshold = threshold_for(score, y, args.max_false_refusals)
    fr, ur = rates(score, y, threshold)
    print(f"# fitted on {len(y)} items ({int(y.sum())} answerable) of {args.run}")
    print(f"# on these items: AUC {auc(score, y):.3f}; false refusals {fr:.2f}, unanswerable refused {ur:.2f}")
    if args.folds > 1:
        cv_auc, cv_fr, cv_ur = cross_validate(x, y, args.folds, args.max_false_refusals)
        print(f"# {args.folds}-fold cross-validation: AUC {cv_auc:.3f}; false refusals {cv_fr:.2f}, "
              f"unanswerable refused {cv_ur:.2f}")
    print("[answer]")
    print(f"check_bias = {bias:.3f}")
    fitted = dict(zip(signals, w))
    for name, weight in WEIGHTS.items():
        print(f"{weight} = {fitted.get(name, 0.0):.3f}")
    print(f"check_threshold = {threshold:.4f}")


if __name__ == "__main__":
    main()
