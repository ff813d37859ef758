""""Alle meine Daten löschen" and retention across conversations, drafts, exports and uploads
(real index, real drafts on disk, no model)."""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from assistant.access import READER, Person
from assistant.drafting import record, runner
from assistant.history import History
from assistant.index import retrieval
from assistant.index.store import Store
from assistant.ingest import uploads
from assistant.privacy import erasure, exports, retention

IDEA = runner.Idea(title="Sanierung Freibad", description="Das Freibad braucht neue Becken und eine Solaranlage "
                   "für das Warmwasser; die Stadt sucht Fördermittel.")


def _upload(settings, tmp_path, person: Person, name: str, text: str):
    path = tmp_path / name
    path.write_text(text * 3, encoding="utf-8")
    (result,) = uploads.add_files([(path, name)], settings, person=person)
    assert result.status == "ingested", result
    return Path(result.source)


def test_erasure_removes_one_persons_data_and_keeps_an_audit_entry(bare_settings, tmp_path):
    bare_settings.serve.audit_log_text = True
    anna, bernd = Person("anna", frozenset({READER})), Person("bernd", frozenset({READER}))
    hist = History(bare_settings)
    for who in ("anna", "bernd"):
        cid = hist.create(who, "Frage")
        hist.add_message(who, cid, "user", f"vertrauliche Frage von {who}")
        hist.audit(who, "ask", conversation_id=cid, question=f"vertrauliche Frage von {who}")
    drafts = {who: runner.start_draft(IDEA, "beschlussvorlage", bare_settings, owner=who).id for who in ("anna", "bernd")}
    files = {who: exports.new_path(bare_settings, who, "verlauf.json") for who in ("anna", "bernd")}
    for f in files.values():
        f.write_text("{}")
    cache = tmp_path / "gradio-cache" / "abc123"
    cache.mkdir(parents=True)
    (cache / files["anna"].name).write_text("{}")            # the web server's copy of anna's export
    (cache / files["bernd"].name).write_text("{}")
    (cache / f"{drafts['anna']}.odt").write_text("x")
    mine = _upload(bare_settings, tmp_path, anna, "anna-sporthalle.txt",
                   "Anna schreibt: Die Sporthalle Nord bekommt ein Gründach für 480.000 Euro. ")
    theirs = _upload(bare_settings, tmp_path, bernd, "bernd-kita.txt",
                     "Bernd schreibt: Die Kita Süd bekommt eine Photovoltaikanlage für 90.000 Euro. ")
    (tmp_path / "neu").mkdir()
    (tmp_path / "neu" / "anna-sporthalle.txt").write_text("Neue Fassung von Anna.\n" * 3)
    uploads.add_files([(tmp_path / "neu" / "anna-sporthalle.txt", "anna-sporthalle.txt")], bare_settings, person=anna)
    assert len(uploads.pending_for(anna, bare_settings)) == 1

    with Store(bare_settings) as store:
        counts = erasure.erase_person(bare_settings, "anna", hist, store=store, cache_dirs=[tmp_path / "gradio-cache"])
    assert counts["conversations"] == 1 and counts["drafts"] == 1 and counts["uploads"] == 2
    assert counts["exports"] == 3   # her file, the cached copy of it, the cached draft export

    # anna's data is gone, with the vectors of her upload
    assert hist.conversations("anna") == []
    assert [d["id"] for d in record.summaries(bare_settings.drafts_dir)] == [drafts["bernd"]]
    assert not files["anna"].exists() and not (cache / files["anna"].name).exists()
    assert not mine.exists() and uploads.pending_for(anna, bare_settings) == []
    with Store(bare_settings) as store:
        assert [Path(d.source).name for d in store.documents()] == ["bernd-kita.txt"]
        assert {h.chunk.source for h in retrieval.search("Gründach Sporthalle", bare_settings, store=store)} \
            == {str(theirs)}
        assert store.collection.count() == sum(d.n_chunks for d in store.documents())
    # everyone else's is not
    assert len(hist.conversations("bernd")) == 1 and theirs.exists() and files["bernd"].exists()
    assert (cache / files["bernd"].name).exists()
    # the audit trail stays, without anna's question text, and says that she erased her data
    trail = hist.audit_entries("anna")
    assert [e["event"] for e in trail] == ["ask", "erase"] and "question" not in trail[0]
    assert trail[1]["detail"]["uploads"] == 2
    assert hist.audit_entries("bernd")[0]["question"] == "vertrauliche Frage von bernd"
    # erasing again removes nothing more, and cannot remove the first erase entry
    with Store(bare_settings) as store:
        again = erasure.erase_person(bare_settings, "anna", hist, store=store)
    assert again["uploads"] == 0 and [e["event"] for e in hist.audit_entries("anna")] == ["ask", "erase", "erase"]


def test_retention_expires_drafts_and_exports(bare_settings):
    hist = History(bare_settings)
    old = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, owner="anna")
    path = record.path_of(old.id, bare_settings.drafts_dir)
    data = json.loads(path.read_text())
    data["updated"] = (dt.datetime.now() - dt.timedelta(days=120)).isoformat(timespec="seconds")
    path.write_text(json.dumps(data))
    fresh = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, owner="anna")
    stale = exports.new_path(bare_settings, "anna", "alt.json")
    stale.write_text("{}")
    hour_ago = time.time() - 2 * exports.EXPORT_TTL_S
    os.utime(stale.parent, (hour_ago, hour_ago))
    recent = exports.new_path(bare_settings, "anna", "neu.json")
    recent.write_text("{}")
    out = retention.purge_all(bare_settings, hist)
    assert out["drafts"] == 1 and out["exports"] == 1
    assert [d["id"] for d in record.summaries(bare_settings.drafts_dir)] == [fresh.id]
    assert not stale.exists() and recent.exists()
    bare_settings.serve.history_retention_days = 0        # 0 keeps drafts forever
    assert retention.purge_drafts(bare_settings, 0) == 0
