"""What every tab gets: settings, the shared store and history, who is asking, the status line."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..access import Person, local_person
from ..access import collections as colls
from ..access.identity import Identity
from ..access.identity import Request as IdRequest
from ..config import Settings
from ..errors import UserError
from ..history import History
from ..index.filters import Filters
from ..index.store import Store

NOT_SIGNED_IN = UserError("Ihre Anmeldung ist abgelaufen.", "Your session has expired.",
                          "Seite neu laden und erneut anmelden")


@dataclass
class UIContext:
    settings: Settings
    history: History
    backend_note: str = ""                  # e.g. "bereit" or why the model is not available
    identity: Identity | None = None        # None: no login, everyone is the local admin (loopback only)
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

    # --- who is asking -----------------------------------------------------------------
    def person(self, request: Any) -> Person:
        """The person behind a Gradio request, as the server's guard resolved it (never a name
        the browser sent); raises when the session ended meanwhile."""
        if self.identity is None or self.identity.mode == "none":
            return local_person()
        person = None
        try:
            person = request.state.pilot_person
        except AttributeError:
            pass
        if person is None and request is not None:   # e.g. a request object rebuilt by Gradio's queue
            try:
                headers = {k.lower(): v for k, v in dict(request.headers).items()}
                client = getattr(request, "client", None)
                person = self.identity.resolve(IdRequest(headers, dict(getattr(request, "cookies", {}) or {}),
                                                         getattr(client, "host", None)))
            except AttributeError:
                person = None
        if person is None:
            raise NOT_SIGNED_IN
        return person

    def user(self, request: Any) -> str:
        """History owner for a Gradio request: the person's name."""
        return self.person(request).name

    def audit(self, person: Person, event: str, **detail) -> None:
        """One audit row for a change a person made (deletions, confirmations, rights, roles)."""
        try:
            self.history.audit(person.name, event, detail=detail)
        except UserError:   # a full disk must not undo what was done; the server log has it
            import logging

            logging.getLogger("assistant.ui").warning("audit entry %s not written", event, exc_info=True)

    def readable(self, person: Person) -> list[str]:
        return colls.readable(self.settings, person)

    def filters(self, person: Person, base: Filters | None = None) -> Filters:
        """Every search a person triggers goes through this: only their readable collections."""
        return colls.scope(self.settings, person, base)

    def document_count(self, person: Person | None = None) -> int:
        with self.store() as store:
            stats = store.stats()
        if person is None:
            return int(stats["documents"])
        allowed = set(self.readable(person))
        return sum(v["documents"] for coll, types in stats["collections"].items() if coll in allowed
                   for v in types.values())

    def status_text(self, request: Any = None) -> str:
        from ..runtime.llm import model_label

        s = self.settings.llm
        try:
            person = self.person(request) if request is not None or self.identity is None else None
        except UserError:
            person = None
        parts = [f"**Backend:** {s.backend}" + (f" ({self.backend_note})" if self.backend_note else ""),
                 f"**Modell:** {model_label(self.settings).split(':', 1)[-1]}",
                 f"**Dokumente:** {self.document_count(person)}"]
        if person is not None and self.identity is not None and self.identity.mode != "none":
            parts.append(f"**Angemeldet als:** {person.label()}")
        return " · ".join(parts)
