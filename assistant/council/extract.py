"""One council document's text -> what it contributes to procedures: pure functions, no I/O.

A document is read as units (a heading, a field line, a list item, a sentence or a table
row, each on its page). From them come: its own number, kind and originator; the papers it
refers to and how (``decides`` in minutes, ``bezug``, ``answers``, ``fulfils``, ``reports``,
else ``mention``); consultations and decisions (a minutes' agenda item with its
"Beschluss:" and "Abstimmungsergebnis:", a paper's "Beratungsfolge", and sentences such as
"Der Stadtrat hat am 20.03.2025 den Antrag … angenommen"); and tasks with deadlines, from
a paper's "Beschlussvorschlag" (binding once decided) and a minutes' resolution text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import text as T
from .references import TOP, find_refs, is_task, iso_day, normalize, parse_date

STRONG = ("decides", "bezug", "answers", "fulfils", "reports")
CATEGORIES = (("minutes", r"niederschrift|protokoll|beschlussauszug|sitzungsniederschrift"),
              ("invitation", r"einladung|tagesordnung"),
              ("answer", r"antwort|beantwortung|stellungnahme"),
              ("report", r"mitteilung|bericht|informationsvorlage|unterrichtung"),
              ("proposal", r"vorlage"), ("motion", r"antrag"), ("question", r"anfrage"))
HEADINGS = re.compile(r"^(?:\d{1,2}\.\s*)?(?P<h>Beschlussvorschlag|Beschlussentwurf|Beschlusstext|Sachverhalt|Begründung|"
                      r"Beschlusslage|Ausgangslage|Anlass|Beratungsfolge|Finanzielle Auswirkungen|Weitere Auswirkungen|"
                      r"Anlagen?|Zusammenfassung|Sachdarstellung|Problembeschreibung|Aussprache|Beschluss|"
                      r"Abstimmungsergebnis|Empfehlung und weiteres Vorgehen|Ausblick)\s*:?\s*(?P<rest>.*)$", re.I)
_FIELD = re.compile(r"^(?P<k>[A-ZÄÖÜ][\w\-.]*(?:\s[\w\-.]+){0,2})\s*:\s*(?P<v>.*)$")
_ITEM = re.compile(r"^(?:[•\-*–]\s+|\d{1,2}[.)]\s+(?=\S))")
_OUTCOME = re.compile(r"\b(?P<mod>einstimmig|mehrheitlich|geändert|mit Änderungen?|in geänderter Fassung)?\s*"
                      r"(?P<o>angenommen|beschlossen|abgelehnt|zugestimmt|vertagt|zurückgestellt|zurückgezogen|"
                      r"zur Kenntnis genommen|zur Annahme empfohlen|empfohlen|verwiesen)\b", re.I)
POSITIVE = ("angenommen", "beschlossen", "zugestimmt")
_VOTES = re.compile(r"\d+\s+Ja-Stimmen?(?:[^–.;\d]{0,40}\d+\s+(?:Nein-Stimmen?|Enthaltungen?)){0,3}|\beinstimmig\b",
                    re.I)
_ORG = re.compile(r"\b(?:[Dd]er|[Dd]ie|[Dd]as)\s+(?P<org>(?:[\w-]+\s+(?:und\s+)?)?(?:Stadtrat|Rat|Gemeinderat|Kreistag|"
                  r"Stadtverordnetenversammlung|Bezirksvertretung|Ortsbeirat|Hauptausschuss|[\w-]*[Aa]usschuss)\b"
                  r"(?:\s+(?:für|des|der)\s+[^,.;()]{1,120}?)?)(?=\s+(?:hat|haben|am|in|mit|zur|den|die|das)\b)")
_AM_DATE = re.compile(r"\bam\s+(\d{1,2}\.\s*\d{1,2}\.\s*(?:19|20)\d\d)")
_FULFIL = re.compile(r"\b(?:beauftragt\w*|\w*[Aa]uftrag\w*|kommt\b.{0,60}\bnach|in Umsetzung|auf Grundlage des Beschlusses)\b")
_ORIGINATOR = re.compile(r"^(?:Antragsteller(?:in)?|Einreicher(?:in)?|Federführend|Fraktion|Verfasser(?:in)?)\s*:\s*(?P<v>.+)$", re.I)
_ROLE = re.compile(r"(vorberatend|beschließend|entscheidend|zur Kenntnis(?:nahme)?|Kenntnisnahme|Vorberatung|"
                   r"Beschlussfassung|Entscheidung|Anhörung|empfehlend)", re.I)


@dataclass
class Unit:
    page: int | None
    text: str
    kind: str = "text"          # heading | field | item | top | text
    head: str = ""              # for headings: which one ("Beschlussvorschlag", …)


@dataclass
class Link:
    norm: str
    label: str                  # as written, e.g. "Antrag 0087/2025"
    relation: str               # decides | bezug | answers | fulfils | reports | mention
    page: int | None
    quote: str


@dataclass
class Event:
    norm: str | None            # the paper considered; None: an agenda item naming no number
    kind: str                   # Beratung | Beschluss
    date: str
    organization: str
    result: str = ""
    role: str = ""              # vorberatend, beschließend, … (from a Beratungsfolge)
    agenda_item: str = ""       # "TOP 7"
    page: int | None = None
    quote: str = ""
    origin: str = "minutes"     # minutes | prose | plan

    @property
    def positive(self) -> bool:
        return any(w in self.result.lower() for w in POSITIVE) and "abgelehnt" not in self.result.lower()


@dataclass
class Task:
    norm: str                   # the paper whose resolution sets the task
    basis: str                  # resolution (minutes text) | proposal (binding once the paper is decided)
    text: str
    page: int | None
    agenda_item: str = ""       # "TOP 7" for a task in minutes


@dataclass
class DocFacts:
    norm: str | None
    reference: str
    title: str
    paper_type: str
    category: str
    date: str
    organization: str = ""
    committee: str = ""
    meeting_date: str = ""
    first_page: int | None = None
    links: list[Link] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)


# --- units --------------------------------------------------------------------------------------

def _clean(line: str) -> str:
    line = re.sub(r"^\s*(?:#{1,6}|>)\s*", "", line)
    line = line.replace("**", "").replace("__", "")
    if line.strip().startswith("|"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        line = "" if all(re.fullmatch(r":?-{3,}:?", c) for c in cells) else "  ".join(cells)
    return line.strip()


def _repeated_lines(pages: list[tuple[int | None, str]]) -> set[str]:
    """Header and footer lines: the same (digits aside) on every page of a multi-page document."""
    if len(pages) < 2:
        return set()
    sets = [{re.sub(r"\d+", "#", ln.strip()) for ln in text.splitlines() if ln.strip()} for _, text in pages]
    return set.intersection(*sets)


def units(pages: list[tuple[int | None, str]]) -> list[Unit]:
    """Wrapped lines joined into units. A blank line alone does not end a sentence (chunks of
    one paragraph are stitched with one); a bare heading ("Beschlussvorschlag") always ends."""
    out: list[Unit] = []
    repeated = _repeated_lines(pages)
    for page, text in pages:
        current: Unit | None = None
        closed = True
        for raw in text.splitlines():
            if re.sub(r"\d+", "#", raw.strip()) in repeated:
                continue
            line = _clean(raw)
            if not line:
                if current and re.search(r"[.!?:]$", current.text):
                    closed = True
                continue
            kind, head = _line_kind(line)
            ends = current is not None and bool(re.search(r"[.!?:;]$", current.text))
            if kind != "text" or closed or (ends and (line[:1].isupper() or current.kind != "text")):
                current = Unit(page, line, kind, head)
                out.append(current)
                closed = kind == "heading" and bool(re.fullmatch(r"(?:\d{1,2}\.\s*)?[\w ÄÖÜäöüß-]{3,40}:?", line))
            else:
                current.text += " " + line
    return out


def _line_kind(line: str) -> tuple[str, str]:
    if TOP.match(line):
        return "top", ""
    m = HEADINGS.match(line)
    if m and (not m.group("rest") or m.group("h").lower() in ("beschluss", "abstimmungsergebnis", "aussprache")) \
            and len(line) <= 90:
        return "heading", m.group("h").capitalize()
    if re.match(r"^(?:Änderungsantrag|Ergänzungsantrag)\b", line):
        return "heading", "Änderungsantrag"
    if re.match(r"^Abstimmung\b", line):
        return "heading", "Abstimmung"
    if _ITEM.match(line):
        return "item", ""
    if (m := _FIELD.match(line)) and len(m.group("k")) <= 30 and not re.match(r"^\d", line):
        return "field", m.group("k")
    return "text", ""


# --- the document -------------------------------------------------------------------------------

def category_of(*names: str) -> str:
    low = " ".join(n for n in names if n).lower()
    for cat, pattern in CATEGORIES:
        if re.search(pattern, low):
            return cat
    return "other"


def own_number(meta: dict[str, Any], units_: list[Unit], source: str) -> str:
    for key in ("paper_number", "drucksache", "reference"):
        if meta.get(key):
            return str(meta[key])
    for u in units_[:15]:
        if u.kind == "field" and re.match(r"(?:Drucksachen?|Vorlagen)[\s-]*(?:Nr|Nummer)", u.head, re.I):
            refs = find_refs(u.text)
            if refs:
                return refs[0].number
    m = re.match(r"^(\d{3,5})[-_](\d{4})[_-]", source.rsplit("/", 1)[-1])
    return f"{m.group(1)}/{m.group(2)}" if m else ""


def extract(meta: dict[str, Any], pages: list[tuple[int | None, str]], *, title: str = "", date: str = "",
            source: str = "") -> DocFacts:
    """Everything ``pages`` (text per page; page None for unpaged files) says about procedures."""
    us = units(pages)
    reference = own_number(meta, us, source)
    norm = normalize(reference) if reference else None
    title = str(meta.get("title") or title or "")
    paper_type = str(meta.get("paper_type") or "").strip() or _type_from(title, us)
    category = category_of(paper_type) if paper_type else category_of(title)
    facts = DocFacts(norm=norm, reference=reference, title=title, paper_type=paper_type or "Dokument",
                     category=category, date=iso_day(meta.get("date") or date),
                     committee=str(meta.get("committee") or meta.get("organization") or ""),
                     meeting_date=iso_day(meta.get("meeting_date")),
                     first_page=next((p for p, t in pages if t.strip()), None))
    facts.organization = str(meta.get("originator") or "") or _originator(us)
    for ref in find_refs(title):
        if ref.norm != norm:
            rel = {"minutes": "decides", "answer": "answers"}.get(category, "bezug")
            facts.links.append(Link(ref.norm, title[ref.start:ref.end], rel, facts.first_page, title))
    if category == "minutes":
        _minutes(us, facts)
    else:
        _paper(us, facts)
    return facts


def _type_from(title: str, us: list[Unit]) -> str:
    m = re.match(r"^\s*([\wÄÖÜäöüß-]+(?:\s\(Auszug\))?)\s*:", title)
    if m and category_of(m.group(1)) != "other":
        return m.group(1).replace(" (Auszug)", "")
    for u in us[:6]:
        for word in re.findall(r"[\wÄÖÜäöüß-]+", u.text)[:8]:
            if category_of(word) != "other":
                return word
    return ""


def _originator(us: list[Unit]) -> str:
    for u in us[:20]:
        if u.kind == "field" and (m := _ORIGINATOR.match(u.text)):
            return m.group("v").strip()
        if m := re.match(r"^Antrag der (?P<v>(?:Fraktion|Ratsgruppe|Gruppe)\b.+)$", u.text):
            return m.group("v").strip()
    return ""


def _sentences(u: Unit) -> list[str]:
    return T.split_line(u.text) if u.kind in ("text", "item") else [u.text]


def _relation(sentence: str, unit: Unit, facts: DocFacts) -> str:
    if unit.kind == "field" and unit.head.lower().startswith("bezug"):
        return "bezug"
    if facts.category == "answer" and re.search(r"\bAntwort\w*\s+(?:zu[mr]?|auf)\s+(?:die\s+)?Anfrage", sentence):
        return "answers"
    if _FULFIL.search(sentence):
        return "fulfils"
    if facts.category == "report" and re.search(r"bericht", sentence, re.I):
        return "reports"
    return "mention"


def _link_all(sentence: str, unit: Unit, facts: DocFacts, relation: str | None = None) -> list[str]:
    norms = []
    for ref in find_refs(sentence):
        if ref.norm == facts.norm:
            continue
        rel = relation or _relation(sentence, unit, facts)
        facts.links.append(Link(ref.norm, sentence[ref.start:ref.end], rel, unit.page, _quote(sentence)))
        norms.append(ref.norm)
    return norms


def _quote(s: str, limit: int = 300) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _paper(us: list[Unit], facts: DocFacts) -> None:
    section = ""
    for i, u in enumerate(us):
        if u.kind == "heading":
            section = u.head
            if section == "Beratungsfolge":
                _plan_table(us, i + 1, facts)
            continue
        if u.kind == "field" and u.head.lower() in ("beratungsfolge", "gremium"):
            _plan_inline(u, facts)
        for s in _sentences(u):
            norms = _link_all(s, u, facts)
            facts.events += _prose_events(s, u.page, norms or ([facts.norm] if facts.norm else []), facts)
            if section in ("Beschlussvorschlag", "Beschlussentwurf", "Beschlusstext") and facts.norm and is_task(s):
                facts.tasks.append(Task(facts.norm, "proposal", _quote(s, 500), u.page))


def _plan_table(us: list[Unit], start: int, facts: DocFacts) -> None:
    """A "Beratungsfolge" table (Gremium | Sitzung | Zuständigkeit) as planned consultations."""
    for u in us[start:start + 6]:
        if u.kind == "heading":
            break
        text = re.sub(r"^Gremium\s+Sitzung\s+Zuständigkeit(?:\s+Status)?\s*", "", u.text)
        pos = 0
        for m in re.finditer(r"(\d{1,2}\.\d{1,2}\.(?:19|20)\d\d)\s*(?P<role>\S+)?", text):
            org = text[pos:m.start()].strip(" |–-")
            org = re.sub(r"^(?:öffentlich|nichtöffentlich|nicht öffentlich)\s+", "", org)
            pos = m.end()
            role = m.group("role") or ""
            if tail := re.match(r"\s*(öffentlich|nichtöffentlich|nicht öffentlich)", text[pos:]):
                pos += tail.end()
            if org and facts.norm:
                facts.events.append(Event(facts.norm, "Beratung", iso_day(m.group(1)), org,
                                          role=role if _ROLE.fullmatch(role) else "", page=u.page,
                                          quote=_quote(f"{org} {m.group(1)} {role}"), origin="plan"))


def _plan_inline(u: Unit, facts: DocFacts) -> None:
    """"Beratungsfolge: Ausschuss (05.03.2025, vorberatend) – Stadtrat (20.03.2025, beschließend)" and
    "Gremium: Stadtrat, Sitzung am 26.06.2025 (öffentlich)"."""
    if not facts.norm:
        return
    value = u.text.split(":", 1)[1]
    for m in re.finditer(r"(?P<org>[A-ZÄÖÜ][^()–;,]{0,150}?)\s*(?:,\s*Sitzung am\s*)?\(?"
                         r"(?P<d>\d{1,2}\.\d{1,2}\.(?:19|20)\d\d)(?P<rest>[^()–;]{0,80}\)|[^–;]{0,80})", value):
        role = _ROLE.search(m.group("rest") or "")
        facts.events.append(Event(facts.norm, "Beratung", iso_day(m.group("d")), m.group("org").strip(" ,"),
                                  role=role.group(1) if role else "", page=u.page, quote=_quote(u.text),
                                  origin="plan"))


def _prose_events(sentence: str, page: int | None, norms: list[str], facts: DocFacts,
                  origin: str = "prose") -> list[Event]:
    """"Der Stadtrat hat am 20.03.2025 den Antrag … angenommen", "…, der Haupt- und
    Finanzausschuss am 09.12.2025 einstimmig": one event per body and date."""
    outcome = _OUTCOME.search(sentence)
    if not outcome or not norms:
        return []
    orgs = list(_ORG.finditer(sentence))
    dates = list(_AM_DATE.finditer(sentence))
    out = []
    for i, d in enumerate(dates):
        before = [o for o in orgs if o.start() < d.start() and d.start() - o.end() < 120]
        after = [o for o in orgs if o.start() > d.end() and o.start() - d.end() < 60 and not before]
        org = (before[-1] if before else after[0] if after else None)
        if org is None:
            continue
        end = dates[i + 1].start() if i + 1 < len(dates) else len(sentence)
        nxt = [o.start() for o in orgs if d.end() < o.start() < end]
        segment = sentence[d.end():min(nxt) if nxt else end]
        votes = _VOTES.search(segment)
        verb = outcome.group("o")
        word = outcome.group("mod") or ""
        if votes and votes.group(0).lower() == "einstimmig":
            word, votes = "einstimmig", None
        result = " ".join(x for x in (word, verb) if x) + (f" ({votes.group(0)})" if votes else "")
        kind = "Beschluss" if verb.lower() in POSITIVE + ("abgelehnt",) else "Beratung"
        for norm in norms:
            out.append(Event(norm, kind, iso_day(d.group(1)), org.group("org").strip(), result.strip(),
                             page=page, quote=_quote(sentence), origin=origin))
    return out


# --- minutes ------------------------------------------------------------------------------------

def _minutes(us: list[Unit], facts: DocFacts) -> None:
    meeting = facts.meeting_date
    for u in us[:25]:
        if u.kind == "field" and u.head.lower() in ("sitzung", "sitzungstermin", "datum der sitzung") and not meeting:
            meeting = iso_day(parse_date(u.text) or "")
    facts.meeting_date = meeting = meeting or facts.date
    org = facts.committee or _body_of(us)
    facts.organization = facts.organization or org
    tops = [i for i, u in enumerate(us) if u.kind == "top"]
    if not tops:   # a resolution extract without agenda items: the whole text is one item
        tops = [0]
    for n, start in enumerate(tops):
        end = tops[n + 1] if n + 1 < len(tops) else len(us)
        _agenda_item(us[start:end], facts, meeting, org)


def _body_of(us: list[Unit]) -> str:
    """"… Sitzung des Stadtrats" -> "Stadtrat"; "… des Ausschusses für Umwelt" -> "Ausschuss für Umwelt"."""
    for u in us[:8]:
        if m := re.search(r"Sitzung (?:des|der)\s+(?P<o>Stadtrats?|Rates|Rats|Gemeinderats?|Kreistags?|"
                          r"Ausschusses für [^,.]+|[\w-]*ausschusses)", u.text):
            name = re.sub(r"^(Stadtrat|Gemeinderat|Kreistag)s$", r"\1", m.group("o"))
            return re.sub(r"usschusses\b", "usschuss", {"Rates": "Rat", "Rats": "Rat"}.get(name, name))
    return ""


def _heading_part(text: str) -> tuple[str, str]:
    """A TOP unit split into its heading (up to the bracket closing after the paper it names,
    else the first sentence) and the prose a wrapped heading ran into."""
    refs = find_refs(text)
    if refs and (m := re.compile(r"\)").search(text, refs[0].end)):
        cut = m.end()
    elif m := re.search(r"[.!?](?=\s)", text):
        cut = m.end()
    else:
        cut = len(text)
    return text[:cut].strip(), text[cut:].strip()


def _agenda_item(block: list[Unit], facts: DocFacts, meeting: str, org: str) -> None:
    head = block[0]
    top = TOP.match(head.text) if head.kind == "top" else None
    label = f"TOP {top.group('n')}" if top else ""
    heading, prose = _heading_part(head.text) if top else ("", "")
    subject = [r.norm for r in find_refs(heading) if r.norm != facts.norm]
    for r in find_refs(heading):
        if r.norm != facts.norm:
            facts.links.append(Link(r.norm, heading[r.start:r.end], "decides", head.page, _quote(heading)))
    mode, amendment, result_unit = "intro", [], None
    resolution: list[Unit] = []
    accepted: list[Unit] = []
    rest = ([Unit(head.page, prose)] if prose else []) + block[1 if top else 0:]
    for u in rest:
        if u.kind == "heading":
            if u.head == "Aussprache":
                mode = "debate"
            elif u.head == "Änderungsantrag":   # its text after "Änderungsantrag 1 (Fraktion X):"
                mode, amendment = "amendment", []
                u = Unit(u.page, re.sub(r"^(?:Änderungs|Ergänzungs)antrag[^:]*:\s*", "", u.text))
            elif u.head == "Abstimmung" and mode == "amendment":
                outcome = _OUTCOME.search(u.text)
                if outcome and outcome.group("o").lower() in POSITIVE:
                    accepted += amendment
                mode = "intro"
                continue
            elif u.head == "Beschluss":
                mode = "resolution"
                u = Unit(u.page, re.sub(r"^Beschluss\s*:?\s*", "", u.text), "text") if len(u.text) > 10 else u
                resolution.append(u)
                continue
            elif u.head == "Abstimmungsergebnis":
                result_unit, mode = u, "done"
                continue
        if mode == "amendment":
            amendment.append(u)
        elif mode == "resolution":
            resolution.append(u)
        for s in _sentences(u):
            rel = "decides" if mode == "resolution" else "mention"
            norms = _link_all(s, u, facts, rel)
            if mode == "resolution":
                subject += [n for n in norms if n not in subject]
            elif mode in ("intro", "debate"):
                targets = norms if norms and re.search(r"\bam\s+\d", s) else subject
                facts.events += _prose_events(s, u.page, [n for n in targets if n], facts, origin="minutes")
    if not subject:
        return   # an agenda item naming no paper ("Verschiedenes") joins no procedure
    decided = bool(resolution) or result_unit is not None
    result = _result(result_unit.text if result_unit else " ".join(u.text for u in resolution))
    page = (resolution[0].page if resolution else result_unit.page if result_unit else head.page)
    quote = _quote(" ".join(u.text for u in resolution)) if resolution else _quote(head.text)
    kind = "Beschluss" if decided and result and "vertagt" not in result else "Beratung"
    for norm in subject:
        facts.events.append(Event(norm, kind, meeting, org, result, agenda_item=label, page=page, quote=quote))
    if subject and _result_positive(result):
        for u in resolution + accepted:
            for s in _sentences(u):
                if is_task(s):
                    facts.tasks.append(Task(subject[0], "resolution", _quote(s, 500), u.page, label))


def _result(text: str) -> str:
    """"38 Ja-Stimmen, 10 Nein-Stimmen, 3 Enthaltungen – mehrheitlich beschlossen." ->
    "mehrheitlich beschlossen (38 Ja-Stimmen, 10 Nein-Stimmen, 3 Enthaltungen)"."""
    text = re.sub(r"^Abstimmungsergebnis\s*:?\s*", "", text or "").strip()
    outcome = None
    for outcome in _OUTCOME.finditer(text):
        pass
    if outcome is None:
        return ""
    phrase = " ".join(x for x in (outcome.group("mod"), outcome.group("o")) if x)
    votes = _VOTES.search(text)
    if votes and votes.group(0).lower() != "einstimmig" and votes.start() < outcome.start():
        return f"{phrase} ({votes.group(0).strip(' ,–')})"
    return phrase


def _result_positive(result: str) -> bool:
    low = result.lower()
    return any(w in low for w in POSITIVE) and "abgelehnt" not in low

