"""Crash-safe file writing: the one place that knows how.

A kill, a full disk or a power cut must leave either the old file or the new one, never
half of one. So every writer writes a temporary file beside the target, flushes it to
disk, renames it over the target (atomic on POSIX) and flushes the directory, so the
rename itself survives a power cut.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, target: Path) -> None:
    """Move a finished temporary file over ``target`` durably (same directory, same file system)."""
    _fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, mode: int | None = None, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target`` for any writer (a library that takes a file name);
    on success it replaces ``target``, on an exception it is removed and ``target`` is untouched.

    ``mode`` (e.g. ``0o600``) is set before anything is written, so secrets are never readable
    by others, not even for a moment. ``suffix`` keeps an extension some writers look at."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp{suffix}")
    if mode is not None:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        yield tmp
        commit(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(target: str | Path, data: str | bytes, *, mode: int | None = None,
                 encoding: str = "utf-8") -> Path:
    """Replace ``target`` with ``data`` crash-safely (see :func:`atomic_path`)."""
    target = Path(target)
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(target, mode=mode) as tmp, open(tmp, "wb") as fh:
        fh.write(raw)
    return target
