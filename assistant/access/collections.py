"""Collections and who may read and write them: the function API the UI, the CLI and a
folder sync call.

A collection is a named part of the index (``Chunk.collection``) with read and write groups.
Reading means: retrieval, the sources panel, the page viewer and the file route see its
documents. Writing means: uploading into it. Deleting, replacing and confirming documents
additionally needs the role ``editor`` (or ``admin``). Admins read and write everything.

    create(settings, "bauamt", read=["bauamt"], write=["bauamt-redaktion"])
    grant(settings, "bauamt", read=["kaemmerei"])
    readable(settings, person)          # -> ["bauamt", "default"]
    scope(settings, person, Filters(type="council"))   # the filter every search of that person uses

Every function that changes something takes ``by`` (the acting :class:`Person`); ``None``
means the command line, which runs with the rights of whoever may open the data dir.
"""
from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import UsageError, UserError
from ..index.filters import Filters
from .person import EVERYONE, Person, check_group
from .store import DEFAULT_COLLECTION, AccessStore, Collection

if TYPE_CHECKING:
    from ..config import Settings

COLLECTION_RE = re.compile(r"^[\w][\w .-]{0,63}$")
_stores: dict[Path, AccessStore] = {}
_lock = threading.Lock()


class Forbidden(UserError):
    """The person lacks the right for what they tried; nothing was changed."""


def forbidden(what_de: str, what_en: str, fix: str = "Eine Person mit der Rolle Verwaltung (admin) fragen") -> Forbidden:
    return Forbidden(f"Keine Berechtigung: {what_de}", f"Not allowed: {what_en}", fix)


def access_store(settings: "Settings") -> AccessStore:
    """The access database of this data dir (opened, and migrated, once per process).

    Created next to an existing index (an upgrade), it takes over every collection the index
    holds as readable and writable by everyone, as they were before permissions existed."""
    path = Path(settings.access_db).resolve()
    with _lock:
        store = _stores.get(path)
        if store is None or not path.exists():
            fresh = not path.exists()
            store = _stores[path] = AccessStore(path)
            if fresh:
                for name in _indexed_collections(settings):
                    store.put_collection(Collection(name, (EVERYONE,), (EVERYONE,), "", time.time(), "migration"),
                                         replace=False)
        return store


def _indexed_collections(settings: "Settings") -> list[str]:
    import sqlite3

    manifest = Path(settings.index_dir) / "manifest.sqlite3"
    if not manifest.is_file():
        return []
    try:
        db = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=30)
        try:
            return [r[0] for r in db.execute("SELECT DISTINCT collection FROM documents") if r[0]]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def check_name(name: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").strip()) or DEFAULT_COLLECTION
    if not COLLECTION_RE.match(name) or ".." in name:
        raise UsageError(f"Ungültiger Sammlungsname {name!r}.", f"Invalid collection name {name!r}.",
                         "Buchstaben, Ziffern, Leerzeichen, . _ - verwenden (höchstens 64 Zeichen)")
    return name


def _groups(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({check_group(v) for v in values if v and v.strip()}))


# --- rights --------------------------------------------------------------------------------
def can_read(person: Person, c: Collection) -> bool:
    return person.is_admin or EVERYONE in c.read or bool(person.groups & set(c.read)) or can_write(person, c)


def can_write(person: Person, c: Collection) -> bool:
    return person.is_admin or EVERYONE in c.write or bool(person.groups & set(c.write))


def can_edit(person: Person, c: Collection) -> bool:
    """Delete, replace and confirm documents of ``c``."""
    return person.is_admin or (person.is_editor and can_write(person, c))


def _require_admin(by: Person | None, what_de: str, what_en: str) -> None:
    if by is not None and not by.is_admin:
        raise forbidden(what_de, what_en)


# --- reading ------------------------------------------------------------------------------
def list_collections(settings: "Settings", person: Person | None = None) -> list[Collection]:
    """All collections (``person=None``) or those ``person`` may read."""
    found = access_store(settings).collections()
    return found if person is None else [c for c in found if can_read(person, c)]


def get(settings: "Settings", name: str) -> Collection:
    c = access_store(settings).collection(check_name(name))
    if c is None:
        known = ", ".join(x.name for x in access_store(settings).collections()) or "keine"
        raise UsageError(f"Sammlung {name!r} gibt es nicht (vorhanden: {known})",
                         f"No collection {name!r} (existing: {known})", f"pilot-assistant collection create {name}")
    return c


def readable(settings: "Settings", person: Person) -> list[str]:
    return [c.name for c in list_collections(settings, person)]


def writable(settings: "Settings", person: Person) -> list[str]:
    return [c.name for c in access_store(settings).collections() if can_write(person, c)]


def editable(settings: "Settings", person: Person) -> list[str]:
    return [c.name for c in access_store(settings).collections() if can_edit(person, c)]


def scope(settings: "Settings", person: Person, filters: Filters | None = None) -> Filters:
    """``filters`` narrowed to the collections ``person`` may read (an empty list matches nothing)."""
    allowed = readable(settings, person)
    f = replace(filters) if filters is not None else Filters()
    wanted = f.collection
    if wanted:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        allowed = [c for c in allowed if c in wanted]
    f.collection = allowed
    return f


def require_read(settings: "Settings", person: Person, name: str) -> Collection:
    c = access_store(settings).collection(name)
    if c is None or not can_read(person, c):
        raise forbidden(f"Sammlung {name!r} lesen", f"read collection {name!r}")
    return c


def require_write(settings: "Settings", person: Person, name: str) -> Collection:
    c = get(settings, name)
    if not can_write(person, c):
        raise forbidden(f"in die Sammlung „{name}“ hochladen", f"upload into collection {name!r}",
                        "Eine andere Sammlung wählen oder die Verwaltung um Schreibrecht bitten")
    return c


def require_edit(settings: "Settings", person: Person, name: str) -> Collection:
    c = get(settings, name)
    if not can_edit(person, c):
        raise forbidden(f"Dokumente der Sammlung „{name}“ löschen oder ersetzen",
                        f"delete or replace documents of collection {name!r}",
                        "Nur die Redaktion (Rolle editor mit Schreibrecht) darf das; sie um Hilfe bitten")
    return c


# --- changing -----------------------------------------------------------------------------
def create(settings: "Settings", name: str, *, read: Iterable[str] = (EVERYONE,), write: Iterable[str] = (),
           description: str = "", by: Person | None = None) -> Collection:
    _require_admin(by, "Sammlungen anlegen", "create collections")
    c = Collection(check_name(name), _groups(read), _groups(write), (description or "").strip()[:200], time.time(),
                   by.name if by else "cli")
    if not access_store(settings).put_collection(c, replace=False):
        raise UsageError(f"Sammlung {c.name!r} gibt es schon", f"Collection {c.name!r} exists already",
                         f"pilot-assistant collection grant {c.name} --read GRUPPE")
    return c


def ensure(settings: "Settings", name: str, *, read: Iterable[str] = (), write: Iterable[str] = (),
           by: str = "ingest") -> tuple[Collection, bool]:
    """The collection, created when missing, by default for admins only (a new name must not
    publish what is put into it); ``created`` tells the caller to say so."""
    name = check_name(name)
    store = access_store(settings)
    created = store.put_collection(Collection(name, _groups(read), _groups(write), "", time.time(), by),
                                   replace=False)
    return store.collection(name), created


def grant(settings: "Settings", name: str, *, read: Iterable[str] = (), write: Iterable[str] = (),
          by: Person | None = None) -> Collection:
    _require_admin(by, "Rechte an Sammlungen ändern", "change collection rights")
    c = get(settings, name)
    new = replace(c, read=_groups([*c.read, *read]), write=_groups([*c.write, *write]))
    access_store(settings).put_collection(new)
    return new


def revoke(settings: "Settings", name: str, *, read: Iterable[str] = (), write: Iterable[str] = (),
           by: Person | None = None) -> Collection:
    _require_admin(by, "Rechte an Sammlungen ändern", "change collection rights")
    c = get(settings, name)
    drop_r, drop_w = set(_groups(read)), set(_groups(write))
    new = replace(c, read=tuple(g for g in c.read if g not in drop_r), write=tuple(g for g in c.write if g not in drop_w))
    access_store(settings).put_collection(new)
    return new


def set_rights(settings: "Settings", name: str, *, read: Iterable[str], write: Iterable[str],
               description: str | None = None, by: Person | None = None) -> Collection:
    """Replace a collection's read and write groups (what the admin view's form does)."""
    _require_admin(by, "Rechte an Sammlungen ändern", "change collection rights")
    c = get(settings, name)
    new = replace(c, read=_groups(read), write=_groups(write),
                  description=c.description if description is None else description.strip()[:200])
    access_store(settings).put_collection(new)
    return new


def delete(settings: "Settings", name: str, *, by: Person | None = None) -> None:
    """Remove an empty collection (its documents must be removed first: nothing is lost silently)."""
    from ..index.store import Store

    _require_admin(by, "Sammlungen löschen", "delete collections")
    c = get(settings, name)
    with Store(settings) as store:
        count = len(store.documents(collection=c.name, status=None))
    if count:
        raise UsageError(f"Sammlung {c.name!r} enthält noch {count} Dokument(e)",
                         f"Collection {c.name!r} still holds {count} document(s)",
                         "Dokumente zuerst entfernen (Tab „Dokumente“ oder pilot-assistant remove QUELLE)")
    access_store(settings).drop_collection(c.name)
