"""The chat turn behind the UI (no browser, no model): sources before tokens, German errors,
history and audit written, nothing saved when the backend fails."""
from __future__ import annotations

import pytest

from assistant.answer import chat
from assistant.errors import BackendUnavailable
from assistant.history import History
from assistant.types import Answer, Chunk, Citation, Hit
from assistant.ui import sources
from assistant.ui.chat_tab import run_turn
from assistant.ui.context import UIContext

CHUNK = Chunk(chunk_id="d1:1", doc_id="d1", text="Die Brücke kostet 2.345.678 Euro. <script>x()</script> ${1+1}",
              source="/srv/docs/konzept.pdf", title="Mobilitätskonzept", page=2,
              meta={"paper_number": "2024/117"})


@pytest.fixture
def ctx(bare_settings, monkeypatch):
    c = UIContext(settings=bare_settings, history=History(bare_settings))
    monkeypatch.setattr(c, "document_count", lambda person=None: 1)
    return c


def fake_stream(tokens, *, fail=None, cite=True):
    def ask_stream(question, settings, **kw):
        chat.check_question(question)
        hits = [Hit(chunk=CHUNK, score=1.0, rank=1)]
        yield chat.ChatEvent("sources", sources=hits)
        for t in tokens:
            yield chat.ChatEvent("token", text=t)
        if fail:
            raise fail
        cites = [Citation(n=1, doc_id="d1", source=CHUNK.source, title=CHUNK.title, page=2, quote="2.345.678 Euro",
                          paper_number="2024/117")] if cite else []
        yield chat.ChatEvent("done", answer=Answer("".join(tokens), cites, False, "test", {}, hits))
    return ask_stream


def test_sources_come_first_then_tokens_then_the_saved_answer(ctx, monkeypatch):
    monkeypatch.setattr(chat, "ask_stream", fake_stream(["Sie kostet ", "2.345.678 Euro [1]."]))
    updates = list(run_turn(ctx, "Was kostet die Brücke?", [], None, "anna"))
    kinds = [sorted(u) for u in updates]
    assert kinds[0] == ["chatbot", "hint", "msg", "panel", "views"]      # question shown, box cleared
    assert kinds[1] == ["panel", "views"] and "S. 2" in updates[1]["panel"]  # sources before any token
    assert kinds[2] == ["chatbot"] and updates[2]["chatbot"][-1]["content"] == "Sie kostet "
    final = updates[-1]
    assert "zitiert" in final["panel"] and "Drucksache 2024/117" in final["panel"]
    assert "<script>" not in final["panel"] and "&lt;script&gt;" in final["panel"]
    assert "**Quellen:**" in final["chatbot"][-1]["content"]
    cid = final["conv_id"]
    assert final["conversations"][0][1] == cid
    conv = ctx.history.get("anna", cid)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[1].citations[0]["page"] == 2
    audit = ctx.history.audit_entries("anna")
    assert audit[0]["event"] == "ask" and audit[0]["cited"][0]["doc_id"] == "d1" and "question" not in audit[0]
    # a follow-up goes into the same conversation
    list(run_turn(ctx, "Und wann ist sie fertig?", final["chatbot"], cid, "anna"))
    assert len(ctx.history.get("anna", cid).messages) == 4


@pytest.mark.parametrize("question, german", [
    ("   ", "Bitte eine Frage eingeben"),
    ("x" * 20_000, "Die Frage ist zu lang"),
])
def test_bad_questions_get_a_german_hint_and_nothing_else(ctx, question, german):
    updates = list(run_turn(ctx, question, [], None, "anna"))
    assert len(updates) == 1 and list(updates[0]) == ["hint"]
    assert german in updates[0]["hint"] and "Abhilfe" in updates[0]["hint"]


def test_empty_index(ctx, monkeypatch):
    monkeypatch.setattr(ctx, "document_count", lambda person=None: 0)
    (update,) = run_turn(ctx, "Was kostet die Brücke?", [], None, "anna")
    assert "noch keine Dokumente" in update["hint"] and "Dokumente" in update["hint"]


def test_backend_dies_mid_answer(ctx, monkeypatch):
    dead = BackendUnavailable("Das Sprachmodell ist während der Antwort ausgefallen", "died", "doctor ausführen")
    monkeypatch.setattr(chat, "ask_stream", fake_stream(["Sie kostet "], fail=dead))
    shown = [{"role": "user", "content": "vorher"}, {"role": "assistant", "content": "alt"}]
    updates = list(run_turn(ctx, "Was kostet die Brücke?", shown, None, "anna"))
    last = updates[-1]
    assert "während der Antwort ausgefallen" in last["hint"]
    assert last["chatbot"][:2] == shown                                   # the session stays as it was
    assert last["chatbot"][-1]["content"].startswith("Sie kostet ") and "abgebrochen" in last["chatbot"][-1]["content"]
    assert ctx.history.conversations("anna") == []                       # nothing half-saved
    assert ctx.history.audit_entries("anna")[0]["event"] == "ask_failed"


def test_unexpected_error_is_not_a_traceback(ctx, monkeypatch):
    monkeypatch.setattr(chat, "ask_stream", fake_stream([], fail=RuntimeError("kaputt")))
    last = list(run_turn(ctx, "Frage?", [], None, "anna"))[-1]
    assert "Unerwarteter Fehler" in last["hint"] and "RuntimeError" not in last["hint"]


def test_someone_elses_conversation_id_starts_a_new_one(ctx, monkeypatch):
    monkeypatch.setattr(chat, "ask_stream", fake_stream(["ok [1]."]))
    theirs = ctx.history.create("bernd", "geheim")
    final = list(run_turn(ctx, "Frage?", [], theirs, "anna"))[-1]
    assert final["conv_id"] != theirs
    assert len(ctx.history.get("bernd", theirs).messages) == 0


def test_rendering_escapes_template_syntax():
    html = sources.render(sources.from_hits([Hit(chunk=CHUNK, score=1.0)]))
    assert "<script>" not in html


def test_a_source_links_back_to_where_it_lives_http_only():
    import dataclasses

    dav = dataclasses.replace(CHUNK, meta={"url": "https://cloud.stadt.de/remote.php/dav/files/a/Rat/x.pdf?\"><b>"})
    html = sources.render(sources.from_hits([Hit(chunk=dav, score=1.0)]))
    assert 'href="https://cloud.stadt.de/remote.php/dav/files/a/Rat/x.pdf?&quot;&gt;&lt;b&gt;"' in html
    assert "Am Ablageort öffnen" in html and "<b>" not in html
    bad = dataclasses.replace(CHUNK, meta={"url": "javascript:alert(1)"})
    assert "href" not in sources.render(sources.from_hits([Hit(chunk=bad, score=1.0)]))
