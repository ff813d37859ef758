""""Alle meine Daten löschen": everything one person left in the data dir, in one call.

Removed: conversations (and the question texts in the person's audit rows), drafts the
person owns, their exports (and the web server's cached copies of them), documents they
uploaded (index rows, vectors and stored files) and their waiting replacements. Kept: other
people's data, documents the person did not upload, and the audit rows; one more audit row
records the erasure itself. The person cannot delete audit rows.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..access import collections as colls
from ..access.person import LOCAL_USER
from ..drafting import record
from ..errors import UserError
from ..ingest import uploads
from . import exports

if TYPE_CHECKING:
    from ..config import Settings
    from ..history import History


def owned_drafts(settings: "Settings", name: str) -> list[str]:
    """Ids of the drafts ``name`` owns (without login, drafts made on the command line too)."""
    return [d["id"] for d in record.summaries(settings.drafts_dir)
            if d["owner"] == name or (d["owner"] == "" and name == LOCAL_USER)]


def erase_person(settings: "Settings", name: str, history: "History", *, store=None,
                 cache_dirs: Iterable[Path] = ()) -> dict[str, Any]:
    """Erase ``name``'s data; returns the counts (also written to the audit entry)."""
    cache_dirs = list(cache_dirs)
    counts: dict[str, Any] = {}
    conv = history.delete_user(name)
    counts.update(conversations=conv["conversations"], messages=conv["messages"])

    draft_ids = owned_drafts(settings, name)
    for draft_id in draft_ids:
        shutil.rmtree(record.path_of(draft_id, settings.drafts_dir).parent, ignore_errors=True)
    counts["drafts"] = len(draft_ids)
    # draft exports are named after the draft; the web server may hold copies
    cached_drafts = {p.name for root in cache_dirs if Path(root).is_dir() for p in Path(root).rglob("*")
                     if p.is_file() and any(p.name.startswith(d + ".") for d in draft_ids)}
    counts["exports"] = exports.remove_person(settings, name, cache_dirs) \
        + exports.remove_copies(cache_dirs, cached_drafts)

    access = colls.access_store(settings)
    removed, failed = 0, []
    for up in access.uploads(owner=name):
        try:
            uploads.remove_document(up.source, settings, store=store)
            removed += 1
        except UserError:     # not indexed any more: the stored file and the row still go
            Path(up.source).unlink(missing_ok=True)
            access.forget_upload(up.source)
            removed += 1
        except OSError as exc:
            failed.append(f"{Path(up.source).name}: {exc.strerror or exc}")
    for p in access.pending(owner=name):
        uploads.discard_replacement(p.id, settings)
        removed += 1
    counts["uploads"] = removed
    if failed:
        counts["failed"] = failed
    history.audit(name, "erase", detail=counts)
    return counts
