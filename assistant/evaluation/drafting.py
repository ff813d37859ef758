"""Drafting suites: project profiles + programme + template -> drafts, scored without a model.

A suite file (``kind: drafting``) lists items, each a profile (the keys of `draft --profile`),
a template and optionally an idea text. Every draft is made with the configured model,
exported as Markdown (what a city would read) and scored:

- profile facts present (title, budget, duration, head count, department) and correct in
  the computed blocks (Betreff, Beschlussvorschlag, finance block, time plan);
- unsupported numbers, dates and names per 1,000 words (verify.py, against the profile, the
  computed facts and the cited passage as stored in the index);
- citations whose passage does not support the sentence;
- placeholder, guidance-text and server-path leaks in the exported document;
- checklist coverage (met / open / n/a) for programme-bound drafts, and that it is shown;
- word-limit compliance of generated sections and the share of sentences in the template's language.

Runs are stored like answer runs (``runs_dir/<run_id>/run.json``) with a Markdown report and
the exported drafts next to it.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import frontmatter
from .. import text as T
from ..answer.citations import HOLDS, cited_numbers, support
from ..config import Settings
from ..errors import UsageError
from ..fsutil import atomic_write
from ..text import slug

ITEM_KEYS = ("id", "template", "profile", "idea", "programme", "notes")
SUITE_KEYS = ("name", "kind", "description", "version", "corpus", "today", "items")
MAX_UNSUPPORTED_PER_1000 = 1.0
MIN_CITATIONS_SUPPORTED = 0.9
# what must never reach a document: template fields, prompt markup, task lines, server paths
LEAK_PATTERNS = {
    "placeholder": re.compile(r"\{(?:title|idea|city|department|programme|duration|budget|goal|target_group|staff|"
                              r"start|project|facts|sources|heading|word_limit|purpose|guidance)\}|\[(?:fakten|projekt|"
                              r"quellen)\]|</?(?:quelle|quellen|projekt|fakten)\b", re.IGNORECASE),
    "prompt": re.compile(r"^\s*(?:Aufgabe|Zweck(?: des Abschnitts)?|Inhalt|Task|Purpose|Content)\s*:", re.IGNORECASE | re.MULTILINE),
    "path": re.compile(r"(?<![\w:/.])/(?:work|home|tmp|srv|var|opt|root|usr|mnt|data)/[\w./-]+"
                       r"|[A-Za-z]:\\\\[\w\\\\. -]+"),
}


@dataclass
class DraftItem:
    id: str
    template: str
    profile: dict[str, Any]
    idea: str = ""
    programme: str | None = None
    notes: str = ""


@dataclass
class DraftSuite:
    name: str
    path: Path
    items: list[DraftItem]
    description: str = ""
    version: str = ""
    corpus: Path | None = None
    today: str = ""


def is_drafting_suite(path: str | Path) -> bool:
    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml") or not p.is_file():
        return False
    try:
        head = p.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return bool(re.search(r"^kind:\s*drafting\s*$", head, re.MULTILINE))


def load_suite(path: str | Path) -> DraftSuite:
    """A drafting suite; every problem is collected before failing."""
    p = Path(path)
    try:
        data = frontmatter.load_yaml(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Suite nicht lesbar: {p} ({exc})", f"cannot read suite {p}", "Pfad prüfen") from None
    except frontmatter.FrontMatterError as exc:
        raise UsageError(f"Suite {p.name} ist {exc.de}", f"suite {p.name} is {exc.en}", "YAML prüfen") from None
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not data["items"]:
        raise UsageError(f"Suite {p.name}: 'items' fehlt oder ist leer", f"suite {p.name}: 'items' missing",
                         "siehe evals/suites/drafting.yaml")
    problems += [f"unbekanntes Feld {k!r}" for k in data if k not in SUITE_KEYS]
    items, seen = [], set()
    from ..drafting import profile as profiles

    for i, raw in enumerate(data["items"], 1):
        if not isinstance(raw, dict):
            problems.append(f"Eintrag {i} ist kein Objekt")
            continue
        label = raw.get("id") or f"#{i}"
        problems += [f"Eintrag {label}: unbekanntes Feld {k!r}" for k in raw if k not in ITEM_KEYS]
        if not raw.get("id") or raw["id"] in seen:
            problems.append(f"Eintrag {label}: 'id' fehlt oder doppelt")
        seen.add(raw.get("id"))
        if not raw.get("template"):
            problems.append(f"Eintrag {label}: 'template' fehlt")
        try:
            profiles.from_dict(raw.get("profile") or {})
        except UsageError as exc:
            problems.append(f"Eintrag {label}: {exc.de}")
        items.append(DraftItem(id=str(raw.get("id") or ""), template=str(raw.get("template") or ""),
                               profile=dict(raw.get("profile") or {}), idea=str(raw.get("idea") or ""),
                               programme=raw.get("programme") or (raw.get("profile") or {}).get("programme"),
                               notes=str(raw.get("notes") or "")))
    if problems:
        listing = "\n".join(f"  - {x}" for x in problems)
        raise UsageError(f"Suite {p} ist fehlerhaft:\n{listing}", f"suite {p} is invalid ({len(problems)} problems)",
                         "Einträge korrigieren (siehe evals/README.md)")
    corpus = data.get("corpus")
    return DraftSuite(name=str(data.get("name") or p.stem), path=p, items=items,
                      description=str(data.get("description") or ""), version=str(data.get("version") or ""),
                      corpus=(p.parent / str(corpus)).resolve() if corpus else None, today=str(data.get("today") or ""))


# ----------------------------------------------------------------------------- metrics (pure)


def expected_facts(draft) -> dict[str, str]:
    """The profile facts a reader must find, as the draft would write them."""
    from ..funding import finance

    idea = draft.idea
    out = {"title": idea.title}
    if idea.budget is not None:
        out["budget"] = finance.euro(idea.budget)
    if idea.duration_months:
        out["duration"] = f"{idea.duration_months} " + ("Monate" if draft.language == "de" else "months")
    if idea.staff:
        out["staff"] = str(idea.staff)
    if idea.department:
        out["department"] = idea.department
    return out


def fact_scores(draft, markdown: str) -> dict[str, Any]:
    """present: share of the profile facts found in the document; correct: share of the
    computed blocks that carry the profile's values (Betreff, Beschlussvorschlag, finance
    block, time plan covering the whole duration)."""
    from ..drafting import forms

    facts = expected_facts(draft)
    folded = T.fold(markdown)
    missing = [k for k, v in facts.items() if T.fold(v) not in folded]
    checks: dict[str, bool] = {}
    secs = {s.id: s for s in draft.sections}
    idea = draft.idea
    if "betreff" in secs:
        checks["betreff"] = secs["betreff"].text.strip() == idea.title
    if "beschlussvorschlag" in secs:
        text = secs["beschlussvorschlag"].text
        checks["beschlussvorschlag"] = all(v in text for k, v in facts.items() if k in ("title", "budget", "duration")) \
            and (not idea.staff or str(idea.staff) in text or T.fold(idea.target_group) in T.fold(idea.title))
    finance_block = next((s for s in draft.sections if s.kind == "computed" and s.table and
                          any(T.fold(facts.get("budget", "#")) in T.fold(" ".join(r)) for r in s.table)), None)
    if idea.budget is not None:
        checks["finance_block"] = finance_block is not None
    plan = next((s for s in draft.sections if s.table and s.table[0] and s.table[0][0] in ("Phase", "Arbeitspaket",
                                                                                          "Work package")), None)
    if idea.duration_months and plan is not None:
        last = max(int(n) for r in plan.table[1:] for n in re.findall(r"(?:Monat|Month)\s+(?:\d+–)?(\d+)", r[1]))
        checks["timeplan_covers_duration"] = last == idea.duration_months and \
            forms.phase_months(idea.duration_months)[-1][1] == idea.duration_months
    return {"present": 1 - len(missing) / len(facts) if facts else None, "missing": missing,
            "correct": sum(checks.values()) / len(checks) if checks else None, "checks": checks}


def leaks(markdown: str, guidance: list[str]) -> list[str]:
    """Placeholders, prompt lines, guidance text (8+ words verbatim) and server paths in a document."""
    out = []
    for kind, rx in LEAK_PATTERNS.items():
        out += [f"{kind}: {m.group(0)[:60]}" for m in rx.finditer(markdown)]
    folded = T.fold(markdown)
    for g in guidance:
        words = g.split()
        for i in range(0, max(0, len(words) - 7), 4):
            piece = T.fold(" ".join(words[i:i + 8]))
            if len(piece) > 40 and piece in folded:
                out.append(f"guidance: {' '.join(words[i:i + 8])}")
                break
    return out


def sentence_scores(draft, passages: dict[str, str], allowed: str) -> dict[str, Any]:
    """Over the generated text: unsupported numbers/dates/names, citation support, language."""
    from ..drafting import verify

    unsupported: list[str] = []
    cites = supported = 0
    sentences = in_language = 0
    words = 0
    for sec in draft.sections:
        if not sec.model or not sec.text:
            continue
        words += sec.words
        texts = [passages.get(r.chunk_id, r.quote) for r in sec.cited]
        for sent in T.sentences(sec.text):
            nums = [n for n in cited_numbers(sent) if 1 <= n <= len(texts)]
            given = allowed + " " + " ".join(texts[n - 1] for n in nums)
            known = T.numbers(given) | {str(i) for i in range(0, max(12, draft.idea.duration_months or 0) + 1)}
            unsupported += [f"{sec.id}: {x}" for x in verify.unknown_numbers(sent, known) + verify.unknown_names(sent, given)]
            for n in nums:
                cites += 1
                ok = support(sent, texts[n - 1]) >= HOLDS or (draft.language != "de" and
                                                             verify._semantic(sent, [texts[n - 1]]) >= verify.SEMANTIC_MIN)
                supported += ok
            lang = verify.language_of(sent)
            if lang:
                sentences += 1
                in_language += lang == draft.language
    total_words = sum(s.words for s in draft.sections) or 1
    return {"unsupported": unsupported, "unsupported_per_1000": round(1000 * len(unsupported) / total_words, 3),
            "citations": cites, "citations_supported": (supported / cites) if cites else None,
            "generated_words": words, "words": total_words,
            "language": (in_language / sentences) if sentences else None}


def word_limits(draft) -> float | None:
    gen = [s for s in draft.sections if s.model and s.word_limit]
    if not gen:
        return None
    return sum(1 for s in gen if s.words <= s.word_limit * 1.15 + 1) / len(gen)


def document_language(markdown: str, language: str) -> float | None:
    """Share of the exported document's sentences (paragraphs and list items) in the template's
    language; source lines (titles of cited documents) are references, not sentences."""
    from ..drafting import verify

    lines = [ln for ln in markdown.splitlines() if ln.strip() and not ln.startswith(("<small>", "|", "#"))]
    decided = [verify.language_of(s) for ln in lines for s in T.split_line(ln.lstrip("-*> "))]
    decided = [d for d in decided if d]
    return sum(d == language for d in decided) / len(decided) if decided else None


# ----------------------------------------------------------------------------- run


@dataclass
class DraftResult:
    id: str
    template: str
    programme: str | None
    draft_id: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    checklist: dict[str, int] = field(default_factory=dict)
    removed: int = 0
    document: str = ""
    error: str = ""


def _passages(draft, store) -> dict[str, str]:
    ids = [r.chunk_id for s in draft.sections for r in s.cited if r.chunk_id]
    found = {c.chunk_id: c.text for c in store.get_chunks(ids)} if ids else {}
    return found


def score_draft(draft, markdown: str, passages: dict[str, str], guidance: list[str]) -> DraftResult:
    from ..drafting import checklist
    from ..drafting.facts import allowed_text

    res = DraftResult(id="", template=draft.template, programme=draft.programme_id, draft_id=draft.id)
    facts = fact_scores(draft, markdown)
    sents = sentence_scores(draft, passages, allowed_text(draft))
    res.facts = facts
    res.unsupported = sents["unsupported"]
    res.leaks = leaks(markdown, guidance)
    res.removed = sum(len(s.removed) for s in draft.sections)
    if draft.requirements:
        res.checklist = {**checklist.coverage(draft.requirements),
                         "shown": int(("Checkliste des Fördergebers" in markdown) or ("Funder's checklist" in markdown))}
    res.metrics = {"facts_present": facts["present"], "facts_correct": facts["correct"],
                   "unsupported_per_1000": sents["unsupported_per_1000"],
                   "citations_supported": sents["citations_supported"], "citations": sents["citations"],
                   "leaks": len(res.leaks), "word_limit_ok": word_limits(draft),
                   "language": document_language(markdown, draft.language), "words": sents["words"],
                   "generated_words": sents["generated_words"]}
    if draft.requirements:
        total = sum(res.checklist[k] for k in ("met", "open", "n/a"))
        res.metrics["checklist_met"] = res.checklist["met"] / total if total else None
        res.metrics["checklist_shown"] = float(res.checklist["shown"])
    return res


def summarise(results: list[DraftResult]) -> dict[str, Any]:
    ok = [r for r in results if not r.error]

    def mean(key: str) -> float | None:
        values = [r.metrics.get(key) for r in ok if r.metrics.get(key) is not None]
        return round(sum(values) / len(values), 4) if values else None

    words = sum(r.metrics.get("words", 0) for r in ok) or 1
    cites = sum(r.metrics.get("citations", 0) for r in ok)
    supported = sum((r.metrics.get("citations_supported") or 0) * r.metrics.get("citations", 0) for r in ok)
    bound = [r for r in ok if r.programme]
    agg = {"drafts": len(results), "errors": len(results) - len(ok), "facts_present": mean("facts_present"),
           "facts_correct": mean("facts_correct"),
           "unsupported_per_1000": round(1000 * sum(len(r.unsupported) for r in ok) / words, 3),
           "citations": cites, "citations_supported": round(supported / cites, 4) if cites else None,
           "leaks": sum(len(r.leaks) for r in ok), "word_limit_ok": mean("word_limit_ok"), "language": mean("language"),
           "checklist_shown": (sum(r.checklist.get("shown", 0) for r in bound) / len(bound)) if bound else None,
           "removed_sentences": sum(r.removed for r in ok), "seconds_mean": mean("seconds") if False else (
               round(sum(r.seconds for r in ok) / len(ok), 1) if ok else None)}
    agg["goals_met"] = {
        "leaks == 0": agg["leaks"] == 0,
        f"unsupported_per_1000 <= {MAX_UNSUPPORTED_PER_1000}": agg["unsupported_per_1000"] <= MAX_UNSUPPORTED_PER_1000,
        f"citations_supported >= {MIN_CITATIONS_SUPPORTED}": agg["citations_supported"] is None
        or agg["citations_supported"] >= MIN_CITATIONS_SUPPORTED,
        "checklist shown for every programme-bound draft": agg["checklist_shown"] in (None, 1.0),
    }
    return agg


def run_drafting_suite(suite_path: str | Path, settings: Settings, *, limit: int | None = None, chat_model=None,
                       progress: Callable[[dict], None] | None = None, out_dir: str | Path | None = None,
                       only: list[str] | None = None) -> dict:
    """Draft every item of the suite (or ``only`` these ids), score it, store each item's result
    (``item-<id>.json``) and its document, then run.json and report.md over every item result in
    the folder: runs of parts of one suite into the same folder add up to one report."""
    from ..drafting import export, profile, runner, templates
    from ..index.store import Store
    from ..runtime import llm

    suite = load_suite(suite_path)
    items = [i for i in suite.items if not only or i.id in only]
    items = items[:limit] if limit else items
    progress = progress or (lambda e: None)
    today = dt.date.fromisoformat(suite.today) if suite.today else dt.date.today()
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{slug(suite.name, 30, default='drafting')}-{secrets.token_hex(2)}"
    folder = Path(out_dir) if out_dir else settings.runs_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    chat_model = chat_model or llm.get_chat_model(settings)
    results = []
    started = time.perf_counter()
    progress({"event": "start", "total": len(items), "mode": "drafting"})
    with Store(settings) as store:
        if not store.stats()["chunks"]:
            raise UsageError(f"Der Index in {settings.index_dir} ist leer", f"the index in {settings.index_dir} is empty",
                             "pilot-assistant ingest corpus/  (oder: eval --ingest corpus/)")
        for done, item in enumerate(items, 1):
            t0 = time.perf_counter()
            try:
                idea = profile.from_dict({**item.profile, **({"description": item.idea} if item.idea else {})})
                d = runner.draft(idea, item.template, settings, programme_id=item.programme, today=today,
                                 chat_model=chat_model, store=store)
                md_path = export.export(d, folder / f"{item.id}.md")
                markdown = md_path.read_text(encoding="utf-8")
                t = templates.load_template(item.template, settings)
                guidance = [s.guidance for s in t.sections if s.guidance] + [s.purpose for s in t.sections if s.purpose]
                res = score_draft(d, markdown, _passages(d, store), guidance)
                res.document = md_path.name
            except Exception as exc:   # one failing draft must not lose the run
                res = DraftResult(id=item.id, template=item.template, programme=item.programme,
                                  error=f"{type(exc).__name__}: {getattr(exc, 'de', exc)}")
            res.id, res.seconds = item.id, round(time.perf_counter() - t0, 1)
            res.metrics["seconds"] = res.seconds
            results.append(res)
            atomic_write(folder / f"item-{item.id}.json", json.dumps(asdict(res), ensure_ascii=False, indent=1))
            progress({"event": "item", "done": done, "total": len(items), "id": item.id, "seconds": res.seconds,
                      "error": res.error})
    order = {i.id: n for n, i in enumerate(suite.items)}
    stored = {}
    for path in folder.glob("item-*.json"):   # this run's items and those of parallel runs of the same suite
        data = json.loads(path.read_text(encoding="utf-8"))
        stored[data["id"]] = DraftResult(**data)
    stored.update({r.id: r for r in results})
    results = sorted(stored.values(), key=lambda r: order.get(r.id, len(order)))
    summary = summarise(results)
    run = {"run_id": run_id, "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "mode": "drafting", "suite": {"name": suite.name, "path": str(suite.path), "items": len(suite.items)},
           "model": llm.model_label(settings), "backend": settings.llm.backend, "limit": limit,
           "seconds": round(time.perf_counter() - started, 1), "summary": summary,
           "items": [asdict(r) for r in results]}
    atomic_write(folder / "run.json", json.dumps(run, ensure_ascii=False, indent=1))
    atomic_write(folder / "report.md", report_markdown(run))
    run["path"] = str(folder)
    return run


def report_markdown(run: dict) -> str:
    s = run["summary"]

    def f(v) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"# Entwurfs-Evaluation {run['suite']['name']} – {run['run_id']}", "",
             f"Modell: `{run['model']}` ({run['backend']}) · {s['drafts']} Entwürfe · {run['seconds']:.0f} s", "",
             "| Kennzahl | Wert |", "|---|---|"]
    for key in ("facts_present", "facts_correct", "unsupported_per_1000", "citations", "citations_supported", "leaks",
                "checklist_shown", "word_limit_ok", "language", "removed_sentences", "seconds_mean", "errors"):
        lines.append(f"| {key} | {f(s.get(key))} |")
    lines += ["", "**Ziele:** " + ", ".join(f"{k}: {'✓' if v else '✗'}" for k, v in s["goals_met"].items()), "",
              "| Entwurf | Vorlage | Programm | Fakten da/richtig | unbelegt/1000 W. | Zitate gestützt | Lecks | "
              "Checkliste (erfüllt/offen/entfällt) | Wortgrenze | Sprache | s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in run["items"]:
        m = r["metrics"]
        c = r.get("checklist") or {}
        lines.append(f"| [{r['id']}]({r['document']}) | {r['template']} | {r['programme'] or '–'} | "
                     f"{f(m.get('facts_present'))}/{f(m.get('facts_correct'))} | {f(m.get('unsupported_per_1000'))} | "
                     f"{f(m.get('citations_supported'))} ({m.get('citations', 0)}) | {m.get('leaks', '–')} | "
                     + (f"{c.get('met')}/{c.get('open')}/{c.get('n/a')}" if c else "–")
                     + f" | {f(m.get('word_limit_ok'))} | {f(m.get('language'))} | {r['seconds']} |"
                     + (f" FEHLER {r['error']}" if r["error"] else ""))
    for r in run["items"]:
        if r["unsupported"] or r["leaks"]:
            lines += ["", f"**{r['id']}**: unbelegt {r['unsupported']}; Lecks {r['leaks']}"]
    return "\n".join(lines) + "\n"
