"""A draft on disk: the typed records and their storage.

Each draft lives in ``<data_dir>/drafts/<draft_id>/draft.json`` and is rewritten whole,
atomically (:func:`assistant.fsutil.atomic_write`), after every section. A crash, a kill or a
failing model therefore leaves the last complete state on disk, never half a JSON file,
and the pipeline in drafting.py can resume from it.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import StorageError, UsageError, UserError
from ..fsutil import atomic_write
from ..text import slug

STATUSES = ("pending", "drafted", "edited", "approved", "failed")
REVIEW = ("entwurf", "geprueft", "freigegeben")     # four-eyes: set by someone other than the author
COST_TYPES = ("staff", "services", "contracts", "investment")
SCHEMA = 2   # 1: idea without profile fields, "approved" set by the author; 2: profile + four-eyes review
_DRAFT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


@dataclass
class Idea:
    """The project profile (Projektsteckbrief): every fact a draft may state comes from here,
    the programme or code. ``budget`` is the total; ``costs`` splits it by cost type."""

    title: str
    description: str
    city: str = ""
    department: str = ""
    budget: float | None = None
    duration_months: int | None = None
    programme_id: str | None = None
    goal: str = ""
    target_group: str = ""
    staff: int | None = None                  # head count of the target group
    start: str | None = None                  # ISO date
    costs: dict[str, float] = field(default_factory=dict)   # staff | services | contracts | investment
    related_papers: list[str] = field(default_factory=list)  # Drucksachen-Nr. of related council papers
    committees: list[dict[str, str]] = field(default_factory=list)   # Beratungsfolge: {name, date, role}
    kpis: list[dict[str, str]] = field(default_factory=list)        # {name, target, when}
    budget_line: str = ""                     # Produkt / Haushaltsstelle
    budget_available: str = ""                # "ja" | "nein" | "teilweise" | ""
    follow_up_costs: float | None = None      # per year after the pilot
    parsed: dict[str, Any] = field(default_factory=dict)    # what was read from the idea text (to confirm)


@dataclass
class SourceRef:
    """A passage shown to the model for one section; ``n`` is its number in the section's
    text (1..m in order of first citation), 0 when it was consulted but not cited."""

    n: int
    title: str
    source: str
    type: str = ""
    page: int | None = None
    paper_number: str = ""
    doc_id: str = ""
    chunk_id: str = ""
    quote: str = ""


@dataclass
class Requirement:
    kind: str                      # document | criterion
    text: str
    sections: list[str] = field(default_factory=list)   # ids of the sections that address it
    status: str = ""               # met | open | n/a ("" in drafts made before the checklist)
    source: str = ""               # the programme's file (name only) or the call's document
    page: int | None = None        # page of the call where it is written (None: Markdown programme)
    where: str = ""                # heading of the passage that states it
    note: str = ""                 # why n/a, or what is still missing

    @property
    def covered(self) -> bool:
        return bool(self.sections)


@dataclass
class Change:
    """One entry of a section's history: who did what when."""

    who: str
    when: str
    what: str                      # generated | edited | regenerated | review:<status> | comment
    note: str = ""


@dataclass
class Section:
    id: str
    heading: str
    level: int = 1
    kind: str = "generated"
    text: str = ""
    status: str = "pending"
    sources: list[SourceRef] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)   # computed figures: [label, value]
    items: list[str] = field(default_factory=list)         # computed lists (attachments)
    word_limit: int = 0
    warnings: list[str] = field(default_factory=list)      # numbers without a source, cut text, ...
    unsupported: int = 0          # sentences no source supports (framing, or made up: review them)
    removed_citations: int = 0
    error: str = ""
    model: str = ""
    prompt: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)   # retrieval_s, first_token_s, generation_s
    updated: str = ""
    review: str = "entwurf"       # entwurf -> geprueft -> freigegeben (REVIEW)
    author: str = ""              # who wrote the current text (generated: the draft's owner)
    history: list[Change] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)   # generated sentences the checks took out (for the author)

    @property
    def words(self) -> int:
        return len(re.findall(r"\w+", re.sub(r"\[\d+\]", "", self.text)))

    @property
    def cited(self) -> list[SourceRef]:
        return [s for s in self.sources if s.n > 0]


@dataclass
class Draft:
    id: str
    template: str
    template_version: str
    template_title: str
    language: str
    idea: Idea
    sections: list[Section]
    programme_id: str | None = None
    programme_name: str = ""
    financing: dict[str, Any] | None = None     # finance.Financing.to_dict()
    deadline: dict[str, Any] | None = None      # finance.DeadlineStatus.to_dict()
    facts: list[list[str]] = field(default_factory=list)   # the computed [label, value] rows the model is given
    requirements: list[Requirement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: str = ""
    prompt: str = ""
    today: str = ""
    created: str = ""
    updated: str = ""
    template_snapshot: dict[str, Any] = field(default_factory=dict)   # resume uses the same sections
    owner: str = ""             # UI login that created it ("" = CLI/scripts); the UI lists only one's own
    schema: int = SCHEMA
    call: str = ""              # an uploaded call (indexed funding document) whose requirements join the checklist
    call_items: list[Requirement] = field(default_factory=list)

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        ids = ", ".join(s.id for s in self.sections)
        raise UsageError(f"Abschnitt {section_id!r} gibt es in diesem Entwurf nicht ({ids})",
                         f"no section {section_id!r} in this draft ({ids})", "Abschnitts-ID aus der Liste nehmen")

    @property
    def complete(self) -> bool:
        return all(s.status not in ("pending", "failed") for s in self.sections)

    @property
    def released(self) -> bool:
        """Every section released by a second person: only then is the export no longer a draft."""
        return bool(self.sections) and all(s.review == "freigegeben" for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for sd, s in zip(d["sections"], self.sections):
            sd["words"] = s.words
        for rd, r in zip(d["requirements"], self.requirements):
            rd["covered"] = r.covered
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Draft":
        d = migrate(dict(d))
        d["idea"] = Idea(**_known(Idea, d["idea"]))
        d["sections"] = [Section(**{**_known(Section, s),
                                    "sources": [SourceRef(**_known(SourceRef, r)) for r in s.get("sources", [])],
                                    "history": [Change(**_known(Change, c)) for c in s.get("history", [])]})
                         for s in d["sections"]]
        d["requirements"] = [Requirement(**_known(Requirement, r)) for r in d.get("requirements", [])]
        d["call_items"] = [Requirement(**_known(Requirement, r)) for r in d.get("call_items", [])]
        return cls(**_known(cls, d))


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A stored draft of an older shape -> the current one (pure; the file is rewritten on the next save).

    Schema 1 had no review: its "approved" was set by the author alone, so it becomes "geprueft"
    (kept on regeneration, still waiting for a second person's release), never "freigegeben"."""
    if int(d.get("schema") or 1) >= SCHEMA:
        return d
    sections = []
    for s in d.get("sections", []):
        s = dict(s)
        if s.get("status") == "approved":
            s["status"], s["review"] = "edited" if s.get("model") == "" else "drafted", "geprueft"
            s["history"] = [*s.get("history", []), {"who": d.get("owner", ""), "when": s.get("updated", ""),
                                                    "what": "review:geprueft", "note": "übernommen aus „freigegeben“ (alte Fassung)"}]
        sections.append(s)
    idea = dict(d.get("idea") or {})
    idea.setdefault("description", idea.get("title", ""))
    return {**d, "sections": sections, "idea": idea, "schema": SCHEMA}


def _known(cls, d: dict) -> dict:
    """Fields this version knows (drafts written by a newer version still load)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def new_id(title: str, today: dt.date) -> str:
    return f"{today:%Y%m%d}-{slug(title, 32, default='entwurf')}-{secrets.token_hex(3)}"


def path_of(draft_id: str, drafts_dir: Path) -> Path:
    if not _DRAFT_ID.match(draft_id or ""):   # ids come from users and the UI: no path tricks
        raise UsageError(f"Ungültige Entwurfs-ID {draft_id!r}", f"invalid draft id {draft_id!r}",
                         "pilot-assistant draft --list")
    return drafts_dir / draft_id / "draft.json"


def save(draft: Draft, drafts_dir: Path) -> Path:
    target = path_of(draft.id, drafts_dir)
    draft.updated = now()
    data = json.dumps(draft.to_dict(), ensure_ascii=False, indent=1)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise StorageError(f"Entwurf kann nicht gespeichert werden ({target}): {exc.strerror or exc}",
                           f"cannot save the draft ({target}): {exc.strerror or exc}",
                           "Speicherplatz und Schreibrechte von --data-dir prüfen") from None
    return target


def load(draft_id: str, drafts_dir: Path) -> Draft:
    path = path_of(draft_id, drafts_dir)
    if not path.is_file():
        known = ", ".join(d["id"] for d in summaries(drafts_dir)[:5]) or "keine"
        raise UsageError(f"Entwurf {draft_id!r} nicht gefunden (vorhanden: {known})",
                         f"draft {draft_id!r} not found (available: {known})", "pilot-assistant draft --list")
    try:
        return Draft.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"Entwurf {draft_id} ist beschädigt ({path}): {exc}",
                        f"draft {draft_id} is damaged ({path}): {exc}",
                        "Datei prüfen oder Entwurf neu erstellen") from None


def summaries(drafts_dir: Path) -> list[dict[str, Any]]:
    """Newest first: id, title, template, counts; damaged files are listed as such."""
    out = []
    for path in drafts_dir.glob("*/draft.json") if drafts_dir.is_dir() else []:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            done = sum(1 for s in d["sections"] if s["status"] not in ("pending", "failed"))
            out.append({"id": d["id"], "title": d["idea"]["title"], "template": d["template"],
                        "updated": d.get("updated", ""), "sections": len(d["sections"]), "done": done,
                        "owner": d.get("owner", "")})
        except (OSError, ValueError, KeyError, TypeError):
            out.append({"id": path.parent.name, "title": "(beschädigt)", "template": "", "updated": "",
                        "sections": 0, "done": 0, "owner": ""})
    return sorted(out, key=lambda d: d["updated"], reverse=True)
