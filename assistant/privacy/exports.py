"""Exported files (history, drafts): one folder per person under ``<data dir>/exports``,
so an erasure finds them and retention can drop them after ``EXPORT_TTL_S``."""
from __future__ import annotations

import hashlib
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..text import slug

if TYPE_CHECKING:
    from ..config import Settings

EXPORT_TTL_S = 3600


def person_dir(settings: "Settings", name: str) -> Path:
    # a readable prefix plus a hash: names differing only in case or umlauts stay apart
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return settings.exports_dir / f"{slug(name, 24, default='person')}-{digest}"


def new_path(settings: "Settings", name: str, filename: str, *, unique: bool = True) -> Path:
    """A fresh, unguessable path for one export of ``name`` (folder created, owner-only). With
    ``unique`` the file name gets a random part too: a web server's cached copy is found (and
    erased) by its name, which must then belong to this export alone."""
    folder = person_dir(settings, name) / secrets.token_hex(12)
    folder.mkdir(parents=True, mode=0o700)
    base = Path(filename).name
    if unique:
        stem, dot, ext = base.rpartition(".")
        base = f"{stem or ext}-{secrets.token_hex(4)}{dot}{ext if stem else ''}"
    return folder / base


def files_of(settings: "Settings", name: str) -> list[Path]:
    folder = person_dir(settings, name)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def remove_person(settings: "Settings", name: str, cache_dirs: Iterable[Path] = ()) -> int:
    """Delete the person's exports, and copies a web server made of them in ``cache_dirs``."""
    files = files_of(settings, name)
    removed = len(files)
    names = {f.name for f in files}
    shutil.rmtree(person_dir(settings, name), ignore_errors=True)
    removed += remove_copies(cache_dirs, names)
    return removed


def remove_copies(cache_dirs: Iterable[Path], names: set[str]) -> int:
    """Files called one of ``names`` anywhere below ``cache_dirs`` (Gradio keeps served files
    in hashed folders under its cache)."""
    count = 0
    if not names:
        return 0
    for root in cache_dirs:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.name in names and path.is_file():
                path.unlink(missing_ok=True)
                count += 1
    return count


def purge(settings: "Settings", *, max_age_s: float = EXPORT_TTL_S, now: float | None = None) -> int:
    """Delete exports older than ``max_age_s``; returns how many files went."""
    root = settings.exports_dir
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_s
    count = 0
    for folder in root.glob("*/*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                count += sum(1 for p in folder.rglob("*") if p.is_file())
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
    return count
