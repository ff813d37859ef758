"""The procedure model: one SQLite file (``council.sqlite3`` in the data dir).

Two sources fill it, and the trace reads both the same way:

* **the index** (every council document, however it arrived: ``ingest``, an upload, the
  OParl sync): :meth:`Model.refresh` extracts each new or changed document's own number,
  references, consultations, decisions and tasks (``extract.py``) and forgets removed ones.
  It runs only when the index changed (its generation), so every reader may call it.
* **OParl objects** (Paper, Consultation, Meeting, AgendaItem, Organization, Person, File,
  Body) as the sync meets them (:meth:`Model.put`, :meth:`Model.delete`), with a File's
  local path once it is downloaded.

Crash safety: each refresh and each sync page is one SQLite transaction (WAL), so a kill
leaves the previous state; the refresh is repeated from the index on the next read.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .. import text as T
from ..config import Settings
from ..errors import StorageError
from .extract import DocFacts, extract
from .mapping import Obj, ids, kind
from .references import normalize

EXTRACT_VERSION = "1"   # bump when extract.py reads documents differently: every document is read again
SCHEMA_VERSION = "1"    # bump when a table of what is read from documents changes: those tables are rebuilt
DERIVED = ("docs", "links", "events", "tasks")
SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
  source TEXT PRIMARY KEY, stamp TEXT, doc_id TEXT, scope TEXT, norm TEXT, reference TEXT, title TEXT,
  paper_type TEXT, category TEXT, date TEXT, organization TEXT, committee TEXT, meeting_date TEXT,
  first_page INTEGER, oparl_paper TEXT, oparl_meeting TEXT, oparl_file TEXT, file_role TEXT, url TEXT);
CREATE INDEX IF NOT EXISTS docs_norm ON docs(norm);
CREATE TABLE IF NOT EXISTS links (source TEXT, norm TEXT, label TEXT, relation TEXT, page INTEGER, quote TEXT);
CREATE INDEX IF NOT EXISTS links_norm ON links(norm);
CREATE INDEX IF NOT EXISTS links_source ON links(source);
CREATE TABLE IF NOT EXISTS events (source TEXT, norm TEXT, kind TEXT, date TEXT, organization TEXT, result TEXT,
  role TEXT, agenda_item TEXT, page INTEGER, quote TEXT, origin TEXT);
CREATE INDEX IF NOT EXISTS events_norm ON events(norm);
CREATE INDEX IF NOT EXISTS events_source ON events(source);
CREATE TABLE IF NOT EXISTS tasks (source TEXT, norm TEXT, basis TEXT, text TEXT, page INTEGER, agenda_item TEXT);
CREATE INDEX IF NOT EXISTS tasks_norm ON tasks(norm);
CREATE TABLE IF NOT EXISTS oparl (id TEXT PRIMARY KEY, kind TEXT, body TEXT, norm TEXT, parent TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS oparl_norm ON oparl(norm);
CREATE INDEX IF NOT EXISTS oparl_parent ON oparl(parent);
CREATE TABLE IF NOT EXISTS oparl_links (paper TEXT, other TEXT, attr TEXT);
CREATE INDEX IF NOT EXISTS oparl_links_paper ON oparl_links(paper);
CREATE INDEX IF NOT EXISTS oparl_links_other ON oparl_links(other);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
DOC_COLUMNS = ("source", "stamp", "doc_id", "scope", "norm", "reference", "title", "paper_type", "category", "date",
               "organization", "committee", "meeting_date", "first_page", "oparl_paper", "oparl_meeting",
               "oparl_file", "file_role", "url")
PAPER_RELATIONS = ("relatedPaper", "superordinatedPaper", "subordinatedPaper")


@dataclass
class Doc:
    """A council document as the model knows it (one row of ``docs``)."""

    source: str
    stamp: str
    doc_id: str
    scope: str
    norm: str | None
    reference: str
    title: str
    paper_type: str
    category: str
    date: str
    organization: str
    committee: str
    meeting_date: str
    first_page: int | None
    oparl_paper: str
    oparl_meeting: str
    oparl_file: str
    file_role: str
    url: str


@dataclass
class RefreshReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: bool = False      # the index had not changed


def scope_of(municipality: str) -> str:
    """Papers of different cities may share a number; this keeps them apart."""
    return T.fold(municipality or "").strip()


def _storage_error(exc: BaseException, path: Path) -> StorageError:
    return StorageError(f"Vorgangsdatenbank {path} nicht les- oder schreibbar ({exc}).",
                        f"Cannot use the procedure database {path} ({exc}).",
                        "Speicherplatz und Schreibrechte des Datenverzeichnisses prüfen; die Datei darf gelöscht "
                        "werden, sie wird aus dem Index neu aufgebaut (OParl-Daten beim nächsten Abgleich)")


class Model:
    """The procedure database. One connection, shared by threads one statement at a time."""

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.council_db)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            schema = self._meta("schema")
            if schema not in (None, SCHEMA_VERSION):   # derived from the index: rebuilt
                for table in DERIVED:
                    self.db.execute(f"DROP TABLE IF EXISTS {table}")
                self.db.execute("DELETE FROM meta WHERE key='generation'")
                self.db.executescript(SCHEMA)
            if schema != SCHEMA_VERSION:
                self._set_meta("schema", SCHEMA_VERSION)
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(exc, self.path) from None
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One IMMEDIATE transaction (nested calls join the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
            self._depth = 1
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException as exc:
                self.db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc, self.path) from None
                raise
            finally:
                self._depth = 0

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    # --- documents from the index --------------------------------------------------------------
    def refresh(self, store) -> RefreshReport:
        """Bring the documents in line with the index; cheap when the index did not change."""
        report = RefreshReport()
        generation = f"{store.generation()}:{EXTRACT_VERSION}"
        if self._meta("generation") == generation:
            report.skipped = True
            return report
        from ..index.store import INDEXED

        wanted = {}
        for rec in store.documents(status=INDEXED):
            wanted[rec.source] = (rec, f"{rec.doc_id}:{rec.sidecar_hash or ''}")
        with self.transaction():
            known = dict(self.db.execute("SELECT source, stamp FROM docs"))
            for source in set(known) - set(wanted):
                self._forget(source)
                report.removed += 1
            for source, (rec, stamp) in wanted.items():
                if known.get(source) == stamp:
                    continue
                first = store.get_chunks([f"{rec.doc_id}:0"])
                chunk = first[0] if first else None
                is_council = chunk is not None and (rec.type == "council" or chunk.paper_number)
                if source in known:
                    self._forget(source)
                if not is_council:
                    self.db.execute("INSERT INTO docs(source, stamp, doc_id, category) VALUES(?,?,?,?)",
                                    (source, stamp, rec.doc_id, "none"))   # remembered, so not read again
                    continue
                pages = [(p, store.page_text(rec.doc_id, p)) for p in store.pages(rec.doc_id)]
                facts = extract(chunk.meta, pages, title=chunk.title, date=chunk.date, source=source)
                self._store(source, stamp, rec.doc_id, chunk.municipality or str(chunk.meta.get("municipality") or ""),
                            chunk.meta, facts)
                report.updated += source in known
                report.added += source not in known
            self._set_meta("generation", generation)
        return report

    def _forget(self, source: str) -> None:
        for table in ("docs", "links", "events", "tasks"):
            self.db.execute(f"DELETE FROM {table} WHERE source=?", (source,))

    def _store(self, source: str, stamp: str, doc_id: str, municipality: str, meta: dict, f: DocFacts) -> None:
        row = {"source": source, "stamp": stamp, "doc_id": doc_id, "scope": scope_of(municipality), "norm": f.norm,
               "reference": f.reference, "title": f.title, "paper_type": f.paper_type, "category": f.category,
               "date": f.date, "organization": f.organization, "committee": f.committee,
               "meeting_date": f.meeting_date, "first_page": f.first_page,
               "oparl_paper": str(meta.get("oparl_id") or ""), "oparl_meeting": str(meta.get("oparl_meeting") or ""),
               "oparl_file": str(meta.get("oparl_file") or ""), "file_role": str(meta.get("file_role") or ""),
               "url": str(meta.get("url") or meta.get("web_url") or "")}
        self.db.execute(f"INSERT INTO docs({','.join(DOC_COLUMNS)}) VALUES({','.join('?' * len(DOC_COLUMNS))})",
                        [row[c] for c in DOC_COLUMNS])
        self.db.executemany("INSERT INTO links VALUES(?,?,?,?,?,?)",
                            [(source, x.norm, x.label, x.relation, x.page, x.quote) for x in f.links])
        self.db.executemany("INSERT INTO events VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                            [(source, e.norm, e.kind, e.date, e.organization, e.result, e.role, e.agenda_item,
                              e.page, e.quote, e.origin) for e in f.events])
        self.db.executemany("INSERT INTO tasks VALUES(?,?,?,?,?,?)",
                            [(source, t.norm, t.basis, t.text, t.page, t.agenda_item) for t in f.tasks])

    def docs(self, where: str = "1=1", args: tuple = ()) -> list[Doc]:
        rows = self.db.execute(f"SELECT {','.join(DOC_COLUMNS)} FROM docs WHERE category<>'none' AND ({where})", args)
        return [Doc(*r) for r in rows]

    def rows(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    # --- OParl objects -----------------------------------------------------------------------
    def put(self, obj: Obj, body: str = "", **extra: Any) -> None:
        """Store an OParl object (spliced: references as ids); ``extra`` fields are kept with it."""
        k = kind(obj)
        data = {**obj, **extra}
        norm = normalize(str(obj.get("reference") or "")) if k == "Paper" else None
        if k == "Paper" and not norm and obj.get("reference"):
            norm = T.fold(str(obj["reference"]))
        parent = None
        if k == "Consultation":
            parent = next(iter(ids(obj.get("paper"))), None)
        elif k == "AgendaItem":
            parent = next(iter(ids(obj.get("meeting"))), None)
        prev = self.get(obj["id"])
        if prev:   # a File's local path and the like survive a re-put of the bare object
            data = {**{k2: v for k2, v in prev.items() if k2.startswith("_")}, **data}
        self.db.execute("INSERT OR REPLACE INTO oparl VALUES(?,?,?,?,?,?)",
                        (obj["id"], k, body, norm, parent, json.dumps(data, ensure_ascii=False)))
        if k == "Paper":
            self.db.execute("DELETE FROM oparl_links WHERE paper=?", (obj["id"],))
            self.db.executemany("INSERT INTO oparl_links VALUES(?,?,?)",
                                [(obj["id"], other, attr) for attr in PAPER_RELATIONS for other in ids(obj.get(attr))])

    def annotate(self, oid: str, **fields: Any) -> None:
        """Add private fields (``_source`` of a File) to a stored object."""
        obj = self.get(oid)
        if obj is not None:
            obj.update(fields)
            self.db.execute("UPDATE oparl SET data=? WHERE id=?", (json.dumps(obj, ensure_ascii=False), oid))

    def delete(self, oid: str) -> None:
        """Forget an object; a paper takes its consultations along, a meeting its agenda items."""
        obj = self.get(oid)
        if obj is None:
            return
        if kind(obj) in ("Paper", "Meeting"):
            self.db.execute("DELETE FROM oparl WHERE parent=? AND kind IN ('Consultation', 'AgendaItem')", (oid,))
            self.db.execute("DELETE FROM oparl_links WHERE paper=?", (oid,))
        self.db.execute("DELETE FROM oparl WHERE id=?", (oid,))

    def get(self, oid: str | None) -> Obj | None:
        if not oid:
            return None
        row = self.db.execute("SELECT data FROM oparl WHERE id=?", (oid,)).fetchone()
        return json.loads(row[0]) if row else None

    def children(self, kind_: str, parent: str) -> list[Obj]:
        rows = self.db.execute("SELECT data FROM oparl WHERE kind=? AND parent=? ORDER BY id", (kind_, parent))
        return [json.loads(r[0]) for r in rows]

    def papers(self, norm: str) -> list[tuple[Obj, str]]:
        """OParl papers with this normalised number, with their body id."""
        rows = self.db.execute("SELECT data, body FROM oparl WHERE kind='Paper' AND norm=?", (norm,))
        return [(json.loads(d), b) for d, b in rows]

    def related_papers(self, paper_id: str) -> list[str]:
        """Papers an OParl paper names as related, super- or subordinated, and those naming it."""
        out = [r[0] for r in self.db.execute("SELECT other FROM oparl_links WHERE paper=?", (paper_id,))]
        out += [r[0] for r in self.db.execute("SELECT paper FROM oparl_links WHERE other=?", (paper_id,))]
        return list(dict.fromkeys(out))

    def knows(self, kind_: str, body: str) -> bool:
        """Does the model hold objects of this kind from this body (a data dir synced before the
        model existed, or a deleted model, does not)?"""
        return self.db.execute("SELECT 1 FROM oparl WHERE kind=? AND body=? LIMIT 1", (kind_, body)).fetchone() \
            is not None

    def all_of(self, kind_: str) -> list[Obj]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT data FROM oparl WHERE kind=?", (kind_,))]


@contextlib.contextmanager
def open_model(settings: Settings, store=None, *, refresh: bool = True) -> Iterator[Model]:
    """The model, brought up to date with the index first (``store``: a shared, open one)."""
    from ..index.store import open_store

    model = Model(settings)
    try:
        if refresh:
            with open_store(settings, store) as st:
                model.refresh(st)
        yield model
    finally:
        model.close()


def refresh(settings: Settings, store=None) -> RefreshReport:
    """Read new and changed council documents of the index into the model (after an ingest)."""
    from ..index.store import open_store

    with open_store(settings, store) as st, Model(settings) as model:
        return model.refresh(st)
