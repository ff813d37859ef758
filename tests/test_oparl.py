"""OParl sync against the loopback server in tests/oparl_server.py.

The first two tests run in order on one data dir: a full sync, then a second sync after a
change on the server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import config
from assistant.council.client import FetchError, OParlClient
from assistant.council.mapping import (
    SyncReport,
    consultation_view,
    file_extension,
    ids,
    kind,
    local_name,
    paper_file_ids,
    paper_meta,
    parse_since,
    register,
    with_query,
)
from assistant.errors import UsageError
from tests.conftest import run_cli
from tests.oparl_server import OParlServer, T


def _settings(data: Path) -> config.Settings:
    return config.load({"data_dir": str(data)}, environ={}, config_file=data.parent / "none.toml")


def _sync(server: OParlServer, data: Path, *extra: str) -> dict:
    res = run_cli("oparl", "sync", f"{server.api}/system", "--json", "--data-dir", str(data), *extra)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def _hits(settings: config.Settings, query: str, k: int = 3):
    from assistant.index.retrieval import search

    return search(query, settings, k=k)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = OParlServer(tmp_path_factory.mktemp("oparl-src")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("oparl") / "data"


# --- end to end (in order) ---------------------------------------------------------------

def test_full_sync_ingests_papers_with_references_and_files(server, data):
    out = _sync(server, data)
    assert out["ok"] and out["bodies"] == ["Stadt Musterstadt"]
    assert out["papers"] == {"new": 7, "updated": 0, "deleted": 0, "unchanged": 0, "failed": 0}
    # 7 main files (5 as File.text, 1 PDF, 1 referenced text file) + the shared PDF attachment, once
    assert out["files"]["ingested"] == 8 and out["files"]["failed"] == 0
    assert out["pages"] == 4 and out["retries"] == 0
    pages = [p for p in server.paths() if "/papers" in p]
    assert pages == ["/oparl/v1/body/1/papers"] + [f"/oparl/v1/body/1/papers?page={n}" for n in (2, 3, 4)]

    # embedded vs referenced: paper 2 only references the attachment paper 1 embeds -> no fetch, one download
    assert "/oparl/v1/file/2" not in server.paths()
    assert len(server.paths("/files/anlage-radverkehr.pdf")) == 1
    # referenced objects are fetched: paper 2's consultation and its meeting, paper 3's main file
    assert {"/oparl/v1/consultation/2", "/oparl/v1/meeting/2", "/oparl/v1/file/30"} <= set(server.paths())

    settings = _settings(data)
    top = _hits(settings, "Radschnellweg entlang der Lindenallee")[0].chunk
    assert top.paper_number == "V/0101/2024" and "Lindenallee" in top.text
    assert top.meta["paper_type"] == "Beschlussvorlage" and top.date == "2024-02-12"
    assert top.meta["meeting"] == "Sitzung des Rates, 2024-03-05"
    assert top.meta["agenda_item"] == "TOP 5: Radverkehrskonzept"
    assert top.meta["url"] == "https://musterstadt.example/vo/1" and top.municipality == "Stadt Musterstadt"
    assert top.type == "council"
    # a file without `text`: downloaded as PDF and parsed by the normal ingest, with its paper's number
    pdf = _hits(settings, "Mulden-Rigolen-System Regenrückhaltung")[0].chunk
    assert pdf.paper_number == "V/0104/2024" and pdf.page == 2 and pdf.source.endswith(".pdf")
    ref = _hits(settings, "Schadstoffmessung Turnhalle Grundschule am Weiher")[0].chunk
    assert ref.paper_number == "A/0102/2024" and ref.meta["agenda_item"] == "TOP 3: Anfrage Grundschule am Weiher"

    state = json.loads((data / "oparl" / "state.json").read_text())
    body = state["bodies"][f"{server.api}/body/1"]
    assert "run" not in body and body["modified_since"] and not body["retry"]


def test_second_sync_applies_only_the_change(server, data):
    server.set_main_text(1, "Neu: Der Radschnellweg entlang der Lindenallee wird 5,0 Kilometer lang und beleuchtet.")
    server.delete_paper(6)
    before = len(server.log)
    out = _sync(server, data)
    assert out["papers"] == {"new": 0, "updated": 1, "deleted": 1, "unchanged": 0, "failed": 0}
    assert out["files"]["ingested"] == 1            # paper 1's changed text, nothing else
    assert out["files"]["not_modified"] == 1        # the attachment: conditional GET -> 304
    assert out["files"]["removed"] == 1             # paper 6's file
    log = server.log[before:]
    assert ("/files/anlage-radverkehr.pdf?download=1", 304) in log
    assert not any(p.startswith("/files/bplan-48.pdf") for p, _ in log)
    assert [p for p, _ in log if "/papers" in p][0].startswith("/oparl/v1/body/1/papers?modified_since=")
    assert out["requests"] <= 6

    settings = _settings(data)
    top = _hits(settings, "Radschnellweg Lindenallee Kilometer")[0].chunk
    assert "5,0 Kilometer" in top.text and top.paper_number == "V/0101/2024"
    from assistant.index.store import Store
    with Store(settings) as store:
        numbers = {c.paper_number for d in store.documents()
                   for c in store.get_chunks([f"{d.doc_id}:0"])}
    assert "A/0106/2024" not in numbers and "V/0101/2024" in numbers and len(numbers) == 6
    assert not any("Partnerstädte" in h.chunk.text for h in _hits(settings, "Marktplatz Partnerstädte umbenennen"))


def test_server_failing_twice_with_500_succeeds_via_retries(server, tmp_path):
    server.fail_next(2)
    out = _sync(server, tmp_path / "data", "--since", "2099-01-01")   # nothing to ingest: only the HTTP path
    assert out["ok"] and out["retries"] == 2 and out["pages"] == 1
    assert [s for _, s in server.log[-out["requests"]:]][:3] == [500, 500, 200]
    assert out["papers"] == {"new": 0, "updated": 0, "deleted": 0, "unchanged": 0, "failed": 0}


# --- resume ------------------------------------------------------------------------------

def test_killed_sync_resumes_at_its_cursor(tmp_path):
    (tmp_path / "src").mkdir()
    server = OParlServer(tmp_path / "src").start()
    data = tmp_path / "data"
    try:
        server.hold("page=3")
        exe = Path(sys.executable).with_name("pilot-assistant")
        proc = subprocess.Popen([str(exe), "oparl", "sync", f"{server.api}/system", "--json", "--data-dir",
                                 str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
        try:
            assert server.held.wait(300), "the sync never reached page 3"
        finally:
            proc.kill()
            proc.wait(30)
        server.release()   # the killed client's held request is answered into the void, then logged
        deadline = time.monotonic() + 10
        while not any("page=3" in p for p in server.paths()) and time.monotonic() < deadline:
            time.sleep(0.05)
        state = json.loads((data / "oparl" / "state.json").read_text())
        run = state["bodies"][f"{server.api}/body/1"]["run"]
        assert run["next"].endswith("page=3") and run["started"]

        before = len(server.log)
        out = _sync(server, data)
        assert out["resumed"] and out["ok"]
        assert out["papers"]["new"] == 3 and out["pages"] == 2          # papers 5-7 on pages 3 and 4
        assert [p for p, _ in server.log[before:] if "/papers" in p] == [
            "/oparl/v1/body/1/papers?page=3", "/oparl/v1/body/1/papers?page=4"]
        settings = _settings(data)
        assert _hits(settings, "Freibad Auenwiese Beckenfolie")[0].chunk.paper_number == "M/0107/2024"
        assert _hits(settings, "Radschnellweg Lindenallee")[0].chunk.paper_number == "V/0101/2024"
        assert "run" not in json.loads((data / "oparl" / "state.json").read_text())["bodies"][
            f"{server.api}/body/1"]
    finally:
        server.stop()


# --- the client on its own ---------------------------------------------------------------

def test_an_https_host_is_never_spoken_to_over_http():
    client = OParlClient("https://ris.example.de/oparl/v1/system", SyncReport())
    try:
        assert client.allowed("https://ris.example.de/oparl/v1/paper/1")
        assert not client.allowed("http://ris.example.de/oparl/v1/paper/1")     # a downgrade in a link
        with pytest.raises(FetchError, match="foreign host"):
            client.download("http://ris.example.de/files/a.pdf", Path("/nonexistent/a.pdf"), max_bytes=10)
    finally:
        client.close()
    plain = OParlClient("http://ris.example.de/oparl/v1/system", SyncReport())
    try:   # an http start may follow the server up to https on the same host
        assert plain.allowed("https://ris.example.de/x") and plain.allowed("http://ris.example.de/x")
    finally:
        plain.close()


def test_client_refuses_other_hosts_and_oversized_files(server, tmp_path):
    report = SyncReport()
    client = OParlClient(f"{server.api}/system", report, backoff=0.01)
    try:
        assert client.allowed(server.api + "/paper/1") and not client.allowed("https://example.org/x.pdf")
        with pytest.raises(FetchError, match="foreign host"):
            client.download("https://example.org/x.pdf", tmp_path / "x.pdf", max_bytes=10**6)
        with pytest.raises(FetchError, match="too large"):
            client.download(f"{server.base}/files/bplan-48.pdf", tmp_path / "b.pdf", max_bytes=100)
        assert not (tmp_path / "b.pdf").exists() and not list(tmp_path.glob(".*part"))
        server.fail_next(5)
        with pytest.raises(FetchError, match="HTTP 500"):
            OParlClient(f"{server.api}/system", report, retries=2, backoff=0.01).get_json(server.api + "/system")
        server.fail_next(0)
        got = client.download(f"{server.base}/files/bplan-48.pdf", tmp_path / "b.pdf", max_bytes=10**6)
        again = client.download(f"{server.base}/files/bplan-48.pdf", tmp_path / "b.pdf", max_bytes=10**6,
                                etag=got.etag, last_modified=got.last_modified)
        assert (got.status, again.status) == ("changed", "not_modified")
    finally:
        client.close()
    with pytest.raises(UsageError):
        OParlClient("ftp://example.org/system", report)


def test_unknown_body_is_a_usage_error(server, tmp_path):
    from assistant.council.sync import sync

    with pytest.raises(UsageError, match="Musterstadt"):
        sync(f"{server.api}/system", _settings(tmp_path / "data"), body="nirgendwo")
    with pytest.raises(UsageError):
        sync(f"{server.api}/system", _settings(tmp_path / "data"), since="gestern")


# --- pure functions ----------------------------------------------------------------------

def test_splice_dedups_embedded_objects_by_id():
    reg: dict = {}
    f = {"id": "u/file/1", "type": "https://schema.oparl.org/1.1/File", "accessUrl": "u/f.pdf"}
    p1 = {"id": "u/paper/1", "mainFile": f, "auxiliaryFile": [f, "u/file/2"],
          "consultation": [{"id": "u/c/1", "meeting": "u/m/1", "role": "Entscheidung"}]}
    p2 = {"id": "u/paper/2", "mainFile": "u/file/1", "modified": "2024-01-01"}
    assert register(p1, reg) == "u/paper/1" and register(p2, reg) == "u/paper/2"
    assert reg["u/paper/1"]["mainFile"] == "u/file/1" and reg["u/paper/1"]["auxiliaryFile"] == ["u/file/1", "u/file/2"]
    assert set(reg) == {"u/paper/1", "u/paper/2", "u/file/1", "u/c/1"}
    assert paper_file_ids(reg["u/paper/1"]) == ["u/file/1", "u/file/2"]
    # a newer copy wins, an older embedded one does not drop fields
    register({"id": "u/file/1", "modified": "2024-02-01", "text": "neu"}, reg)
    register({"id": "u/file/1", "modified": "2023-01-01", "text": "alt"}, reg)
    assert reg["u/file/1"]["text"] == "neu" and reg["u/file/1"]["accessUrl"] == "u/f.pdf"
    assert ids([{"id": "a"}, "b", "a", None]) == ["a", "b"] and ids("x") == ["x"] and ids(None) == []


def test_paper_meta_maps_oparl_to_chunk_metadata():
    reg = {"m/1": {"id": "m/1", "name": "Rat", "start": "2024-03-05T17:00:00+01:00"},
           "t/5": {"id": "t/5", "number": "5", "name": "Radwege", "meeting": "m/1"}}
    cons = consultation_view({"id": "c/1", "agendaItem": "t/5", "role": "Entscheidung"}, reg)
    assert (cons.meeting, cons.agenda_item, cons.meeting_date) == ("Rat, 2024-03-05", "TOP 5: Radwege", "2024-03-05")
    meta = paper_meta({"id": "p/1", "name": "Radwege", "reference": "V/1/2024", "paperType": "Antrag",
                       "date": "2024-02-01", "keyword": ["Rad", "Verkehr"]},
                      {"id": "b/1", "name": "Stadt X", "shortName": "X"}, [cons])
    assert meta["paper_number"] == "V/1/2024" and meta["url"] == "p/1" and meta["body"] == "X"
    assert meta["meeting"] == "Rat, 2024-03-05" and meta["keywords"] == "Rad, Verkehr" and meta["type"] == "council"


def test_names_urls_and_dates():
    assert with_query("http://h/p?page=2&a=1", modified_since="2024-01-01T00:00:00+01:00") == \
        "http://h/p?page=2&a=1&modified_since=2024-01-01T00%3A00%3A00%2B01%3A00"
    assert with_query("http://h/p?page=2", page="3") == "http://h/p?page=3"
    assert parse_since("2024-01-31T12:00:00Z") == "2024-01-31T12:00:00+00:00"
    assert parse_since("2024-01-31").startswith("2024-01-31T00:00:00")
    with pytest.raises(ValueError):
        parse_since("31.01.2024")
    pdf = {"id": "u/f/1", "fileName": "Vorlage 12/2024.PDF", "mimeType": "application/pdf"}
    assert file_extension(pdf) == ".pdf" and local_name(pdf, text=False).endswith("-Vorlage_12_2024.pdf")
    assert local_name(pdf, text=True).endswith(".txt")
    assert file_extension({"id": "x", "mimeType": "image/png", "accessUrl": "http://h/x"}) is None
    assert file_extension({"id": "x", "accessUrl": "http://h/f.docx"}) == ".docx"
    assert kind({"type": "https://oparl.org/schema/1.0/Paper"}) == kind({"type": T + "Paper"}) == "Paper"
