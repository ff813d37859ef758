"""Files that people upload through the UI: checked, kept in the document store, indexed.

The document store (``<data dir>/documents/<collection>/``) is the only folder the web
server may serve files from, so an uploaded PDF can be opened at the cited page. A file
with the same name in the same collection is a new version of it and replaces it.
"""
from __future__ import annotations

import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..config import Settings
from ..errors import UsageError
from ..fsutil import atomic_path

COLLECTION_RE = re.compile(r"^[\w][\w .-]{0,63}$")
STATUS_DE = {"ingested": "indexiert", "replaced": "neue Fassung indexiert", "unchanged": "unverändert",
             "duplicate": "schon vorhanden", "removed": "entfernt", "failed": "Fehler"}


@dataclass
class UploadResult:
    name: str                       # the file name as the person uploaded it
    status: str                     # an ingest status (see ingest.STATUSES)
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
    name = unicodedata.normalize("NFC", (name or "").strip()) or "default"
    if not COLLECTION_RE.match(name) or ".." in name:
        raise UsageError(f"Ungültiger Sammlungsname {name!r}.", f"Invalid collection name {name!r}.",
                         "Buchstaben, Ziffern, Leerzeichen, . _ - verwenden (höchstens 64 Zeichen)")
    return name


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


def store_file(path: Path, name: str, settings: Settings, collection: str) -> Path:
    """Copy an upload into the document store (atomically: a half-written file is never indexed)."""
    folder = settings.documents_dir / check_collection(collection)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_name(name)
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return target.resolve()


def add_files(files: Sequence[tuple[str | Path, str]], settings: Settings, *, collection: str = "default",
              type: str | None = None, progress: Callable[[dict], None] | None = None) -> list[UploadResult]:
    """``files``: (path of the uploaded temp file, original name). One result per file, in order;
    a refused or broken file is reported and the others are still indexed."""
    from .pipeline import ingest

    collection = check_collection(collection)
    results: list[UploadResult] = []
    kept: dict[str, UploadResult] = {}
    for path, name in files:
        path, name = Path(path), str(name or Path(path).name)
        result = UploadResult(name=name, status="failed")
        results.append(result)
        try:
            check_file(path, name, settings)
            result.source = str(store_file(path, name, settings, collection))
            kept[result.source] = result
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


def remove_document(source: str, settings: Settings, *, store=None) -> dict[str, bool]:
    """Drop a document from the index and, when it lives in the document store, its stored copy.
    Files elsewhere (e.g. a shared folder indexed with ``ingest``) are never deleted."""
    from .pipeline import remove_source

    removed = remove_source(source, settings, store=store)
    deleted = False
    try:
        path = Path(source).resolve()
        path.relative_to(settings.documents_dir.resolve())
        for candidate in (path, *(path.with_name(path.name + s) for s in (".meta.yaml", ".meta.yml"))):
            if candidate.is_file():
                candidate.unlink()
                deleted = deleted or candidate == path
    except ValueError:
        pass
    if not removed and not deleted:
        raise UsageError("Dieses Dokument ist nicht (mehr) im Index.", "This document is not indexed (any more).",
                         "Liste aktualisieren")
    return {"index": removed, "file": deleted}
