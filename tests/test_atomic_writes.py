"""Crash safety of every writer outside the index: drafts, eval runs, templates, the auth file.

Each writer goes through ``assistant.fsutil``. A writer that dies half-way (here: a failing
rename, a failing write, or a process killed with SIGKILL mid-write) must leave the previous
file byte for byte, and no temporary file behind after a clean failure.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import auth, fsutil
from assistant.drafting import record, templates
from assistant.evaluation.results import Run, RunSummary
from assistant.evaluation.runner import save_run
from tests.draftkit import TINY_TEMPLATE, filled_draft


def _fail_replace(monkeypatch):
    def boom(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fsutil.os, "replace", boom)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or ".partial" in p.name)


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.json"
    fsutil.atomic_write(target, '{"v": 1}')
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("writer died")
    assert target.read_text() == '{"v": 1}' and _leftovers(tmp_path) == []


def test_atomic_write_sets_the_mode_before_any_byte_is_written(tmp_path):
    target = tmp_path / "secret"
    with fsutil.atomic_path(target, mode=0o600) as tmp:
        assert (tmp.stat().st_mode & 0o777) == 0o600    # before the writer runs
        tmp.write_text("token")
    assert (target.stat().st_mode & 0o777) == 0o600


def test_sigkill_mid_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    code = (f"import time; from assistant import fsutil\n"
            f"with fsutil.atomic_path({str(target)!r}) as t, open(t, 'wb') as fh:\n"
            f"    fh.write(b'x' * 1000); fh.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert target.read_bytes() == b"old"


def test_draft_save_that_fails_keeps_the_previous_draft(bare_settings, monkeypatch):
    d = filled_draft(bare_settings)
    path = record.path_of(d.id, bare_settings.drafts_dir)
    before = path.read_bytes()
    d.sections[0].text = "Neuer Text, der nie ankommt."
    _fail_replace(monkeypatch)
    with pytest.raises(Exception):
        record.save(d, bare_settings.drafts_dir)
    assert path.read_bytes() == before and _leftovers(bare_settings.drafts_dir) == []


def test_eval_run_save_that_fails_keeps_the_previous_run(bare_settings, monkeypatch):
    run = Run(run_id="20260101-000000-x-abcd", created="2026-01-01T00:00:00", suite={"name": "x"}, mode="retrieval",
              config={}, fingerprint={}, items=[], summary=RunSummary())
    folder = save_run(run, bare_settings)
    before = (folder / "run.json").read_bytes()
    run.seconds = 99.0
    _fail_replace(monkeypatch)
    with pytest.raises(OSError):
        save_run(run, bare_settings)
    assert (folder / "run.json").read_bytes() == before and _leftovers(folder) == []


def test_template_save_that_fails_keeps_the_previous_template(bare_settings, monkeypatch):
    t = templates.parse(TINY_TEMPLATE)
    path = templates.save_template(t, bare_settings)
    before = path.read_bytes()
    t.title = "Geändert"
    _fail_replace(monkeypatch)
    with pytest.raises(Exception):
        templates.save_template(t, bare_settings)
    assert path.read_bytes() == before and _leftovers(path.parent) == []


def test_auth_file_is_never_readable_by_others_and_survives_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "users.txt"
    auth.set_password(path, "anna", "ein sehr langes Passwort 1")
    assert (path.stat().st_mode & 0o777) == 0o600
    before = path.read_bytes()
    _fail_replace(monkeypatch)
    with pytest.raises(Exception):
        auth.set_password(path, "bernd", "ein anderes langes Passwort 2")
    assert path.read_bytes() == before and _leftovers(tmp_path) == []
