"""Retention: conversations, audit rows and drafts older than ``serve.history_retention_days``
go (0 keeps them), exports after an hour. Runs at start-up and then every hour."""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from typing import TYPE_CHECKING

from ..drafting import record
from ..errors import StorageError
from . import exports

if TYPE_CHECKING:
    from ..config import Settings
    from ..history import History

log = logging.getLogger(__name__)


def purge_drafts(settings: "Settings", days: int, *, now: float | None = None) -> int:
    """Drafts not changed for ``days`` (by their ``updated`` stamp); 0 keeps everything."""
    if days <= 0:
        return 0
    cutoff = dt.datetime.fromtimestamp((time.time() if now is None else now) - days * 86400)
    count = 0
    for d in record.summaries(settings.drafts_dir):
        try:
            updated = dt.datetime.fromisoformat(d["updated"]) if d["updated"] else None
        except ValueError:
            updated = None
        if updated is not None and updated < cutoff:
            shutil.rmtree(record.path_of(d["id"], settings.drafts_dir).parent, ignore_errors=True)
            count += 1
    return count


def purge_all(settings: "Settings", history: "History", *, now: float | None = None) -> dict[str, int]:
    out = history.purge(now=now)
    out["drafts"] = purge_drafts(settings, settings.serve.history_retention_days, now=now)
    out["exports"] = exports.purge(settings, now=now)
    return out


def start(settings: "Settings", history: "History", *, interval_s: float = 3600.0) -> threading.Event:
    """Purge now and then every ``interval_s`` in a daemon thread; set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                purge_all(settings, history)
            except (StorageError, OSError) as exc:   # a full disk must not kill the server; retry next round
                log.warning("Aufbewahrung: Bereinigen fehlgeschlagen: %s", exc)
            if stop.wait(interval_s):
                return

    threading.Thread(target=loop, daemon=True, name="retention").start()
    return stop
