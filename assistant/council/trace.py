"""A procedure as a timeline: which papers belong together, and what happened to them when.

Papers are nodes, keyed by their normalised number within a municipality. They belong to
one procedure when a strong link joins them (a minutes' agenda item deciding a paper, a
"Bezug:" line, an answer to a question, a paper fulfilling a motion's mandate, a report
on a resolution, OParl's related/super-/subordinated papers). Minutes join the papers they
decide but never two procedures that happened to share a meeting. Mere mentions are listed
as related, not merged. Every step cites a file and a page.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import text as T
from ..config import Settings
from ..errors import UserError
from .extract import STRONG
from .mapping import Obj, day, ids
from .procedures import Doc, Model, open_model, scope_of
from .references import find_refs, looks_like_ref, normalize, object_stems, overlap

MAX_NODES = 200
KIND_WORDS = frozenset(T.stem(w) for w in T.tokens(
    "antrag anträge vorlage beschlussvorlage anfrage antwort beschluss niederschrift protokoll drucksache mitteilung "
    "vorgang ratsvorgang verfahren stand verlauf"))
RANK = {"paper": 0, "consultation": 1, "decision": 2}
PRIORITY = {"oparl": 0, "minutes": 1, "prose": 2, "plan": 3}


@dataclass
class Step:
    date: str
    kind: str                   # the paper's type ("Antrag", …) or "Beratung" / "Beschluss"
    organization: str
    reference: str              # the paper this step is about
    title: str                  # title of the cited document
    result: str
    source: str                 # the cited file
    page: int | None
    doc_id: str = ""
    document: str = ""          # number of the cited document (the minutes' own number), "" if it has none
    agenda_item: str = ""
    role: str = ""              # vorberatend, beschließend, … (as planned)
    quote: str = ""
    category: str = "paper"     # paper | consultation | decision | candidate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Related:
    reference: str
    title: str
    date: str
    kind: str
    relation: str               # why it is related: "erwähnt", "verweist auf …"
    source: str
    page: int | None
    doc_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trace:
    query: str
    reference: str = ""
    title: str = ""
    steps: list[Step] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)
    candidates: list[Step] = field(default_factory=list)
    papers: list[str] = field(default_factory=list)   # the numbers in the procedure

    @property
    def ambiguous(self) -> bool:
        return bool(self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "reference": self.reference, "title": self.title, "papers": self.papers,
                "steps": [s.to_dict() for s in self.steps], "related": [r.to_dict() for r in self.related],
                "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class Node:
    scope: str
    norm: str
    reference: str
    title: str
    paper_type: str
    category: str
    date: str
    organization: str
    source: str
    page: int | None
    doc_id: str
    url: str = ""
    docs: list[Doc] = field(default_factory=list)
    oparl: list[Obj] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.scope, self.norm)


# --- nodes ---------------------------------------------------------------------------------------

def body_scope(model: Model, body_id: str, cache: dict) -> str:
    if body_id not in cache:
        body = model.get(body_id) or {}
        cache[body_id] = scope_of(str(body.get("name") or body.get("shortName") or ""))
    return cache[body_id]


def names(model: Model, value: Any) -> str:
    out = []
    for oid in ids(value):
        obj = model.get(oid) or {}
        name = str(obj.get("name") or obj.get("shortName") or "").strip()
        if name:
            out.append(name)
    return ", ".join(dict.fromkeys(out))


def nodes_for(model: Model, norm: str, scope: str | None = None) -> list[Node]:
    """The papers with this number: one per municipality (None: any)."""
    bodies: dict = {}
    groups: dict[str, tuple[list[Doc], list[Obj]]] = {}
    for d in model.docs("norm=?", (norm,)):
        if scope is None or d.scope == scope:
            groups.setdefault(d.scope, ([], []))[0].append(d)
    for paper, body in model.papers(norm):
        s = body_scope(model, body, bodies)
        if scope is None or s == scope:
            groups.setdefault(s, ([], []))[1].append(paper)
    return [_node(model, s, norm, docs, papers) for s, (docs, papers) in sorted(groups.items())]


def _node(model: Model, scope: str, norm: str, docs: list[Doc], papers: list[Obj]) -> Node:
    main = sorted(docs, key=lambda d: (d.file_role not in ("main", ""), d.source))[0] if docs else None
    paper = papers[0] if papers else {}
    if paper and main is None:   # an OParl paper whose file is not (yet) indexed
        main_file = model.get(next(iter(ids(paper.get("mainFile"))), None)) or {}
        source, page, doc_id = str(main_file.get("_source") or paper.get("web") or paper["id"]), None, ""
    else:
        source, page, doc_id = main.source, main.first_page, main.doc_id
    origin = names(model, paper.get("originatorOrganization")) or names(model, paper.get("originatorPerson")) \
        or names(model, paper.get("underDirectionOf")) if paper else ""
    return Node(scope=scope, norm=norm,
                reference=str(paper.get("reference") or (main.reference if main else norm)),
                title=str(paper.get("name") or (main.title if main else "")),
                paper_type=str(paper.get("paperType") or (main.paper_type if main else "Drucksache")),
                category=main.category if main else "paper",
                date=day(paper.get("date")) or (main.date if main else ""),
                organization=origin or (main.organization or main.committee if main else ""),
                source=source, page=page, doc_id=doc_id,
                url=str(paper.get("web") or (main.url if main else "")), docs=docs, oparl=papers)


# --- the procedure -------------------------------------------------------------------------------

def procedure(model: Model, start: Node) -> list[Node]:
    """``start`` and every paper strongly linked to it (breadth first, bounded)."""
    seen: dict[tuple[str, str], Node] = {start.key: start}
    queue: list[tuple[Node, bool]] = [(start, True)]
    while queue and len(seen) < MAX_NODES:
        node, fan_out = queue.pop(0)
        for scope, norm, fans in _neighbours(model, node, fan_out):
            if (scope, norm) in seen:
                continue
            found = nodes_for(model, norm, scope) or nodes_for(model, norm)
            if len(found) == 1:
                seen[found[0].key] = found[0]
                queue.append((found[0], fans))
    return list(seen.values())


def _neighbours(model: Model, node: Node, fan_out: bool) -> list[tuple[str, str, bool]]:
    out = []
    sources = [d.source for d in node.docs]
    if sources and (node.category != "minutes" or fan_out):
        marks = ",".join("?" * len(sources))
        for row in model.rows(f"SELECT norm, relation FROM links WHERE source IN ({marks})", tuple(sources)):
            if row["relation"] in STRONG:
                out.append((node.scope, row["norm"], True))
    for row in model.rows("SELECT l.relation, d.scope, d.norm, d.category FROM links l JOIN docs d ON d.source=l.source "
                          "WHERE l.norm=? AND d.norm IS NOT NULL", (node.norm,)):
        if row["relation"] in STRONG and row["scope"] == node.scope:
            out.append((row["scope"], row["norm"], not (row["category"] == "minutes" and row["relation"] == "decides")))
    bodies: dict = {}
    for paper in node.oparl:
        for other in model.related_papers(paper["id"]):
            obj = model.get(other)
            if obj and obj.get("reference"):
                norm = normalize(str(obj["reference"])) or T.fold(str(obj["reference"]))
                out.append((body_scope(model, str(obj.get("body") or ""), bodies) or node.scope, norm, True))
    return out


# --- steps ---------------------------------------------------------------------------------------

def _merge(steps: list[tuple[str, Step]]) -> list[Step]:
    """Several sources on one consultation (the plan, the minutes, a later paper recalling it,
    OParl): one step, the best source cited, empty fields filled from the others."""
    groups: list[list[tuple[str, Step]]] = []
    for origin, s in sorted(steps, key=lambda x: PRIORITY.get(x[0], 9)):
        for g in groups:
            first = g[0][1]
            if first.reference == s.reference and first.date == s.date and _same_body(first.organization,
                                                                                      s.organization):
                g.append((origin, s))
                break
        else:
            groups.append([(origin, s)])
    out = []
    for g in groups:
        best = g[0][1]
        for _, other in g[1:]:
            for name in ("result", "agenda_item", "role", "organization", "quote"):
                if not getattr(best, name) and getattr(other, name):
                    setattr(best, name, getattr(other, name))
            if not best.page and other.page and other.source:
                best.source, best.page, best.doc_id, best.title = other.source, other.page, other.doc_id, other.title
                best.document = other.document
        if any(s.category == "decision" for _, s in g) and best.result:
            best.kind, best.category = "Beschluss", "decision"
        out.append(best)
    return out


def _same_body(a: str, b: str) -> bool:
    a, b = T.fold(a), T.fold(b)
    if not a or not b or a in b or b in a:
        return True
    return overlap(object_stems(a) or set(T.stems(a)), set(T.stems(b))) >= 0.5


def _text_events(model: Model, nodes: dict[str, Node], minutes: set[str]) -> list[tuple[str, Step]]:
    if not nodes:
        return []
    marks = ",".join("?" * len(nodes))
    rows = model.rows("SELECT e.*, d.reference AS doc_ref, d.title AS doc_title, d.doc_id, d.scope, d.category AS "
                      "doc_cat, d.oparl_paper, d.oparl_meeting FROM events e JOIN docs d ON d.source=e.source "
                      f"WHERE e.norm IN ({marks})", tuple(nodes))
    out = []
    for r in rows:
        node = nodes.get(r["norm"])
        if node is None or r["scope"] != node.scope or r["norm"] in minutes:
            continue
        if r["oparl_paper"] or r["oparl_meeting"]:
            continue   # OParl's own consultations say it (and a deleted agenda item must vanish)
        decision = r["kind"] == "Beschluss"
        out.append((r["origin"], Step(date=r["date"], kind=r["kind"], organization=r["organization"],
                                      reference=node.reference, title=r["doc_title"], result=r["result"],
                                      source=r["source"], page=r["page"], doc_id=r["doc_id"],
                                      document=r["doc_ref"] or "", agenda_item=r["agenda_item"], role=r["role"],
                                      quote=r["quote"], category="decision" if decision else "consultation")))
    return out


def _oparl_events(model: Model, node: Node, store) -> list[tuple[str, Step]]:
    out = []
    for paper in node.oparl:
        for cons in model.children("Consultation", paper["id"]):
            item_id = next(iter(ids(cons.get("agendaItem"))), None)
            item = model.get(item_id) if item_id else None
            if item_id and item is None:
                continue   # its agenda item was deleted
            meeting = model.get(next(iter(ids(cons.get("meeting"))), None) or
                                (next(iter(ids(item.get("meeting"))), None) if item else None))
            if meeting is None:
                continue
            org = names(model, cons.get("organization")) or names(model, meeting.get("organization"))
            role = str(cons.get("role") or "")
            decision = bool(cons.get("authoritative")) or bool(re.search(r"beschl|entscheid", role, re.I))
            label = f"TOP {item['number']}" if item and item.get("number") else ""
            source, doc_id, title, page = meeting_file(model, meeting, item, store, label, node.reference)
            if not source:   # no protocol yet: the paper itself, whose consultation list OParl gives
                source, doc_id, page, title = node.source, node.doc_id, node.page, str(meeting.get("name") or "")
            result = str((item or {}).get("result") or "")
            out.append(("oparl", Step(date=day(meeting.get("start")), kind="Beschluss" if decision and result else
                                      "Beratung", organization=org, reference=node.reference,
                                      title=title or str(meeting.get("name") or ""), result=result, source=source,
                                      page=page, doc_id=doc_id, agenda_item=label, role=role,
                                      quote=str((item or {}).get("resolutionText") or (item or {}).get("name") or ""),
                                      category="decision" if decision and result else "consultation")))
    return out


def meeting_file(model: Model, meeting: Obj, item: Obj | None, store, label: str, reference: str):
    """The file that documents an agenda item (its resolution file, else the protocol, else the
    invitation) and the page naming the item or the paper."""
    candidates = ids((item or {}).get("resolutionFile")) + ids(meeting.get("resultsProtocol")) \
        + ids(meeting.get("verbatimProtocol")) + ids(meeting.get("invitation"))
    for fid in candidates:
        f = model.get(fid) or {}
        source = str(f.get("_source") or "")
        if not source:
            continue
        docs = model.docs("source=?", (source,))
        doc_id = docs[0].doc_id if docs else ""
        title = docs[0].title if docs else str(f.get("name") or "")
        return source, doc_id, title, find_page(store, doc_id, [label, reference]) if doc_id else None
    return "", "", "", None


def step_chunk(store, step: Step):
    """The indexed passage a step cites: on its page, the chunk that best carries its quote
    (else names its paper or agenda item); None when the file is not indexed."""
    if store is None or not step.doc_id:
        return None
    chunks = store.page_chunks(step.doc_id, step.page)
    if not chunks:
        return None
    want = T.stems(" ".join((step.quote, step.reference, step.agenda_item, step.result)))
    return max(chunks, key=lambda c: (len(want & T.stems(c.text)), -c.chunk_index))


def find_page(store, doc_id: str, needles: list[str]) -> int | None:
    """The first page of a document whose text names one of ``needles`` (else its first page)."""
    if store is None or not doc_id:
        return None
    pages = store.pages(doc_id)
    for needle in [n for n in needles if n]:
        pattern = re.compile(re.escape(needle).replace(r"\ ", r"\s*") + r"(?![\d.])")
        for p in pages:
            if pattern.search(store.page_text(doc_id, p)):
                return p
    return pages[0] if pages else None


def build(model: Model, start: Node, *, store=None, today: dt.date | None = None, query: str = "") -> Trace:
    today = today or dt.date.today()
    nodes = procedure(model, start)
    minutes = {n.norm for n in nodes if n.category == "minutes"}
    by_norm = {n.norm: n for n in nodes}
    events = _text_events(model, by_norm, minutes)
    for n in nodes:
        events += _oparl_events(model, n, store)
    merged = _merge(events)
    steps = [s for s in merged if s.date]
    decided_by = {s.document for s in steps if s.document}
    for n in nodes:
        if n.category == "minutes" and n.reference in decided_by:
            continue   # the minutes appear as the decisions they record
        steps.append(Step(date=n.date, kind=n.paper_type, organization=n.organization, reference=n.reference,
                          title=n.title, result="", source=n.source, page=n.page, doc_id=n.doc_id,
                          document=n.reference, quote=""))
    for s in steps:
        if s.category != "paper" and not s.result and s.date > today.isoformat():
            s.result = "geplant"
    steps.sort(key=lambda s: (s.date or "9999", RANK.get(s.category, 1)))
    main = min((n for n in nodes if n.category != "minutes"), key=lambda n: n.date or "9999", default=start)
    return Trace(query=query or start.reference, reference=main.reference, title=main.title, steps=steps,
                 related=_related(model, nodes), papers=[n.reference for n in nodes])


def _related(model: Model, nodes: list[Node], limit: int = 20) -> list[Related]:
    inside = {n.norm for n in nodes}
    scope = nodes[0].scope if nodes else ""
    out: dict[str, Related] = {}
    sources = [d.source for n in nodes for d in n.docs]
    if sources:
        marks = ",".join("?" * len(sources))
        for r in model.rows(f"SELECT norm, label, page FROM links WHERE source IN ({marks})", tuple(sources)):
            if r["norm"] in inside or r["norm"] in out:
                continue
            found = nodes_for(model, r["norm"], scope)
            n = found[0] if found else None
            out[r["norm"]] = Related(reference=n.reference if n else r["label"].split()[-1], title=n.title if n else
                                     "(nicht im Bestand)", date=n.date if n else "", kind=n.paper_type if n else "",
                                     relation="wird erwähnt", source=n.source if n else "",
                                     page=n.page if n else None, doc_id=n.doc_id if n else "")
    marks = ",".join("?" * len(inside))
    for r in model.rows(f"SELECT d.norm, d.reference, d.title, d.date, d.paper_type, d.source, d.doc_id, l.page, "
                        f"l.norm AS target FROM links l JOIN docs d ON d.source=l.source WHERE l.norm IN ({marks}) "
                        "AND d.norm IS NOT NULL", tuple(inside)):
        if r["norm"] in inside or r["norm"] in out:
            continue
        target = next((n.reference for n in nodes if n.norm == r["target"]), r["target"])
        out[r["norm"]] = Related(reference=r["reference"], title=r["title"], date=r["date"], kind=r["paper_type"],
                                 relation=f"verweist auf {target}", source=r["source"], page=r["page"],
                                 doc_id=r["doc_id"])
    return sorted(out.values(), key=lambda r: r.date or "9999")[:limit]


# --- finding the start ---------------------------------------------------------------------------

def _candidate(n: Node) -> Step:
    return Step(date=n.date, kind=n.paper_type, organization=n.organization, reference=n.reference, title=n.title,
                result="", source=n.source, page=n.page, doc_id=n.doc_id, document=n.reference,
                category="candidate")


def search(model: Model, query: str, limit: int = 10) -> list[Node]:
    """Papers whose title fits a topic best (all equally good ones), by content words."""
    # content words; short ones ("KI", "IT") count too, generic council words ("Ausschuss") do not
    wanted = (object_stems(query) | {s for s in T.stems(query) if len(s) <= 3 and not s.isdigit()}) - KIND_WORDS
    kinds = {s for s in T.stems(query) if s in KIND_WORDS}
    if not wanted:
        return []
    scored: dict[tuple[str, str], tuple[float, Node | None, Doc | Obj]] = {}
    for d in model.docs("norm IS NOT NULL"):
        score = overlap(wanted, T.stems(d.title)) + 0.01 * overlap(kinds, T.stems(d.title))
        if score > scored.get((d.scope, d.norm), (0.0,))[0]:
            scored[(d.scope, d.norm)] = (score, None, d)
    bodies: dict = {}
    for paper in model.all_of("Paper"):
        norm = normalize(str(paper.get("reference") or ""))
        if norm:
            key = (body_scope(model, str(paper.get("body") or ""), bodies), norm)
            score = overlap(wanted, T.stems(str(paper.get("name") or "")))
            if score > scored.get(key, (0.0,))[0]:
                scored[key] = (score, None, paper)
    best = max((s for s, _, _ in scored.values()), default=0.0)
    if best < 0.5:
        return []
    keys = [k for k, (s, _, _) in scored.items() if s >= best - 0.005]
    out = []
    for scope, norm in keys[: limit * 3]:
        out += nodes_for(model, norm, scope)
    return out


def resolve(model: Model, query: str) -> tuple[list[Node], str]:
    """Start papers for a query: a paper number, else a topic. Returns (nodes, how) with how
    'ref' or 'topic'; several nodes mean the query is ambiguous."""
    norm = looks_like_ref(query)
    if norm is None:
        refs = {r.norm for r in find_refs(query)}
        norm = next(iter(refs)) if len(refs) == 1 else None
    if norm is not None:
        return nodes_for(model, norm), "ref"
    return search(model, query), "topic"


def trace(query: str, settings: Settings, *, store=None, today: dt.date | None = None) -> Trace:
    """The procedure a paper number or topic names, as a timeline (see module docstring).

    Several matching papers of different procedures come back as ``candidates`` and no steps:
    the caller lists them, nothing is guessed."""
    query = (query or "").strip()
    if not query:
        raise UserError("Bitte eine Drucksachen-Nummer oder ein Thema angeben.", "Give a paper number or a topic.",
                        "z. B. pilot-assistant council trace 0087/2025")
    from ..index.store import open_store

    with open_store(settings, store) as st, open_model(settings, st) as model:
        nodes, how = resolve(model, query)
        if not nodes:
            what = "Drucksache" if how == "ref" else "Ratsvorgang zum Thema"
            raise UserError(f"{what} „{query}“ nicht gefunden.", f"No council paper found for '{query}'.",
                            "Nummer prüfen (z. B. 0087/2025) oder Ratsunterlagen importieren: "
                            "pilot-assistant ingest ORDNER --type council / pilot-assistant oparl sync URL")
        if len(nodes) == 1:
            return build(model, nodes[0], store=st, today=today, query=query)
        groups: dict[frozenset, Node] = {}
        for n in nodes:   # several papers of one procedure are not ambiguous
            members = frozenset(m.key for m in procedure(model, n))
            if not any(n.key in g for g in groups):
                groups[members] = n
        if len(groups) == 1 and how == "topic":
            first = min(groups.values(), key=lambda n: n.date or "9999")
            return build(model, first, store=st, today=today, query=query)
        return Trace(query=query, candidates=sorted((_candidate(n) for n in groups.values()),
                                                    key=lambda s: s.date or "9999"))
