"""Client/server Chroma: a real `chroma run` on loopback, used by two separate CLI processes.

`store.url` switches the store to ``chromadb.HttpClient``; the SQLite manifest, chunk
table and BM25 index stay in the data dir, so both processes share that too (as the
app processes on one host do in deploy/).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.filemakers import make_pdf, make_text

pytestmark = pytest.mark.slow
START_TIMEOUT = 60   # measured: ~0.7 s on an idle machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    """(url, process) of a `chroma run` bound to 127.0.0.1 only; stopped afterwards."""
    import httpx

    exe = Path(sys.executable).with_name("chroma")
    port = _free_port()
    log = open(tmp_path / "chroma.log", "wb")
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "chroma-db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "chroma.log").read_text(errors="replace")
            try:
                if httpx.get(url + "/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - started < START_TIMEOUT, "chroma run did not come up"
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_ingest_and_search_through_a_chroma_server_from_two_processes(chroma_server, tmp_path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    url, proc = chroma_server
    data = tmp_path / "data"
    env = {"PILOT_ASSISTANT_STORE_URL": url}
    first, second = tmp_path / "erster", tmp_path / "zweiter"
    first.mkdir(), second.mkdir()
    make_pdf(first / "ratssitzung.pdf", ["Der Rat beschließt den Bau einer Mensa an der Gesamtschule Nord."])
    make_text(first / "mitteilung.txt", "Die Stadtbibliothek verlängert ihre Öffnungszeiten am Samstag bis 18 Uhr.")
    make_text(second / "antrag.txt", "Antrag: Auf dem Friedhof Ost werden zwölf Sitzbänke aufgestellt.")

    # process 1 writes, process 2 reads what it wrote
    res = run_cli("ingest", str(first), "--data-dir", str(data), "--json", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["counts"]["ingested"] == 2
    res = run_cli("search", "Mensa an der Gesamtschule", "--data-dir", str(data), "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["source"].endswith("ratssitzung.pdf")

    # and the other way round: process 3 adds a document, process 4 finds it and the earlier ones
    res = run_cli("ingest", str(second), "--data-dir", str(data), "--json", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli("search", "Sitzbänke Friedhof", "--data-dir", str(data), "--json", "-k", "3", env=env)
    hits = json.loads(res.stdout)
    assert hits[0]["source"].endswith("antrag.txt")
    res = run_cli("search", "Öffnungszeiten der Stadtbibliothek", "--data-dir", str(data), "--json", env=env)
    assert json.loads(res.stdout)[0]["source"].endswith("mitteilung.txt")

    # the vectors live in the server, not in an embedded Chroma in the data dir
    assert not (data / "index" / "chroma").exists()
    client = chromadb.HttpClient(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]),
                                 settings=ChromaSettings(anonymized_telemetry=False))
    (collection,) = client.list_collections()
    assert collection.name == "pilot_chunks" and collection.count() >= 3
    assert proc.poll() is None
