"""`pilot-assistant eval SUITE`: run an evaluation suite, store the run, write the report.

    pilot-assistant eval SUITE [--json] [--report DIR] [--compare RUN_ID] [--fail-under METRIC=VALUE ...]
                               [--limit N] [--sample N --seed S] [--pipeline default,naive,oracle]
                               [--retrieval-only] [--ingest PATH] [--judge]
    pilot-assistant eval runs [--json]
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from . import add_common, emit
from .filters import add_filter_flags, filters_from


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="Evaluationssuite ausführen: Qualität von Suche und Antworten messen",
        description="Führt eine Suite (evals/suites/*.yaml oder .csv) aus, speichert den Lauf im Datenverzeichnis "
                    "und schreibt einen Bericht (Markdown, HTML, Diagramme). `eval runs` listet gespeicherte Läufe.")
    p.add_argument("suite", metavar="SUITE", help="Suite-Datei (.yaml/.yml/.csv) – oder `runs` für die Liste der Läufe")
    p.add_argument("--report", metavar="DIR", help="Bericht hierhin schreiben (Standard: im Ordner des Laufs)")
    p.add_argument("--compare", metavar="RUN_ID", help="mit diesem Lauf vergleichen (`latest`: letzter Lauf derselben Suite)")
    p.add_argument("--fail-under", dest="fail_under", metavar="METRIK=WERT", nargs="+", action="extend", default=[],
                   help="Exit-Code 1, wenn eine Kennzahl darunter liegt, z. B. --fail-under hit@5=0.9 mrr=0.8")
    p.add_argument("--limit", type=int, metavar="N", help="nur die ersten N Fragen")
    p.add_argument("--sample", type=int, metavar="N",
                   help="eine feste Zufallsstichprobe von N Fragen (Anteil unbeantwortbarer Fragen wie in der Suite)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="Startwert der Stichprobe (gleich = dieselben Fragen)")
    p.add_argument("--pipeline", action="append", default=[], metavar="NAME",
                   help="wer antwortet: default (der Assistent), naive (3 ganze Passagen, schlichter Prompt), "
                        "oracle (nur die Goldpassage); mehrere mit Komma oder wiederholt – sie laufen auf denselben "
                        "Fragen und kommen in einen gemeinsamen Bericht")
    p.add_argument("--retrieval-only", dest="retrieval_only", action="store_true",
                   help="nur die Suche bewerten, ohne Sprachmodell (schnell; für CI)")
    p.add_argument("--ingest", metavar="PFAD", action="append",
                   help="vorher diesen Korpus indexieren (inkrementell); ohne Angabe wird der Korpus der Suite "
                        "nur bei leerem Index indexiert")
    p.add_argument("--items", help="Entwurfs-Suite: nur diese Einträge (IDs mit Komma)")
    p.add_argument("--all-municipalities", dest="all_municipalities", action="store_true",
                   help="Fragen mit 'municipality' trotzdem im ganzen Index stellen (ohne diese Option sucht jede "
                        "solche Frage nur in den Dokumenten ihrer Kommune)")
    p.add_argument("--judge", action="store_true", help="zusätzlich LLM-Urteile über das konfigurierte Backend (langsam)")
    add_filter_flags(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    if args.suite == "runs" and not Path(args.suite).exists():
        return _list(args, settings)
    from ..evaluation.drafting import is_drafting_suite

    if is_drafting_suite(args.suite):
        return _drafting(args, settings)
    from ..evaluation import pipelines
    from ..evaluation.compare import compare_runs, to_markdown
    from ..evaluation.report import write_pipelines_report, write_report
    from ..evaluation.results import METRICS
    from ..evaluation.runner import ensure_index, list_runs, load_run, run_eval, save_run
    from ..evaluation.suites import load_suite

    gates = parse_gates(args.fail_under, METRICS)
    names = pipelines.check(args.pipeline)
    if args.retrieval_only and args.pipeline:
        raise UsageError("--pipeline braucht Antworten; nicht mit --retrieval-only kombinierbar",
                         "--pipeline needs answers; it cannot be combined with --retrieval-only", "eine Option weglassen")
    suite = load_suite(args.suite)   # a broken suite or an unknown --compare run should fail before a long run
    mode = "retrieval" if args.retrieval_only else "answer"
    base = load_run(settings, args.compare, suite=suite.name, mode=mode) if args.compare else None
    results = []
    with _Progress() as progress:
        ensure_index(settings, args.ingest, default=suite.corpus or Path("corpus"), progress=progress)
        for name in names[:1] if args.retrieval_only else names:
            results.append(run_eval(args.suite, settings, limit=args.limit, retrieval_only=args.retrieval_only,
                                    progress=progress, judge=args.judge, filters=filters_from(args),
                                    pipeline=name, sample=args.sample, seed=args.seed,
                                    item_scope=not args.all_municipalities))
    outputs = {}
    for result in results:
        comparison = compare_runs(base, result) if base is not None and result is results[0] else None
        history = [r for r in list_runs(settings) if r.run_id != result.run_id and r.mode == result.mode
                   and r.suite.get("name") == result.suite.get("name")
                   and r.pipeline == result.pipeline][:4][::-1]
        out_dir = Path(args.report) / (result.pipeline or "retrieval") if args.report and len(results) > 1 \
            else Path(args.report) if args.report else result.path / "report"
        result.report = write_report(result, out_dir, comparison=comparison, history=history,
                                     cache_dir=settings.data_dir / "cache" / "matplotlib")
        save_run(result, settings)
        outputs[result.pipeline or "retrieval"] = (_data(result, comparison), comparison)
    result = results[0]
    data, comparison = outputs[result.pipeline or "retrieval"]
    failed = check_gates(gates, result.summary.aggregates)
    if gates:
        data["fail_under"] = {"passed": not failed, "failed": failed}
    if len(results) > 1:
        together = Path(args.report) if args.report else result.path / "pipelines"
        data["pipelines"] = {name: dict(d) for name, (d, _) in outputs.items()}   # copies: data is one of them
        data["pipelines_report"] = write_pipelines_report(results, together,
                                                          cache_dir=settings.data_dir / "cache" / "matplotlib")
    lines = []
    for r in results:
        lines.append(f"Lauf {r.run_id} ({r.mode}{', ' + r.pipeline if r.pipeline else ''}, "
                     f"{r.summary.counts['items']} Fragen, {r.seconds:.0f} s)")
        for name, value in r.summary.aggregates.items():
            shown = _fmt(value) if not name.endswith("_ms") or value is None else f"{value:.0f}"
            lines.append(f"  {name:<24} {shown:>9}   {METRICS[name][0]}")
    if comparison is not None:
        lines += ["", to_markdown(comparison, max_items=20)]
    lines += ["", f"Bericht: {result.report['html']}", f"         {result.report['markdown']}"]
    if "pipelines_report" in data:
        lines += [f"Pipelines im Vergleich: {data['pipelines_report']['html']}"]
    emit(data, args.json, "\n".join(lines))
    if failed:
        print("Unter der Schwelle / below threshold: " + ", ".join(
            f"{f['metric']} = {_fmt(f['value'])} < {f['threshold']}" for f in failed), file=sys.stderr)
        return 1
    return 0


def _data(result, comparison) -> dict:
    data = {"run_id": result.run_id, "suite": result.suite, "mode": result.mode, "pipeline": result.pipeline,
            "model": result.fingerprint.get("model"), "aggregates": result.summary.aggregates,
            "counts": result.summary.counts, "per_tag": result.summary.per_tag, "run_dir": str(result.path),
            "report": result.report, "seconds": result.seconds, "sample": result.sample}
    if comparison is not None:
        data["comparison"] = comparison.to_dict()
    return data


def _drafting(args, settings) -> int:
    """A drafting suite (kind: drafting): profiles + programme + template -> drafts, scored."""
    from ..evaluation.drafting import load_suite, run_drafting_suite
    from ..evaluation.runner import ensure_index

    suite = load_suite(args.suite)
    with _Progress() as progress:
        ensure_index(settings, args.ingest, default=suite.corpus or Path("corpus"), progress=progress)
        run = run_drafting_suite(args.suite, settings, limit=args.limit, progress=progress, out_dir=args.report,
                                 only=[x.strip() for x in (args.items or "").split(",") if x.strip()] or None)
    s = run["summary"]
    lines = [f"Lauf {run['run_id']} (Entwürfe, {s['drafts']} Profile, {run['seconds']:.0f} s, {run['model']})"]
    for key in ("facts_present", "facts_correct", "unsupported_per_1000", "citations_supported", "leaks",
                "checklist_shown", "word_limit_ok", "language", "removed_sentences", "errors"):
        lines.append(f"  {key:<24} {_fmt(s.get(key)) if isinstance(s.get(key), float) else s.get(key)}")
    lines += [f"  Ziel {k}: {'erreicht' if v else 'VERFEHLT'}" for k, v in s["goals_met"].items()]
    lines.append(f"Bericht: {run['path']}/report.md")
    emit({k: v for k, v in run.items() if k != "items"} | {"items": run["items"]}, args.json, "\n".join(lines))
    failed = [k for k, v in s["goals_met"].items() if not v]
    return 1 if (failed and args.fail_under) or s["errors"] else 0


def parse_gates(specs: list[str], known: dict) -> dict[str, float]:
    """``["hit@5=0.9", "mrr=0.8"]`` -> {"hit@5": 0.9, "mrr": 0.8}; unknown metrics are an error."""
    gates = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"--fail-under erwartet METRIK=WERT, nicht {spec!r}",
                             f"--fail-under expects METRIC=VALUE, not {spec!r}",
                             "SUITE vor --fail-under angeben, z. B. eval evals/suites/starter.yaml --fail-under hit@5=0.9")
        if name not in known or not known[name][2]:
            usable = ", ".join(m for m, info in known.items() if info[2])
            raise UsageError(f"Unbekannte oder ungeeignete Kennzahl für --fail-under: {name!r}",
                             f"Unknown or unsuitable metric for --fail-under: {name!r}", f"eine von: {usable}")
        try:
            gates[name] = float(value.replace(",", "."))
        except ValueError:
            raise UsageError(f"Schwelle für {name} ist keine Zahl: {value!r}", f"Threshold for {name} is not a number",
                             f"--fail-under {name}=0.8") from None
    return gates


def check_gates(gates: dict[str, float], aggregates: dict) -> list[dict]:
    """Gates not met. A metric the run did not measure fails its gate: a gate must never pass silently."""
    failed = []
    for name, threshold in gates.items():
        value = aggregates.get(name)
        if value is None or value < threshold:
            failed.append({"metric": name, "value": value, "threshold": threshold})
    return failed


def _list(args, settings) -> int:
    from ..evaluation.runner import list_runs

    runs = list_runs(settings)
    data = [{"run_id": r.run_id, "created": r.created, "suite": r.suite.get("name"), "mode": r.mode,
             "model": r.fingerprint.get("model"), "items": r.summary.counts.get("items"), "limit": r.limit,
             "headline": r.headline(), "path": str(r.path)} for r in runs]
    lines = [f"{r['run_id']}  {r['mode']:<9} {r['suite']:<14} {str(r['model'] or '–'):<40} "
             + " ".join(f"{k}={_fmt(v)}" for k, v in r["headline"].items()) for r in data]
    emit(data, args.json, "\n".join(lines) or f"Keine gespeicherten Läufe in {settings.runs_dir}")
    return 0


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3f}"


class _Progress:
    """A bar on a terminal; plain lines otherwise (CI logs). Always on stderr: stdout is for --json."""

    def __init__(self) -> None:
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "_Progress":
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))
            self.bar.start()
        return self

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "file":
            self._step("Indexieren", event["done"], event["total"], f"{event['status']} {event['source']}")
        elif kind == "item":
            note = f" FEHLER {event['error']}" if event.get("error") else ""
            self._step("Evaluieren", event["done"], event["total"], f"{event['id']} ({event['seconds']} s){note}")

    def _step(self, label: str, done: int, total: int, text: str) -> None:
        if self.bar is None:
            print(f"[{done}/{total}] {text}", file=sys.stderr, flush=True)
            return
        if label not in self.tasks:
            self.tasks[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[label], completed=done, total=max(total, done))

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
