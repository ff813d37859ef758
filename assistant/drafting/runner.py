"""Where a draft is made: a project profile + a template -> cited sections, one at a time.

Structure, figures, dates, the time plan and the council form fields are computed
(facts.py, forms.py). Per generated section: retrieval for the project (the profile's
title, goal and idea with the section's topic, against council papers, experience reports
and the chosen programme's own guideline, fused by RRF), filtered for relevance to the
project -> compressed, delimited passages in the versioned ``draft`` prompt -> a few
sentences -> the chat's citation check -> every sentence checked against the profile and
its cited passage (verify.py), failures removed and kept for the author. The draft is
saved after every section (record.py), so a failure in section 4 of 7 keeps 1–3.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from langchain_core.messages import HumanMessage, SystemMessage

from .. import text as T
from ..answer import citations, passages, prompts
from ..config import Settings
from ..errors import UsageError, UserError
from ..funding import finance
from ..funding.programmes import Programme
from ..index import retrieval
from ..index.filters import Filters
from ..index.store import open_store
from ..runtime import llm
from ..types import Chunk, Hit
from . import profile as profiles
from . import quotes, record, review, templates, verify
from .beschlusslage import add_beschlusslage
from .facts import allowed_text, check_requirements, facts_lines, fill, project_block, refresh
from .finish import finish_section
from .record import Draft, Idea, Requirement, Section, SourceRef

__all__ = ["Idea", "Draft", "Section", "SourceRef", "Requirement", "DraftEvent", "DraftInterrupted", "check_idea",
           "draft", "start_draft", "run_sections", "resume_draft", "regenerate_section", "regenerate_all",
           "edit_section", "approve_section", "review_section", "release_all", "comment_section", "mark_requirement",
           "load_draft", "list_drafts", "check_requirements", "find_programme"]

TOKENS_PER_WORD = 2.0          # about 2 Qwen tokens per word of German administrative prose
PER_DOC = 2                    # passages per document, so one long guideline cannot fill a prompt
# words every project shares: they say nothing about whether a passage is about *this* project
GENERIC = T.stems("Pilotprojekt Projekt Vorhaben Pilot Stadt Kommune Verwaltung Einführung Erprobung Beschäftigte "
                  "Mitarbeitende Nutzung Lösung Plattform Monate Budget Euro Laufzeit souverän digital Digitalisierung "
                  "Amt Bürger Bürgerinnen neue neuer neues") | T.FOLDED_STOPWORDS
MIN_SHARED = 2                 # distinctive project words a passage must share to count as evidence
# a section needs a few sentences of evidence, not a chat answer's: each prompt character costs time
# to first token on 2 busy cores (≈ 200 s for 1,600 characters of sources at a load of 12)
CONTEXT_CHARS, CONTEXT_PER_PASSAGE = 1000, 400


@dataclass
class DraftEvent:
    kind: str                  # "section_start" | "token" | "section_done"
    draft: Draft
    section_id: str = ""
    index: int = 0             # 1-based among the sections this run generates
    total: int = 0
    text: str = ""


class DraftInterrupted(UserError):
    """A section failed (usually the model); everything before it is saved and resumable."""

    def __init__(self, draft: Draft, section: Section, cause: BaseException) -> None:
        done = sum(1 for s in draft.sections if s.status not in ("pending", "failed"))
        reason_de = getattr(cause, "de", str(cause))
        reason_en = getattr(cause, "en", str(cause))
        super().__init__(
            f"Abschnitt „{section.heading}“ ist fehlgeschlagen: {reason_de}. Entwurf {draft.id} ist "
            f"gespeichert ({done} von {len(draft.sections)} Abschnitten fertig).",
            f"section '{section.heading}' failed: {reason_en}. Draft {draft.id} is saved "
            f"({done} of {len(draft.sections)} sections done).",
            f"Ursache beheben, dann fortsetzen: pilot-assistant draft --resume {draft.id}")
        self.draft = draft

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "draft_id": self.draft.id}


# ----------------------------------------------------------------------------- input


def check_idea(idea: Idea) -> Idea:
    """A usable profile: the idea text read for what the fields leave open (shown for
    confirmation), a title, and valid figures."""
    profiles.merge_idea(idea)
    description = (idea.description or "").strip()
    title = (idea.title or "").strip()
    if not description and not title:
        raise UsageError("Die Projektidee ist leer: bitte Titel und einige Sätze angeben.",
                         "the project idea is empty: give a title and a few sentences.",
                         'pilot-assistant draft --idea "Ein KI-Assistent für …" oder --idea idee.txt')
    if not title:   # the first clause of the idea names the project well enough for a Betreff
        title = re.split(r"(?<=[.!?:])\s|\n", description, maxsplit=1)[0].rstrip(".!?:")
        title = title if len(title) <= 120 else " ".join(title[:117].split()[:-1]) + " …"
    budget = finance.parse_amount(idea.budget)
    months = idea.duration_months
    if months is not None and not (isinstance(months, int) and 1 <= months <= 120):
        raise UsageError(f"Laufzeit {months!r} ist ungültig (1–120 Monate)", f"duration {months!r} invalid (1–120 months)",
                         "--duration 18")
    idea.title, idea.description, idea.city = title, description or title, (idea.city or "").strip()
    idea.department, idea.budget, idea.duration_months = (idea.department or "").strip(), budget, months
    idea.programme_id = idea.programme_id or None
    return idea


def find_programme(programme_id: str, settings: Settings, programmes: list[Programme] | None = None) -> Programme:
    """The programme by id, from the same files the funding finder reads (funding.load_all)."""
    if programmes is None:
        from ..funding.finder import load_all
        programmes = load_all(settings)[0]
    for p in programmes:
        if p.id == programme_id:
            return p
    ids = ", ".join(sorted(p.id for p in programmes)) or "keine"
    raise UsageError(f"Unbekanntes Förderprogramm {programme_id!r}. Vorhanden: {ids}",
                     f"unknown funding programme {programme_id!r}. Available: {ids}", "pilot-assistant funding list")


# ----------------------------------------------------------------------------- retrieval


def programme_chunks(programme: Programme) -> list[Chunk]:
    """The programme's own text as passages, for when its file is not in the index."""
    out = []
    for i, part in enumerate(p.strip() for p in re.split(r"\n(?=#{1,3} )", programme.body)):
        if len(part) >= 40:
            out.append(Chunk(chunk_id=f"programme:{programme.id}:{i}", doc_id=f"programme:{programme.id}",
                             text=part, source=programme.path, title=programme.name, type="funding",
                             section=part.splitlines()[0].lstrip("# ").strip()))
    return out


def _guideline_source(programme: Programme, store) -> str | None:
    """The indexed copy of the programme's file (matched by name: the corpus may live anywhere)."""
    name = Path(programme.path).name
    return next((r.source for r in store.documents() if r.type == "funding" and Path(r.source).name == name), None)


def substantive(text: str) -> bool:
    """Worth a place in a prompt: not a bare link list or a one-line stub."""
    return len(re.sub(r"https?://\S+|[#*\-\s]+", " ", text).strip()) >= 80


def gather(queries: list[str], source_types: list[str], settings: Settings, store, *,
           programme: Programme | None = None, guideline: str | None = None, indexed: bool = True,
           collections: list[str] | None = None) -> list[Hit]:
    """One ranking per (source type, query), fused by RRF; at most PER_DOC passages per document.
    ``collections``: only these (the collections the drafting person may read); None = all.

    Each query is embedded once for all source types (embedding is the slow step on a busy
    2-core machine), which is why this fuses per query with retrieval.fuse, not retrieval.search."""
    from ..index.embeddings import embed_query

    rankings: list[list[str]] = []
    own: dict[str, Chunk] = {}
    similarity: dict[str, float] = {}
    kinds = [k for k in source_types if indexed or (k == "funding" and programme is not None)]
    use_index = indexed and any(not (k == "funding" and programme is not None and guideline is None) for k in kinds)
    vectors = [embed_query(q) for q in queries] if use_index else []   # lock + per-call threads
    for kind in kinds:
        for q, vec in zip(queries, vectors if use_index else [None] * len(queries)):
            if kind == "funding" and programme is not None and guideline is None:
                q_stems = T.stems(q)   # guideline not indexed: rank the programme's own text
                chunks = sorted(programme_chunks(programme), key=lambda c: -len(q_stems & T.stems(c.text)))[:8]
                own.update((c.chunk_id, c) for c in chunks)
                rankings.append([c.chunk_id for c in chunks])
                continue
            filters = Filters(source=guideline) if kind == "funding" and guideline else Filters(type=kind)
            filters.collection = collections
            fused, dense, _ = retrieval.fuse(q, vec, store, filters.resolve(store), settings.retrieval.candidates,
                                             settings.retrieval.rrf_k, settings.retrieval.lexical_decisive)
            rankings.append([cid for cid, _ in fused[:8]])
            for cid, dist in dense:
                similarity[cid] = max(similarity.get(cid, 0.0), 1.0 - dist)
    fused = retrieval.rrf(rankings, k=settings.retrieval.rrf_k)
    stored = {c.chunk_id: c for c in store.get_chunks([cid for cid, _ in fused if cid not in own])} if indexed else {}
    out: list[Hit] = []
    per_doc: dict[str, int] = {}
    for cid, score in fused:
        c = own.get(cid) or stored.get(cid)
        if c is None or per_doc.get(c.doc_id, 0) >= PER_DOC or not substantive(c.text):
            continue
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
        out.append(Hit(chunk=c, score=score, rank=len(out) + 1, similarity=similarity.get(cid)))
        if len(out) >= settings.retrieval.k:
            break
    return out


def project_terms(idea: Idea) -> set[str]:
    """The distinctive words of the project (title, goal, idea, target group)."""
    return T.stems(f"{idea.title} {idea.goal} {idea.target_group} {idea.description[:400]}") - GENERIC


def relevant_hits(hits: list[Hit], terms: set[str], *, keep: set[str] = frozenset(),
                  topic: set[str] = frozenset(), programme_source: str | None = None) -> list[Hit]:
    """Evidence about this project: a passage must share MIN_SHARED distinctive project words
    (one if the project has few). Always kept: the programme's own guideline and the profile's
    related council papers (``keep``: doc ids). The city's own council papers also count when
    they are squarely on the section's topic (``topic``: its query words), e.g. the council's
    answer on IT security for the section on IT security; other cities' reports do not."""
    need = min(MIN_SHARED, max(1, len(terms) // 3))
    out = []
    for h in hits:
        words = T.stems(f"{h.chunk.title} {h.chunk.section} {h.chunk.text}")
        if h.chunk.doc_id in keep or h.chunk.doc_id.startswith("programme:") or \
                (programme_source and h.chunk.source == programme_source):
            out.append(h)
        elif len(terms & words) >= need:
            out.append(h)
        elif h.chunk.type == "council" and len(topic & words) >= 3:
            out.append(h)
    return out


def related_chunks(store, papers: list[str], collections: list[str] | None = None) -> list[Chunk]:
    """The first passages of the council papers the profile names (by Drucksachen-Nr.), from
    ``collections`` only (None: all)."""
    if not papers:
        return []
    wanted = {re.sub(r"\D", "", p) for p in papers if re.sub(r"\D", "", p)}
    out: dict[str, Chunk] = {}
    for r in store.documents():
        if r.type != "council" or collections is not None and r.collection not in collections:
            continue
        chunks = [c for c in _doc_chunks(store, r.doc_id)]
        number = next((c.paper_number for c in chunks if c.paper_number), "") or Path(r.source).name[:9]
        if re.sub(r"\D", "", number) in wanted and chunks:
            out.setdefault(r.doc_id, chunks[0])
            if len(chunks) > 1:
                out.setdefault(r.doc_id + "#2", chunks[1])
    return list(out.values())


def _doc_chunks(store, doc_id: str) -> list[Chunk]:
    import json

    rows = store.db.execute("SELECT data FROM chunks WHERE doc_id=? ORDER BY chunk_index LIMIT 3", (doc_id,))
    return [Chunk(**json.loads(data)) for (data,) in rows]


# ----------------------------------------------------------------------------- generation


def build_messages(prompt: prompts.Prompt, project: str, facts: str, texts: list[str], hits: list[Hit],
                   tsec: templates.TemplateSection, language: str, idea: Idea, programme: Programme | None) -> list:
    en = language == "en" and "system_en" in prompt.parts
    blocks = []
    for n, (text, hit) in enumerate(zip(texts, hits), start=1):
        page = f' seite="{hit.chunk.page}"' if hit.chunk.page else ""
        title = hit.chunk.title + (f" (Drucksache {hit.chunk.paper_number})" if hit.chunk.paper_number else "")
        blocks.append(prompt["source"].format(n=n, title=passages.clean(title), page=page, text=text))
    user = prompt["user_en" if en else "user"].format(
        project=project, facts=(facts if tsec.facts else "") or prompt["no_facts"], sources="\n".join(blocks) or prompt["no_sources"],
        heading=tsec.heading, word_limit=tsec.word_limit, purpose=fill(tsec.purpose, idea, programme),
        guidance=fill(tsec.guidance, idea, programme), language=prompt.parts.get(f"language_{language}", ""))
    return [SystemMessage(prompt["system_en" if en else "system"]), HumanMessage(user)]


def _limited(chat_model, max_tokens: int):
    """The same model with a per-section output budget (embedded: max_tokens, Ollama: num_predict)."""
    for attr in ("max_tokens", "num_predict"):
        if attr in getattr(type(chat_model), "model_fields", {}):
            return chat_model.model_copy(update={attr: max_tokens})
    return chat_model


# ----------------------------------------------------------------------------- runs

Progress = Callable[[DraftEvent], None]


def _template_of(draft: Draft, settings: Settings) -> templates.Template:
    """The template as it was when the draft began: a later edit of the YAML cannot reshuffle it."""
    if draft.template_snapshot:
        return templates.from_dict(draft.template_snapshot, f"{draft.template}@{draft.template_version}")
    return templates.load_template(draft.template, settings)


def programme_label(programme: Programme | None, language: str) -> str:
    """The programme's name; in an English document its short name (the part before a German subtitle)."""
    if programme is None:
        return ""
    return programme.name.split(" – ")[0].strip() if language == "en" else programme.name


def _programme_of(draft: Draft, settings: Settings, programmes: list[Programme] | None) -> Programme | None:
    return find_programme(draft.programme_id, settings, programmes) if draft.programme_id else None


def call_requirements(call: str, settings: Settings, store=None) -> tuple[str, list[Requirement]]:
    """An uploaded call in the index (file name or path) -> its source and requirement sentences with pages."""
    from . import checklist

    with open_store(settings, store) as st:
        matches = [r for r in st.documents() if r.source == call or Path(r.source).name == Path(call).name]
        if not matches:
            raise UsageError(f"Aufruf {call!r} ist nicht indexiert", f"call {call!r} is not indexed",
                             f"pilot-assistant ingest {call} --type funding")
        doc = matches[0]
        import json

        rows = st.db.execute("SELECT data FROM chunks WHERE doc_id=? ORDER BY chunk_index", (doc.doc_id,))
        chunks = [Chunk(**json.loads(data)) for (data,) in rows]
    items = checklist.call_items(chunks)
    if not items:
        raise UsageError(f"Im Aufruf {Path(doc.source).name} stehen keine erkennbaren Anforderungen",
                         f"no requirements found in {Path(doc.source).name}", "Programm mit --programme wählen")
    return doc.source, items


def start_draft(idea: Idea, template_name: str, settings: Settings, *, programme_id: str | None = None,
                today: dt.date | None = None, programmes: list[Programme] | None = None, owner: str = "",
                call: str | None = None, store=None) -> Draft:
    """Create and save a draft with its computed parts; no section is generated yet. ``call``:
    an uploaded call (indexed document) whose requirements and criteria join the checklist."""
    idea = check_idea(idea)
    template = templates.load_template(template_name, settings)
    programme_id = programme_id or idea.programme_id
    programme = find_programme(programme_id, settings, programmes) if programme_id else None
    idea.programme_id = programme.id if programme else None
    today = today or dt.date.today()
    draft = Draft(id=record.new_id(idea.title, today), template=template.name, template_version=template.version,
                  template_title=template.title, language=template.language, idea=idea,
                  sections=[Section(id=s.id, heading=s.heading, level=s.level, kind=s.kind, word_limit=s.word_limit)
                            for s in template.sections],
                  programme_id=idea.programme_id, programme_name=programme_label(programme, template.language),
                  model=llm.model_label(settings), prompt=prompts.load("draft").id, created=record.now(),
                  template_snapshot=template.to_dict(), owner=owner)
    if call:
        draft.call, draft.call_items = call_requirements(call, settings, store)
    refresh(draft, template, programme, today)
    record.save(draft, settings.drafts_dir)
    return draft


def run_sections(draft: Draft, settings: Settings, *, section_ids: list[str] | None = None, chat_model=None,
                 store=None, today: dt.date | None = None, programmes: list[Programme] | None = None,
                 collections: list[str] | None = None, user: str = "") -> Iterator[DraftEvent]:
    """Generate the given sections (default: every pending or failed one), saving after each.
    ``collections`` limits the sources to those collections (the person's readable ones).

    Yields events for progress and streaming; raises DraftInterrupted (draft saved) when a
    section fails."""
    template = _template_of(draft, settings)
    programme = _programme_of(draft, settings, programmes)
    refresh(draft, template, programme, today or dt.date.today())
    wanted = set(section_ids) if section_ids is not None else None
    todo = []
    for s in draft.sections:
        tsec = template.section(s.id)
        if tsec is not None and tsec.generates and (s.id in wanted if wanted is not None
                                                     else s.status in ("pending", "failed")):
            todo.append(s)
    record.save(draft, settings.drafts_dir)
    if not todo:
        return
    prompt = prompts.load("draft")
    draft.model, draft.prompt = llm.model_label(settings), prompt.id
    with open_store(settings, store) as store:
        indexed = store.stats()["chunks"] > 0
        if not indexed and "Keine Unterlagen indexiert" not in " ".join(draft.warnings):
            draft.warnings.append("Keine Unterlagen indexiert: Abschnitte ohne Quellen (pilot-assistant ingest corpus/).")
        guideline = _guideline_source(programme, store) if programme and indexed else None
        project, facts = project_block(draft.idea, draft.language), facts_lines(
            draft.idea, draft.facts, (draft.financing or {}).get("notes") or [])
        allowed = allowed_text(draft)
        terms = project_terms(draft.idea)
        related = related_chunks(store, draft.idea.related_papers, collections) if indexed else []
        for i, sec in enumerate(todo, 1):
            yield DraftEvent("section_start", draft, sec.id, i, len(todo))
            tsec = template.section(sec.id)
            t0 = time.perf_counter()
            try:
                hits, queries = evidence(draft, tsec, programme, settings, store, guideline, indexed, related, terms,
                                  collections)
                texts, dropped = passages.select(
                    hits, " ".join(queries), total=min(CONTEXT_CHARS, settings.retrieval.context_chars),
                    per_passage=min(CONTEXT_PER_PASSAGE, settings.retrieval.context_chars_per_passage))
                hits = [h for h, p in zip(hits, texts) if p]
                texts = [p for p in texts if p]
                messages = build_messages(prompt, project, facts, texts, hits, tsec, draft.language,
                                          draft.idea, programme)
                chat_model = chat_model or llm.get_chat_model(settings)
                budget = min(settings.llm.max_tokens, int(tsec.word_limit * TOKENS_PER_WORD) + 24)
                t1, first, raw, pieces = time.perf_counter(), None, "", 0
                for piece in llm.stream_text(_limited(chat_model, budget), messages):
                    first = first or time.perf_counter()
                    raw, pieces = raw + piece, pieces + 1
                    yield DraftEvent("token", draft, sec.id, i, len(todo), piece)
                t2 = time.perf_counter()
            except Exception as exc:   # the model, the index or the disk: keep what is done
                sec.status, sec.error, sec.updated = "failed", str(exc), record.now()
                record.save(draft, settings.drafts_dir)
                raise DraftInterrupted(draft, sec, exc) from exc
            # llama.cpp streams one token per piece: reaching the budget means the text was cut off
            finish_section(sec, tsec, raw, hits, f"{project}\n{facts}", dropped, truncated=pieces >= budget - 1)
            check_section(sec, {h.chunk.chunk_id: h.chunk.text for h in hits}, allowed, draft.language,
                          project, draft.idea.duration_months, task=f"{tsec.purpose}\n{tsec.guidance}",
                          titles=[h.chunk.title for h in hits])
            if draft.language == "de" and tsec.source_types:
                quotes.add_quotes(sec, hits, queries[0], terms, topic=section_topic(tsec),
                                  related={c.doc_id for c in related})
            if sec.status == "failed" and (sec.removed or sec.text):
                sec.status, sec.error = "drafted", ""   # nothing of the model's survived: flagged for the author
            add_beschlusslage(sec, draft.idea, settings, store)   # decisions on the papers the idea cites
            review.record_change(draft, sec, user or draft.owner, "generated" if not sec.history else "regenerated")
            sec.model, sec.prompt, sec.seconds = draft.model, prompt.id, round(time.perf_counter() - t0, 2)
            sec.timings = {"retrieval_s": round(t1 - t0, 2), "first_token_s": round((first or t2) - t1, 2),
                           "generation_s": round(t2 - (first or t2), 2)}
            draft.requirements = check_requirements(programme, template, sections=draft.sections,
                                                    language=draft.language, marks=_marks(draft),
                                                    call_items=draft.call_items)
            record.save(draft, settings.drafts_dir)
            yield DraftEvent("section_done", draft, sec.id, i, len(todo))


def _marks(draft: Draft) -> dict[str, str]:
    return {r.text: r.status for r in draft.requirements if r.note.startswith("von Hand gesetzt")}


def evidence(draft: Draft, tsec: templates.TemplateSection, programme: Programme | None, settings: Settings, store,
             guideline: str | None, indexed: bool, related: list[Chunk], terms: set[str],
             collections: list[str] | None = None) -> tuple[list[Hit], list[str]]:
    """Passages about this project for one section: the section's queries filled from the
    profile plus the project itself, the profile's related council papers first, then only
    what shares the project's distinctive words."""
    idea = draft.idea
    project_query = " ".join(x for x in (idea.title, idea.goal) if x) or idea.description[:200]
    queries = list(dict.fromkeys([q for q in (fill(q, idea, programme) for q in tsec.queries) if q.strip()]
                                 + [project_query]))
    hits = gather(queries, tsec.source_types, settings, store, programme=programme, guideline=guideline,
                  indexed=indexed, collections=collections)
    keep = {c.doc_id for c in related}
    if related and "council" in tsec.source_types:
        seen = {h.chunk.chunk_id for h in hits}
        hits = [Hit(chunk=c, score=1.0, rank=0) for c in related if c.chunk_id not in seen] + hits
    hits = relevant_hits(hits, terms, keep=keep, topic=section_topic(tsec), programme_source=guideline)[: settings.retrieval.k]
    for n, h in enumerate(hits, 1):
        h.rank = n
    return hits, queries


def section_topic(tsec: templates.TemplateSection) -> set[str]:
    """The words of a section's queries that are not the project's placeholders (Datenschutz,
    IT-Sicherheit for the section on data protection)."""
    return T.stems(" ".join(re.sub(r"\{\w+\}", " ", q) for q in tsec.queries)) - GENERIC


_LABEL_LINE = re.compile(r"^\s*[-*•]?\s*[^.!?\n]{0,60}:\s*(?:\[\d+\])*\s*$")


def check_section(sec: Section, texts: dict[str, str], allowed: str, language: str, project: str,
                  months: int | None, *, task: str = "", titles: list[str] | None = None) -> None:
    """verify.py over a finished section: failing sentences out (kept for the author), and
    for an English section every German sentence too."""
    passages_ = [texts.get(r.chunk_id, r.quote) for r in sec.cited]
    v = verify.check_text(sec.text, passages_, allowed, language=language, profile=project, months=months,
                          task=task, titles=titles)
    removed = list(v.removed)
    text = v.text
    if language != "de":
        foreign = verify.foreign_sentences(text, language)
        for f in foreign:
            text = text.replace(f, "").strip()
            removed.append(f"{citations.CITE.sub('', f)} — nicht in der Sprache der Vorlage")
        text = re.sub(r"[ \t]{2,}", " ", text)
    # label lines left without their sentences ("KPIs:", "Nutzen für die Zielgruppe [1]:") say nothing
    text = "\n".join(ln for ln in text.splitlines() if not _LABEL_LINE.match(ln))
    # sources no longer cited by any kept sentence move to "consulted"
    used = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    if used != {r.n for r in sec.cited}:
        keep = [r for r in sec.cited if r.n in used]
        mapping = {r.n: i for i, r in enumerate(keep, 1)}
        text = citations.CITE.sub(lambda m: "".join(f" [{mapping[int(x)]}]" for x in re.split(r"\s*[,;]\s*", m.group(1))
                                                      if int(x) in mapping), text)
        for r in sec.sources:
            r.n = mapping.get(r.n, 0)
        sec.sources.sort(key=lambda r: (r.n == 0, r.n))
    sec.text = re.sub(r"\n{3,}", "\n\n", text).strip()
    sec.removed = removed
    if removed:
        sec.warnings.append(f"{len(removed)} Sätze entfernt (nicht durch Steckbrief oder zitierte Quelle gedeckt); "
                            "siehe „Entfernte Sätze“.")
    sec.warnings = [w for w in sec.warnings if not w.startswith("Zahlen ohne Beleg")]


def _consume(events: Iterator[DraftEvent], progress: Progress | None) -> None:
    for event in events:
        if progress:
            progress(event)


def draft(idea: Idea, template_name: str, settings: Settings, *, programme_id: str | None = None,
          progress: Progress | None = None, today: dt.date | None = None, chat_model=None, store=None,
          programmes: list[Programme] | None = None) -> Draft:
    """A whole draft: create, generate every section, save. See run_sections for failures."""
    d = start_draft(idea, template_name, settings, programme_id=programme_id, today=today, programmes=programmes)
    _consume(run_sections(d, settings, chat_model=chat_model, store=store, today=today, programmes=programmes),
             progress)
    return d


def load_draft(draft_id: str, settings: Settings) -> Draft:
    return record.load(draft_id, settings.drafts_dir)


def list_drafts(settings: Settings, owner: str | None = None) -> list[dict]:
    """Saved drafts, newest first; with ``owner`` only that person's."""
    return [d for d in record.summaries(settings.drafts_dir) if owner is None or d["owner"] == owner]


def resume_draft(draft_id: str, settings: Settings, *, progress: Progress | None = None, today: dt.date | None = None,
                 chat_model=None, store=None, programmes: list[Programme] | None = None) -> Draft:
    """Continue a draft: generate the sections that are pending or failed; the rest stay."""
    d = load_draft(draft_id, settings)
    _consume(run_sections(d, settings, chat_model=chat_model, store=store, today=today, programmes=programmes),
             progress)
    return d


def regenerate_section(draft_id: str, section_id: str, settings: Settings, *, progress: Progress | None = None,
                       today: dt.date | None = None, chat_model=None, store=None,
                       programmes: list[Programme] | None = None) -> Draft:
    """Generate one section again (even an approved or edited one: the user asked for it)."""
    d = load_draft(draft_id, settings)
    d.section(section_id)   # unknown id -> clear error
    _consume(run_sections(d, settings, section_ids=[section_id], chat_model=chat_model, store=store, today=today,
                          programmes=programmes), progress)
    return d


def regenerate_all(draft_id: str, settings: Settings, *, progress: Progress | None = None,
                   today: dt.date | None = None, chat_model=None, store=None,
                   programmes: list[Programme] | None = None, user: str = "") -> Draft:
    """Generate every section again except those already reviewed or released."""
    d = load_draft(draft_id, settings)
    ids = [s.id for s in d.sections if s.review == "entwurf"]
    _consume(run_sections(d, settings, section_ids=ids, chat_model=chat_model, store=store, today=today,
                          programmes=programmes, user=user), progress)
    return d


def edit_section(draft_id: str, section_id: str, text: str, settings: Settings, user: str = "") -> Draft:
    """Replace a section's text by hand; its sources stay listed, numbers it cites must exist.
    The editor becomes the section's author and its review starts again."""
    d = load_draft(draft_id, settings)
    sec = d.section(section_id)
    sec.text, sec.status, sec.error, sec.updated = (text or "").strip(), "edited", "", record.now()
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", sec.text)}
    missing = sorted(cited - {s.n for s in sec.cited})
    sec.warnings = [f"Quellennummern ohne Quelle in diesem Abschnitt: {', '.join(map(str, missing))}"] if missing else []
    review.record_change(d, sec, user or d.owner, "edited")
    template = _template_of(d, settings)
    d.requirements = check_requirements(_programme_of(d, settings, None), template, sections=d.sections,
                                        language=d.language, marks=_marks(d), call_items=d.call_items)
    record.save(d, settings.drafts_dir)
    return d


def review_section(draft_id: str, section_id: str, status: str, user: str, settings: Settings,
                   comment: str = "") -> Draft:
    """Four-eyes review of one section (review.py): geprüft / freigegeben by a second person."""
    d = load_draft(draft_id, settings)
    review.set_review(d, section_id, status, user, comment)
    record.save(d, settings.drafts_dir)
    return d


def release_all(draft_id: str, user: str, settings: Settings, comment: str = "") -> tuple[Draft, list[str]]:
    """Review and release every section ``user`` did not write themself."""
    d = load_draft(draft_id, settings)
    done = review.release_all(d, user, comment)
    record.save(d, settings.drafts_dir)
    return d, done


def comment_section(draft_id: str, section_id: str, user: str, text: str, settings: Settings) -> Draft:
    d = load_draft(draft_id, settings)
    review.add_comment(d, section_id, user, text)
    record.save(d, settings.drafts_dir)
    return d


def mark_requirement(draft_id: str, index: int, status: str, settings: Settings, note: str = "") -> Draft:
    """Set a checklist item by hand (e.g. n/a: the call's lot does not apply to this project)."""
    if status not in ("met", "open", "n/a"):
        raise UsageError(f"Unbekannter Status {status!r} (met, open, n/a)", f"unknown status {status!r}", "n/a")
    d = load_draft(draft_id, settings)
    if not 0 <= index < len(d.requirements):
        raise UsageError(f"Anforderung {index + 1} gibt es nicht (1–{len(d.requirements)})",
                         f"no requirement {index + 1}", "Nummer aus der Checkliste nehmen")
    r = d.requirements[index]
    r.status, r.note = status, "von Hand gesetzt" + (f": {note}" if note else "")
    record.save(d, settings.drafts_dir)
    return d


def approve_section(draft_id: str, section_id: str, settings: Settings, approved: bool = True,
                    user: str = "") -> Draft:
    """Kept for scripts: ``approved`` = reviewed (geprüft) by ``user``; False sends it back."""
    return review_section(draft_id, section_id, "geprueft" if approved else "entwurf", user, settings)
