"""Who may read what a synced folder brings in: the folder's collection decides.

A synced folder is indexed into one collection (``--collection``, ``[[sources]] collection``);
every chunk carries that name, so whatever filters search results by collection filters the
folder's documents too. This module is the single place where a sync meets the collection's
readers: :func:`bind_collection` runs once per sync, before anything is fetched.

Today collections have no read groups yet, so the documents are readable by everyone who may
use the assistant, and this function only checks the name. Once collections carry groups,
this is where a sync must (a) refuse a collection that does not exist or that the syncing
account may not write, and (b) leave the groups untouched — the folder never widens who
reads the collection.
"""
from __future__ import annotations

from ..config import Settings
from ..ingest.uploads import check_collection


def bind_collection(settings: Settings, collection: str, origin: str) -> str:
    """The collection a sync of ``origin`` (a folder URL) writes to; raises if it may not."""
    return check_collection(collection)
