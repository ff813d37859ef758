"""The lexical index: BM25 as bm25s scored it, kept in step with the manifest incrementally.

* scores equal bm25s (Lucene BM25) on the same tokens;
* after any sequence of adds, replacements and removals, with segments saved and merged on
  the way, search ranks and scores exactly like an index built from all rows at once;
* adding one document to a large index reads that document's rows only;
* an index from before segments is rebuilt once, with a notice; a damaged one is rebuilt.
"""
from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest

from assistant.index import lexstate
from assistant.index.lexical import Conditions, LexicalIndex, tokenize
from assistant.index.segment import ROW_SQL, Segment
from assistant.index.store import DocumentRecord, Store
from assistant.types import Chunk

WORDS = ("Grundsteuer Gewerbesteuer Haushalt Radweg Kita Feuerwehr Glasfaser Schule Sanierung Zuschuss Antrag "
         "Bebauungsplan Wärmeplanung Photovoltaik Bibliothek Friedhof Abwasser Satzung Gebühren Ausschuss").split()
QUERIES = ["Grundsteuer Haushalt", "Radweg Zuschuss Antrag", "Kita Sanierung", "Feuerwehr", "Wärmeplanung Satzung",
           "Glasfaser Schule Gebühren Bibliothek", "Friedhof Abwasser"]


def _texts(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + f" Nummer{rng.randint(1, 50)}"
            for _ in range(n)]


def _add(store: Store, source: str, doc_id: str, texts: list[str], collection: str = "default") -> None:
    chunks = [Chunk(chunk_id=f"{doc_id}:{i}", doc_id=doc_id, text=t, source=source, chunk_index=i,
                    collection=collection, date=f"20{10 + i % 15}-01-01") for i, t in enumerate(texts)]
    vecs = np.random.default_rng(len(texts)).normal(size=(len(texts), 384)).astype(np.float32)
    store.add_document(DocumentRecord(source=source, doc_id=doc_id, collection=collection), chunks,
                       vecs / np.linalg.norm(vecs, axis=1, keepdims=True))


def _fresh(store: Store) -> LexicalIndex:
    """The index as one build over every row: what the incremental one must equal."""
    return LexicalIndex([Segment.build(store.db.execute(ROW_SQL + " ORDER BY doc_id, chunk_index"), 0)], [None])


def _same(got: LexicalIndex, want: LexicalIndex, cond: Conditions | None = None) -> None:
    assert len(got) == len(want)
    for q in QUERIES:
        a, b = got.search(q, 10, cond), want.search(q, 10, cond)
        assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5), q
        # ids may differ only within ties
        assert {i for i, s in a if s > b[-1][1] + 1e-5} == {i for i, s in b if s > b[-1][1] + 1e-5}, q


def test_scores_equal_bm25s_lucene():
    import bm25s

    rng = random.Random(1)
    texts = _texts(rng, 60)
    rows = [(f"d{i // 3}:{i % 3}", f"d{i // 3}", i % 3, " ".join(tokenize(t)), "c", "other", "", "/s", 0)
            for i, t in enumerate(texts)]
    index = LexicalIndex([Segment.build(rows, 0)], [None])
    corpus = [r[3].split() for r in rows]
    vocab = {t: i for i, t in enumerate(sorted({t for doc in corpus for t in doc}))}
    ref = bm25s.BM25(k1=1.2, b=0.75)
    ref.index(([[vocab[t] for t in doc] for doc in corpus], vocab), show_progress=False)
    for q in QUERIES:
        want = ref.get_scores_from_ids(sorted({vocab[t] for t in tokenize(q) if t in vocab}))
        got = dict(index.search(q, len(rows)))
        assert [got.get(r[0], 0.0) for r in rows] == pytest.approx(list(want), rel=1e-5, abs=1e-6), q


def test_incremental_index_equals_a_full_rebuild(bare_settings, monkeypatch):
    monkeypatch.setattr(lexstate, "FLUSH_ROWS", 8)   # save and merge segments often
    rng = random.Random(7)
    live: dict[str, str] = {}   # source -> doc_id
    saved_layouts = set()
    with Store(bare_settings) as store, Store(bare_settings) as reader:
        for step in range(60):
            op = rng.random()
            if op < 0.55 or not live:
                source = f"/docs/{step}.pdf"
                doc_id = f"doc{step}"
                _add(store, source, doc_id, _texts(rng, rng.randint(1, 6)), collection=rng.choice("ab"))
                live[source] = doc_id
            elif op < 0.8:   # a new version of a file: its old doc_id goes
                source = rng.choice(sorted(live))
                doc_id = f"doc{step}v"
                _add(store, source, doc_id, _texts(rng, rng.randint(1, 6)))
                live[source] = doc_id
            else:
                source = rng.choice(sorted(live))
                assert store.remove_source(source)
                del live[source]
            got = store.lexical(strict=True)
            want = _fresh(store)
            _same(got, want)
            _same(reader.lexical(), want)   # a second process follows the log
            _same(got, want, Conditions({"collection": ["a"]}, date_min=20150000))
            pointer = json.loads((store.index_dir / lexstate.POINTER).read_text())
            saved_layouts.add(tuple(s["dir"] for s in pointer["segments"]))
    assert len(saved_layouts) > 3   # segments were saved and merged on the way
    with Store(bare_settings) as again:   # a new process: saved segments + log
        _same(again.lexical(), _fresh(again))


def test_adding_one_document_reads_only_its_rows(bare_settings, monkeypatch):
    rng = random.Random(3)
    with Store(bare_settings) as store:
        for d in range(30):
            _add(store, f"/docs/{d}.pdf", f"big{d}", _texts(rng, 40))
        store.rebuild_lexical()
        built: list[int] = []
        original = Segment.build.__func__

        def spy(cls, rows, watermark):
            seg = original(cls, rows, watermark)
            built.append(len(seg))
            return seg
        monkeypatch.setattr(Segment, "build", classmethod(spy))
        _add(store, "/docs/new.pdf", "new", ["Die Kennziffer Zebrastreifen steht nur hier."])
        assert store.lexical(strict=True).search("Zebrastreifen", 3)[0][0] == "new:0"
        assert built == [1]
        store.remove_source("/docs/3.pdf")
        assert len(store.lexical(strict=True)) == 29 * 40 + 1 and max(built) == 1


def test_an_index_from_before_segments_is_rebuilt_once_with_a_notice(bare_settings, caplog):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["Die Grundsteuer steigt."])
        index_dir = store.index_dir
    assert not (index_dir / lexstate.FOLDER).exists()   # nothing read the index yet
    # what the bm25s version left: a pointer naming one directory
    (index_dir / "lexical-3-abcdef12").mkdir()
    (index_dir / lexstate.POINTER).write_text(json.dumps({"dir": "lexical-3-abcdef12", "generation": 3}))
    with caplog.at_level(logging.WARNING), Store(bare_settings) as store:
        assert store.lexical().search("Grundsteuer", 3)[0][0] == "aaa:0"
        assert store.lexical().search("Grundsteuer", 3)[0][0] == "aaa:0"
    notices = [r for r in caplog.records if "alten Format" in r.getMessage()]
    assert len(notices) == 1 and "1 Abschnitten" in notices[0].getMessage()
    assert not (index_dir / "lexical-3-abcdef12").exists()
    assert json.loads((index_dir / lexstate.POINTER).read_text())["version"] == lexstate.VERSION


def test_a_segment_missing_on_disk_means_a_rebuild_not_an_error(bare_settings):
    with Store(bare_settings) as store:
        _add(store, "/docs/a.pdf", "aaa", ["Die Grundsteuer steigt."])
        store.lexical(strict=True)
    pointer = json.loads((bare_settings.index_dir / lexstate.POINTER).read_text())
    seg = bare_settings.index_dir / lexstate.FOLDER / pointer["segments"][0]["dir"]
    (seg / "rows.npy").unlink()
    with Store(bare_settings) as store:
        assert store.lexical().search("Grundsteuer", 3)[0][0] == "aaa:0"


def test_pruned_search_equals_adding_every_posting():
    """MaxScore skips common terms' postings for rows out of the race; the top n stay the same."""
    rng = random.Random(11)
    zipf = [w for i, w in enumerate(WORDS) for _ in range(len(WORDS) - i) for _ in range(i + 1)]
    rows = []
    for i in range(3000):
        text = " ".join(rng.choice(zipf) for _ in range(rng.randint(5, 40)))
        if i % 97 == 0:
            text += " Zebrastreifen Ampel"
        rows.append((f"d{i // 5}:{i % 5}", f"d{i // 5}", i % 5, " ".join(tokenize(text)), "ab"[i % 2], "other", "",
                     "/s", 20100101 + i))
    index = LexicalIndex([Segment.build(rows[:2000], 0), Segment.build(rows[2000:], 1)], [None, None])
    pruned = 0
    for q in [*QUERIES, "Zebrastreifen Haushalt Grundsteuer Ausschuss", "Ampel Radweg Kita Schule Satzung"]:
        for n in (1, 5, 30):
            for cond in (None, Conditions({"collection": ["a"]})):
                a, b = index.search(q, n, cond), index.search(q, n, cond, prune=False)
                assert [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5), (q, n)
                cut = b[-1][1] + 1e-5
                assert {i for i, s in a if s > cut} == {i for i, s in b if s > cut}, (q, n)
    # the pruning did happen on the rare-term queries
    calls = []
    original = index._nth
    index._nth = lambda *a: calls.append(original(*a)) or calls[-1]
    index.search("Zebrastreifen Haushalt Grundsteuer Ausschuss", 5)
    pruned = sum(1 for c in calls if c > 0)
    assert pruned >= 1
