"""Funding programmes: the typed record, the front-matter schema and the loader.

Every programme lives in one Markdown file (``corpus/funding/*.md``) whose YAML
front matter holds the structured fields the funding finder and the drafting
pipeline read; the body explains the programme in plain German.

The module is pure where it can be: :func:`assistant.frontmatter.split` and
:func:`validate` take text or a dict and return values; only
:func:`load_programmes` reads files. A broken file never stops the others from
loading: it comes back as a :class:`ProgrammeError` naming the file.
"""
from __future__ import annotations

import datetime as _dt
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import frontmatter
from ..frontmatter import FrontMatterError

# --------------------------------------------------------------------------- schema

LEVELS = ("federal", "state", "eu")
INSTRUMENTS = ("grant", "loan")
STATUSES = ("open", "closed", "unknown")
PROCEDURES = ("one-stage", "two-stage")
APPLICANTS = ("kommune", "landkreis", "zweckverband", "kommunales_unternehmen", "hochschule",
              "forschungseinrichtung", "unternehmen", "verein", "land")
# the 16 German states plus the two umbrella codes
REGIONS = ("BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST",
           "SH", "TH", "DE", "EU")

# field -> short description (the order is the order of the documentation)
FIELDS: dict[str, str] = {
    "type": "immer 'funding'",
    "id": "kebab-case, eindeutig",
    "title": "wie name",
    "name": "Name des Programms",
    "funder": "Fördergeber / Bewilligungsstelle",
    "level": "federal | state | eu",
    "region": "Liste von Länderkürzeln (RP, BW, ...), ['DE'] oder ['EU']",
    "applicants": "Liste antragsberechtigter Gruppen",
    "instrument": "grant | loan",
    "funding_rate": "Zahl 0..1 oder null",
    "max_amount": "Betrag in EUR oder null",
    "own_share": "Zahl 0..1 oder null",
    "deadline": "ISO-Datum oder null",
    "call_rhythm": "Text, z. B. 'laufend'",
    "status": "open | closed | unknown",
    "procedure": "one-stage | two-stage",
    "required_documents": "Liste von Texten",
    "criteria": "Liste von Texten",
    "topics": "Liste von Schlagwörtern",
    "sources": "Liste von URLs (mindestens eine http(s)-URL)",
    "last_checked": "ISO-Datum",
    "uncertain": "Liste unsicherer Feldnamen (darf leer sein)",
}
REQUIRED = tuple(FIELDS)
# optional: the requirements in English, for applications written in English (EU Part B)
OPTIONAL: dict[str, str] = {
    "required_documents_en": "Liste von Texten: required_documents auf Englisch (optional)",
    "criteria_en": "Liste von Texten: criteria auf Englisch (optional)",
}

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_URL = re.compile(r"^https?://\S+$")


# --------------------------------------------------------------------------- records


@dataclass
class Programme:
    """One funding programme as the funding finder and the drafting pipeline see it."""

    id: str
    name: str
    funder: str
    level: str
    region: list[str]
    applicants: list[str]
    instrument: str
    funding_rate: float | None
    max_amount: float | None
    own_share: float | None
    deadline: str | None            # ISO date
    call_rhythm: str
    status: str
    procedure: str
    required_documents: list[str]
    criteria: list[str]
    topics: list[str]
    sources: list[str]
    last_checked: str               # ISO date
    uncertain: list[str] = field(default_factory=list)
    title: str = ""
    type: str = "funding"
    path: str = ""
    body: str = ""
    required_documents_en: list[str] = field(default_factory=list)
    criteria_en: list[str] = field(default_factory=list)

    @property
    def deadline_date(self) -> _dt.date | None:
        return _dt.date.fromisoformat(self.deadline) if self.deadline else None

    def is_uncertain(self, field_name: str) -> bool:
        return field_name in self.uncertain

    def open_on(self, day: _dt.date) -> bool:
        """Open for applications on ``day`` (status open and deadline not passed)."""
        deadline = self.deadline_date
        return self.status == "open" and (deadline is None or deadline >= day)

    def meta(self) -> dict[str, Any]:
        """The front-matter fields (without path and body), e.g. as chunk metadata."""
        return {name: getattr(self, name) for name in FIELDS}


@dataclass
class ProgrammeError:
    """A file that could not be loaded, with every problem found in it."""

    path: str
    problems: list[str]

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def de(self) -> str:
        return f"{self.name}: " + "; ".join(p.split(" / ")[0] for p in self.problems)

    @property
    def en(self) -> str:
        return f"{self.name}: " + "; ".join(p.split(" / ")[-1] for p in self.problems)

    def __str__(self) -> str:
        return f"{self.name}: " + "; ".join(self.problems)


# --------------------------------------------------------------------------- pure helpers


def _iso(value: Any) -> str | None:
    """An ISO date string for a YAML date or a 'YYYY-MM-DD' string; None otherwise."""
    if isinstance(value, _dt.datetime):
        return None
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return _dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _p(de: str, en: str) -> str:
    return f"{de} / {en}"


def _str_list(fm: dict[str, Any], key: str, problems: list[str], *, non_empty: bool) -> list | None:
    value = fm.get(key)
    if not isinstance(value, list):
        problems.append(_p(f"'{key}' muss eine Liste sein", f"'{key}' must be a list"))
        return None
    if non_empty and not value:
        problems.append(_p(f"'{key}' darf nicht leer sein", f"'{key}' must not be empty"))
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        problems.append(_p(f"'{key}' enthält leere oder nicht-textuelle Einträge: {bad!r}",
                           f"'{key}' has empty or non-text entries: {bad!r}"))
    return value


def validate(front_matter: dict[str, Any], today: _dt.date | None = None) -> list[str]:
    """Every problem of one funding front matter (empty list = valid).

    With ``today`` it also checks that a programme whose deadline has passed is not
    marked ``open``.
    """
    fm = front_matter
    problems: list[str] = []
    if not isinstance(fm, dict):
        return [_p("Front Matter fehlt oder ist keine Zuordnung", "front matter missing or not a mapping")]

    for key in REQUIRED:
        if key not in fm:
            problems.append(_p(f"Pflichtfeld fehlt: '{key}'", f"missing required field: '{key}'"))
    for key in fm:
        if key not in FIELDS and key not in OPTIONAL:
            problems.append(_p(f"unbekanntes Feld: '{key}'", f"unknown field: '{key}'"))

    def present(key: str) -> bool:
        return key in fm

    if present("type") and fm["type"] != "funding":
        problems.append(_p(f"'type' muss 'funding' sein, ist {fm['type']!r}",
                           f"'type' must be 'funding', is {fm['type']!r}"))
    if present("id") and not (isinstance(fm["id"], str) and _KEBAB.match(fm["id"])):
        problems.append(_p(f"'id' muss kebab-case sein (a-z, 0-9, '-'), ist {fm['id']!r}",
                           f"'id' must be kebab-case (a-z, 0-9, '-'), is {fm['id']!r}"))
    for key in ("name", "title", "funder", "call_rhythm"):
        if present(key) and not (isinstance(fm[key], str) and fm[key].strip()):
            problems.append(_p(f"'{key}' muss ein nicht-leerer Text sein", f"'{key}' must be a non-empty text"))
    if present("title") and present("name") and isinstance(fm["title"], str) and fm["title"] != fm["name"]:
        problems.append(_p("'title' muss gleich 'name' sein", "'title' must equal 'name'"))

    for key, allowed in (("level", LEVELS), ("instrument", INSTRUMENTS), ("status", STATUSES),
                         ("procedure", PROCEDURES)):
        if present(key) and fm[key] not in allowed:
            problems.append(_p(f"'{key}' muss einer von {', '.join(allowed)} sein, ist {fm[key]!r}",
                               f"'{key}' must be one of {', '.join(allowed)}, is {fm[key]!r}"))

    for key, allowed in (("region", REGIONS), ("applicants", APPLICANTS)):
        if present(key):
            values = _str_list(fm, key, problems, non_empty=True)
            bad = [v for v in values or [] if v not in allowed]
            if bad:
                problems.append(_p(f"'{key}' enthält unbekannte Werte: {bad!r} (erlaubt: {', '.join(allowed)})",
                                   f"'{key}' has unknown values: {bad!r} (allowed: {', '.join(allowed)})"))

    for key in ("funding_rate", "own_share"):
        if present(key) and fm[key] is not None:
            v = fm[key]
            if not _is_number(v) or not 0 <= v <= 1:
                problems.append(_p(f"'{key}' muss eine Zahl zwischen 0 und 1 oder null sein, ist {v!r}",
                                   f"'{key}' must be a number between 0 and 1 or null, is {v!r}"))
    if present("max_amount") and fm["max_amount"] is not None:
        v = fm["max_amount"]
        if not _is_number(v) or v <= 0:
            problems.append(_p(f"'max_amount' muss ein positiver Betrag in EUR oder null sein, ist {v!r}",
                               f"'max_amount' must be a positive EUR amount or null, is {v!r}"))
    if (present("funding_rate") and present("own_share") and _is_number(fm["funding_rate"])
            and _is_number(fm["own_share"]) and fm["funding_rate"] + fm["own_share"] > 1.0 + 1e-9):
        problems.append(_p("'funding_rate' + 'own_share' ist größer als 1",
                           "'funding_rate' + 'own_share' exceeds 1"))

    if present("deadline") and fm["deadline"] is not None and _iso(fm["deadline"]) is None:
        problems.append(_p(f"'deadline' muss ein ISO-Datum (JJJJ-MM-TT) oder null sein, ist {fm['deadline']!r}",
                           f"'deadline' must be an ISO date (YYYY-MM-DD) or null, is {fm['deadline']!r}"))
    if present("last_checked") and _iso(fm["last_checked"]) is None:
        problems.append(_p(f"'last_checked' muss ein ISO-Datum (JJJJ-MM-TT) sein, ist {fm['last_checked']!r}",
                           f"'last_checked' must be an ISO date (YYYY-MM-DD), is {fm['last_checked']!r}"))

    for key in ("required_documents", "criteria", *OPTIONAL):
        if present(key):
            _str_list(fm, key, problems, non_empty=False)
    for key in OPTIONAL:
        base = key.removesuffix("_en")
        if present(key) and present(base) and isinstance(fm[key], list) and isinstance(fm[base], list) \
                and len(fm[key]) != len(fm[base]):
            problems.append(_p(f"'{key}' muss so viele Einträge haben wie '{base}'",
                               f"'{key}' must have as many entries as '{base}'"))
    if present("topics"):
        _str_list(fm, "topics", problems, non_empty=True)
    if present("sources"):
        sources = _str_list(fm, "sources", problems, non_empty=True) or []
        if not any(isinstance(s, str) and _URL.match(s.strip()) for s in sources):
            problems.append(_p("'sources' braucht mindestens eine http(s)-URL",
                               "'sources' needs at least one http(s) URL"))
    if present("uncertain"):
        values = _str_list(fm, "uncertain", problems, non_empty=False)
        bad = [v for v in values or [] if v not in FIELDS]
        if bad:
            problems.append(_p(f"'uncertain' nennt unbekannte Felder: {bad!r}",
                               f"'uncertain' names unknown fields: {bad!r}"))

    if today is not None and present("deadline") and present("status"):
        deadline = _iso(fm["deadline"]) if fm["deadline"] is not None else None
        if deadline and deadline < today.isoformat() and fm["status"] == "open":
            problems.append(_p(f"Frist {deadline} ist abgelaufen, 'status' ist aber 'open'",
                               f"deadline {deadline} has passed but 'status' is 'open'"))
    return problems


def programme_from(front_matter: dict[str, Any], body: str = "", path: str = "") -> Programme:
    """Build a :class:`Programme` from a front matter that :func:`validate` accepted."""
    fm = front_matter

    def num(key: str) -> float | None:
        v = fm.get(key)
        return None if v is None else float(v)

    deadline = fm.get("deadline")
    return Programme(
        id=fm["id"], name=fm["name"], funder=fm["funder"], level=fm["level"],
        region=list(fm["region"]), applicants=list(fm["applicants"]), instrument=fm["instrument"],
        funding_rate=num("funding_rate"), max_amount=num("max_amount"), own_share=num("own_share"),
        deadline=_iso(deadline) if deadline is not None else None, call_rhythm=fm["call_rhythm"],
        status=fm["status"], procedure=fm["procedure"],
        required_documents=list(fm["required_documents"]), criteria=list(fm["criteria"]),
        topics=list(fm["topics"]), sources=[s.strip() for s in fm["sources"]],
        last_checked=_iso(fm["last_checked"]) or "", uncertain=list(fm.get("uncertain") or []),
        title=fm.get("title") or fm["name"], type="funding", path=path, body=body,
        required_documents_en=list(fm.get("required_documents_en") or []), criteria_en=list(fm.get("criteria_en") or []))


def parse_programme(text: str, path: str = "") -> tuple[Programme | None, list[str]]:
    """Parse one programme file's text: ``(programme, [])`` or ``(None, problems)``."""
    try:
        fm, body = frontmatter.split(text)
    except FrontMatterError as exc:
        return None, [_p(exc.de, exc.en)]
    if not fm:
        return None, [_p("kein Front Matter gefunden (Datei muss mit '---' beginnen)",
                         "no front matter found (file must start with '---')")]
    problems = validate(fm)
    if not body.strip():
        problems.append(_p("Text unter dem Front Matter ist leer", "body below the front matter is empty"))
    if problems:
        return None, problems
    return programme_from(fm, body, path), []


# --------------------------------------------------------------------------- loader


def _paths(folder_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(folder_or_paths, (str, Path)):
        p = Path(folder_or_paths)
        return sorted(p.glob("*.md")) if p.is_dir() else [p]
    return [Path(p) for p in folder_or_paths]


# path -> ((mtime_ns, size, inode), parse result): the web UI lists the programmes on every page
# load; a file is parsed again only when it changes
_parsed: dict[str, tuple[tuple[int, int, int], tuple[Programme | None, list[str]]]] = {}
_parsed_lock = threading.Lock()
MAX_CACHED = 5000


def _parse_file(path: Path) -> tuple[Programme | None, list[str]]:
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError as exc:
        return None, [_p(f"Datei nicht lesbar: {exc.strerror or exc}", f"file not readable: {exc.strerror or exc}")]
    key = str(path)
    with _parsed_lock:
        hit = _parsed.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        text = path.read_text(encoding="utf-8")
        result = parse_programme(text, key)
    except (OSError, UnicodeDecodeError) as exc:
        result = None, [_p(f"Datei nicht lesbar: {exc}", f"file not readable: {exc}")]
    with _parsed_lock:
        if len(_parsed) >= MAX_CACHED:
            _parsed.clear()
        _parsed[key] = (stamp, result)
    return result


def load_programmes(folder_or_paths: str | Path | Iterable[str | Path]
                    ) -> tuple[list[Programme], list[ProgrammeError]]:
    """Load every programme file of a folder (``*.md``) or of a list of paths.

    A file that cannot be read or fails validation is returned as a
    :class:`ProgrammeError` naming it; the other files still load. A second file
    with an ``id`` already seen is an error too. Programmes are sorted by ``id``.
    Each file is parsed once per change (size, mtime, inode), however often it is listed.
    """
    programmes: list[Programme] = []
    errors: list[ProgrammeError] = []
    seen: dict[str, str] = {}
    for path in _paths(folder_or_paths):
        programme, problems = _parse_file(path)
        if programme is None:
            errors.append(ProgrammeError(str(path), problems))
            continue
        if programme.id in seen:
            errors.append(ProgrammeError(str(path), [_p(
                f"id '{programme.id}' ist schon in {Path(seen[programme.id]).name} vergeben",
                f"id '{programme.id}' is already used by {Path(seen[programme.id]).name}")]))
            continue
        seen[programme.id] = str(path)
        programmes.append(programme)
    programmes.sort(key=lambda p: p.id)
    return programmes, errors
