"""The report of a run: Markdown (linked PNGs) and a self-contained HTML file (PNGs embedded),
so the HTML can be mailed or attached to a ticket and still shows its plots offline.

Both are rendered from one list of blocks, so the two formats cannot drift apart.
"""
from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from typing import Sequence

from .compare import Comparison, to_markdown
from .results import HEADLINE, METRICS, Run

FRACTION_METRICS = [m for m in METRICS if not m.endswith("_ms")]


def write_report(run: Run, out_dir: str | Path, *, comparison: Comparison | None = None,
                 history: Sequence[Run] = (), cache_dir: str | Path | None = None) -> dict[str, str]:
    """Write report.md, report.html and the plots into ``out_dir``; return their paths.

    ``history``: earlier runs of the same suite (oldest first) for the metrics-per-run plot."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(run, out, [*history, run], cache_dir)
    blocks = _blocks(run, comparison, plots)
    md, page = out / "report.md", out / "report.html"
    md.write_text(_markdown(blocks), encoding="utf-8")
    page.write_text(_html(blocks, title=f"Evaluation {run.suite.get('name', '')} – {run.run_id}", folder=out),
                    encoding="utf-8")
    return {"markdown": str(md), "html": str(page), "plots": [str(out / p) for p in plots.values()]}


# One report for pipelines measured together: the product beside its baselines.
PIPELINE_METRICS = ["answer_sentence_recall", "facts_recall", "gold_cited", "citation_accuracy", "faithfulness",
                    "refusal_recall", "false_refusal_rate", "refusal_accuracy", "first_token_p50_ms",
                    "first_token_p95_ms", "total_p50_ms"]


def write_pipelines_report(runs: Sequence[Run], out_dir: str | Path, *,
                           cache_dir: str | Path | None = None) -> dict[str, str]:
    """report.md/report.html comparing runs of different pipelines on the same items."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _pipeline_plot(runs, out, cache_dir)
    blocks = _pipeline_blocks(runs, plots)
    md, page = out / "report.md", out / "report.html"
    md.write_text(_markdown(blocks), encoding="utf-8")
    first = runs[0]
    page.write_text(_html(blocks, title=f"Pipelines {first.suite.get('name', '')} – {first.run_id}", folder=out),
                    encoding="utf-8")
    return {"markdown": str(md), "html": str(page), "plots": [str(out / p) for p in plots.values()]}


def _pipeline_plot(runs: Sequence[Run], out: Path, cache_dir) -> dict[str, str]:
    plt = _pyplot(cache_dir)
    names = [m for m in PIPELINE_METRICS if not m.endswith("_ms")
             and any(r.summary.aggregates.get(m) is not None for r in runs)]
    if not names:
        return {}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(names) + 2), 3.8))
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        ax.bar([x + i * width - 0.4 + width / 2 for x in range(len(names))],
               [_nan(r.summary.aggregates.get(m)) for m in names], width, label=r.pipeline or r.mode)
    ax.set_xticks(range(len(names)), [METRICS[m][0] for m in names], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Pipelines im Vergleich (dieselben Fragen, dasselbe Modell)")
    ax.legend(fontsize=8)
    return {"pipelines": _save(fig, out / "pipelines.png", plt)}


def _pipeline_blocks(runs: Sequence[Run], plots: dict[str, str]) -> list[tuple]:
    first = runs[0]
    fp = first.fingerprint
    sample = first.sample
    b: list[tuple] = [("h1", f"Pipelines im Vergleich: {first.suite.get('name', '')}")]
    b.append(("list", [
        f"Läufe: {', '.join(f'{r.pipeline} = {r.run_id}' for r in runs)}",
        f"Suite: {first.suite.get('path', '')} ({first.summary.counts.get('items', 0)} von "
        f"{first.suite.get('items', 0)} Fragen"
        + (f", Stichprobe --sample {sample.get('n')} --seed {sample.get('seed')}" if sample else "")
        + (f", --limit {first.limit}" if first.limit else "") + ")",
        f"Modell: {fp.get('model', '–')} (sha256 {str(fp.get('model_sha256') or '–')[:12]})",
        "default = der Assistent; naive = die 3 besten ganzen Passagen der Hybridsuche mit schlichtem Prompt; "
        "oracle = schlichter Prompt nur mit der Goldpassage",
    ]))
    rows = []
    for m in PIPELINE_METRICS:
        values = [r.summary.aggregates.get(m) for r in runs]
        if all(v is None for v in values):
            continue
        rows.append([METRICS[m][0], f"`{m}`", *(_fmt(v) for v in values), METRICS[m][1]])
    b.append(("table", ["Kennzahl", "Name", *(r.pipeline for r in runs), "Bedeutung"], rows))
    if "pipelines" in plots:
        b.append(("img", "Pipelines im Vergleich", plots["pipelines"]))
    by_id = [{i.id: i for i in r.items} for r in runs]
    b.append(("h2", "Einzelergebnisse"))
    head = ["id", "beantwortbar", *(f"{r.pipeline}: Antwortsätze / Gold zitiert / abgelehnt" for r in runs)]
    body = []
    for item in first.items:
        cells = [item.id, "ja" if item.answerable else "nein"]
        for d in by_id:
            i = d.get(item.id)
            if i is None:
                cells.append("–")
                continue
            m = i.metrics
            cells.append(f"{_fmt(m.get('answer_sentence_recall'))} / {_fmt(m.get('gold_cited'))} / "
                         + ("ja" if i.refused else "nein"))
        body.append(cells)
    b.append(("table", head, body))
    return b


def _pyplot(cache_dir):
    os.environ.setdefault("MPLBACKEND", "Agg")
    if cache_dir is not None:
        os.environ.setdefault("MPLCONFIGDIR", str(cache_dir))   # never ~/.config on a server account
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------- plots
def _plots(run: Run, out: Path, runs: list[Run], cache_dir) -> dict[str, str]:
    plt = _pyplot(cache_dir)

    files: dict[str, str] = {}
    names = [m for m in FRACTION_METRICS if any(r.summary.aggregates.get(m) is not None for r in runs)]
    if names:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 3.8))
        width = 0.8 / len(runs)
        for i, r in enumerate(runs):
            values = [_nan(r.summary.aggregates.get(m)) for m in names]   # no bar, not a zero bar, if unmeasured
            label = f"{r.run_id[:15]} {r.fingerprint.get('model', r.mode)}"
            ax.bar([x + i * width - 0.4 + width / 2 for x in range(len(names))], values, width, label=label)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title("Kennzahlen je Lauf")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2)
        files["metrics"] = _save(fig, out / "metrics.png", plt)

    series = [(key, label) for key, label in (("total_ms", "Antwortzeit"), ("first_token_ms", "Erstes Token"),
                                               ("retrieval_ms", "Suche"))
              if any(i.timings.get(key) is not None for i in run.items)]
    if series:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        for key, label in series[:2] if run.mode == "answer" else series[-1:]:
            values = [i.timings[key] / 1000 for i in run.items if i.timings.get(key) is not None]
            ax.hist(values, bins=min(20, max(5, len(values))), alpha=0.6, label=label)
        ax.set_xlabel("Sekunden")
        ax.set_ylabel("Fragen")
        ax.set_title("Verteilung der Latenz")
        ax.legend(fontsize=8)
        files["latency"] = _save(fig, out / "latency.png", plt)

    tags = run.summary.per_tag
    shown = [m for m in HEADLINE if any(t.get(m) is not None for t in tags.values())][:4]
    if tags and shown:
        fig, ax = plt.subplots(figsize=(7, max(2.5, 0.45 * len(tags) + 1)))
        names_t = list(tags)
        height = 0.8 / len(shown)
        for i, m in enumerate(shown):
            ax.barh([y + i * height - 0.4 + height / 2 for y in range(len(names_t))],
                    [_nan(tags[t].get(m)) for t in names_t], height, label=m)
        ax.set_yticks(range(len(names_t)), [f"{t} (n={tags[t]['n']})" for t in names_t], fontsize=8)
        ax.set_xlim(0, 1.05)
        ax.set_title("Nach Tags")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        files["tags"] = _save(fig, out / "tags.png", plt)
    return files


def _save(fig, path: Path, plt) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")   # legends sit outside the axes
    plt.close(fig)
    return path.name


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


# --------------------------------------------------------------------- blocks
def _blocks(run: Run, comparison: Comparison | None, plots: dict[str, str]) -> list[tuple]:
    fp = run.fingerprint
    git = fp.get("git", {})
    b: list[tuple] = [("h1", f"Evaluation: {run.suite.get('name', '')}")]
    b.append(("list", [
        f"Lauf: {run.run_id} ({run.created}, {run.seconds:.0f} s)",
        f"Modus: {'nur Suche (ohne Sprachmodell)' if run.mode == 'retrieval' else 'Antworten'}"
        + (f", Pipeline {run.pipeline}" if run.pipeline else "")
        + (f", Stichprobe --sample {run.sample.get('n')} --seed {run.sample.get('seed')}" if run.sample else "")
        + (", mit LLM-Urteil" if run.judge else "") + (f", Stichprobe --limit {run.limit}" if run.limit else ""),
        f"Suite: {run.suite.get('path', '')} ({run.summary.counts.get('items', 0)} von {run.suite.get('items', 0)} "
        f"Fragen, sha256 {str(run.suite.get('sha256', ''))[:12]})",
        f"Modell: {fp.get('model', '–')} (sha256 {str(fp.get('model_sha256') or '–')[:12]}), Prompt {fp.get('prompt', '–')}",
        f"Embedding: {fp.get('embedding_model', '–')}; Index: {fp.get('index', {}).get('documents', '?')} Dokumente, "
        f"{fp.get('index', {}).get('chunks', '?')} Abschnitte",
        f"Code: {str(git.get('commit', '–'))[:10]}{' (mit lokalen Änderungen)' if git.get('dirty') else ''}",
    ]))
    b.append(("h2", "Kennzahlen"))
    rows = [[f"{METRICS[m][0]}", f"`{m}`", _fmt(v), METRICS[m][1]]
            for m, v in run.summary.aggregates.items() if m in METRICS]
    b.append(("table", ["Kennzahl", "Name", "Wert", "Bedeutung"], rows))
    c = run.summary.counts
    b.append(("p", f"{c.get('items', 0)} Fragen: {c.get('answerable', 0)} beantwortbar, {c.get('unanswerable', 0)} "
                   f"unbeantwortbar, {c.get('with_gold', 0)} mit Goldquelle"
                   + (f", {c['refused']} abgelehnt" if "refused" in c else "")
                   + (f", **{c['errors']} mit Fehler**" if c.get("errors") else "") + "."))
    if "metrics" in plots:
        b.append(("img", "Kennzahlen je Lauf", plots["metrics"]))
    if run.summary.latency:
        b.append(("h2", "Latenz"))
        names = {"retrieval": "Suche", "first_token": "Erstes Token", "total": "Antwortzeit"}
        b.append(("table", ["", "p50 (s)", "p95 (s)", "Mittel (s)", "Max (s)", "n"],
                  [[names[k], *(_sec(v.get(x)) for x in ("p50", "p95", "mean", "max")), str(v.get("n", ""))]
                   for k, v in run.summary.latency.items()]))
        if "latency" in plots:
            b.append(("img", "Verteilung der Latenz", plots["latency"]))
    if run.summary.per_tag:
        b.append(("h2", "Nach Tags"))
        shown = [m for m in HEADLINE if any(t.get(m) is not None for t in run.summary.per_tag.values())]
        b.append(("table", ["Tag", "n", *shown],
                  [[t, str(v["n"]), *(_fmt(v.get(m)) for m in shown)] for t, v in run.summary.per_tag.items()]))
        if "tags" in plots:
            b.append(("img", "Kennzahlen nach Tags", plots["tags"]))
    if comparison is not None:
        b.append(("h2", "Vergleich"))
        b.append(("md", to_markdown(comparison)))
    b.append(("h2", "Einzelergebnisse"))
    b.append(("table", ["id", "Tags", "Gold-Rang", "F1", "Fakten", "Quellen ok", "Belegt", "Ablehnung", "Zeit (s)"],
              [item_row(i) for i in run.items]))
    notes = [_item_note(i) for i in run.items]
    notes = [n for n in notes if n]
    if notes:
        b.append(("h2", "Auffälligkeiten"))
        b.append(("list", notes))
    return b


def item_row(i) -> list[str]:
    m = i.metrics
    refusal = "–" if i.refused is None else ("richtig" if m.get("refusal_correct") else "falsch") + (
        " (abgelehnt)" if i.refused else "")
    total = i.timings.get("total_ms", i.timings.get("retrieval_ms"))
    return [i.id, ", ".join(i.tags), str(i.gold_rank) if i.gold_rank else ("–" if not i.gold else "nicht gefunden"),
            _fmt(m.get("token_f1")), _fmt(m.get("facts_recall")), _fmt(m.get("citation_accuracy")),
            _fmt(m.get("faithfulness")), refusal, _sec(total)]


def _item_note(i) -> str:
    parts = []
    if i.error:
        parts.append(f"Fehler: {i.error}")
    if i.gold and not i.gold_rank:
        parts.append("keine Goldquelle unter den ersten 10 Treffern")
    if i.refused is not None and (i.refused == i.answerable):
        parts.append("abgelehnt, obwohl beantwortbar" if i.refused else "beantwortet, obwohl unbeantwortbar")
    if i.missing_facts and i.refused is False:
        parts.append("fehlende Fakten: " + ", ".join(i.missing_facts))
    return f"`{i.id}`: " + "; ".join(parts) if parts else ""


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3f}"


def _sec(ms) -> str:
    return "–" if ms is None else f"{ms / 1000:.2f}"


# ------------------------------------------------------------------ rendering
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(blocks: list[tuple]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + block[1])
        elif kind == "p" or kind == "md":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"- {x}" for x in block[1]))
        elif kind == "table":
            head, rows = block[1], block[2]
            out.append("\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                                 + ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]))
        elif kind == "img":
            out.append(f"![{block[1]}]({block[2]})")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into tags (the only Markdown the blocks use inline)."""
    text = html.escape(str(text))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _html(blocks: list[tuple], *, title: str, folder: Path) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "md":   # the comparison: lines, bullet lists and one table
            body.append(_md_lines_html(block[1]))
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((folder / block[2]).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(block[1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block[1])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:left}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3}")
    return (f'<!DOCTYPE html>\n<html lang="de"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _md_lines_html(text: str) -> str:
    out, table, items = [], [], []

    def flush():
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
            items.clear()
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)
