"""OParl sync -> procedure model -> `council trace` / `council open`, against a loopback server
built from the OParl 1.1 specification's example objects (tests/oparl_spec_server.py).

The tests run in order on one data dir: full sync, a second sync that brings one new
consultation, a third after an agenda item was deleted.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.oparl_spec_server import SpecServer

TODAY = "2014-06-01"
FIELDS = {"date", "kind", "organization", "reference", "title", "result", "source", "page"}


def _sync(server: SpecServer, data: Path, *extra: str) -> dict:
    res = run_cli("oparl", "sync", f"{server.api}/system", "--json", "--data-dir", str(data), *extra)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def _trace(data: Path, ref: str = "1234/2014") -> list[dict]:
    res = run_cli("council", "trace", ref, "--json", "--today", TODAY, "--data-dir", str(data))
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def _row(step: dict) -> tuple:
    return step["date"], step["kind"], step["organization"], step["reference"], step["result"], \
        Path(step["source"]).name.split("-", 1)[-1], step["page"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = SpecServer(tmp_path_factory.mktemp("spec-src")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spec") / "data"


def test_sync_then_trace_gives_the_timeline(server, data):
    out = _sync(server, data)
    assert out["papers"]["new"] == 2 and out["meetings"]["new"] == 2 and out["meeting_pages"] == 1
    # 2 paper PDFs + the text attachment; invitation, protocol, attachment of meeting 281; protocol of 290
    assert out["files"]["ingested"] == 7 and out["files"]["skipped"] == 1   # the verbatim protocol is audio
    assert not out["errors"]

    steps = _trace(data)
    assert [_row(s) for s in steps] == [
        ("2014-01-10", "Antrag", "Fraktion Beispiel", "1200/2014", "", "antrag-1200-2014.pdf", 1),
        ("2014-04-04", "Beschlussvorlage", "Zentrales Vergabeamt", "1234/2014", "", "vorlage-1234-2014.pdf", 1),
        ("2014-04-15", "Beratung", "Ausschuss für Haushalt und Finanzen", "1234/2014", "Geändert beschlossen",
         "protokoll-281.pdf", 2),
        ("2014-05-08", "Beschluss", "Rat der Stadt Köln", "1234/2014", "Beschlossen", "protokoll-290.pdf", 2),
    ]
    for s in steps:   # each step citable: a synced file that exists, the page naming the agenda item
        assert FIELDS <= set(s) and Path(s["source"]).is_file() and s["doc_id"]
    assert [s["agenda_item"] for s in steps[2:]] == ["TOP 10.1", "TOP 7"]
    assert steps[3]["role"] == "Beschlussfassung" and "elektronischen Vergabe" in steps[3]["quote"]
    # the motion traces to the same procedure (relatedPaper, and the "Bezug:" line of the Vorlage)
    assert [_row(s) for s in _trace(data, "1200/2014")] == [_row(s) for s in steps]


def test_protocol_files_carry_meeting_metadata(server, data):
    from assistant import config
    from assistant.index.retrieval import search

    settings = config.load({"data_dir": str(data)}, environ={}, config_file=data.parent / "none.toml")
    hit = search("Wertgrenze auf 20.000 Euro senken", settings, k=1)[0].chunk
    assert hit.source.endswith("protokoll-281.pdf") and hit.page == 2
    assert hit.meta["meeting"] == "4. Sitzung des Finanzausschusses, 2014-04-15"
    assert hit.meta["organization"] == "Ausschuss für Haushalt und Finanzen"
    assert "TOP 10.1: Satzungsänderung für Ausschreibungen" in hit.meta["agenda_item"]
    assert hit.meta["file_role"] == "resultsProtocol" and hit.date == "2014-04-15"


def test_open_tasks_from_the_resolution(server, data):
    res = run_cli("council", "open", "--json", "--today", TODAY, "--data-dir", str(data))
    assert res.returncode == 0, res.stderr
    tasks = json.loads(res.stdout)
    assert [(t["reference"], t["due"], Path(t["source"]).name.split("-", 1)[-1], t["page"]) for t in tasks] == [
        ("1234/2014", "2014-12-31", "protokoll-290.pdf", 2)]
    assert tasks[0]["task"].startswith("Die Verwaltung berichtet dem Rat bis zum 31.12.2014")


def test_second_sync_adds_one_consultation_without_downloading_files(server, data):
    server.add_consultation()
    before = len(server.log)
    out = _sync(server, data)
    log = server.log[before:]
    assert out["papers"] == {"new": 0, "updated": 1, "deleted": 0, "unchanged": 0, "failed": 0}
    assert out["meetings"]["new"] == 1 and out["meetings"]["unchanged"] == 0
    assert any("/papers/?modified_since=" in p for p, _ in log)
    assert any("/meetings/?modified_since=" in p for p, _ in log)
    assert not [p for p, status in log if p.startswith("/files/") and status == 200], log   # 304 at most
    assert out["files"]["not_modified"] >= 1   # the Vorlage PDF: conditional GET; its sidecar gains the meeting

    steps = _trace(data)
    assert len(steps) == 5
    new = [s for s in steps if s["date"] == "2014-04-28"]
    assert [(s["kind"], s["organization"], s["agenda_item"], s["role"]) for s in new] == [
        ("Beratung", "Hauptausschuss", "TOP 4", "Vorberatung")]
    # no protocol yet: cited to the paper whose consultation it is
    assert new[0]["source"].endswith("vorlage-1234-2014.pdf") and new[0]["page"] == 1
    assert [s["date"] for s in steps] == sorted(s["date"] for s in steps)


def test_deleted_agenda_item_disappears_from_the_trace(server, data):
    server.delete_agenda_item(3271)
    out = _sync(server, data)
    assert out["meetings"]["updated"] == 1
    steps = _trace(data)
    assert [s["date"] for s in steps] == ["2014-01-10", "2014-04-04", "2014-04-28", "2014-05-08"]
    assert not any(s["organization"] == "Ausschuss für Haushalt und Finanzen" for s in steps)


def test_a_lost_model_is_rebuilt_by_the_next_sync(server, data):
    """council.sqlite3 deleted (or a data dir synced before it existed): the next sync lists
    everything once and fills the model again, downloading nothing that did not change."""
    before_steps = _trace(data)
    for suffix in ("", "-wal", "-shm"):
        (data / f"council.sqlite3{suffix}").unlink(missing_ok=True)
    before = len(server.log)
    out = _sync(server, data)
    log = server.log[before:]
    assert not any("modified_since" in p for p, _ in log)             # a full listing, once
    assert not [p for p, status in log if p.startswith("/files/") and status == 200], log
    assert out["papers"]["failed"] == 0 and out["papers"]["updated"] == 2
    assert [_row(s) for s in _trace(data)] == [_row(s) for s in before_steps]
    again = _sync(server, data)
    assert again["papers"]["unchanged"] == 0 and again["papers"]["updated"] == 0   # incremental again


def test_model_keeps_paper_relations_both_ways_and_deletes_children(bare_settings):
    from assistant.council.procedures import Model

    t = "https://schema.oparl.org/1.1/"
    with Model(bare_settings) as model, model.transaction():
        model.put({"id": "u/paper/1", "type": t + "Paper", "reference": "0010/2024", "subordinatedPaper": ["u/paper/2"]},
                  "u/body/1")
        model.put({"id": "u/paper/2", "type": t + "Paper", "reference": "V/0011/2024",
                   "superordinatedPaper": "u/paper/1", "relatedPaper": ["u/paper/3"]}, "u/body/1")
        model.put({"id": "u/c/1", "type": t + "Consultation", "paper": "u/paper/2", "role": "Beratung"}, "u/body/1")
        model.put({"id": "u/f/1", "type": t + "File", "name": "Vorlage"}, "u/body/1")
        model.annotate("u/f/1", _source="/tmp/vorlage.pdf")
        model.put({"id": "u/f/1", "type": t + "File", "name": "Vorlage (neu)"}, "u/body/1")
    with Model(bare_settings) as model:
        assert model.related_papers("u/paper/1") == ["u/paper/2"]
        assert set(model.related_papers("u/paper/2")) == {"u/paper/1", "u/paper/3"}
        assert [p["id"] for p, _ in model.papers("V/11/2024")] == ["u/paper/2"]
        assert model.get("u/f/1")["_source"] == "/tmp/vorlage.pdf"   # a re-put keeps the local path
        assert [c["id"] for c in model.children("Consultation", "u/paper/2")] == ["u/c/1"]
        with model.transaction():
            model.delete("u/paper/2")
        assert model.get("u/c/1") is None and model.get("u/paper/2") is None
        assert model.related_papers("u/paper/1") == ["u/paper/2"]   # paper 1 still says so; the trace skips it
        assert model.knows("Paper", "u/body/1") and not model.knows("Meeting", "u/body/1")
