"""Drafts saved into an openDesk/Nextcloud folder (a real WebDAV server on loopback): a first
save creates the file, a second updates it, a file changed in openDesk meanwhile is refused."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from draftkit import filled_draft

from assistant import config
from assistant.drafting import publish, runner
from assistant.errors import UsageError
from assistant.sources.webdav import Conflict
from tests.conftest import run_cli
from tests.webdav_server import NextcloudDav

PASSWORD = "app-passwort-anna"


@pytest.fixture
def server(tmp_path):
    srv = NextcloudDav(tmp_path / "dav", {"anna": PASSWORD}).start()
    yield srv
    srv.stop()


def _settings(tmp_path: Path, server: NextcloudDav, **extra) -> config.Settings:
    pw = tmp_path / "webdav.pw"
    pw.write_text(PASSWORD + "\n")
    target = server.url("anna", "Entwürfe").replace("http://", "webdav+http://")
    return config.load({"data_dir": str(tmp_path / "data"), "webdav.save_to": target, "webdav.user": "anna",
                        "webdav.password_file": str(pw), **extra}, environ={}, config_file=tmp_path / "none.toml")


def _odt_text(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read("content.xml").decode("utf-8")


def test_a_draft_saved_twice_updates_the_file_and_a_conflict_is_refused(tmp_path, server):
    settings = _settings(tmp_path, server)
    d = filled_draft(settings)
    first = publish.save_to_folder(d, settings)
    remote = server.folder() / "Entwürfe" / f"{d.id}.odt"
    assert remote.is_file() and [f.status for f in first.files] == ["created"]
    assert first.files[0].path == f"/Entwürfe/{d.id}.odt" and f"/Entwürfe/{d.id}.odt (neu angelegt)" in first.message()
    content = _odt_text(remote)
    assert "KI-Assistent im Bürgerbüro" in content
    assert "Anhang: Herkunft und Prüfung" in content and d.id in content     # the provenance travels with it
    puts = [(m, s) for m, p, s in server.log if m == "PUT"]
    assert puts == [("PUT", 201)]

    # an edit here, a second save: the same file, updated (a PUT with If-Match, Nextcloud keeps versions)
    d = runner.edit_section(d.id, "ausgangslage", "Neu formulierte Ausgangslage mit Ratsbeschluss [1].", settings)
    second = publish.save_to_folder(d, settings)
    assert [f.status for f in second.files] == ["updated"] and "aktualisiert" in second.message()
    assert "Neu formulierte Ausgangslage" in _odt_text(remote)
    assert sorted(p.name for p in remote.parent.iterdir()) == [f"{d.id}.odt"]
    assert [s for m, _, s in server.log if m == "PUT"] == [201, 204]

    # someone edits the file in openDesk (Collabora), then the assistant saves again: refused
    before = remote.read_bytes()
    remote.write_bytes(before + b"\0in openDesk bearbeitet")
    os.utime(remote, (remote.stat().st_atime, remote.stat().st_mtime + 5))
    with pytest.raises(Conflict, match="seit dem letzten Speichern in openDesk geändert") as exc:
        publish.save_to_folder(d, settings)
    assert "nicht überschrieben" in exc.value.de and exc.value.fix
    assert remote.read_bytes().endswith(b"in openDesk bearbeitet")          # nothing overwritten
    assert [s for m, _, s in server.log if m == "PUT"] == [201, 204]        # not even attempted

    # a file of that name that was not saved from here is not overwritten either
    other = filled_draft(settings)
    (server.folder() / "Entwürfe" / f"{other.id}.odt").write_bytes(b"fremd")
    with pytest.raises(Conflict, match="nicht von hier gespeichert"):
        publish.save_to_folder(other, settings)
    assert (server.folder() / "Entwürfe" / f"{other.id}.odt").read_bytes() == b"fremd"


def test_the_server_refuses_a_write_that_races_a_change(tmp_path, server):
    """The check before the write is not the only guard: the PUT itself is conditional."""
    from assistant.sources.webdav import Credentials, Folder

    with Folder(server.url("anna", ""), Credentials("anna", PASSWORD), retries=0) as folder:
        etag = folder.put("a.odt", b"eins", etag=None)
        (server.folder() / "a.odt").write_bytes(b"zwei, anders")
        with pytest.raises(Conflict):
            folder.put("a.odt", b"drei", etag=etag)
        with pytest.raises(Conflict):
            folder.put("a.odt", b"vier", etag=None)
    assert (server.folder() / "a.odt").read_bytes() == b"zwei, anders"


def test_more_formats_and_a_missing_folder_is_created(tmp_path, server):
    settings = _settings(tmp_path, server, **{"webdav.save_formats": "odt, docx, md"})
    d = filled_draft(settings)
    result = publish.save_to_folder(d, settings)
    assert [f.name for f in result.files] == [f"{d.id}.odt", f"{d.id}.docx", f"{d.id}.md"]
    assert sorted(p.suffix for p in (server.folder() / "Entwürfe").iterdir()) == [".docx", ".md", ".odt"]
    with pytest.raises(UsageError, match="unbekanntes Format"):
        publish.formats(_settings(tmp_path, server, **{"webdav.save_formats": "odt, exe"}))
    with pytest.raises(UsageError, match="Kein openDesk-Ordner"):
        publish.save_to_folder(d, _settings(tmp_path, server, **{"webdav.save_to": ""}))


def test_draft_cli_save_to(tmp_path, server):
    settings = _settings(tmp_path, server)
    d = filled_draft(settings)
    target = server.url("anna", "Rat/Vorlagen").replace("http://", "webdav+http://")
    (server.folder() / "Rat").mkdir()
    env = {"PILOT_ASSISTANT_WEBDAV_PASSWORD": PASSWORD, "PILOT_ASSISTANT_WEBDAV__USER": "anna"}
    res = run_cli("draft", "--resume", d.id, "--save-to", target, "--json", "--data-dir", str(tmp_path / "data"),
                  env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["output"] is None and out["saved"]["files"][0]["status"] == "created"
    assert out["saved"]["files"][0]["path"] == f"/Rat/Vorlagen/{d.id}.odt"
    assert (server.folder() / "Rat" / "Vorlagen" / f"{d.id}.odt").is_file()
    again = run_cli("draft", "--resume", d.id, "--save-to", target, "--out", str(tmp_path / "x.md"),
                    "--data-dir", str(tmp_path / "data"), env=env)
    assert again.returncode == 0 and "aktualisiert" in again.stdout and (tmp_path / "x.md").is_file()
    (server.folder() / "Rat" / "Vorlagen" / f"{d.id}.odt").write_bytes(b"in openDesk umgeschrieben")
    conflict = run_cli("draft", "--resume", d.id, "--save-to", target, "--json", "--data-dir",
                       str(tmp_path / "data"), env=env)
    assert conflict.returncode == 1 and "Konflikt" in json.loads(conflict.stdout)["error"]
    assert (server.folder() / "Rat" / "Vorlagen" / f"{d.id}.odt").read_bytes() == b"in openDesk umgeschrieben"
