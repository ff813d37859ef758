"""OParl objects -> what the index needs: pure functions, no I/O.

OParl (1.0 and 1.1) delivers some attributes as embedded objects and others as URLs,
and the choice differs between versions and vendors. Everything here therefore accepts
both: :func:`splice` pulls every embedded object out into a registry keyed by ``id``
and leaves its id in its place, so later code only ever follows ids.
"""
from __future__ import annotations

import datetime as _dt
import email.utils
import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Obj = dict[str, Any]
Registry = dict[str, Obj]

# mimeType -> file extension the loaders understand
MIME_EXT = {
    "application/pdf": ".pdf", "application/x-pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "text/html": ".html", "application/xhtml+xml": ".html",
    "text/plain": ".txt", "text/markdown": ".md",
}
KNOWN_EXT = (".pdf", ".docx", ".odt", ".html", ".htm", ".md", ".txt")


def kind(obj: Mapping[str, Any]) -> str:
    """``https://schema.oparl.org/1.1/Paper`` (or 1.0's spellings) -> ``Paper``."""
    return str(obj.get("type") or "").rstrip("/").rsplit("/", 1)[-1]


# --- embedded objects ---------------------------------------------------------------------

def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("id"), str) and bool(value["id"])


def _newer(a: Obj, b: Obj) -> bool:
    """Is ``a`` at least as recent as ``b``? ISO strings of one server compare as text."""
    return str(a.get("modified") or "") >= str(b.get("modified") or "")


def register(obj: Obj, registry: Registry) -> str:
    """Splice ``obj`` into ``registry`` and return its id.

    The same object may arrive twice (embedded in two papers, and again from its own URL);
    the copies are merged, the more recent one winning, so a fuller copy is never
    replaced by an embedded one that omits back-references."""
    spliced = splice(obj, registry)
    oid = obj["id"]
    prev = registry.get(oid)
    if prev is None:
        registry[oid] = spliced
    elif _newer(spliced, prev):
        registry[oid] = {**prev, **spliced}
    else:
        registry[oid] = {**spliced, **prev}
    return oid


def splice(obj: Obj, registry: Registry) -> Obj:
    """A copy of ``obj`` with every embedded object (a dict with an ``id``) replaced by that id."""
    out: Obj = {}
    for key, value in obj.items():
        if _is_object(value):
            out[key] = register(value, registry)
        elif isinstance(value, list):
            out[key] = [register(v, registry) if _is_object(v) else v for v in value]
        else:
            out[key] = value
    return out


def ids(value: Any) -> list[str]:
    """An attribute as a list of ids, whatever shape it came in (one URL, a list, spliced or not)."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        oid = item.get("id") if isinstance(item, dict) else item
        if isinstance(oid, str) and oid and oid not in out:
            out.append(oid)
    return out


def unique(objs: Iterable[Obj]) -> list[Obj]:
    """First occurrence of each id, order kept."""
    seen: set[str] = set()
    return [o for o in objs if not (o["id"] in seen or seen.add(o["id"]))]


def paper_file_ids(paper: Obj) -> list[str]:
    """Main file first, then the attachments; each file once."""
    out: list[str] = []
    for fid in ids(paper.get("mainFile")) + ids(paper.get("auxiliaryFile")):
        if fid not in out:
            out.append(fid)
    return out


# --- URLs and dates ------------------------------------------------------------------------

def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set (replacing same-named ones, keeping the rest)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_since(text: str) -> str:
    """``--since`` as OParl wants it: a full date-time with offset (a bare date is local midnight)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            value = _dt.datetime.fromisoformat(text + "T00:00:00")
        else:
            value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.isoformat(timespec="seconds")


def http_date_iso(header: str | None) -> str | None:
    """An HTTP ``Date`` header as ISO 8601: the server's clock, so skew cannot lose changes."""
    if not header:
        return None
    try:
        value = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.isoformat(timespec="seconds")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def day(value: Any) -> str:
    """The date part of an OParl date or date-time, "" when absent."""
    m = re.match(r"\d{4}-\d{2}-\d{2}", str(value or ""))
    return m.group(0) if m else ""


# --- local names ---------------------------------------------------------------------------

def key(oid: str) -> str:
    """A short, stable file-system key for an OParl id (ids are URLs)."""
    return hashlib.sha256(oid.encode("utf-8")).hexdigest()[:16]


def file_extension(file: Obj) -> str | None:
    """The extension the ingest needs for a downloaded file, or None when we cannot parse it."""
    for name in (file.get("fileName"), urlsplit(str(file.get("accessUrl") or "")).path):
        suffix = ("." + str(name).rsplit(".", 1)[-1].lower()) if name and "." in str(name) else ""
        if suffix in KNOWN_EXT:
            return suffix
    mime = str(file.get("mimeType") or "").split(";")[0].strip().lower()
    return MIME_EXT.get(mime)


def local_name(file: Obj, *, text: bool) -> str | None:
    """``<key>-<name>.<ext>``: ``.txt`` for a file delivered as ``text``; None if unsupported."""
    ext = ".txt" if text else file_extension(file)
    if ext is None:
        return None
    stem = str(file.get("fileName") or file.get("name") or "datei").rsplit(".", 1)[0]
    return f"{key(file['id'])}-{_file_stem(stem)}{ext}"


def _file_stem(text: str, limit: int = 40) -> str:
    """The paper's own spelling, made safe for a file name. Not :func:`assistant.text.slug`:
    synced folders already hold files under these names, and a new name would mean a new file."""
    text = re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("._")
    return text[:limit].rstrip("._") or "datei"


# --- metadata ------------------------------------------------------------------------------

@dataclass
class Consultation:
    """One entry of a paper's Beratungsfolge, with what we could resolve of it."""

    meeting: str = ""        # "Rat der Stadt, 2024-03-05"
    meeting_date: str = ""
    agenda_item: str = ""    # "TOP 5: Radverkehrskonzept"
    role: str = ""
    authoritative: bool = False


def consultation_view(cons: Obj, registry: Registry) -> Consultation:
    meeting = registry.get(next(iter(ids(cons.get("meeting"))), ""), {})
    item = registry.get(next(iter(ids(cons.get("agendaItem"))), ""), {})
    if not meeting and item:
        meeting = registry.get(next(iter(ids(item.get("meeting"))), ""), {})
    date = day(meeting.get("start"))
    name = str(meeting.get("name") or "").strip()
    top = ""
    if item:
        number = str(item.get("number") or "").strip()
        top = f"TOP {number}: " if number else ""
        top += str(item.get("name") or "").strip()
    return Consultation(meeting=", ".join(p for p in (name, date) if p), meeting_date=date,
                        agenda_item=top.strip(), role=str(cons.get("role") or ""),
                        authoritative=bool(cons.get("authoritative")))


def paper_meta(paper: Obj, body: Obj, consultations: list[Consultation]) -> dict[str, Any]:
    """Sidecar metadata for every file of ``paper``: what chunks and citations carry."""
    cons = sorted(consultations, key=lambda c: c.meeting_date or "9999")
    meta: dict[str, Any] = {
        "title": str(paper.get("name") or paper.get("reference") or "Drucksache").strip(),
        "paper_number": str(paper.get("reference") or ""),
        "paper_type": str(paper.get("paperType") or ""),
        "date": day(paper.get("date") or paper.get("publishedDate")),
        "municipality": str(body.get("name") or body.get("shortName") or ""),
        "body": str(body.get("shortName") or body.get("name") or ""),
        "url": str(paper.get("web") or paper.get("id")),
        "oparl_id": paper["id"],
        "type": "council",
    }
    if cons:
        meta["meeting"] = "; ".join(dict.fromkeys(c.meeting for c in cons if c.meeting))
        meta["meeting_date"] = next((c.meeting_date for c in cons if c.meeting_date), "")
        meta["agenda_item"] = "; ".join(dict.fromkeys(c.agenda_item for c in cons if c.agenda_item))
        meta["consultation_role"] = "; ".join(dict.fromkeys(c.role for c in cons if c.role))
    if paper.get("keyword"):
        meta["keywords"] = ", ".join(str(k) for k in paper["keyword"])
    return {k: v for k, v in meta.items() if v not in ("", None)}


def file_meta(paper_meta_: Mapping[str, Any], file: Obj, *, main: bool) -> dict[str, Any]:
    """A file's sidecar: its paper's metadata, the title naming the attachment."""
    meta = dict(paper_meta_)
    name = str(file.get("name") or file.get("fileName") or "").strip()
    if not main and name:
        meta["title"] = f"{meta.get('title', '')} – {name}".strip(" –")
    meta["oparl_file"] = file["id"]
    meta["file_role"] = "main" if main else "auxiliary"
    if file.get("accessUrl"):
        meta["file_url"] = str(file["accessUrl"])
    return meta


MEETING_FILE_TYPES = {"invitation": "Einladung", "resultsProtocol": "Niederschrift", "verbatimProtocol": "Wortprotokoll",
                      "auxiliaryFile": "Sitzungsanlage", "resolutionFile": "Beschluss", "itemFile": "Anlage"}


def meeting_file_ids(meeting: Obj, items: list[Obj]) -> list[tuple[str, str, Obj | None]]:
    """(file id, role, agenda item) of every file a meeting and its agenda items carry, each once."""
    out: list[tuple[str, str, Obj | None]] = []
    for role in ("invitation", "resultsProtocol", "verbatimProtocol", "auxiliaryFile"):
        out += [(fid, role, None) for fid in ids(meeting.get(role))]
    for item in items:
        out += [(fid, "resolutionFile", item) for fid in ids(item.get("resolutionFile"))]
        out += [(fid, "itemFile", item) for fid in ids(item.get("auxiliaryFile"))]
    seen: set[str] = set()
    return [x for x in out if not (x[0] in seen or seen.add(x[0]))]


def agenda_label(item: Obj) -> str:
    number = str(item.get("number") or "").strip()
    return (f"TOP {number}: " if number else "") + str(item.get("name") or "").strip()


def meeting_file_meta(meeting: Obj, body: Obj, organizations: list[str], items: list[Obj], file: Obj,
                      role: str) -> dict[str, Any]:
    """Sidecar of a meeting's file (invitation, protocol, resolution …): meeting, its date, the
    organisation and the agenda items it covers, so chunks and citations carry them."""
    date = day(meeting.get("start"))
    name = str(meeting.get("name") or "Sitzung").strip()
    label = str(file.get("name") or MEETING_FILE_TYPES.get(role, "Datei")).strip()
    meta: dict[str, Any] = {
        "title": f"{label} – {name}" + (f", {date}" if date else ""),
        "paper_type": MEETING_FILE_TYPES.get(role, "Sitzungsdokument"),
        "date": date, "meeting": ", ".join(p for p in (name, date) if p), "meeting_date": date,
        "organization": ", ".join(organizations), "committee": ", ".join(organizations),
        "agenda_item": "; ".join(a for a in (agenda_label(i) for i in items) if a),
        "municipality": str(body.get("name") or body.get("shortName") or ""),
        "body": str(body.get("shortName") or body.get("name") or ""),
        "url": str(meeting.get("web") or meeting.get("id")), "oparl_meeting": meeting["id"],
        "oparl_file": file["id"], "file_role": role, "type": "council",
    }
    if file.get("accessUrl"):
        meta["file_url"] = str(file["accessUrl"])
    return {k: v for k, v in meta.items() if v not in ("", None)}


# --- run summary ---------------------------------------------------------------------------

@dataclass
class SyncReport:
    bodies: list[str] = field(default_factory=list)
    papers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("new", "updated", "deleted", "unchanged", "failed"), 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("ingested", "unchanged", "not_modified", "removed", "skipped", "failed"), 0))
    meetings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("new", "updated", "deleted", "unchanged", "failed"), 0))
    meeting_pages: int = 0
    requests: int = 0
    retries: int = 0
    pages: int = 0
    resumed: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)     # file-level problems; the run goes on

    @property
    def exit_code(self) -> int:
        return 3 if self.files["failed"] or self.papers["failed"] or self.meetings["failed"] else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.exit_code == 0
        return d
