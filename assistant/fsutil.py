"""Crash-safe file writing: the one place that knows how.

A kill, a full disk or a power cut must leave either the old file or the new one, never
half of one. So every writer writes a temporary file beside the target, flushes it to
disk, renames it over the target (atomic on POSIX) and flushes the directory, so the
rename itself survives a power cut. Small SQLite stores get the same promise from one
short transaction per call (:func:`sqlite_transaction`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Iterator


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


@contextlib.contextmanager
def sqlite_transaction(path: str | Path, error: Callable[[BaseException], Exception], *, write: bool = True,
                       pragmas: tuple[str, ...] = ()) -> Iterator[sqlite3.Connection]:
    """One short connection (web handlers run in many threads), inside ``BEGIN IMMEDIATE`` …
    ``COMMIT`` when ``write``; anything raised rolls back, so a failed call leaves the store as
    it was. SQLite errors come out as ``error(exc)`` (the store's own bilingual message)."""
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise error(exc) from None
    try:
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")
        if write:
            db.execute("BEGIN IMMEDIATE")
        yield db
        if write:
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise error(exc) from None
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


@contextlib.contextmanager
def exclusive(lock_file: str | Path, busy: Exception) -> Iterator[None]:
    """Hold ``lock_file`` exclusively for the block, or raise ``busy`` at once when another
    process holds it (a second sync of the same thing must not wait behind the first, nor run
    beside it). The kernel frees the lock when the holder dies, so a killed run blocks nothing."""
    with open(lock_file, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise busy from None
        yield


def write_limited(part: Path, chunks: Iterable[bytes], max_bytes: int, *, declared: int = 0,
                  too_large: Callable[[str], Exception]) -> str:
    """Stream a download into ``part`` and return its SHA-256; past ``max_bytes`` (declared by
    the server or counted while reading: a server may lie about the length) raise
    ``too_large("N > max Bytes")`` before the disk fills."""
    if declared > max_bytes:
        raise too_large(f"{declared} > {max_bytes} Bytes")
    size, digest = 0, hashlib.sha256()
    with open(part, "wb") as fh:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise too_large(f"> {max_bytes} Bytes")
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()
