"""`pilot-assistant sync webdav` against a real WebDAV server on loopback (tests/webdav_server.py:
WsgiDAV laid out like Nextcloud, basic auth with an app password).

The first tests run in order on one data dir: the initial sync, a change, a deletion, then
the failures that must lose nothing. The rest use their own server and data dir.
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
from assistant.errors import UsageError
from assistant.sources.webdav import Credentials, DavError, Folder, normalize_url, read_password, safe_relative
from tests.conftest import run_cli
from tests.filemakers import make_docx, make_odt, make_pdf
from tests.webdav_server import NextcloudDav, self_signed

PASSWORD = "app-passwort-anna"
FACTS = {   # remote path -> (query, fact the first version says)
    "haushalt.pdf": ("Fehlbetrag Ergebnishaushalt 2025", "3,1 Millionen Euro"),
    "Verkehr/radweg.docx": ("Radschnellweg Lindenallee Länge", "4,2 Kilometer"),
    "Verkehr/Bäder/freibad.odt": ("Freibad Auenwiese Eröffnung Beckenfolie", "15. Mai"),
}


def _settings(data: Path, **extra) -> config.Settings:
    return config.load({"data_dir": str(data), **extra}, environ={}, config_file=data.parent / "none.toml")


def _sync(server: NextcloudDav, data: Path, *extra: str, folder: str = "Rat", env: dict | None = None,
          ok: bool = True) -> tuple[int, dict, str]:
    res = run_cli("sync", "webdav", server.url("anna", folder), "--user", "anna", "--json", "--data-dir", str(data),
                  *extra, env={"PILOT_ASSISTANT_WEBDAV_PASSWORD": PASSWORD, **(env or {})})
    if ok:
        assert res.returncode == 0, res.stdout + res.stderr
    try:
        out = json.loads(res.stdout)
    except ValueError:
        out = {}
    return res.returncode, out, res.stdout + res.stderr


def _top(settings: config.Settings, query: str):
    from assistant.index.retrieval import search

    return search(query, settings, k=3)[0].chunk


def _documents(settings: config.Settings) -> list[tuple[str, str, int, str]]:
    from assistant.index.store import Store

    with Store(settings) as store:
        return sorted((d.source, d.doc_id, d.n_chunks, d.collection) for d in store.documents())


def _write_docs(folder: Path) -> None:
    (folder / "Verkehr" / "Bäder").mkdir(parents=True, exist_ok=True)
    make_pdf(folder / "haushalt.pdf", ["Haushaltssatzung 2025", "Der Ergebnishaushalt 2025 schließt mit einem "
                                       "Fehlbetrag von 3,1 Millionen Euro."], title="Haushaltssatzung 2025")
    make_docx(folder / "Verkehr" / "radweg.docx", [("h1", "Radverkehrskonzept"), ("p", "Der Radschnellweg entlang "
              "der Lindenallee ist 4,2 Kilometer lang und verbindet den Hauptbahnhof mit dem Gewerbegebiet Nord.")],
              title="Radverkehrskonzept")
    make_odt(folder / "Verkehr" / "Bäder" / "freibad.odt", [("p", "Das Freibad Auenwiese öffnet am 15. Mai; die "
             "Beckenfolie wurde im Winter erneuert.")], title="Freibadsaison")
    (folder / "Verkehr" / "karte.png").write_bytes(b"\x89PNG\r\n\x1a\n")      # not a document: skipped
    (folder / ".versteckt.txt").write_text("Versteckte Datei.", encoding="utf-8")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = NextcloudDav(tmp_path_factory.mktemp("dav"), {"anna": PASSWORD, "bernd": "anderes"}).start()
    _write_docs(srv.folder() / "Rat")
    (srv.folder("bernd") / "Privat").mkdir()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("webdav") / "data"


# --- in order on one data dir ------------------------------------------------------------

def test_initial_sync_indexes_pdf_docx_and_odt_with_subfolders(server, data):
    _, out, _ = _sync(server, data, "--collection", "rat")
    assert out["ok"] and out["collection"] == "rat" and not out["resumed"]
    assert out["files"] == {"new": 3, "changed": 0, "unchanged": 0, "deleted": 0, "skipped": 2, "failed": 0}
    assert out["ingest"] == {"ingested": 3} and out["chunks_added"] >= 3
    settings = _settings(data)
    for rel, (query, fact) in FACTS.items():
        top = _top(settings, query)
        assert fact in top.text, (rel, top.text)
        # the citation links back to the file's place in the folder
        assert top.url == server.url("anna", f"Rat/{rel}") and top.meta["webdav_path"] == f"/Rat/{rel}"
        assert top.collection == "rat" and Path(top.source).is_relative_to(data.resolve() / "webdav")
    assert _top(settings, "Fehlbetrag Ergebnishaushalt 2025").page == 2
    # the same thing through the CLI a script would use
    res = run_cli("search", "Radschnellweg Lindenallee", "--json", "--data-dir", str(data))
    hits = json.loads(res.stdout)
    assert hits[0]["url"].endswith("/Rat/Verkehr/radweg.docx")
    assert not [p for m, p, _ in server.log if m == "GET" and p.endswith((".png", ".txt"))]   # never fetched


def test_changed_file_is_reindexed_alone(server, data):
    folder = server.folder() / "Rat" / "Verkehr"
    make_docx(folder / "radweg.docx", [("h1", "Radverkehrskonzept"), ("p", "Neu: Der Radschnellweg entlang der "
              "Lindenallee wird 5,0 Kilometer lang und nachts beleuchtet.")], title="Radverkehrskonzept")
    before = len(server.log)
    _, out, _ = _sync(server, data, "--collection", "rat")
    assert out["files"] == {"new": 0, "changed": 1, "unchanged": 2, "deleted": 0, "skipped": 2, "failed": 0}
    assert out["ingest"] == {"replaced": 1}
    assert server.requests("GET")[-1].endswith("/Rat/Verkehr/radweg.docx")
    assert [p for m, p, _ in server.log[before:] if m == "GET"] == ["/remote.php/dav/files/anna/Rat/Verkehr/radweg.docx"]
    top = _top(_settings(data), "Radschnellweg Lindenallee Länge")
    assert "5,0 Kilometer" in top.text and "4,2" not in top.text


def test_deleted_file_is_removed_from_the_index(server, data):
    odt = server.folder() / "Rat" / "Verkehr" / "Bäder" / "freibad.odt"
    odt.unlink()
    _, out, _ = _sync(server, data, "--collection", "rat")
    assert out["files"]["deleted"] == 1 and out["files"]["unchanged"] == 2 and out["files"]["new"] == 0
    settings = _settings(data)
    docs = _documents(settings)
    assert len(docs) == 2 and not any(d[0].endswith("freibad.odt") for d in docs)
    from assistant.index.retrieval import search

    assert not any("Auenwiese" in h.chunk.text for h in search("Freibad Auenwiese Beckenfolie", settings, k=5))
    assert not list((data / "webdav").rglob("freibad.odt*"))   # the mirror copy and its sidecar are gone too


def _state(data: Path) -> dict:
    [path] = list((data / "webdav").rglob("state.json"))
    return json.loads(path.read_text())


def test_wrong_password_missing_folder_and_hanging_server_lose_nothing(server, data):
    settings = _settings(data)
    docs, files = _documents(settings), _state(data)["files"]
    assert len(docs) == 2

    code, out, text = _sync(server, data, env={"PILOT_ASSISTANT_WEBDAV_PASSWORD": "falsches-passwort"}, ok=False)
    assert code == 1 and "HTTP 401" in out["error"] and "App-Passwort" in out["error"] + out["fix"]
    assert "wrong user name or app password" in out["error_en"]
    assert "falsches-passwort" not in text                       # the password is never shown
    code, out, _ = _sync(server, data, folder="Ratsunterlagen-gibt-es-nicht", ok=False)
    assert code == 1 and "HTTP 404" in out["error"] and "/Ratsunterlagen-gibt-es-nicht/" in out["error"]
    code, out, _ = run_cli_user(server, data, "bernd", "Privat")
    assert code == 1 and "HTTP 401" in out["error"]           # anna's password is not bernd's

    server.hang("/Rat", "PROPFIND")
    try:
        t0 = time.monotonic()
        code, out, _ = _sync(server, data, "--collection", "rat", env={"PILOT_ASSISTANT_WEBDAV__TIMEOUT_S": "1",
                                                                       "PILOT_ASSISTANT_WEBDAV__RETRIES": "1"}, ok=False)
        waited = time.monotonic() - t0
    finally:
        server.release()
    assert code == 1 and "antwortet nicht" in out["error"] and "Bereits Indexiertes bleibt erhalten" in out["error"]
    assert "does not answer" in out["error_en"] and waited < 120

    # a server that hangs in the middle of a download: the file it was fetching keeps its old version
    folder = server.folder() / "Rat"
    make_pdf(folder / "haushalt.pdf", ["Haushaltssatzung 2025", "Nachtrag: Der Fehlbetrag im Ergebnishaushalt "
                                       "2025 steigt auf 3,4 Millionen Euro."], title="Haushaltssatzung 2025")
    server.hang("haushalt.pdf", "GET")
    try:
        code, out, _ = _sync(server, data, "--collection", "rat", env={"PILOT_ASSISTANT_WEBDAV__TIMEOUT_S": "1",
                                                                       "PILOT_ASSISTANT_WEBDAV__RETRIES": "0"}, ok=False)
    finally:
        server.release()
    assert code == 1 and "antwortet nicht" in out["error"]

    assert _documents(settings) == docs and _state(data)["files"] == files
    assert "3,1 Millionen Euro" in _top(settings, "Fehlbetrag Ergebnishaushalt 2025").text

    # and the next run, with the server back, picks up the change and says it resumed
    _, out, _ = _sync(server, data, "--collection", "rat")
    assert out["resumed"] and out["files"]["changed"] == 1 and out["files"]["unchanged"] == 1
    assert "3,4 Millionen Euro" in _top(_settings(data), "Fehlbetrag Ergebnishaushalt 2025").text


def run_cli_user(server: NextcloudDav, data: Path, user: str, folder: str) -> tuple[int, dict, str]:
    res = run_cli("sync", "webdav", server.url(user, folder), "--user", user, "--json", "--data-dir", str(data),
                  env={"PILOT_ASSISTANT_WEBDAV_PASSWORD": PASSWORD})
    return res.returncode, json.loads(res.stdout), res.stdout + res.stderr


# --- resume ------------------------------------------------------------------------------

def test_killed_sync_resumes_with_the_files_not_done(tmp_path):
    server = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}).start()
    folder = server.folder() / "Foerderung"
    folder.mkdir()
    topics = ["Ladesäulen für Elektroautos", "Schulhofbegrünung", "Digitale Bürgerdienste", "Hochwasserschutz"]
    for i, topic in enumerate(topics, 1):
        (folder / f"{i}-programm.md").write_text(f"# Programm {i}\n\nGefördert werden {topic} mit bis zu "
                                                 f"{i * 10} Prozent.\n", encoding="utf-8")
    data = tmp_path / "data"
    env = {**os.environ, "PILOT_ASSISTANT_WEBDAV_PASSWORD": PASSWORD, "PILOT_ASSISTANT_WEBDAV__BATCH_FILES": "1"}
    try:
        server.hang("3-programm.md", "GET")
        exe = Path(sys.executable).with_name("pilot-assistant")
        proc = subprocess.Popen([str(exe), "sync", "webdav", server.url("anna", "Foerderung"), "--user", "anna",
                                 "--json", "--data-dir", str(data)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        try:
            assert server.held.wait(300), "the sync never reached the third file"
        finally:
            proc.kill()
            proc.wait(30)
        server.release()
        state = _state(data)
        assert sorted(state["files"]) == ["1-programm.md", "2-programm.md"] and state["run"]["started"]

        before = len(server.log)
        res = run_cli("sync", "webdav", server.url("anna", "Foerderung"), "--user", "anna", "--json",
                      "--data-dir", str(data), env={k: env[k] for k in env if k.startswith("PILOT_ASSISTANT_")})
        assert res.returncode == 0, res.stdout + res.stderr
        out = json.loads(res.stdout)
        assert out["resumed"] and out["files"]["new"] == 2 and out["files"]["unchanged"] == 2
        gets = [p.rsplit("/", 1)[-1] for m, p, _ in server.log[before:] if m == "GET"]
        assert gets == ["3-programm.md", "4-programm.md"], "\n".join(map(str, server.log))   # 1, 2: not again
        settings = _settings(data)
        for i, topic in enumerate(topics, 1):
            assert f"{i * 10} Prozent" in _top(settings, f"Gefördert werden {topic}").text
        assert "run" not in _state(data)
    finally:
        server.stop()


# --- bounds, hosts, TLS, secrets ---------------------------------------------------------

def test_oversized_file_fails_alone_and_is_never_downloaded(tmp_path):
    from assistant.sources.sync import sync

    server = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}).start()
    folder = server.folder() / "Gross"
    folder.mkdir()
    (folder / "riesig.txt").write_text("Zu groß. " * 200_000, encoding="utf-8")      # ~1.8 MB
    (folder / "klein.txt").write_text("Die Stadtbibliothek öffnet sonntags.", encoding="utf-8")
    try:
        report = sync(server.url("anna", "Gross"), _settings(tmp_path / "data", **{"ingest.max_file_mb": 1}),
                      user="anna", password=PASSWORD)
    finally:
        server.stop()
    assert report.exit_code == 3 and report.files["failed"] == 1 and report.files["new"] == 1
    assert "riesig.txt" in report.errors[0] and "zu groß" in report.errors[0]
    assert not [p for m, p, _ in server.log if m == "GET" and p.endswith("riesig.txt")]


def test_redirect_to_another_host_is_refused(tmp_path):
    server = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}).start()
    (server.folder() / "Rat").mkdir()
    # 127.0.0.2 is loopback too (the socket guard allows it): the refusal is the client's own
    server.redirect("/Rat", f"http://127.0.0.2:{server.port}/remote.php/dav/files/anna/Rat")
    try:
        with Folder(server.url("anna", "Rat"), Credentials("anna", PASSWORD), timeout=5, retries=0) as folder:
            with pytest.raises(DavError, match="fremden Host"):
                folder.walk()
            assert folder.requests == 1
    finally:
        server.stop()


def test_tls_is_verified(tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    server = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}, tls=(cert, key)).start()
    (server.folder() / "Rat").mkdir()
    (server.folder() / "Rat" / "notiz.md").write_text("# Notiz\n\nDie Ratssitzung beginnt um 17 Uhr.\n")
    assert server.url().startswith("https://127.0.0.1")
    try:
        code, out, _ = _sync(server, tmp_path / "data", ok=False)
        assert code == 1 and "TLS-Zertifikat" in out["error"] and "webdav.ca_file" in out["fix"]
        assert not _state_files(tmp_path / "data")
        # trusting the city's CA (here: the self-signed certificate itself) makes it work
        _, out, _ = _sync(server, tmp_path / "data", env={"PILOT_ASSISTANT_WEBDAV__CA_FILE": str(cert)})
        assert out["files"]["new"] == 1
    finally:
        server.stop()


def _state_files(data: Path) -> dict:
    found = list((data / "webdav").rglob("state.json")) if (data / "webdav").exists() else []
    return json.loads(found[0].read_text()).get("files", {}) if found else {}


def test_urls_paths_and_passwords(tmp_path):
    assert normalize_url("webdav://cloud.stadt.de/remote.php/dav/files/anna/Entwürfe") == \
        ("https://cloud.stadt.de/remote.php/dav/files/anna/Entw%C3%BCrfe/", "")
    assert normalize_url("https://anna@cloud.stadt.de:8443/remote.php/dav/files/anna/A%20B/")[0] == \
        "https://cloud.stadt.de:8443/remote.php/dav/files/anna/A%20B/"
    assert normalize_url("webdav+http://127.0.0.1:8080/x")[0] == "http://127.0.0.1:8080/x/"
    for bad, match in (("http://cloud.stadt.de/remote.php/dav/files/a/x", "Unverschlüsselt"),
                       ("https://anna:geheim@cloud.stadt.de/x", "Passwort gehört nicht"),
                       ("https://cloud.stadt.de/index.php/apps/files/?dir=/Rat", "Web-Oberfläche"),
                       ("ftp://cloud.stadt.de/x", "Keine WebDAV-URL")):
        with pytest.raises(UsageError, match=match):
            normalize_url(bad)
    for hostile in ("../etc/passwd", "Rat/../../x", "a//b", "a\\..\\b", "/"):
        with pytest.raises(DavError):
            safe_relative(hostile)
    assert safe_relative("/Verkehr/Bäder/freibad.odt") == "Verkehr/Bäder/freibad.odt"

    import httpx

    with Folder("https://cloud.stadt.de:443/remote.php/dav/files/a/x", Credentials("a", "b")) as folder:
        folder._guard(httpx.Request("GET", "https://cloud.stadt.de/remote.php/dav/files/a/x/"))   # 443 is 443
        for other in ("https://cloud.stadt.de:8443/x", "http://cloud.stadt.de/x", "https://cloud.stadt.de.evil/x"):
            with pytest.raises(Exception, match="cloud.stadt.de"):
                folder._guard(httpx.Request("GET", other))

    pw = tmp_path / "pw"
    pw.write_text("geheim-123\nzweite Zeile\n")
    assert read_password(str(pw), environ={}) == "geheim-123"
    assert read_password("", environ={"PILOT_ASSISTANT_WEBDAV_PASSWORD": "aus-env"}) == "aus-env"
    with pytest.raises(UsageError, match="Kein WebDAV-Passwort"):
        read_password("", environ={})
    assert "geheim" not in repr(Credentials("anna", "geheim-123"))
    # the password variable is a secret, not a setting (an unknown setting would be an error)
    settings = config.load({"data_dir": str(tmp_path)}, environ={"PILOT_ASSISTANT_WEBDAV_PASSWORD": "x"},
                           config_file=tmp_path / "none.toml")
    assert "geheim" not in json.dumps(settings.as_dict()) and "x" not in settings.as_dict()["webdav"].values()


def test_password_is_never_a_flag(tmp_path):
    res = run_cli("sync", "webdav", "https://cloud.stadt.de/remote.php/dav/files/a/x", "--user", "a",
                  "--password", "geheim", "--data-dir", str(tmp_path / "data"))
    assert res.returncode == 2 and "--password-file" in res.stderr and "geheim" not in res.stderr + res.stdout
    res = run_cli("sync", "webdav", "https://cloud.stadt.de/remote.php/dav/files/a/x", "--user", "a",
                  "--password=geheim", "--data-dir", str(tmp_path / "data"))
    assert res.returncode == 2 and "geheim" not in res.stderr + res.stdout


# --- [[sources]] for scheduled runs ------------------------------------------------------

def test_sources_table_and_sync_all(tmp_path):
    server = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}).start()
    (server.folder() / "Berichte").mkdir()
    (server.folder() / "Berichte" / "bericht.md").write_text("# Erfahrungsbericht\n\nDer Chatbot im Bürgerbüro "
                                                             "beantwortet 70 Prozent der Anfragen.\n")
    pw = tmp_path / "webdav.pw"
    pw.write_text(PASSWORD + "\n")
    toml = tmp_path / "pilot-assistant.toml"
    toml.write_text(f'''data_dir = "{tmp_path / 'data'}"
[webdav]
timeout_s = 10
[[sources]]
name = "berichte"
url = "{server.url('anna', 'Berichte')}"
user = "anna"
password_file = "{pw}"
collection = "berichte"
type = "report"
interval_minutes = 30
''', encoding="utf-8")
    try:
        settings = config.load(config_file=toml, environ={})
        [src] = settings.sync_sources
        assert (src.name, src.collection, src.type, src.interval_minutes) == ("berichte", "berichte", "report", 30)
        first = run_cli("sync", "all", "--json", "--config", str(toml))
        assert first.returncode == 0, first.stdout + first.stderr
        [row] = json.loads(first.stdout)["sources"]
        assert row["ran"] and row["report"]["files"]["new"] == 1 and row["report"]["collection"] == "berichte"
        second = json.loads(run_cli("sync", "all", "--json", "--config", str(toml)).stdout)["sources"][0]
        assert not second["ran"] and "nicht fällig" in second["reason"]
        forced = json.loads(run_cli("sync", "all", "--force", "--json", "--config", str(toml)).stdout)["sources"][0]
        assert forced["ran"] and forced["report"]["files"]["unchanged"] == 1
        top = _top(settings, "Chatbot Bürgerbüro Anfragen")
        assert top.type == "report" and top.collection == "berichte"
    finally:
        server.stop()

    for body, match in (('[[sources]]\nurl = "https://x/y"\n', "fehlt: user"),
                        ('[[sources]]\nurl = "https://x/y"\nuser = "a"\npasswort = "p"\n', "unbekannt: passwort"),
                        ('[[sources]]\nurl = "https://x/y"\nuser = "a"\nkind = "ftp"\n', "Art 'ftp' unbekannt"),
                        ('sources = "x"\n', "Liste von Tabellen")):
        toml.write_text(body, encoding="utf-8")
        with pytest.raises(config.ConfigError, match=match):
            config.load(config_file=toml, environ={})
