"""What every tab gets: settings, the shared store and history, and the status line."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..config import Settings
from ..history import History, user_of
from ..index.store import Store


@dataclass
class UIContext:
    settings: Settings
    history: History
    backend_note: str = ""                  # e.g. "bereit" or why the model is not available
    status: Any = None                      # the gr.Markdown status line; tabs list it as an output
    on_load: list = field(default_factory=list)   # (fn, outputs) pairs the app runs on every page load
    tabs: Any = None                        # the gr.Tabs; gr.Tabs(selected=<module name>) switches tabs
    selected_programme: Any = None          # gr.State: programme id handed from "Förderprogramme" to drafting
    draft_tab_id: str = "draft_tab"
    _store: Store | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The shared read store; one SQLite connection, so one handler thread at a time."""
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings)
            yield self._store

    @staticmethod
    def user(request: Any) -> str:
        """History owner for a Gradio request: the login name, or ``lokal``."""
        return user_of(getattr(request, "username", None) if request is not None else None)

    def document_count(self) -> int:
        with self.store() as store:
            return int(store.stats()["documents"])

    def status_text(self, request: Any = None) -> str:
        from ..runtime.llm import model_label

        s = self.settings.llm
        parts = [f"**Backend:** {s.backend}" + (f" ({self.backend_note})" if self.backend_note else ""),
                 f"**Modell:** {model_label(self.settings).split(':', 1)[-1]}",
                 f"**Dokumente:** {self.document_count()}"]
        name = getattr(request, "username", None) if request is not None else None
        if name:
            parts.append(f"**Angemeldet als:** {name}")
        return " · ".join(parts)
