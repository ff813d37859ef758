"""Uploads from the UI: allow-list, size limit, stored copy, per-file results, deletion."""
from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import UsageError
from assistant.index.store import Store
from assistant.ingest import uploads


def test_names_and_collections():
    assert uploads.safe_name("../../etc/passwd.PDF") == "passwd.pdf"
    assert uploads.safe_name("C:\\Users\\x\\Bericht 2024.docx") == "Bericht 2024.docx"
    assert uploads.safe_name(".versteckt.txt") == "versteckt.txt"
    assert uploads.safe_name("a\x00b.txt") == "ab.txt"
    assert uploads.check_collection("  Förderung 2025 ") == "Förderung 2025"
    assert uploads.check_collection("") == "default"
    for bad in ("../x", "a/b", ".hidden", "x" * 65, "a..b"):
        with pytest.raises(UsageError):
            uploads.check_collection(bad)


def test_check_file_type_size_empty(bare_settings, tmp_path):
    bare_settings.serve.max_upload_mb = 1
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    with pytest.raises(UsageError, match="nicht erlaubt"):
        uploads.check_file(exe, exe.name, bare_settings)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    with pytest.raises(UsageError, match="zu groß"):
        uploads.check_file(big, big.name, bare_settings)
    empty = tmp_path / "leer.md"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="leer"):
        uploads.check_file(empty, empty.name, bare_settings)


def test_add_files_reports_each_file_and_delete_removes_copy(bare_settings, tmp_path):
    good = tmp_path / "upload-tmp-1"
    good.mkdir()
    (good / "Notiz.txt").write_text("Die Sitzung des Bauausschusses findet am 12. März im Rathaus statt.\n" * 3)
    bad = tmp_path / "virus.exe"
    bad.write_bytes(b"MZ")
    results = uploads.add_files([(good / "Notiz.txt", "Notiz.txt"), (bad, "virus.exe")], bare_settings,
                                collection="Bau")
    assert [r.status for r in results] == ["ingested", "failed"]
    assert "nicht erlaubt" in results[1].reason and not results[1].source
    stored = Path(results[0].source)
    assert stored == (bare_settings.documents_dir / "Bau" / "Notiz.txt").resolve() and stored.is_file()
    with Store(bare_settings) as store:
        assert [d.source for d in store.documents()] == [str(stored)]
    # same name again = new version of the same document
    (good / "Notiz.txt").write_text("Neue Fassung: die Sitzung ist am 19. März.\n" * 3)
    again = uploads.add_files([(good / "Notiz.txt", "Notiz.txt")], bare_settings, collection="Bau")
    assert again[0].status == "replaced"
    assert uploads.remove_document(str(stored), bare_settings) == {"index": True, "file": True}
    assert not stored.exists()
    with pytest.raises(UsageError):
        uploads.remove_document(str(stored), bare_settings)


def test_remove_never_deletes_files_outside_the_document_store(bare_settings, tmp_path):
    from assistant.ingest.pipeline import ingest

    outside = tmp_path / "freigabe" / "Protokoll.md"
    outside.parent.mkdir()
    outside.write_text("# Protokoll\n\nDer Rat beschließt den Haushalt 2025 einstimmig.\n")
    ingest([outside], bare_settings)
    assert uploads.remove_document(str(outside.resolve()), bare_settings) == {"index": True, "file": False}
    assert outside.exists()
