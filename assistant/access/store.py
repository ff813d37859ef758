"""The access database (``<data dir>/access.sqlite3``): collections with their read and write
groups, who uploaded which document, replacements waiting for confirmation, and the roles
and groups given to people by name.

One short SQLite connection per call (the web server runs handlers in many threads), WAL,
``BEGIN IMMEDIATE`` for every write: a kill leaves either the old or the new state. The
schema carries a version; opening an older file migrates it in place. A data dir from
before collections had permissions gets the collection ``default`` (and every collection
the index already holds, see :func:`assistant.access.collections.adopt`) readable and
writable by everyone, so an upgrade loses nothing.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager

from ..errors import StorageError
from ..fsutil import sqlite_transaction
from .person import EVERYONE

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS collections (
  name TEXT PRIMARY KEY, read_groups TEXT NOT NULL DEFAULT '[]', write_groups TEXT NOT NULL DEFAULT '[]',
  description TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, created_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS uploads (
  source TEXT PRIMARY KEY, collection TEXT NOT NULL, owner TEXT NOT NULL, confirmed INTEGER NOT NULL DEFAULT 0,
  confirmed_by TEXT NOT NULL DEFAULT '', added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_owner ON uploads(owner);
CREATE TABLE IF NOT EXISTS pending (
  id TEXT PRIMARY KEY, collection TEXT NOT NULL, target TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL,
  owner TEXT NOT NULL, type TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS people (
  name TEXT PRIMARY KEY, roles TEXT NOT NULL DEFAULT '[]', groups TEXT NOT NULL DEFAULT '[]', updated_at REAL NOT NULL);
"""
DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class Collection:
    name: str
    read: tuple[str, ...] = (EVERYONE,)
    write: tuple[str, ...] = (EVERYONE,)
    description: str = ""
    created_at: float = 0.0
    created_by: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "read": list(self.read), "write": list(self.write),
                "description": self.description, "created_by": self.created_by}


@dataclass(frozen=True)
class Upload:
    """A document a person uploaded: whose it is and whether an editor confirmed its metadata."""

    source: str
    collection: str
    owner: str
    confirmed: bool = False
    confirmed_by: str = ""
    added_at: float = 0.0


@dataclass(frozen=True)
class Pending:
    """A new version of a document, kept aside until an editor confirms the replacement."""

    id: str
    collection: str
    target: str            # the indexed source it would replace
    path: str              # where the new version waits
    name: str
    owner: str
    type: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Grants:
    """Roles and groups given to a name in the access database."""

    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


class AccessStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)   # idempotent; executescript commits on its own
                db.execute("BEGIN IMMEDIATE")
                self._migrate(db)
                db.execute("COMMIT")
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def _migrate(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version < 1:   # a data dir from before permissions: everything stays visible to everyone
            db.execute("INSERT OR IGNORE INTO collections(name, read_groups, write_groups, description, created_at,"
                       " created_by) VALUES(?,?,?,?,?,?)",
                       (DEFAULT_COLLECTION, json.dumps([EVERYONE]), json.dumps([EVERYONE]),
                        "Standardsammlung", time.time(), "migration"))
        if version != SCHEMA_VERSION:   # opening an up-to-date store writes nothing (a full disk still reads)
            db.execute("INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _error(self, exc: BaseException) -> StorageError:
        return StorageError(f"Zugriffsdatenbank {self.path} kann nicht gelesen oder geschrieben werden ({exc})",
                            f"Cannot write or read the access database {self.path} ({exc})",
                            "Speicherplatz und Schreibrechte des Datenverzeichnisses prüfen")

    def _db(self, write: bool = False) -> ContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.path, self._error, write=write)

    # --- collections ---------------------------------------------------------------------
    @staticmethod
    def _collection(row) -> Collection:
        name, read, write, desc, created_at, by = row
        return Collection(name, tuple(json.loads(read)), tuple(json.loads(write)), desc, created_at, by)

    def collections(self) -> list[Collection]:
        with self._db() as db:
            rows = db.execute("SELECT name, read_groups, write_groups, description, created_at, created_by "
                              "FROM collections ORDER BY name").fetchall()
        return [self._collection(r) for r in rows]

    def collection(self, name: str) -> Collection | None:
        with self._db() as db:
            row = db.execute("SELECT name, read_groups, write_groups, description, created_at, created_by "
                             "FROM collections WHERE name=?", (name,)).fetchone()
        return self._collection(row) if row else None

    def put_collection(self, c: Collection, *, replace: bool = True) -> bool:
        """Insert (or, with ``replace``, overwrite) a collection; False when it existed and was kept."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._db(write=True) as db:
            cur = db.execute(f"{verb} INTO collections VALUES(?,?,?,?,?,?)",
                             (c.name, json.dumps(sorted(set(c.read))), json.dumps(sorted(set(c.write))),
                              c.description, c.created_at or time.time(), c.created_by))
        return cur.rowcount > 0

    def drop_collection(self, name: str) -> bool:
        with self._db(write=True) as db:
            return db.execute("DELETE FROM collections WHERE name=?", (name,)).rowcount > 0

    # --- uploads -------------------------------------------------------------------------
    def record_upload(self, source: str, collection: str, owner: str, *, confirmed: bool = False) -> None:
        with self._db(write=True) as db:
            db.execute("INSERT OR REPLACE INTO uploads VALUES(?,?,?,?,?,?)",
                       (source, collection, owner, int(confirmed), owner if confirmed else "", time.time()))

    def upload(self, source: str) -> Upload | None:
        with self._db() as db:
            row = db.execute("SELECT source, collection, owner, confirmed, confirmed_by, added_at FROM uploads "
                             "WHERE source=?", (source,)).fetchone()
        return Upload(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def uploads(self, *, owner: str | None = None, sources: list[str] | None = None) -> list[Upload]:
        sql, args = "SELECT source, collection, owner, confirmed, confirmed_by, added_at FROM uploads WHERE 1=1", []
        if owner is not None:
            sql, args = sql + " AND owner=?", [*args, owner]
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY source", args).fetchall()
        out = [Upload(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]
        if sources is not None:
            wanted = set(sources)
            out = [u for u in out if u.source in wanted]
        return out

    def confirm_upload(self, source: str, by: str) -> bool:
        with self._db(write=True) as db:
            return db.execute("UPDATE uploads SET confirmed=1, confirmed_by=? WHERE source=?",
                              (by, source)).rowcount > 0

    def forget_upload(self, source: str) -> None:
        with self._db(write=True) as db:
            db.execute("DELETE FROM uploads WHERE source=?", (source,))

    # --- pending replacements ------------------------------------------------------------
    def add_pending(self, p: Pending) -> None:
        with self._db(write=True) as db:
            db.execute("INSERT INTO pending VALUES(?,?,?,?,?,?,?,?)",
                       (p.id, p.collection, p.target, p.path, p.name, p.owner, p.type, p.created_at or time.time()))

    def pending(self, *, owner: str | None = None) -> list[Pending]:
        sql, args = "SELECT id, collection, target, path, name, owner, type, created_at FROM pending", []
        if owner is not None:
            sql, args = sql + " WHERE owner=?", [owner]
        with self._db() as db:
            return [Pending(*r) for r in db.execute(sql + " ORDER BY created_at", args).fetchall()]

    def take_pending(self, pending_id: str) -> Pending | None:
        with self._db(write=True) as db:
            row = db.execute("SELECT id, collection, target, path, name, owner, type, created_at FROM pending "
                             "WHERE id=?", (pending_id,)).fetchone()
            if row:
                db.execute("DELETE FROM pending WHERE id=?", (pending_id,))
        return Pending(*row) if row else None

    # --- roles and groups by name --------------------------------------------------------
    def grants(self, name: str) -> Grants | None:
        with self._db() as db:
            row = db.execute("SELECT name, roles, groups FROM people WHERE name=?", (name,)).fetchone()
        return Grants(row[0], tuple(json.loads(row[1])), tuple(json.loads(row[2]))) if row else None

    def all_grants(self) -> list[Grants]:
        with self._db() as db:
            rows = db.execute("SELECT name, roles, groups FROM people ORDER BY name").fetchall()
        return [Grants(r[0], tuple(json.loads(r[1])), tuple(json.loads(r[2]))) for r in rows]

    def put_grants(self, g: Grants) -> None:
        with self._db(write=True) as db:
            db.execute("INSERT OR REPLACE INTO people VALUES(?,?,?,?)",
                       (g.name, json.dumps(sorted(set(g.roles))), json.dumps(sorted(set(g.groups))), time.time()))

    def drop_grants(self, name: str) -> bool:
        with self._db(write=True) as db:
            return db.execute("DELETE FROM people WHERE name=?", (name,)).rowcount > 0
