"""Files that people upload through the UI: checked, kept in the document store, indexed,
and owned.

The document store is ``<data dir>/documents/<collection>/``. Who uploaded a file is
recorded in the access database (:mod:`assistant.access.store`), so the person's "delete
my data" removes it and citations can mark it as an upload whose title and number nobody
has checked yet. A file with the name of a document already in the collection does not
replace it when a person uploads it: the new version waits in ``documents/.pending/`` until
an editor of that collection confirms (or discards) the replacement. (Scripts, ``person=None``,
replace directly, as ``ingest`` does.)

Functions that act for a person take ``person`` (an :class:`assistant.access.Person`);
``None`` means the command line or a script, which runs with the data dir's rights.
"""
from __future__ import annotations

import os
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..access import collections as colls
from ..access.store import Pending, Upload
from ..config import Settings
from ..errors import UsageError
from ..fsutil import atomic_path, commit

if TYPE_CHECKING:
    from ..access import Person

PENDING_DIR = ".pending"       # hidden: never walked by ingest, never a collection
STATUS_DE = {"ingested": "indexiert", "replaced": "neue Fassung indexiert", "unchanged": "unverändert",
             "duplicate": "schon vorhanden", "removed": "entfernt", "failed": "Fehler",
             "pending": "wartet auf Bestätigung"}


@dataclass
class UploadResult:
    name: str                       # the file name as the person uploaded it
    status: str                     # an ingest status (see ingest.STATUSES) or "pending"
    reason: str = ""
    pages: int = 0
    chunks: int = 0
    source: str = ""                # where the copy lives, when it was kept
    warnings: list[str] = field(default_factory=list)

    @property
    def status_de(self) -> str:
        return STATUS_DE.get(self.status, self.status)


def allowed_extensions() -> tuple[str, ...]:
    from .loaders import SUPPORTED_EXTENSIONS

    return tuple(SUPPORTED_EXTENSIONS)


def check_collection(name: str) -> str:
    return colls.check_name(name)


def safe_name(name: str) -> str:
    """A plain file name: no folders, no control characters, no leading dot."""
    base = unicodedata.normalize("NFC", Path(str(name).replace("\\", "/")).name)
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip().lstrip(".")
    stem, ext = os.path.splitext(base)
    return (stem[:150] or "dokument") + ext.lower()


def check_file(path: Path, name: str, settings: Settings) -> None:
    ext = Path(name).suffix.lower()
    allowed = allowed_extensions()
    if ext not in allowed:
        raise UsageError(f"Dateityp {ext or '(ohne Endung)'} ist nicht erlaubt. Erlaubt sind: "
                         + ", ".join(e.lstrip(".").upper() for e in allowed) + ".",
                         f"File type {ext or '(none)'} is not allowed.", "Als PDF, DOCX, ODT, HTML, MD oder TXT speichern")
    limit = settings.serve.max_upload_mb
    size = path.stat().st_size
    if size > limit * 1024 * 1024:
        raise UsageError(f"Die Datei ist zu groß ({size / 1024 / 1024:.1f} MB, höchstens {limit} MB).",
                         f"The file is too large ({size / 1024 / 1024:.1f} MB, at most {limit} MB).",
                         "Datei verkleinern oder aufteilen, oder die IT erhöht serve.max_upload_mb")
    if size == 0:
        raise UsageError("Die Datei ist leer.", "The file is empty.", "Die richtige Datei auswählen")


def target_of(name: str, settings: Settings, collection: str) -> Path:
    return (settings.documents_dir / check_collection(collection) / safe_name(name)).absolute()


def store_file(path: Path, name: str, settings: Settings, collection: str) -> Path:
    """Copy an upload into the document store (atomically: a half-written file is never indexed)."""
    target = target_of(name, settings, collection)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return target.resolve()


def _exists(target: Path, settings: Settings) -> bool:
    """A document of that name is there (as a file, or at least in the index)."""
    if target.is_file():
        return True
    from ..index.store import Store

    with Store(settings) as store:
        return store.document(str(target.resolve())) is not None


def _keep_pending(path: Path, name: str, settings: Settings, collection: str, owner: str,
                  type: str | None) -> Pending:
    pid = secrets.token_hex(8)
    folder = settings.documents_dir / PENDING_DIR / pid
    folder.mkdir(parents=True, exist_ok=True)
    waiting = folder / safe_name(name)
    with atomic_path(waiting) as tmp:
        shutil.copyfile(path, tmp)
    p = Pending(pid, collection, str(target_of(name, settings, collection).resolve()), str(waiting), safe_name(name),
                owner, type, time.time())
    colls.access_store(settings).add_pending(p)
    return p


def add_files(files: Sequence[tuple[str | Path, str]], settings: Settings, *, collection: str = "default",
              type: str | None = None, progress: Callable[[dict], None] | None = None,
              person: "Person | None" = None) -> list[UploadResult]:
    """``files``: (path of the uploaded temp file, original name). One result per file, in order;
    a refused or broken file is reported and the others are still indexed."""
    from .pipeline import ingest

    collection = check_collection(collection)
    owner = person.name if person is not None else ""
    if person is not None:
        if person.is_admin:
            colls.ensure(settings, collection, by=person.name)
        coll = colls.require_write(settings, person, collection)
        confirmed = colls.can_edit(person, coll)   # an editor vouches for what they upload
    else:
        confirmed = True
    results: list[UploadResult] = []
    kept: dict[str, UploadResult] = {}
    for path, name in files:
        path, name = Path(path), str(name or Path(path).name)
        result = UploadResult(name=name, status="failed")
        results.append(result)
        try:
            check_file(path, name, settings)
            target = target_of(name, settings, collection)
            if person is not None and (_exists(target, settings) or str(target.resolve()) in kept):
                _keep_pending(path, name, settings, collection, owner, type)
                result.status = "pending"
                result.reason = ("Ein Dokument dieses Namens gibt es in der Sammlung schon. Die neue Fassung wartet "
                                 "auf Bestätigung durch die Redaktion; bis dahin gilt die alte.")
                continue
            result.source = str(store_file(path, name, settings, collection))
            kept[result.source] = result
            colls.access_store(settings).record_upload(result.source, collection, owner, confirmed=confirmed)
        except UsageError as exc:
            result.reason = exc.de
        except OSError as exc:
            result.reason = f"Datei konnte nicht gespeichert werden ({exc.strerror or exc})."
    if kept:
        report = ingest(list(kept), settings, collection=collection, type=type, progress=progress)
        for f in report.files:
            if (r := kept.get(f.source)) is not None:
                r.status, r.reason, r.pages, r.chunks, r.warnings = f.status, f.reason_de or f.reason, f.pages, f.chunks, f.warnings
                if f.status == "duplicate" and "same content as " in f.reason:
                    r.reason = f"Gleicher Inhalt wie „{Path(f.reason.split('same content as ', 1)[1]).name}“ – " \
                               "wird nicht doppelt indexiert."
    return results


# --- who may change what ---------------------------------------------------------------------
def may_delete(person: "Person", collection: str, upload: Upload | None, settings: Settings) -> bool:
    """Editors of the collection; and the uploader, as long as no editor has confirmed it."""
    c = colls.access_store(settings).collection(collection)
    if c is not None and colls.can_edit(person, c):
        return True
    return upload is not None and upload.owner == person.name and not upload.confirmed


def remove_document(source: str, settings: Settings, *, store=None, person: "Person | None" = None) -> dict[str, bool]:
    """Drop a document from the index and, when it lives in the document store, its stored copy.
    Files elsewhere (e.g. a shared folder indexed with ``ingest``) are never deleted."""
    from ..index.store import open_store
    from .pipeline import remove_source

    access = colls.access_store(settings)
    upload = access.upload(source)
    if person is not None:
        with open_store(settings, store) as s:
            record = s.document(source)
        if record is None:
            raise UsageError("Dieses Dokument ist nicht (mehr) im Index.", "This document is not indexed (any more).",
                             "Liste aktualisieren")
        c = access.collection(record.collection)
        if c is None or not colls.can_read(person, c) or not may_delete(person, record.collection, upload, settings):
            raise colls.forbidden(f"„{Path(source).name}“ löschen", f"delete {Path(source).name!r}",
                                  "Nur die Redaktion der Sammlung (oder wer die Datei hochgeladen hat, solange sie "
                                  "nicht bestätigt ist) darf löschen")
    removed = remove_source(source, settings, store=store)
    deleted = _delete_stored(source, settings)
    access.forget_upload(source)
    if not removed and not deleted:
        raise UsageError("Dieses Dokument ist nicht (mehr) im Index.", "This document is not indexed (any more).",
                         "Liste aktualisieren")
    return {"index": removed, "file": deleted}


def _delete_stored(source: str, settings: Settings) -> bool:
    deleted = False
    try:
        path = Path(source).parent.resolve() / Path(source).name   # a link itself, not where it points
        path.relative_to(settings.documents_dir.resolve())
        for candidate in (path, *(path.with_name(path.name + s) for s in (".meta.yaml", ".meta.yml"))):
            if candidate.is_file() or candidate.is_symlink():
                candidate.unlink()
                deleted = deleted or candidate == path
    except (ValueError, OSError):
        pass
    return deleted


# --- uploads waiting for an editor -----------------------------------------------------------
def pending_for(person: "Person", settings: Settings) -> list[Pending]:
    """Replacements this person may decide on (editors) or has asked for (their own)."""
    access = colls.access_store(settings)
    out = []
    for p in access.pending():
        c = access.collection(p.collection)
        if p.owner == person.name or (c is not None and colls.can_edit(person, c)):
            out.append(p)
    return out


def confirm_replacement(pending_id: str, settings: Settings, person: "Person | None" = None, *,
                        progress: Callable[[dict], None] | None = None) -> UploadResult:
    """Put the waiting version in place of the old one and index it (editors only)."""
    from .pipeline import ingest

    access = colls.access_store(settings)
    p = next((x for x in access.pending() if x.id == pending_id), None)
    if p is None:
        raise UsageError("Diese neue Fassung gibt es nicht (mehr).", "No such pending version.", "Liste aktualisieren")
    if person is not None:
        colls.require_edit(settings, person, p.collection)
    waiting, target = Path(p.path), Path(p.target)
    if not waiting.is_file():
        access.take_pending(p.id)
        raise UsageError("Die wartende Datei fehlt.", "The waiting file is gone.", "Erneut hochladen")
    target.parent.mkdir(parents=True, exist_ok=True)
    commit(waiting, target)     # same file system: the old version is replaced in one step
    access.take_pending(p.id)
    _rmdir(waiting.parent)
    # an editor looked at this version when confirming it
    access.record_upload(str(target.resolve()), p.collection, p.owner, confirmed=True)
    report = ingest([target], settings, collection=p.collection, type=p.type, progress=progress)
    f = report.files[0] if report.files else None
    return UploadResult(p.name, f.status if f else "failed", (f.reason_de or f.reason) if f else "", f.pages if f else 0,
                        f.chunks if f else 0, str(target), f.warnings if f else [])


def discard_replacement(pending_id: str, settings: Settings, person: "Person | None" = None) -> Pending:
    """Drop a waiting version (its uploader or an editor); the indexed version stays."""
    access = colls.access_store(settings)
    p = next((x for x in access.pending() if x.id == pending_id), None)
    if p is None:
        raise UsageError("Diese neue Fassung gibt es nicht (mehr).", "No such pending version.", "Liste aktualisieren")
    if person is not None and p.owner != person.name:
        colls.require_edit(settings, person, p.collection)
    access.take_pending(p.id)
    Path(p.path).unlink(missing_ok=True)
    _rmdir(Path(p.path).parent)
    return p


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# --- metadata an editor vouches for ----------------------------------------------------------
def confirm_metadata(source: str, settings: Settings, person: "Person | None" = None) -> None:
    """Mark an upload's title and numbers as checked: citations stop flagging it."""
    access = colls.access_store(settings)
    up = access.upload(source)
    if up is None:
        raise UsageError("Dieses Dokument ist kein Nutzer-Upload.", "This document is not a user upload.",
                         "Liste aktualisieren")
    if person is not None:
        colls.require_edit(settings, person, up.collection)
    access.confirm_upload(source, person.name if person else "cli")


def unconfirmed(settings: Settings, sources: Sequence[str]) -> dict[str, Upload]:
    """Of ``sources``, the uploads no editor has confirmed yet (source -> upload)."""
    return {u.source: u for u in colls.access_store(settings).uploads(sources=list(sources)) if not u.confirmed}
