"""Both backends through the same interface, with the real engine behind each."""
from __future__ import annotations

import ollama
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import config
from assistant.errors import BackendUnavailable
from assistant.runtime import llm
from tests.ollama_server import OllamaAPI

QUESTION = [SystemMessage("Antworte kurz auf Deutsch."), HumanMessage("Nenne eine Farbe.")]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, test_model_path):
    s = config.load({"llm.model": str(test_model_path), "llm.threads": 1,
                     "data_dir": str(tmp_path_factory.mktemp("d"))}, environ={})
    return llm.EmbeddedEngine.get(s)


@pytest.fixture(scope="module")
def ollama_api(engine):
    srv = OllamaAPI(engine, "qwen2.5-coder:0.5b").start()
    yield srv
    srv.stop()


def test_embedded_streams_tokens(settings):
    chat = llm.get_chat_model(settings)
    pieces = list(llm.stream_text(chat, QUESTION))
    assert len(pieces) > 1, "tokens must arrive one by one, not as one block"
    assert "".join(pieces).strip()


def test_embedded_engine_is_shared(settings):
    assert llm.get_chat_model(settings).engine is llm.get_chat_model(settings).engine


def test_ollama_client_contract(ollama_api):
    """The raw ollama client against the test API: every route the backend relies on."""
    c = ollama.Client(host=ollama_api.url)
    assert "qwen2.5-coder:0.5b" in [m.model for m in c.list().models]
    assert c.show("qwen2.5-coder:0.5b").details.format == "gguf"
    parts = [p.message.content for p in c.chat("qwen2.5-coder:0.5b", messages=[{"role": "user", "content": "Hallo"}],
                                                stream=True, options={"num_predict": 8})]
    assert len(parts) > 1 and "".join(parts).strip()
    assert c.generate("qwen2.5-coder:0.5b", "Eins, zwei,", options={"num_predict": 4}).response.strip()
    assert len(c.embed("x", input=["Förderprogramm"]).embeddings[0]) == 384


def test_ollama_backend_streams_like_embedded(settings, ollama_api):
    settings.llm.backend = "ollama"
    settings.llm.ollama_host = ollama_api.url
    settings.llm.ollama_model = "qwen2.5-coder:0.5b"
    chat = llm.get_chat_model(settings)
    assert type(chat).__name__ == "ChatOllama"
    pieces = list(llm.stream_text(chat, QUESTION))
    assert len(pieces) > 1 and "".join(pieces).strip()


YES_NO = [SystemMessage("Antworte nur mit Ja oder Nein."), HumanMessage("Ist Berlin eine Stadt in Deutschland?")]


def test_yes_probability_is_the_same_through_both_backends(settings, ollama_api):
    """The answerability check reads log-probabilities: in-process and over Ollama's API alike."""
    embedded = llm.yes_probability(llm.get_chat_model(settings), YES_NO)
    settings.llm.backend, settings.llm.ollama_host = "ollama", ollama_api.url
    settings.llm.ollama_model = "qwen2.5-coder:0.5b"
    over_ollama = llm.yes_probability(llm.get_chat_model(settings), YES_NO)
    assert 0.0 < embedded < 1.0                        # a probability, not a yes/no word
    assert over_ollama == pytest.approx(embedded, abs=0.02)


def test_ollama_unreachable_names_host_and_fix(bare_settings):
    bare_settings.llm.backend = "ollama"
    bare_settings.llm.ollama_host = "http://127.0.0.1:9"   # discard port: nothing listens
    with pytest.raises(BackendUnavailable) as e:
        llm.get_chat_model(bare_settings)
    assert "127.0.0.1:9" in e.value.de and "ollama serve" in e.value.fix


def test_ollama_model_not_pulled_says_pull(settings, ollama_api):
    settings.llm.backend = "ollama"
    settings.llm.ollama_host = ollama_api.url
    settings.llm.ollama_model = "llama3.1:8b"
    with pytest.raises(BackendUnavailable) as e:
        llm.get_chat_model(settings)
    assert e.value.fix == "ollama pull llama3.1:8b"


def test_ollama_dying_mid_answer_is_a_clear_error(settings, engine):
    srv = OllamaAPI(engine, "qwen2.5-coder:0.5b", fail_after_chunks=2).start()
    try:
        settings.llm.backend = "ollama"
        settings.llm.ollama_host = srv.url
        settings.llm.ollama_model = "qwen2.5-coder:0.5b"
        chat = llm.get_chat_model(settings)
        with pytest.raises(BackendUnavailable) as e:
            list(llm.stream_text(chat, QUESTION))
        assert "ausgefallen" in e.value.de
    finally:
        srv.stop()
