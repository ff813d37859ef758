"""Chat history and audit log: ownership, export, erasure, retention (SQLite only, no model)."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

from assistant.errors import UsageError
from assistant.history import History, start_retention, title_from, user_of

DAY = 86400


@pytest.fixture
def hist(bare_settings):
    return History(bare_settings)


def test_conversation_roundtrip_and_wal(hist, bare_settings):
    cid = hist.create("anna")
    hist.add_message("anna", cid, "user", "Wie hoch sind die Kosten des Terminsystems?")
    cites = [{"n": 1, "doc_id": "d1", "title": "Vorlage 2024/117", "page": 2, "source": "/x.pdf"}]
    hist.add_message("anna", cid, "assistant", "Einmalig 45.000 EUR [1].", cites)
    conv = hist.get("anna", cid)
    assert conv.title == "Wie hoch sind die Kosten des Terminsystems?"
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[1].citations == cites
    assert hist.messages_for_prompt("anna", cid)[0] == {"role": "user", "content": conv.messages[0].content}
    mode = sqlite3.connect(bare_settings.history_db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_other_users_cannot_touch_a_conversation(hist):
    cid = hist.create("anna", "geheim")
    for action in (lambda: hist.get("bernd", cid), lambda: hist.delete("bernd", cid),
                   lambda: hist.rename("bernd", cid, "x"), lambda: hist.add_message("bernd", cid, "user", "hi")):
        with pytest.raises(UsageError):
            action()
    assert hist.conversations("bernd") == []
    assert hist.get("anna", cid).title == "geheim"


def test_list_rename_delete(hist):
    first = hist.create("anna", "alt", now=1000)
    second = hist.create("anna", "neu", now=2000)
    assert [c.id for c in hist.conversations("anna")] == [second, first]
    hist.rename("anna", first, "  Förderung   Radweg ")
    assert hist.get("anna", first).title == "Förderung Radweg"
    with pytest.raises(UsageError):
        hist.rename("anna", first, "   ")
    hist.add_message("anna", first, "user", "Frage")
    hist.delete("anna", first)
    assert [c.id for c in hist.conversations("anna")] == [second]
    with pytest.raises(UsageError):
        hist.get("anna", first)


def test_export_json_and_markdown(hist):
    cid = hist.create("anna")
    hist.add_message("anna", cid, "user", "Was kostet es?")
    hist.add_message("anna", cid, "assistant", "45.000 EUR [1].", [{"n": 1, "title": "Vorlage", "page": 2}])
    hist.audit("anna", "ask", conversation_id=cid, cited=[{"doc_id": "d1", "page": 2}], refused=False)
    data = hist.export("anna")
    json.dumps(data)   # JSON-ready
    assert data["user"] == "anna" and len(data["conversations"]) == 1
    assert data["conversations"][0]["messages"][1]["citations"][0]["page"] == 2
    assert data["audit"][0]["cited"] == [{"doc_id": "d1", "page": 2, "title": ""}]
    md = hist.export_markdown("anna")
    assert "**Frage:** Was kostet es?" in md and "- [1] Vorlage, S. 2" in md


def test_delete_user_removes_everything_of_that_user_only(hist):
    a = hist.create("anna")
    hist.add_message("anna", a, "user", "eins")
    hist.add_message("anna", a, "assistant", "zwei")
    b = hist.create("bernd")
    hist.audit("anna", "ask", conversation_id=a)
    hist.audit("bernd", "ask", conversation_id=b)
    # the person's own erasure keeps the audit rows (only question texts go); an admin may drop them
    assert hist.delete_user("anna") == {"conversations": 1, "messages": 2, "audit": 0, "questions": 0}
    assert hist.conversations("anna") == [] and len(hist.audit_entries("anna")) == 1
    assert hist.delete_user("anna", audit=True)["audit"] == 1 and hist.audit_entries("anna") == []
    assert len(hist.conversations("bernd")) == 1 and len(hist.audit_entries("bernd")) == 1
    con = sqlite3.connect(hist.path)
    assert con.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0   # cascaded


def test_audit_keeps_question_text_only_when_enabled(bare_settings, tmp_path):
    hist = History(bare_settings)
    hist.audit("anna", "ask", question="vertraulich", cited=[{"doc_id": "d", "page": 1, "text": "x"}])
    entry = hist.audit_entries("anna")[0]
    assert "question" not in entry and entry["cited"] == [{"doc_id": "d", "page": 1, "title": ""}]
    raw = sqlite3.connect(hist.path).execute("SELECT question FROM audit").fetchone()[0]
    assert raw is None
    bare_settings.serve.audit_log_text = True
    loud = History(bare_settings, path=tmp_path / "h2.sqlite3")
    loud.audit("anna", "ask", question="vertraulich")
    assert loud.audit_entries()[0]["question"] == "vertraulich"


def test_retention_purges_old_conversations_and_audit(hist):
    now = time.time()
    old = hist.create("anna", "alt", now=now - 100 * DAY)
    recent = hist.create("anna", "neu", now=now - 10 * DAY)
    hist.add_message("anna", old, "user", "x", now=now - 100 * DAY)
    hist.audit("anna", "ask", now=now - 100 * DAY)
    hist.audit("anna", "ask", now=now - 1 * DAY)
    assert hist.purge(90, now=now) == {"conversations": 1, "audit": 1}
    assert [c.id for c in hist.conversations("anna")] == [recent]
    assert len(hist.audit_entries("anna")) == 1
    assert hist.purge(0, now=now) == {"conversations": 0, "audit": 0}   # 0 = keep forever


def test_activity_keeps_a_conversation_alive(hist):
    now = time.time()
    cid = hist.create("anna", now=now - 100 * DAY)
    hist.add_message("anna", cid, "user", "noch aktuell", now=now - DAY)
    assert hist.purge(90, now=now)["conversations"] == 0


def test_retention_thread_runs_at_start(bare_settings):
    bare_settings.serve.history_retention_days = 30
    hist = History(bare_settings)
    hist.create("anna", now=time.time() - 31 * DAY)
    stop = start_retention(hist, interval_s=3600)
    try:
        deadline = time.time() + 5
        while hist.conversations("anna") and time.time() < deadline:
            time.sleep(0.05)
        assert hist.conversations("anna") == []
    finally:
        stop.set()


def test_helpers():
    assert user_of(None) == "lokal" and user_of("  ") == "lokal" and user_of("anna") == "anna"
    assert title_from("a" * 200).endswith("…") and len(title_from("a" * 200)) == 80
