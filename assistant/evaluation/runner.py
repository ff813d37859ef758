"""Run a suite: retrieve (and answer) every question, score it, store the run.

Each run lands in ``settings.runs_dir/<run_id>/run.json`` with everything needed to
trust or question a number later: the settings, a fingerprint of model, prompt,
embedding model, index and code version, and every item's answer and scores.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import platform
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import config
from ..config import Settings
from ..errors import BackendUnavailable, ModelError, UsageError
from ..fsutil import atomic_write
from ..text import slug
from ..types import Answer, Hit
from . import metrics as M
from . import pipelines
from .results import DEPTH, RETRIEVAL_KS, ItemResult, Run, summarise
from .suites import EvalItem, Suite, load_suite
from .suites import sample as sample_items

Progress = Callable[[dict], None]
# what an answer's extra keeps in the run: the signals behind answering or refusing (for calibration)
DIAGNOSTICS = ("check", "refusal_reason", "quote", "quotes", "extractive", "removed_sentences", "prompt")
ROOT = config.PROJECT_ROOT


# ------------------------------------------------------------------ scoring (pure)
def _ref(hit: Hit) -> M.SourceRef:
    return M.SourceRef(hit.chunk.source, hit.chunk.page, hit.chunk.doc_id)


def score_item(item: EvalItem, hits: Sequence[Hit], answer: Answer | None = None,
               retrieval_ms: float | None = None) -> ItemResult:
    """Score one item from its retrieved passages and (optionally) the assistant's answer."""
    refs = [_ref(h) for h in hits]
    res = ItemResult(id=item.id, question=item.question, answerable=item.answerable, tags=list(item.tags),
                     gold=[g.label() for g in item.gold_sources],
                     retrieved=[{"rank": i, "file": M.file_name(r.source), "page": r.page, "doc_id": r.doc_id[:12],
                                 "gold": any(M.source_matches(r, g) for g in item.gold_sources)}
                                for i, r in enumerate(refs, start=1)])
    m: dict[str, float | None] = {}
    if item.gold_sources:
        res.gold_rank = M.gold_rank(refs, item.gold_sources)
        for k in RETRIEVAL_KS:
            m[f"hit@{k}"] = M.hit_at_k(res.gold_rank, k)
        m["rr"] = M.reciprocal_rank(res.gold_rank)
        m["recall@5"] = M.gold_recall_at_k(refs, item.gold_sources, 5)
    if retrieval_ms is not None:
        res.timings["retrieval_ms"] = retrieval_ms
    if answer is not None:
        _score_answer(item, answer, res, m)
    res.metrics = m
    return res


def _score_answer(item: EvalItem, answer: Answer, res: ItemResult, m: dict[str, float | None]) -> None:
    from ..answer.citations import cited_numbers

    res.answer, res.refused = answer.answer, answer.refused
    res.diagnostics = {k: answer.extra[k] for k in DIAGNOSTICS if k in answer.extra}
    res.removed_citations = answer.removed_citations
    res.timings.update({k: v for k, v in answer.timings.items() if k != "retrieval_ms"})
    res.timings.setdefault("retrieval_ms", answer.timings.get("retrieval_ms"))
    m["refusal_correct"] = 1.0 if answer.refused != item.answerable else 0.0
    cited = [M.SourceRef(c.source, c.page, c.doc_id) for c in answer.citations]
    res.citations = [{"n": c.n, "file": M.file_name(c.source), "page": c.page,
                      "gold": any(M.source_matches(r, g) for g in item.gold_sources)}
                     for c, r in zip(answer.citations, cited)]
    if item.answerable:
        m["token_f1"] = M.token_f1(answer.answer, item.reference) if item.reference else None
        m["facts_recall"] = M.facts_recall(item.facts, answer.answer)
        res.missing_facts = M.missing_facts(item.facts, answer.answer)
        if item.answer_sentences:   # a refusal carries no answer, whatever its list of nearby sources says
            m["answer_sentence_recall"] = 0.0 if answer.refused else \
                M.answer_sentence_recall(item.answer_sentences, answer.answer)
        m["gold_cited"] = M.gold_cited([] if answer.refused else cited, item.gold_sources)
    if answer.refused:
        return
    if item.answerable:
        m["cited"] = 1.0 if cited else 0.0
    m["citation_validity"] = M.citation_validity(cited_numbers(answer.answer), len(answer.sources),
                                                 answer.removed_citations)
    m["citation_accuracy"] = M.citation_accuracy(cited, item.gold_sources)
    faith = M.faithfulness(answer.answer, [h.chunk.text for h in answer.sources])
    m["faithfulness"], m["numbers_consistency"] = faith.score, faith.numbers
    res.unsupported = faith.unsupported


# ------------------------------------------------------------------------- the run
def run_eval(suite_path: str | Path, settings: Settings, *, limit: int | None = None, retrieval_only: bool = False,
             progress: Progress | None = None, judge: bool = False, filters=None, chat_model=None,
             pipeline: str = "default", sample: int | None = None, seed: int = 0,
             item_scope: bool = True) -> Run:
    """Run a suite against the index in ``settings.data_dir`` and store the run.

    ``pipeline`` picks who answers (see :mod:`.pipelines`); ``sample``/``seed`` a fixed random
    subset of the items (after ``limit``), so runs of different pipelines or models compare.
    An item's ``municipality`` restricts its search to that municipality's documents unless
    ``item_scope`` is off (then every item searches the whole index, or ``filters``)."""
    from ..index import retrieval
    from ..index.store import Store

    suite = load_suite(suite_path)
    if limit is not None and limit < 1:
        raise UsageError("--limit muss >= 1 sein", "--limit must be >= 1", "--limit 4")
    if judge and retrieval_only:
        raise UsageError("--judge braucht Antworten; nicht mit --retrieval-only kombinierbar",
                         "--judge needs answers; it cannot be combined with --retrieval-only", "eine Option weglassen")
    pipelines.check([pipeline])
    # a municipality named for the whole run (eval --municipality) wins over the items' own
    item_scope = item_scope and not (filters is not None and filters.municipality)
    items = suite.items[:limit] if limit else suite.items
    if sample is not None:
        items = sample_items(items, sample, seed)
    progress = progress or (lambda e: None)
    started = time.perf_counter()
    with Store(settings) as store:
        if not store.stats()["chunks"]:
            raise UsageError(f"Der Index in {settings.index_dir} ist leer",
                             f"The index in {settings.index_dir} is empty",
                             "pilot-assistant ingest corpus/  (oder: eval --ingest corpus/)")
        if item_scope:
            _check_municipalities(items, store)
        fingerprint = _fingerprint(settings, store, answers=not retrieval_only, pipeline=pipeline)
        if not retrieval_only and chat_model is None:
            from ..runtime.llm import get_chat_model
            chat_model = get_chat_model(settings)   # fail fast (backend down) before the first item
        # loading the embedder, the BM25 index and Chroma's pages must not count as the first items' latency
        retrieval.search("Aufwärmen der Suche", settings, k=DEPTH, store=store)
        progress({"event": "start", "total": len(items), "mode": "retrieval" if retrieval_only else "answer",
                  "pipeline": pipeline})
        results = []
        for done, item in enumerate(items, start=1):
            t0 = time.perf_counter()
            scoped = item_filters(item, filters) if item_scope else filters
            results.append(_run_item(item, settings, store, retrieval_only, judge, scoped, chat_model, pipeline))
            progress({"event": "item", "done": done, "total": len(items), "id": item.id,
                      "seconds": round(time.perf_counter() - t0, 2), "error": results[-1].error})
    run = Run(run_id=_run_id(suite), created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              suite={"name": suite.name, "path": str(suite.path), "sha256": suite.sha256, "version": suite.version,
                     "items": len(suite.items)},
              mode="retrieval" if retrieval_only else "answer",
              config=_config(settings, filters) | _scope_config(items, item_scope),
              fingerprint=fingerprint, items=results, judge=judge, limit=limit,
              pipeline="" if retrieval_only else pipeline,
              sample={"n": sample, "seed": seed, "ids": [i.id for i in items]} if sample is not None else {},
              summary=summarise(results, mode="retrieval" if retrieval_only else "answer", judge=judge),
              seconds=round(time.perf_counter() - started, 2))
    save_run(run, settings)
    return run


def item_filters(item: EvalItem, filters):
    """The run's filters narrowed to the item's municipality; a municipality given for the whole
    run wins, so `eval --municipality X` still means exactly X."""
    from ..index.filters import Filters

    if not item.municipality or (filters is not None and filters.municipality):
        return filters
    return dataclasses.replace(filters or Filters(), municipality=item.municipality)


def _check_municipalities(items: list[EvalItem], store) -> None:
    """A misspelt municipality would silently find nothing and count every answer as a refusal."""
    wanted = {i.municipality for i in items if i.municipality}
    known = store.municipalities() if wanted else set()
    unknown = sorted(wanted - known)
    if unknown:
        have = ", ".join(sorted(known)) or "keine / none"
        raise UsageError(f"Kommune(n) der Suite nicht im Index: {', '.join(unknown)} (im Index: {have})",
                         f"municipality of suite items not in the index: {', '.join(unknown)} (indexed: {have})",
                         "Schreibweise in 'municipality' prüfen oder --all-municipalities")


def _scope_config(items: list[EvalItem], item_scope: bool) -> dict[str, Any]:
    if not any(i.municipality for i in items):
        return {}
    return {"item_municipality": item_scope}


def _run_item(item: EvalItem, settings: Settings, store, retrieval_only: bool, judge: bool, filters,
              chat_model, pipeline: str = "default") -> ItemResult:
    from ..index import retrieval

    t0 = time.perf_counter()
    hits = retrieval.search(item.question, settings, k=max(DEPTH, settings.retrieval.k), filters=filters, store=store)
    retrieval_ms = round((time.perf_counter() - t0) * 1000, 1)
    if retrieval_only:
        return score_item(item, hits, retrieval_ms=retrieval_ms)
    try:
        answer = pipelines.answer(pipeline, item, settings, store=store, chat_model=chat_model, filters=filters)
    except (BackendUnavailable, ModelError):
        raise   # every further item would fail the same way
    except Exception as exc:   # one bad item (too long, odd characters) must not lose the run
        res = score_item(item, hits, retrieval_ms=retrieval_ms)
        res.error = f"{type(exc).__name__}: {exc}"
        return res
    res = score_item(item, hits, answer)
    if judge:
        from .judge import judge_answer

        try:
            res.judge = judge_answer(item, answer, chat_model)
        except (BackendUnavailable, ModelError):
            raise
        except Exception as exc:
            res.judge = {"error": f"{type(exc).__name__}: {exc}"}
        for key in ("judge_correctness", "judge_faithfulness"):
            if key in res.judge:
                res.metrics[key] = res.judge[key]
    return res


def ensure_index(settings: Settings, paths: Sequence[str | Path] | None, *, default: Path | None = None,
                 progress: Progress | None = None):
    """Ingest ``paths`` (incremental, so cheap when nothing changed); with no paths, ingest
    ``default`` only when the index is empty. Returns the ingest report, or None if nothing ran."""
    from ..index.store import Store
    from ..ingest.pipeline import ingest

    if not paths:
        with Store(settings) as store:
            if store.stats()["chunks"]:
                return None
        if default is None or not default.exists():
            raise UsageError(f"Der Index in {settings.index_dir} ist leer und kein Korpus angegeben",
                             f"The index in {settings.index_dir} is empty and no corpus was given",
                             "--ingest PFAD  (z. B. --ingest corpus/)")
        paths = [default]
    return ingest(list(paths), settings, progress=progress)


# ---------------------------------------------------------------------- storage
def save_run(run: Run, settings: Settings) -> Path:
    folder = settings.runs_dir / run.run_id
    atomic_write(folder / "run.json", json.dumps(run.to_dict(), ensure_ascii=False, indent=1, default=str))
    run.path = folder
    return folder


def list_runs(settings: Settings) -> list[Run]:
    """Stored runs, newest first (unreadable folders are skipped)."""
    runs = []
    if settings.runs_dir.is_dir():
        for path in settings.runs_dir.glob("*/run.json"):
            try:
                runs.append(Run.from_dict(json.loads(path.read_text(encoding="utf-8")), path.parent))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return sorted(runs, key=lambda r: (r.created, r.run_id), reverse=True)


def load_run(settings: Settings, run_id: str, *, suite: str | None = None, mode: str | None = None) -> Run:
    """A stored run by id (or unique id prefix). ``latest`` is the newest stored run, restricted
    to ``suite`` (name) and ``mode`` when given."""
    runs = list_runs(settings)
    if run_id in ("latest", "last"):
        cands = [r for r in runs if (suite is None or r.suite.get("name") == suite) and (mode is None or r.mode == mode)]
    else:
        cands = [r for r in runs if r.run_id == run_id] or [r for r in runs if r.run_id.startswith(run_id)]
    if not cands or (run_id not in ("latest", "last") and len(cands) > 1):
        known = ", ".join(r.run_id for r in runs[:5]) or "keine"
        raise UsageError(f"Lauf {run_id!r} nicht gefunden oder nicht eindeutig (neueste: {known})",
                         f"Run {run_id!r} not found or ambiguous", "pilot-assistant eval runs")
    return cands[0]


def _run_id(suite: Suite) -> str:
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{slug(suite.name, 30, default='suite')}-{secrets.token_hex(2)}"


# ------------------------------------------------------------------ fingerprint
def _config(settings: Settings, filters) -> dict[str, Any]:
    d = settings.as_dict()
    keep = {"llm": d["llm"], "retrieval": d["retrieval"], "data_dir": d["data_dir"]}
    keep["llm"] = {k: v for k, v in keep["llm"].items() if k != "ollama_host"} | {
        "ollama_host": settings.llm.ollama_host if settings.llm.backend == "ollama" else ""}
    if filters is not None:
        keep["filters"] = {k: v for k, v in vars(filters).items() if v is not None and v != ""}
    return keep


def _fingerprint(settings: Settings, store, *, answers: bool, pipeline: str = "default") -> dict[str, Any]:
    from .. import __version__
    from ..answer import prompts
    from ..index import embeddings
    from ..runtime.llm import model_label

    stats = store.stats()
    docs = sorted(r.doc_id for r in store.documents())
    fp: dict[str, Any] = {
        "app_version": __version__, "python": platform.python_version(),
        "embedding_model": f"{embeddings.MODEL_NAME} ({embeddings.MODEL_ID})",
        "index": {"documents": stats["documents"], "chunks": stats["chunks"],
                  "sha256": hashlib.sha256("\n".join(docs).encode()).hexdigest()},
        "git": _git(),
    }
    if answers:
        fp["model"] = model_label(settings)
        fp["model_sha256"] = _model_sha(settings)
        fp["prompt"] = prompts.load("chat" if pipeline == "default" else "baseline").id
        fp["pipeline"] = pipeline
    return fp


def _model_sha(settings: Settings) -> str:
    try:
        if settings.llm.backend == "ollama":
            import ollama

            listed = ollama.Client(host=settings.llm.ollama_host, timeout=5).list()
            tag = settings.llm.ollama_model
            for m in listed.models:
                if m.model in (tag, f"{tag}:latest"):
                    return str(m.digest or "")
            return ""
        from ..runtime import gguf

        return gguf.resolve(settings.llm.model, settings.models_dir, assemble_missing=False).sha256
    except Exception:   # the fingerprint documents a run; it must never stop one
        return ""


def _git() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}
