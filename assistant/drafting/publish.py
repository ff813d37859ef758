"""Drafts into the city's file store: "In openDesk speichern" and `draft --save-to webdav://…`.

The draft is exported (ODT; DOCX and PDF too when ``webdav.save_formats`` names them), with
its provenance appendix, and written into the folder as ``<draft id>.<ext>``. The ETag the
server returns is kept beside the draft (``saved.json``). A later save of the same draft
writes only while the file still has that ETag (``If-Match``), so the file is updated in
place and Nextcloud keeps the previous version; a file changed in openDesk since, or one
of that name that was not saved from here, is reported as a conflict and never
overwritten (the first save sends ``If-None-Match: *``).
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import Settings
from ..errors import UsageError
from ..fsutil import atomic_write
from ..sources.webdav import Conflict, Credentials, Folder, display_path, normalize_url, read_password
from . import export
from .record import Draft, now, path_of

RECORD = "saved.json"


@dataclass
class SavedFile:
    name: str
    url: str
    path: str           # where a person finds it in openDesk (path inside the user's files)
    status: str         # created | updated
    etag: str = ""


@dataclass
class SaveResult:
    folder: str
    files: list[SavedFile] = field(default_factory=list)

    def message(self) -> str:
        parts = [f"{f.path} ({'neu angelegt' if f.status == 'created' else 'aktualisiert, openDesk behält die vorige Version'})"
                 for f in self.files]
        return "In openDesk gespeichert: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"folder": self.folder, "files": [asdict(f) for f in self.files]}


def formats(settings: Settings) -> list[str]:
    """The extensions a save writes: always ODT (what Collabora edits), then the configured others."""
    out = [".odt"]
    for raw in settings.webdav.save_formats.replace(";", ",").split(","):
        ext = "." + raw.strip().lower().lstrip(".") if raw.strip() else ""
        if not ext or ext in out:
            continue
        if ext not in export.FORMATS:
            raise UsageError(f"webdav.save_formats: unbekanntes Format {raw.strip()!r}",
                             f"webdav.save_formats: unknown format {raw.strip()!r}", 'save_formats = "odt, pdf"')
        out.append(ext)
    return out


def save_to_folder(draft: Draft, settings: Settings, target: str | None = None) -> SaveResult:
    """Write the draft into the WebDAV folder ``target`` (default ``webdav.save_to``)."""
    target = target or settings.webdav.save_to
    if not target:
        raise UsageError("Kein openDesk-Ordner zum Speichern eingerichtet", "no openDesk folder to save to",
                         '[webdav] save_to = "webdav://cloud.stadt.de/remote.php/dav/files/NAME/Entwürfe" in '
                         "pilot-assistant.toml, oder --save-to webdav://…")
    url, url_user = normalize_url(target)
    user = url_user or settings.webdav.user
    if not user:
        raise UsageError("Kein Anmeldename für den openDesk-Ordner", "no user name for the openDesk folder",
                         "webdav.user setzen oder ihn in die URL schreiben: webdav://NAME@cloud.stadt.de/…")
    exts = formats(settings)
    record_file = path_of(draft.id, settings.drafts_dir).parent / RECORD
    saved = _read(record_file)
    wd = settings.webdav
    result = SaveResult(display_path(url))
    with Folder(url, Credentials(user, read_password(wd.password_file)), timeout=wd.timeout_s,
                retries=wd.retries, ca_file=wd.ca_file) as folder:
        folder.ensure_folder()
        plans = []
        for ext in exts:   # check every file before writing any: a conflict leaves the folder as it was
            name = f"{draft.id}{ext}"
            current, known = folder.stat(name), saved.get(folder.file_url(name), {}).get("etag")
            if current is not None and current.etag != known:
                where = display_path(folder.file_url(name))
                why = ("wurde seit dem letzten Speichern in openDesk geändert", "was changed in openDesk since the "
                       "last save") if known else ("gibt es dort schon, nicht von hier gespeichert",
                                                   "already exists there and was not saved from here")
                raise Conflict(f"Konflikt: {where} {why[0]}; nicht überschrieben",
                               f"conflict: {where} {why[1]}; not overwritten",
                               "Änderungen in openDesk prüfen, die Datei dort umbenennen oder verschieben, "
                               "dann erneut speichern")
            plans.append((name, known if current is not None else None))
        with tempfile.TemporaryDirectory(prefix="pa-save-") as tmp:
            for name, etag in plans:
                data = export.export(draft, Path(tmp) / name).read_bytes()
                new = folder.put(name, data, etag=etag)
                file_url = folder.file_url(name)
                saved[file_url] = {"etag": new, "saved": now()}
                atomic_write(record_file, json.dumps(saved, ensure_ascii=False, indent=1))
                result.files.append(SavedFile(name, file_url, display_path(file_url),
                                              "updated" if etag else "created", new))
    return result


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
