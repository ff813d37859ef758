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
_DRAFT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


@dataclass
class Idea:
    title: str
    description: str
    city: str = ""
    department: str = ""
    budget: float | None = None
    duration_months: int | None = None
    programme_id: str | None = None


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

    @property
    def covered(self) -> bool:
        return bool(self.sections)


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for sd, s in zip(d["sections"], self.sections):
            sd["words"] = s.words
        for rd, r in zip(d["requirements"], self.requirements):
            rd["covered"] = r.covered
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Draft":
        d = dict(d)
        d["idea"] = Idea(**_known(Idea, d["idea"]))
        d["sections"] = [Section(**{**_known(Section, s), "sources": [SourceRef(**_known(SourceRef, r))
                                                                      for r in s.get("sources", [])]})
                         for s in d["sections"]]
        d["requirements"] = [Requirement(**_known(Requirement, r)) for r in d.get("requirements", [])]
        return cls(**_known(cls, d))


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
