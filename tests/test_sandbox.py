"""Parsing in worker processes: time and memory limits, crashes, bombs; the other files go on.

The hostile loaders below are module-level so the workers can import them by name.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from filemakers import (
    make_docx,
    make_external_entity,
    make_odt,
    make_pdf,
    make_pdf_bomb,
    make_text,
    make_zip_bomb_docx,
    make_zip_many_entries,
)

from assistant.config import IngestSettings
from assistant.ingest import sandbox
from assistant.ingest.loaders import LoadError, load
from assistant.types import Page, ParsedDoc

FAST = IngestSettings(timeout_s=3, memory_mb=512, ocr=False)


@pytest.fixture(autouse=True)
def _forkserver_socket(monkeypatch):
    """The forkserver talks over a Unix socket; the guard still limits IP hosts to loopback.
    (Without this, the sandbox falls back to spawn, which the ingest tests exercise.)"""
    import pytest_socket
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
    monkeypatch.setattr(sandbox, "_context", None)


def hostile_loader(path: Path, *, settings: IngestSettings) -> ParsedDoc:
    """By file name: hang*, hog*, crash*, child* (hangs with a child process), limits*; else loads."""
    name = path.name
    if name.startswith("hang"):
        while True:
            pass
    if name.startswith("hog"):
        blocks = []
        while True:
            blocks.append(bytearray(64 * 2**20))
    if name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if name.startswith("child"):
        child = subprocess.Popen(["sleep", "300"])
        Path(str(path) + ".pid").write_text(str(child.pid))
        time.sleep(300)
    if name.startswith("limits"):
        return ParsedDoc(str(path), "", [Page(None, Path("/proc/self/limits").read_text())])
    return load(path, settings=settings)


def test_a_hanging_parser_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    path = make_text(tmp_path / "hang.txt", "x")
    started = time.monotonic()
    with pytest.raises(LoadError, match=r"Zeitlimit überschritten \(3 s\)"):
        sandbox.parse_file(path, FAST, loader=hostile_loader)
    assert time.monotonic() - started < 10


def test_timeout_also_kills_the_parsers_children(tmp_path: Path) -> None:
    path = make_text(tmp_path / "child.txt", "x")
    with pytest.raises(LoadError, match="Zeitlimit"):
        sandbox.parse_file(path, IngestSettings(timeout_s=2, ocr=False), loader=hostile_loader)
    pid = int(Path(str(path) + ".pid").read_text())
    for _ in range(50):      # the killed `sleep` is reaped by init shortly after
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"child process {pid} of a timed-out parser still runs")


def test_memory_limit_is_enforced(tmp_path: Path) -> None:
    path = make_text(tmp_path / "hog.txt", "x")
    with pytest.raises(LoadError, match=r"Speicherlimit überschritten \(512 MB\)"):
        sandbox.parse_file(path, FAST, loader=hostile_loader)
    limits = sandbox.parse_file(make_text(tmp_path / "limits.txt", "x"), FAST, loader=hostile_loader)
    address_space = next(line for line in limits.pages[0].text.splitlines() if "address space" in line)
    assert address_space.split()[3:5] == [str(512 * 2**20)] * 2


def test_a_crashing_parser_is_reported_with_its_signal(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"Parser abgestürzt \(Signal 11\)"):
        sandbox.parse_file(make_text(tmp_path / "crash.txt", "x"), FAST, loader=hostile_loader)


def test_parse_many_survives_hangs_crashes_and_bombs(tmp_path: Path) -> None:
    good = [make_pdf(tmp_path / "a.pdf", ["Seite eins", "Seite zwei"]),
            make_docx(tmp_path / "b.docx", [("h1", "Titel"), ("p", "Absatz")]),
            make_odt(tmp_path / "c.odt", [("p", "Offenes Format")]),
            make_text(tmp_path / "d.txt", "Text")]
    bad = {make_text(tmp_path / "hang.txt", "x"): "Zeitlimit",
           make_text(tmp_path / "crash.txt", "x"): "Signal 11",
           make_text(tmp_path / "hog.txt", "x"): "Speicherlimit",
           make_zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=60): "ZIP-Bombe",
           make_pdf_bomb(tmp_path / "bomb.pdf", inflated_mb=120): "Dekomprimierungsbombe",
           tmp_path / "missing.pdf": "nicht lesbar"}
    paths = [bad_path for bad_path in bad][:3] + good + [bad_path for bad_path in bad][3:]
    results = dict(sandbox.parse_many(paths, FAST, workers=2, loader=hostile_loader))
    assert set(results) == set(paths)
    for path in good:
        assert isinstance(results[path], ParsedDoc), results[path]
    assert [p.number for p in results[good[0]].pages] == [1, 2]
    for path, reason in bad.items():
        assert isinstance(results[path], LoadError) and reason in str(results[path]), (path, results[path])


def test_sandboxed_result_equals_a_direct_load(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "v.pdf", ["Erste Seite", "Zweite Seite"], title="Vorlage")
    assert sandbox.parse_file(path, FAST) == load(path, settings=FAST)


def test_archive_bombs_are_refused_before_parsing(tmp_path: Path) -> None:
    for path in (make_zip_bomb_docx(tmp_path / "bomb.docx", inflated_mb=300),
                 make_zip_many_entries(tmp_path / "many.docx")):
        started = time.monotonic()
        with pytest.raises(LoadError, match="ZIP-Bombe"):
            load(path, settings=FAST)
        assert time.monotonic() - started < 2


def test_pdf_decompression_bomb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="Dekomprimierungsbombe"):
        sandbox.parse_file(make_pdf_bomb(tmp_path / "bomb.pdf", inflated_mb=120), FAST)


def test_oversized_file_is_refused_without_a_worker(tmp_path: Path) -> None:
    big = make_text(tmp_path / "big.txt", "x" * (2 * 2**20))
    results = list(sandbox.parse_many([big], IngestSettings(max_file_mb=1)))
    assert len(results) == 1 and "zu groß" in str(results[0][1])


@pytest.mark.parametrize("suffix", [".docx", ".odt"])
def test_external_entities_are_never_resolved(tmp_path: Path, suffix: str) -> None:
    secret = make_text(tmp_path / "secret.txt", "GEHEIMNIS")
    path = make_external_entity(tmp_path / f"xxe{suffix}", secret)
    try:
        doc = load(path, settings=FAST)
    except LoadError:
        return                  # refusing the file is fine (odfpy uses defusedxml)
    assert "GEHEIMNIS" not in doc.pages[0].text
