"""Crash safety of ingest: kill -9 mid-run, and a full disk.

* kill -9 of the CLI after the first documents were committed (polled via the manifest),
  twice, then a clean run: no duplicate chunks, every document's Chroma ids are exactly
  ``doc_id:0..n_chunks-1``, no stray ids, an empty pending journal, search works;
* kill -9 while changed files replace their old versions: each source keeps either its
  old or its new version, never a mix, and the rerun finishes the job;
* a full disk (the data dir on a 2 MB tmpfs in a private mount namespace; needs root):
  a clear bilingual error without a traceback, a non-zero exit code, the documents indexed
  before still there and consistent, and a normal run once space is freed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from assistant import config
from assistant.index.retrieval import search
from assistant.index.store import Store
from tests.conftest import ROOT, run_cli
from tests.filemakers import make_docx, make_markdown, make_pdf, make_text

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PA = Path(sys.executable).with_name("pilot-assistant")
SECTIONS = 8          # one short chunk per section: cheap to embed, many commits per run


def _settings(data_dir: Path) -> config.Settings:
    return config.load({"data_dir": str(data_dir)}, environ={}, config_file=data_dir.parent / "none.toml")


def _phrase(i: int, version: int = 1) -> str:
    return f"Kennziffer{i:03d}v{version}"


def _corpus(folder: Path, n: int, version: int = 1) -> None:
    """n documents in four formats, SECTIONS short sections each, every one with a unique phrase."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sections = [(f"Abschnitt {j} der Vorlage {i}",
                     f"Im Abschnitt {j} steht die {_phrase(i, version)} mit dem Betrag {i * 100 + j} Euro "
                     f"für die Sanierung von Gebäude {j}.") for j in range(SECTIONS)]
        kind = i % 4
        if kind == 0:
            make_markdown(folder / f"doc{i:02d}.md", "\n\n".join(f"## {h}\n\n{t}" for h, t in sections))
        elif kind == 1:
            make_docx(folder / f"doc{i:02d}.docx", [b for h, t in sections for b in (("h2", h), ("p", t))])
        elif kind == 2:
            make_pdf(folder / f"doc{i:02d}.pdf", [f"{h}\n{t}" for h, t in sections])
        else:
            make_text(folder / f"doc{i:02d}.txt", "\n\n".join(f"{j + 1}. {h}\n{t}" for j, (h, t) in
                                                               enumerate(sections)))


def _indexed(manifest: Path) -> dict[str, str]:
    """source -> doc_id of committed documents (read like any other reader would)."""
    try:
        db = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=1)
        try:
            return dict(db.execute("SELECT source, doc_id FROM documents WHERE status='indexed'").fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _kill_when(corpus: Path, data_dir: Path, ready, *, limit_s: float = 600) -> dict[str, str]:
    """Start `ingest`, SIGKILL it as soon as ready(committed) holds; return what was committed."""
    proc = subprocess.Popen([str(PA), "ingest", str(corpus), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = data_dir / "index" / "manifest.sqlite3"
    deadline = time.monotonic() + limit_s
    committed: dict[str, str] = {}
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            committed = _indexed(manifest)
            if ready(committed):
                break
        assert proc.poll() is None, "ingest finished before it could be killed; make the corpus bigger"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return committed


def _check_consistent(settings: config.Settings) -> dict[str, tuple[str, int]]:
    """The invariants a reader relies on; returns source -> (doc_id, n_chunks)."""
    with Store(settings) as store:
        ids = store.collection.get(include=[])["ids"]
        assert len(ids) == len(set(ids)), "duplicate ids in Chroma"
        rows = {r[0] for r in store.db.execute("SELECT chunk_id FROM chunks")}
        docs = store.documents()
        per_doc = Counter(i.rsplit(":", 1)[0] for i in ids)
        assert set(ids) == rows, (len(ids), len(rows), sorted(set(ids) ^ rows)[:5])
        for d in docs:
            expected = {f"{d.doc_id}:{k}" for k in range(d.n_chunks)}
            got = {i for i in ids if i.rsplit(":", 1)[0] == d.doc_id}
            assert got == expected, (d.source, len(got), d.n_chunks)
        assert set(per_doc) == {d.doc_id for d in docs}, "Chroma holds documents the manifest does not"
        assert len({d.doc_id for d in docs}) == len(docs) and len({d.source for d in docs}) == len(docs)
        assert store.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
        assert len(store.lexical()) == len(rows) == sum(d.n_chunks for d in docs)
        return {d.source: (d.doc_id, d.n_chunks) for d in docs}


def _found(settings, phrase: str, name: str) -> bool:
    """The phrase is one BM25 token held by exactly one document: search must bring that one up."""
    hits = search(phrase, settings, k=10)
    found = any(Path(h.chunk.source).name == name and phrase in h.chunk.text for h in hits)
    if not found:
        print("search", phrase, "->", [(Path(h.chunk.source).name, h.lexical_rank, h.dense_rank) for h in hits])
    return found


# --- kill -9 --------------------------------------------------------------------------------

N_DOCS = 24           # 192 short chunks, three embedding batches: each kill has a batch still to go


def test_kill_9_twice_then_rerun_leaves_a_consistent_index(tmp_path):
    corpus, data_dir = tmp_path / "c", tmp_path / "data"
    _corpus(corpus, N_DOCS)
    first = _kill_when(corpus, data_dir, lambda c: len(c) >= 1)
    assert 1 <= len(first) < N_DOCS
    second = _kill_when(corpus, data_dir, lambda c: len(c) > len(first))
    assert set(first) <= set(second) and len(second) < N_DOCS, (len(first), len(second))

    out = run_cli("ingest", str(corpus), "--json", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout)["counts"]
    assert counts["unchanged"] >= len(second) and counts["unchanged"] + counts["ingested"] == N_DOCS, counts
    assert counts["duplicate"] == 0 and counts["failed"] == 0

    settings = _settings(data_dir)
    docs = _check_consistent(settings)
    assert len(docs) == N_DOCS and all(n == SECTIONS for _, n in docs.values()), docs
    for i in (0, 5, N_DOCS - 1):
        name = next(Path(s).name for s in docs if Path(s).stem == f"doc{i:02d}")
        assert _found(settings, _phrase(i), name), i


def test_kill_9_while_replacing_keeps_old_or_new_never_both(tmp_path):
    corpus, data_dir = tmp_path / "c", tmp_path / "data"
    n = 12
    _corpus(corpus, n)
    out = run_cli("ingest", str(corpus), "--json", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr[-2000:]
    settings = _settings(data_dir)
    old = {s: d for s, (d, _) in _check_consistent(settings).items()}

    for f in corpus.iterdir():                       # every file changes: new content, new doc_id
        f.unlink()
    _corpus(corpus, n, version=2)
    committed = _kill_when(corpus, data_dir, lambda c: sum(c.get(s) not in (None, d) for s, d in old.items()) >= 1)
    replaced = {s for s, d in committed.items() if d != old.get(s)}
    assert 1 <= len(replaced) < n

    # a reader opening the index after the crash: reconcile (what every ingest starts with), then check
    with Store(settings) as store:
        store.reconcile()
    now = _check_consistent(settings)
    assert set(now) == set(old)
    for source, (doc_id, _) in now.items():
        name, i = Path(source).name, int(Path(source).stem[3:])
        version = 1 if doc_id == old[source] else 2
        assert _found(settings, _phrase(i, version), name), (name, version)
        with Store(settings) as store:
            texts = " ".join(c.text for c in store.get_chunks([f"{doc_id}:{k}" for k in range(SECTIONS)]))
        assert _phrase(i, 3 - version) not in texts, (name, "old and new version mixed")

    out = run_cli("ingest", str(corpus), "--json", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout)["counts"]
    assert counts["replaced"] + counts["unchanged"] == n and counts["unchanged"] >= len(replaced), counts
    final = _check_consistent(settings)
    assert all(doc_id != old[s] for s, (doc_id, _) in final.items())


# --- full disk ------------------------------------------------------------------------------

# runs inside `unshare -m`: the tmpfs disappears with the namespace, so everything is checked here
INNER = textwrap.dedent('''
    import json, os, shutil, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    data_dir, first, second, result, leave_kb = Path({data!r}), {first!r}, {second!r}, {result!r}, {leave!r}
    pa = {pa!r}
    out = {{}}

    def cli(*args):
        p = subprocess.run([pa, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=600)
        return {{"rc": p.returncode, "stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]}}

    data_dir.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data_dir)], check=True)
    try:
        out["first"] = cli("ingest", first, "--json")
        from assistant import config
        from assistant.index.store import Store
        settings = config.load({{"data_dir": str(data_dir)}}, environ={{}}, config_file=data_dir / "none.toml")
        with Store(settings) as s:
            out["before"] = {{d.source: [d.doc_id, d.n_chunks] for d in s.documents()}}
        st = os.statvfs(data_dir)
        free_kb = st.f_bavail * st.f_frsize // 1024
        with open(data_dir / "filler", "wb") as f:       # the disk fills up (from anything)
            f.write(bytes(max(0, free_kb - leave_kb) * 1024))
        st = os.statvfs(data_dir)
        out["free_kb"] = st.f_bavail * st.f_frsize // 1024
        out["second"] = cli("ingest", second)
        out["second_json"] = cli("ingest", second, "--json")
        out["search_full"] = cli("search", "Kennziffer000v1", "--json")
        (data_dir / "filler").unlink()
        out["reader"] = subprocess.run([sys.executable, {checker!r}, str(data_dir)], capture_output=True,
                                       text=True, timeout=600).stdout
        out["recover"] = cli("ingest", second, "--json")
        out["reader_after"] = subprocess.run([sys.executable, {checker!r}, str(data_dir)],
                                             capture_output=True, text=True, timeout=600).stdout
    finally:
        Path(result).write_text(json.dumps(out))
        subprocess.run(["umount", "-l", str(data_dir)])
''')

# what a reader sees after the failure: reconcile, then the invariants, as JSON
CHECKER = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, {root!r})
    from collections import Counter
    from pathlib import Path
    from assistant import config
    from assistant.index.retrieval import search
    from assistant.index.store import Store
    data_dir = Path(sys.argv[1])
    settings = config.load({{"data_dir": str(data_dir)}}, environ={{}}, config_file=data_dir / "none.toml")
    out = {{}}
    try:
        with Store(settings) as s:
            out["cleaned"] = s.reconcile()
            ids = s.collection.get(include=[])["ids"]
            rows = {{r[0] for r in s.db.execute("SELECT chunk_id FROM chunks")}}
            docs = s.documents()
            out["docs"] = {{d.source: [d.doc_id, d.n_chunks] for d in docs}}
            out["ids_unique"] = len(ids) == len(set(ids))
            out["ids_match_rows"] = set(ids) == rows
            out["per_doc_ok"] = all({{i for i in ids if i.rsplit(":", 1)[0] == d.doc_id}} ==
                                    {{f"{{d.doc_id}}:{{k}}" for k in range(d.n_chunks)}} for d in docs)
            out["pending"] = s.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
            out["lexical_ok"] = len(s.lexical()) == len(rows) == sum(d.n_chunks for d in docs)
        out["found"] = {{}}
        for i in range(3):
            hits = search(f"Wo steht die Kennziffer{{i:03d}}v1?", settings, k=5)
            out["found"][str(i)] = any(f"Kennziffer{{i:03d}}v1" in h.chunk.text for h in hits)
    except Exception as exc:   # reported to the test, which fails with it
        import traceback
        out["error"] = traceback.format_exc()
    print(json.dumps(out))
''')


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount -t tmpfs inside unshare -m)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) not installed"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt"], capture_output=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs here: {probe.stderr.decode()[:200]}"


@pytest.fixture(scope="module", params=[0, 96], ids=["0kb-free", "96kb-free"])
def full_disk(request, tmp_path_factory) -> dict:
    """Index 3 documents on a 2 MB tmpfs, fill it up to ``param`` KB free, ingest 8 more, then
    free the space and read; everything is recorded inside the namespace (see INNER)."""
    if (why := _can_mount()) is not None:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp(f"full-disk-{request.param}")
    first, second = tmp / "first", tmp / "second"
    _corpus(first, 3)
    _corpus(second, 8, version=2)
    for f in second.iterdir():                        # distinct names from the first batch
        f.rename(f.with_name("neu-" + f.name))
    checker = tmp / "checker.py"
    checker.write_text(CHECKER.format(root=str(ROOT)))
    inner = tmp / "inner.py"
    result = tmp / "result.json"
    inner.write_text(INNER.format(root=str(ROOT), data=str(tmp / "data"), first=str(first),
                                  second=str(second), result=str(result), leave=request.param, pa=str(PA),
                                  checker=str(checker)))
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(inner)],
                          capture_output=True, text=True, timeout=800)
    assert result.exists(), proc.stderr[-3000:]
    out = json.loads(result.read_text())
    out["leave_kb"] = request.param
    return out


def test_full_disk_gives_a_clear_error_and_keeps_the_index(full_disk):
    out = full_disk
    assert out["first"]["rc"] == 0, out["first"]
    assert out["free_kb"] <= out["leave_kb"] + 8, out["free_kb"]

    # the failing run: non-zero, a clear message in German and English, no traceback
    second_run = out["second"]
    assert second_run["rc"] != 0, second_run
    err = second_run["stderr"]
    assert "Traceback" not in err and "Traceback" not in second_run["stdout"], err
    assert "Fehler:" in err and "Speicherplatz" in err and "Cannot write" in err, err
    as_json = out["second_json"]
    assert as_json["rc"] != 0 and "Traceback" not in as_json["stderr"]
    assert "error" in json.loads(as_json["stdout"].strip().splitlines()[0]), as_json["stdout"]

    # after freeing space: what was indexed before is intact, the index is consistent
    reader = json.loads(out["reader"])
    assert "error" not in reader, reader.get("error")
    for source, row in out["before"].items():
        assert reader["docs"].get(source) == row, source
    assert reader["ids_unique"] and reader["ids_match_rows"] and reader["per_doc_ok"] and reader["lexical_ok"]
    assert reader["pending"] == 0 and all(reader["found"].values()), reader
    # partially written documents of the failed run are complete or absent (per_doc_ok), and
    # the next run picks up the rest
    assert out["recover"]["rc"] == 0, out["recover"]
    after = json.loads(out["reader_after"])
    assert "error" not in after, after.get("error")
    assert after["ids_match_rows"] and after["per_doc_ok"] and after["lexical_ok"] and after["pending"] == 0
    assert len(after["docs"]) == 3 + 8


def test_search_on_a_full_disk_gives_a_clear_error_not_a_traceback(full_disk):
    """After a failed write Chroma applies its pending log on the next read, which needs disk too:
    a search must end in the same clear storage error (Store._chroma wraps reads), never a traceback."""
    search_run = full_disk["search_full"]
    assert "Traceback" not in search_run["stderr"], search_run["stderr"][-2000:]
    if search_run["rc"] != 0:
        assert "Speicherplatz" in search_run["stderr"], search_run["stderr"][-2000:]
