"""Tab "Evaluation": run a suite against a chosen backend/model, see the figures and plots,
compare two stored runs. A thin layer over assistant.evaluation (the CLI's `eval`).

Only suites in ``evals/suites/`` and only the built-in or configured models can be
chosen here: a web form must not point the server at arbitrary files. Runs need the role
editor or admin; a run searches only the collections its person may read and records them,
and a person is shown only runs over collections they may read.
"""
from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from .. import config
from ..config import BACKENDS, Settings
from ..errors import UsageError, UserError
from .notice import notice

TITLE = "Evaluation"
SUITE_DIR = config.SUITES_DIR
PIPELINE_CHOICES = [("der Assistent", "default"), ("Basislinie: 3 ganze Passagen, schlichter Prompt", "naive"),
                    ("Basislinie: nur die richtige Passage (Obergrenze)", "oracle")]
SUMMARY_HEADERS = ["Kennzahl", "Name", "Wert"]
ITEM_HEADERS = ["id", "Tags", "Gold-Rang", "F1", "Fakten", "Quellen ok", "Belegt", "Ablehnung", "Zeit (s)"]
log = logging.getLogger("assistant.ui")


# --------------------------------------------------------------------------- views (pure)


def suite_choices(folder: Path = SUITE_DIR) -> list[tuple[str, str]]:
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".yaml", ".yml", ".csv")) if folder.is_dir() else []
    return [(p.name, str(p)) for p in files]


def model_choices(settings: Settings, backend: str) -> list[str]:
    """Built-in GGUFs plus the configured model (llamacpp), or the tags the Ollama server has."""
    if backend == "ollama":
        from ..runtime.llm import ollama_check

        status = ollama_check(settings, timeout=3)
        tags = status.get("models") or []
        return sorted(set(tags) | {settings.llm.ollama_model})
    from ..runtime.gguf import MODELS

    return list(dict.fromkeys([settings.llm.model, *MODELS]))


def settings_for(base: Settings, backend: str, model: str, *, allowed: list[str] | None = None) -> Settings:
    """A copy of the app's settings with another backend/model (the app's own stay untouched)."""
    if backend not in BACKENDS:
        raise UsageError(f"Unbekanntes Backend {backend!r}", f"Unknown backend {backend!r}", "llamacpp oder ollama")
    model = (model or "").strip()
    if backend == "llamacpp" and allowed is not None and model not in allowed:
        raise UsageError(f"Modell {model!r} ist hier nicht wählbar", f"Model {model!r} cannot be chosen here",
                         "ein eingebautes Modell wählen; andere GGUF-Dateien über die Konfiguration einstellen")
    s = copy.deepcopy(base)
    s.llm.backend = backend
    if model:
        if backend == "ollama":
            s.llm.ollama_model = model
        else:
            s.llm.model = model
    return s


def summary_rows(run) -> list[list[str]]:
    from ..evaluation.results import METRICS

    return [[METRICS[m][0], m, _fmt(v, m)] for m, v in run.summary.aggregates.items() if m in METRICS]


def item_rows(run) -> list[list[str]]:
    from ..evaluation.report import item_row

    return [item_row(i) for i in run.items]


def visible_to(run, readable: set[str] | None) -> bool:
    """``readable`` None: everything (admin). A run without recorded collections searched everything."""
    if readable is None:
        return True
    wanted = (run.config.get("filters") or {}).get("collection")
    if wanted is None:
        return False
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    return set(wanted) <= readable


def run_choices(settings: Settings, readable: set[str] | None = None) -> list[tuple[str, str]]:
    from ..evaluation.runner import list_runs

    out = []
    for r in list_runs(settings):
        if not visible_to(r, readable):
            continue
        hl = r.headline()
        figure = f"Treffer@5 {hl['hit@5']:.2f}" if hl.get("hit@5") is not None else ""
        if hl.get("facts_recall") is not None:
            figure += f", Fakten {hl['facts_recall']:.2f}"
        out.append((f"{r.run_id} · {r.suite.get('name')} · {r.fingerprint.get('model') or 'nur Suche'} · {figure}",
                    r.run_id))
    return out


def _fmt(v, name: str = "") -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if name.endswith("_ms") or abs(v) >= 100 else f"{v:.3f}"


# --------------------------------------------------------------------------- the tab


def build(ctx: Any) -> None:
    settings: Settings = ctx.settings
    suites = suite_choices()
    gr.Markdown("Misst, wie gut Suche und Antworten auf eine Fragensammlung (Suite) passen – etwa bevor "
                "ein neues Modell eingesetzt wird. Jeder Lauf wird mit Modell, Prompt und Index gespeichert. "
                "Antworten dauern auf zwei CPU-Kernen rund eine halbe Minute je Frage; „nur Suche“ braucht "
                "Sekunden. Aufbau der Suiten: `evals/README.md`.")
    with gr.Row():
        suite = gr.Dropdown(label="Suite", choices=suites, value=suites[0][1] if suites else None, elem_id="eval-suite")
        backend = gr.Dropdown(label="Backend", choices=list(BACKENDS), value=settings.llm.backend,
                              elem_id="eval-backend")
        first = model_choices(settings, "llamacpp") if settings.llm.backend == "llamacpp" else [settings.llm.ollama_model]
        model = gr.Dropdown(label="Modell", choices=first, value=first[0], allow_custom_value=True, elem_id="eval-model")
    with gr.Row():
        retrieval_only = gr.Checkbox(label="nur Suche bewerten (ohne Sprachmodell, schnell)", value=False,
                                     elem_id="eval-retrieval-only")
        judge = gr.Checkbox(label="zusätzlich LLM-Urteil (langsam)", value=False, elem_id="eval-judge")
        # 0 is a valid value meaning "all": a minimum of 1 would mark the untouched field as an error
        limit = gr.Number(label="nur die ersten N Fragen (0 = alle)", value=0, precision=0, minimum=0,
                          elem_id="eval-limit")
        pipeline = gr.Dropdown(label="Wer antwortet", choices=PIPELINE_CHOICES, value="default",
                               elem_id="eval-pipeline")
    start_btn = gr.Button("Evaluation starten", variant="primary", elem_id="eval-start")
    status = gr.Markdown("", elem_id="eval-status")
    with gr.Row(equal_height=False):
        summary = gr.Dataframe(headers=SUMMARY_HEADERS, value=[], label="Kennzahlen", interactive=False,
                               wrap=True, elem_id="eval-summary", scale=2)
        plots = gr.Gallery(label="Diagramme", columns=1, height=420, object_fit="contain", elem_id="eval-plots",
                           scale=3)
    items = gr.Dataframe(headers=ITEM_HEADERS, value=[], label="Einzelergebnisse", interactive=False, wrap=True,
                         max_height=420, elem_id="eval-items")
    report = gr.File(label="Bericht (HTML)", interactive=False, elem_id="eval-report")

    gr.Markdown("### Zwei Läufe vergleichen")
    with gr.Row():
        base = gr.Dropdown(label="Vorher", choices=[], value=None, elem_id="eval-base")
        new = gr.Dropdown(label="Nachher", choices=[], value=None, elem_id="eval-new")
        compare_btn = gr.Button("Vergleichen", elem_id="eval-compare", scale=0)
    comparison = gr.Markdown("", elem_id="eval-comparison")

    served: dict[str, Path] = {}

    def serve_copy(run) -> Path:
        # Gradio serves files from its temp/cache dirs only; the run folder may be anywhere
        folder = served.setdefault("dir", Path(tempfile.mkdtemp(prefix="pilot-eval-")))
        target = folder / run.run_id
        shutil.copytree(Path(run.report["html"]).parent, target, dirs_exist_ok=True)
        return target

    def on_backend(b: str):
        try:
            choices = model_choices(settings, b)
        except Exception as exc:   # an unreachable Ollama just leaves the configured tag
            log.info("model list for %s: %s", b, exc)
            choices = [settings.llm.ollama_model if b == "ollama" else settings.llm.model]
        return gr.update(choices=choices, value=choices[0] if choices else None)

    backend.change(on_backend, [backend], [model])

    def allowed_runs(request) -> tuple[object, set[str] | None]:
        person = ctx.person(request)
        if not person.is_editor:
            raise UsageError("Evaluationen sind der Redaktion und der Verwaltung vorbehalten.",
                             "Evaluations need the editor or admin role.", "Die Verwaltung um die Rolle editor bitten")
        return person, None if person.is_admin else set(ctx.readable(person))

    def start(suite_path, b, m, only_retrieval, n, with_judge, which, request: gr.Request, progress=gr.Progress()):
        from ..evaluation.report import write_report
        from ..evaluation.runner import run_eval, save_run

        try:
            person, readable = allowed_runs(request)
            if suite_path not in {v for _, v in suite_choices()}:
                raise UsageError("Bitte eine Suite aus der Liste wählen.", "choose a suite from the list")
            allowed = model_choices(settings, "llamacpp") if b == "llamacpp" else None
            run_settings = settings_for(settings, b, m, allowed=allowed)
            progress(0, desc="Starte …")

            def on_event(event: dict) -> None:
                if event.get("event") == "item":
                    progress((event["done"], event["total"]), desc=event["id"])

            run = run_eval(suite_path, run_settings, limit=int(n) if n and n > 0 else None,
                           retrieval_only=only_retrieval, judge=with_judge and not only_retrieval, progress=on_event,
                           pipeline=which if which in {v for _, v in PIPELINE_CHOICES} else "default",
                           filters=ctx.filters(person))
            run.report = write_report(run, run.path / "report", cache_dir=settings.data_dir / "cache" / "matplotlib")
            save_run(run, settings)
        except UserError as exc:
            return {status: notice(exc)}
        folder = serve_copy(run)
        gallery = [(str(folder / Path(p).name), Path(p).stem) for p in run.report["plots"]]
        c = run.summary.counts
        text = (f"**Lauf `{run.run_id}`** · {c['items']} Fragen · {run.seconds:.0f} s · "
                f"{run.fingerprint.get('model') or 'nur Suche'}" + (f" · ⚠️ {c['errors']} Fehler" if c.get("errors") else ""))
        choices = run_choices(settings, readable)
        return {status: text, summary: summary_rows(run), items: item_rows(run), plots: gallery,
                report: str(folder / "report.html"),
                base: gr.update(choices=choices), new: gr.update(choices=choices, value=run.run_id)}

    start_btn.click(start, [suite, backend, model, retrieval_only, limit, judge, pipeline],
                    [status, summary, items, plots, report, base, new], concurrency_id="eval", concurrency_limit=1)

    def compare(a: str | None, b: str | None, request: gr.Request):
        from ..evaluation.compare import compare_runs, to_markdown
        from ..evaluation.runner import load_run

        if not a or not b:
            return "Bitte zwei Läufe wählen."
        try:
            _, readable = allowed_runs(request)
            runs = [load_run(settings, a), load_run(settings, b)]
            if not all(visible_to(r, readable) for r in runs):
                raise UsageError("Dieser Lauf durchsuchte Sammlungen, die Sie nicht lesen dürfen.",
                                 "This run searched collections you may not read.", "Einen eigenen Lauf wählen")
            return to_markdown(compare_runs(*runs))
        except UserError as exc:
            return notice(exc)

    compare_btn.click(compare, [base, new], [comparison], concurrency_id="eval-compare")

    def refresh(request: gr.Request):
        try:
            _, readable = allowed_runs(request)
        except UserError:
            return gr.update(choices=[]), gr.update(choices=[])
        choices = run_choices(settings, readable)
        return gr.update(choices=choices), gr.update(choices=choices)

    ctx.on_load.append((refresh, [base, new]))
