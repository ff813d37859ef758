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


def _server_settings(data: Path, url: str, **store):
    from assistant import config

    overrides = {"data_dir": str(data), "store.url": url, **{f"store.{k}": v for k, v in store.items()}}
    return config.load(overrides, environ={}, config_file=data.parent / "none.toml")


def test_two_data_dirs_on_one_server_keep_each_others_documents(chroma_server, tmp_path):
    """Reconcile on a shared server deletes only this manifest's own leftovers, never ids it
    does not know (they may be another data dir's documents, or its not-yet-committed ones)."""
    import numpy as np

    from assistant.index import embeddings
    from assistant.index.retrieval import search
    from assistant.index.store import Store
    from assistant.ingest.pipeline import ingest

    url, _ = chroma_server
    a_docs, b_docs = tmp_path / "a-docs", tmp_path / "b-docs"
    a_docs.mkdir(), b_docs.mkdir()
    make_text(a_docs / "mensa.txt", "Der Rat beschließt den Bau einer Mensa an der Gesamtschule Nord.")
    make_text(a_docs / "bibliothek.txt", "Die Stadtbibliothek verlängert ihre Öffnungszeiten am Samstag.")
    make_text(b_docs / "friedhof.txt", "Antrag: Auf dem Friedhof Ost werden zwölf Sitzbänke aufgestellt.")
    a, b = _server_settings(tmp_path / "a" / "data", url), _server_settings(tmp_path / "b" / "data", url)

    assert ingest([a_docs], a).counts["ingested"] == 2
    assert ingest([b_docs], b).counts["ingested"] == 1        # starts with a reconcile
    with Store(a) as sa:
        assert sa.collection.count() == 3       # A's two chunks survived B's reconcile
    make_text(a_docs / "radweg.txt", "Der Radweg an der Hauptstraße wird verbreitert.")
    assert ingest([a_docs], a).counts["ingested"] == 1
    # B is mid-write (its chunks upserted, not committed) while A reconciles in full
    vec = embeddings.embed_passages(["Halbfertig: die Turnhalle bekommt ein neues Dach."])
    with Store(b) as sb, Store(a) as sa:
        sb.db.execute("INSERT INTO pending VALUES('bhalf', 0)")
        sb.collection.upsert(ids=["bhalf:0"], embeddings=np.asarray(vec), documents=["x"],
                             metadatas=[{"doc_id": "bhalf"}])
        # and A has leftovers of its own: a killed write, and surplus ids of a killed re-chunk
        sa.db.execute("INSERT INTO pending VALUES('aghost', 0)")
        sa.collection.upsert(ids=["aghost:0", "aghost:1"], embeddings=np.asarray([vec[0], vec[0]]),
                             documents=["x", "y"], metadatas=[{"doc_id": "aghost"}] * 2)
        radweg = sa.document(str((a_docs / "radweg.txt").resolve())).doc_id
        sa.db.execute("INSERT INTO pending VALUES(?, 0)", (radweg,))
        sa.collection.upsert(ids=[f"{radweg}:5"], embeddings=np.asarray(vec), documents=["z"],
                             metadatas=[{"doc_id": radweg}])
        assert sa.reconcile(full=True) == 1
        ids = set(sa.collection.get(include=[])["ids"])
        assert "bhalf:0" in ids and not {"aghost:0", "aghost:1", f"{radweg}:5"} & ids
        assert [d.doc_id for d in sa.documents()] and len(sa.documents()) == 3   # nothing of A's forgotten
        assert sb.reconcile(full=True) == 1 and "bhalf:0" not in set(sb.collection.get(include=[])["ids"])
        assert len(sb.documents()) == 1
        assert sa.collection.count() == 4    # 3 of A's, 1 of B's: one chunk each
    assert ingest([b_docs], b).counts["unchanged"] == 1
    assert ingest([a_docs], a).counts["unchanged"] == 3

    for settings, question, name in ((a, "Mensa Gesamtschule", "mensa.txt"), (a, "Öffnungszeiten Stadtbibliothek",
                                     "bibliothek.txt"), (a, "Radweg Hauptstraße", "radweg.txt"),
                                     (b, "Sitzbänke Friedhof", "friedhof.txt")):
        hits = search(question, settings, k=3)
        assert hits and Path(hits[0].chunk.source).name == name, (question, [h.chunk.source for h in hits])
        assert hits[0].dense_rank is not None, question     # found through the server's vectors too


@pytest.fixture
def auth_proxy(chroma_server):
    """A proxy in front of the Chroma server that wants a bearer token and serves it under /chroma."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    upstream, _ = chroma_server
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != "Bearer s3cret":
                status, headers, content = 401, {"Content-Type": "text/plain"}, b"unauthorized"
            elif not self.path.startswith("/chroma/"):
                status, headers, content = 404, {"Content-Type": "text/plain"}, b"not here"
            else:
                r = httpx.request(self.command, upstream + self.path[len("/chroma"):], content=body,
                                  headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                                  timeout=60)
                status, content = r.status_code, r.content
                headers = {"Content-Type": r.headers.get("content-type", "application/json")}
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(content))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/chroma", seen
    finally:
        server.shutdown()
        server.server_close()


def test_store_url_behind_an_authenticating_proxy_with_a_path_prefix(auth_proxy, tmp_path):
    from assistant.errors import StorageError
    from assistant.index.retrieval import search
    from assistant.index.store import Store
    from assistant.ingest.pipeline import ingest

    url, seen = auth_proxy
    docs = tmp_path / "docs"
    docs.mkdir()
    make_text(docs / "friedhof.txt", "Antrag: Auf dem Friedhof Ost werden zwölf Sitzbänke aufgestellt.")
    settings = _server_settings(tmp_path / "data", url, token="s3cret")
    assert ingest([docs], settings).counts["ingested"] == 1
    assert Path(search("Sitzbänke Friedhof", settings, k=1)[0].chunk.source).name == "friedhof.txt"
    assert seen and all(auth == "Bearer s3cret" and path.startswith("/chroma/api/v2/") for path, auth in seen)

    with pytest.raises(StorageError):
        Store(_server_settings(tmp_path / "other", url, token="falsch")).collection
    with pytest.raises(StorageError):
        Store(_server_settings(tmp_path / "other", url)).collection
