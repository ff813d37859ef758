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


# --- owners, editors and waiting versions ---------------------------------------------------

def _people():
    from assistant.access import EDITOR, READER, Person

    return (Person("anna", frozenset({READER})), Person("bernd", frozenset({READER})),
            Person("carla", frozenset({READER, EDITOR})))


def test_a_reader_cannot_delete_what_others_put_there(bare_settings, tmp_path):
    from assistant.access.collections import Forbidden

    anna, bernd, carla = _people()
    f = tmp_path / "Haushalt.txt"
    f.write_text("Der Haushaltsplan 2025 sieht Investitionen von 12 Millionen Euro vor.\n" * 3)
    (stored,) = uploads.add_files([(f, f.name)], bare_settings)          # the admin's script
    with pytest.raises(Forbidden, match="Keine Berechtigung"):
        uploads.remove_document(stored.source, bare_settings, person=anna)
    g = tmp_path / "Notiz-anna.txt"
    g.write_text("Anna notiert: Die Sporthalle braucht ein neues Dach für 300.000 Euro.\n" * 3)
    (mine,) = uploads.add_files([(g, g.name)], bare_settings, person=anna)
    assert mine.status == "ingested"
    with pytest.raises(Forbidden):
        uploads.remove_document(mine.source, bare_settings, person=bernd)
    with Store(bare_settings) as store:
        assert {Path(d.source).name for d in store.documents()} == {"Haushalt.txt", "Notiz-anna.txt"}
    # the uploader may take back an unconfirmed upload; an editor may delete anything in the collection
    assert uploads.remove_document(mine.source, bare_settings, person=anna)["index"]
    assert uploads.remove_document(stored.source, bare_settings, person=carla)["file"]


def test_uploads_are_marked_until_an_editor_confirms(bare_settings, tmp_path):
    from assistant.access.collections import Forbidden

    anna, bernd, carla = _people()
    f = tmp_path / "Vorlage.md"
    f.write_text("---\ntitle: Drucksache 2025/001 des Rates\npaper_number: 2025/001\n---\n"
                 "Der Rat beschließt die Sanierung des Freibads.\n")
    (r,) = uploads.add_files([(f, f.name)], bare_settings, person=anna)
    assert uploads.unconfirmed(bare_settings, [r.source])[r.source].owner == "anna"
    with pytest.raises(Forbidden):
        uploads.confirm_metadata(r.source, bare_settings, person=bernd)
    uploads.confirm_metadata(r.source, bare_settings, person=carla)
    assert uploads.unconfirmed(bare_settings, [r.source]) == {}
    with pytest.raises(Forbidden):   # confirmed: now it is the collection's, not anna's to delete
        uploads.remove_document(r.source, bare_settings, person=anna)
    g = tmp_path / "Editor.txt"
    g.write_text("Die Redaktion lädt selbst hoch: Haushaltssperre aufgehoben.\n" * 3)
    (e,) = uploads.add_files([(g, g.name)], bare_settings, person=carla)
    assert uploads.unconfirmed(bare_settings, [e.source]) == {}      # an editor vouches for their own


def test_a_same_name_upload_waits_until_an_editor_confirms_the_replacement(bare_settings, tmp_path):
    from assistant.access.collections import Forbidden

    anna, bernd, carla = _people()
    f = tmp_path / "Satzung.txt"
    f.write_text("Die Gebührensatzung gilt ab dem 1. Januar. Gebühr: 40 Euro.\n" * 3)
    (old,) = uploads.add_files([(f, f.name)], bare_settings, person=carla)
    f.write_text("Gefälscht: Die Gebühr entfällt vollständig.\n" * 3)
    (new,) = uploads.add_files([(f, f.name)], bare_settings, person=bernd)
    assert new.status == "pending" and "Bestätigung" in new.reason
    assert "40 Euro" in Path(old.source).read_text()                  # the old version is untouched
    (p,) = uploads.pending_for(carla, bare_settings)
    assert uploads.pending_for(anna, bare_settings) == [] and uploads.pending_for(bernd, bare_settings) == [p]
    with pytest.raises(Forbidden):
        uploads.confirm_replacement(p.id, bare_settings, bernd)
    uploads.discard_replacement(p.id, bare_settings, carla)
    assert not Path(p.path).exists() and uploads.pending_for(carla, bare_settings) == []
    f.write_text("Neue Fassung: Die Gebühr beträgt 45 Euro.\n" * 3)
    (again,) = uploads.add_files([(f, f.name)], bare_settings, person=bernd)
    (p,) = uploads.pending_for(carla, bare_settings)
    done = uploads.confirm_replacement(p.id, bare_settings, carla)
    assert done.status == "replaced" and "45 Euro" in Path(old.source).read_text()
    with Store(bare_settings) as store:
        (doc,) = store.documents()
        assert "45 Euro" in store.page_text(doc.doc_id, None)
