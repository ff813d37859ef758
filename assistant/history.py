"""Chat history and audit log, per user, in one SQLite file in the data dir.

A conversation belongs to exactly one user (the login name, or ``lokal`` without
login); every read and write names the user, so one person can never open, export
or delete another's conversation by guessing an id. The audit log records who
asked when and which documents/pages were cited; the question text only when
``serve.audit_log_text`` is on. Retention deletes both after
``serve.history_retention_days``. A person's erasure deletes their conversations and the
question texts in their audit rows, never the rows themselves: the log must keep saying
who saw which documents, and that the erasure happened.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from .config import Settings
from .errors import StorageError, UsageError
from .fsutil import sqlite_transaction

LOCAL_USER = "lokal"
TITLE_CHARS = 80

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations(user, updated_at);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL, content TEXT NOT NULL, citations TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, id);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, user TEXT NOT NULL, event TEXT NOT NULL,
  conversation_id TEXT, cited TEXT NOT NULL DEFAULT '[]', refused INTEGER, model TEXT DEFAULT '',
  question TEXT);
CREATE INDEX IF NOT EXISTS audit_user ON audit(user, at);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""


@dataclass
class Message:
    role: str                       # "user" | "assistant"
    content: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0


@dataclass
class Conversation:
    id: str
    user: str
    title: str
    created_at: float
    updated_at: float
    messages: list[Message] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"], d["updated_at"] = iso(self.created_at), iso(self.updated_at)
        for m in d["messages"]:
            m["created_at"] = iso(m["created_at"])
        return d


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def user_of(name: str | None) -> str:
    """The history owner for a login name; without login everything belongs to ``lokal``."""
    name = (name or "").strip()
    return name or LOCAL_USER


def title_from(question: str) -> str:
    text = " ".join((question or "").split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1].rstrip() + "…"


class History:
    def __init__(self, settings: Settings, *, path: Path | None = None) -> None:
        self.path = Path(path or settings.history_db)
        self.retention_days = settings.serve.history_retention_days
        self.audit_text = settings.serve.audit_log_text
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")   # persistent; cannot be switched inside a transaction
                db.executescript(SCHEMA)
                columns = {r[1] for r in db.execute("PRAGMA table_info(audit)")}
                if "detail" not in columns:   # a history from before erasure entries
                    db.execute("ALTER TABLE audit ADD COLUMN detail TEXT")
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> StorageError:
        return StorageError(f"Verlauf in {self.path} kann nicht gespeichert werden ({exc})",
                            f"Cannot write the chat history in {self.path} ({exc})",
                            "Speicherplatz und Schreibrechte des Datenverzeichnisses prüfen")

    def _db(self) -> ContextManager[sqlite3.Connection]:
        # one short connection per call: Gradio runs handlers in many threads
        return sqlite_transaction(self.path, self._error, pragmas=("foreign_keys=ON", "synchronous=NORMAL"))

    # --- conversations -------------------------------------------------------------------
    def create(self, user: str, title: str = "", *, now: float | None = None) -> str:
        conv_id = uuid.uuid4().hex
        now = time.time() if now is None else now
        with self._db() as db:
            db.execute("INSERT INTO conversations VALUES(?,?,?,?,?)", (conv_id, user, title_from(title), now, now))
        return conv_id

    def _owned(self, db: sqlite3.Connection, user: str, conv_id: str) -> sqlite3.Row | tuple:
        row = db.execute("SELECT id, user, title, created_at, updated_at FROM conversations WHERE id=? AND user=?",
                         (conv_id or "", user)).fetchone()
        if row is None:
            raise UsageError("Dieses Gespräch gibt es nicht (mehr).", "This conversation does not exist (any more).",
                             "Gesprächsliste neu laden")
        return row

    def add_message(self, user: str, conv_id: str, role: str, content: str,
                    citations: list[dict[str, Any]] | None = None, *, now: float | None = None) -> None:
        if role not in ("user", "assistant"):
            raise ValueError(f"role must be user or assistant, not {role!r}")
        now = time.time() if now is None else now
        with self._db() as db:
            row = self._owned(db, user, conv_id)
            db.execute("INSERT INTO messages(conversation_id, role, content, citations, created_at) VALUES(?,?,?,?,?)",
                       (conv_id, role, content, json.dumps(citations or [], ensure_ascii=False, default=str), now))
            if not row[2] and role == "user":
                db.execute("UPDATE conversations SET title=? WHERE id=?", (title_from(content), conv_id))
            db.execute("UPDATE conversations SET updated_at=? WHERE id=?", (now, conv_id))

    def conversations(self, user: str) -> list[Conversation]:
        """The user's conversations, newest first, without messages."""
        with self._db() as db:
            rows = db.execute("SELECT id, user, title, created_at, updated_at FROM conversations WHERE user=? "
                              "ORDER BY updated_at DESC, rowid DESC", (user,)).fetchall()
        return [Conversation(*r) for r in rows]

    def get(self, user: str, conv_id: str) -> Conversation:
        with self._db() as db:
            conv = Conversation(*self._owned(db, user, conv_id))
            for role, content, cites, at in db.execute(
                    "SELECT role, content, citations, created_at FROM messages WHERE conversation_id=? ORDER BY id",
                    (conv_id,)):
                conv.messages.append(Message(role, content, json.loads(cites or "[]"), at))
        return conv

    def messages_for_prompt(self, user: str, conv_id: str | None) -> list[dict[str, str]]:
        """Earlier turns as ``{"role", "content"}`` for ``chat.ask_stream(history=...)``."""
        if not conv_id:
            return []
        return [{"role": m.role, "content": m.content} for m in self.get(user, conv_id).messages]

    def rename(self, user: str, conv_id: str, title: str) -> None:
        title = title_from(title)
        if not title:
            raise UsageError("Der Titel darf nicht leer sein.", "The title must not be empty.", "Titel eingeben")
        with self._db() as db:
            self._owned(db, user, conv_id)
            db.execute("UPDATE conversations SET title=? WHERE id=?", (title, conv_id))

    def delete(self, user: str, conv_id: str) -> None:
        with self._db() as db:
            self._owned(db, user, conv_id)
            db.execute("DELETE FROM conversations WHERE id=?", (conv_id,))

    # --- a user's data as a whole --------------------------------------------------------
    def export(self, user: str) -> dict[str, Any]:
        """Everything stored about ``user`` (conversations and audit entries), as JSON-ready data.
        Sources appear by file name: server paths stay on the server."""
        convs = [self.get(user, c.id).to_dict() for c in self.conversations(user)]
        for conv in convs:
            for m in conv["messages"]:
                m["citations"] = [{**c, "source": Path(str(c.get("source") or "")).name} for c in m["citations"]]
        return {"user": user, "exported_at": iso(time.time()), "conversations": convs,
                "audit": self.audit_entries(user)}

    def export_markdown(self, user: str) -> str:
        lines = [f"# Gesprächsverlauf von {user}", "", f"Exportiert am {iso(time.time())}", ""]
        for c in self.conversations(user):
            conv = self.get(user, c.id)
            lines += [f"## {conv.title or 'Ohne Titel'}", "", f"_{iso(conv.created_at)}_", ""]
            for m in conv.messages:
                who = "Frage" if m.role == "user" else "Antwort"
                lines += [f"**{who}:** {m.content}", ""]
                for cite in m.citations:
                    page = f", S. {cite['page']}" if cite.get("page") else ""
                    name = cite.get("title") or Path(str(cite.get("source") or "")).name
                    lines.append(f"- [{cite.get('n', '?')}] {name}{page}")
                if m.citations:
                    lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def delete_user(self, user: str, *, audit: bool = False) -> dict[str, int]:
        """Right to erasure: drop the user's conversations and the question texts of their audit
        rows. The rows themselves stay (who saw which documents, kept until retention) unless an
        administrator passes ``audit=True``; a person cannot erase their own trail."""
        with self._db() as db:
            msgs = db.execute("SELECT COUNT(*) FROM messages WHERE conversation_id IN "
                              "(SELECT id FROM conversations WHERE user=?)", (user,)).fetchone()[0]
            convs = db.execute("DELETE FROM conversations WHERE user=?", (user,)).rowcount
            if audit:
                rows = db.execute("DELETE FROM audit WHERE user=?", (user,)).rowcount
                cleared = 0
            else:
                rows = 0
                cleared = db.execute("UPDATE audit SET question=NULL WHERE user=? AND question IS NOT NULL",
                                     (user,)).rowcount
        return {"conversations": convs, "messages": msgs, "audit": rows, "questions": cleared}

    # --- audit ---------------------------------------------------------------------------
    def audit(self, user: str, event: str, *, conversation_id: str | None = None,
              cited: list[dict[str, Any]] | None = None, refused: bool | None = None, model: str = "",
              question: str | None = None, detail: dict[str, Any] | None = None, now: float | None = None) -> None:
        """One audit row. ``cited``: ``[{doc_id, page, title?}]``; the question is stored only when
        enabled; ``detail``: what an event did (e.g. counts of an erasure)."""
        slim = [{"doc_id": c.get("doc_id", ""), "page": c.get("page"), "title": c.get("title", "")}
                for c in cited or []]
        with self._db() as db:
            db.execute("INSERT INTO audit(at, user, event, conversation_id, cited, refused, model, question, detail) "
                       "VALUES(?,?,?,?,?,?,?,?,?)",
                       (time.time() if now is None else now, user, event, conversation_id,
                        json.dumps(slim, ensure_ascii=False), None if refused is None else int(refused), model,
                        question if self.audit_text else None,
                        json.dumps(detail, ensure_ascii=False) if detail is not None else None))

    def audit_entries(self, user: str | None = None, *, since: float | None = None) -> list[dict[str, Any]]:
        sql, args = ("SELECT at, user, event, conversation_id, cited, refused, model, question, detail FROM audit "
                     "WHERE 1=1", [])
        if user is not None:
            sql, args = sql + " AND user=?", [*args, user]
        if since is not None:
            sql, args = sql + " AND at>=?", [*args, since]
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY id", args).fetchall()
        out = []
        for at, who, event, conv, cited, refused, model, question, detail in rows:
            entry = {"at": iso(at), "user": who, "event": event, "conversation_id": conv,
                     "cited": json.loads(cited or "[]"), "refused": None if refused is None else bool(refused),
                     "model": model}
            if question is not None:
                entry["question"] = question
            if detail is not None:
                entry["detail"] = json.loads(detail)
            out.append(entry)
        return out

    # --- retention -----------------------------------------------------------------------
    def purge(self, days: int | None = None, *, now: float | None = None) -> dict[str, int]:
        """Delete conversations untouched for ``days`` and audit rows older than that. 0 keeps everything."""
        days = self.retention_days if days is None else days
        if days <= 0:
            return {"conversations": 0, "audit": 0}
        cutoff = (time.time() if now is None else now) - days * 86400
        with self._db() as db:
            convs = db.execute("DELETE FROM conversations WHERE updated_at < ?", (cutoff,)).rowcount
            rows = db.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount
        return {"conversations": convs, "audit": rows}


def start_retention(history: History, *, interval_s: float = 86400.0) -> threading.Event:
    """Purge now and then every ``interval_s`` in a daemon thread; set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                history.purge()
            except StorageError as exc:   # a full disk must not kill the server; retry next round
                print(f"Warnung: Verlauf konnte nicht bereinigt werden: {exc}", flush=True)
            if stop.wait(interval_s):
                return

    threading.Thread(target=loop, daemon=True, name="history-retention").start()
    return stop
