"""Chat with sources end to end: real index, real small model, CLI contract."""
from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from assistant.answer import chat
from assistant.errors import UsageError
from assistant.ingest import pipeline
from tests.conftest import run_cli
from tests.filemakers import make_markdown, make_pdf

PAGES = [
    "Stadt Musterstadt – Drucksache 0815/2026\n\nBeschlussvorlage Bürgerservice-Chatbot.\n\n"
    "Der Rat wird gebeten, den Pilotbetrieb eines Chatbots für das Bürgerbüro zu beschließen.",
    "Finanzielle Auswirkungen\n\nDer Pilot des Bürgerservice-Chatbots kostet insgesamt 48.500 Euro. "
    "Davon entfallen 30.000 Euro auf den Betrieb im kommunalen Rechenzentrum.",
    "Zeitplan\n\nDer Pilot beginnt am 1. März 2027 und endet am 31. August 2027.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    make_pdf(folder / "chatbot.pdf", PAGES, title="Beschlussvorlage Bürgerservice-Chatbot")
    make_markdown(folder / "radwege.md", "# Radwege\n\nDie Stadt plant 12 Kilometer neue Radwege bis 2028.",
                  {"title": "Radverkehrskonzept", "type": "council"})
    return folder


@pytest.fixture
def indexed(settings, corpus):
    report = pipeline.ingest([corpus], settings)
    assert report.to_dict()["ok"], report.to_dict()
    return settings


@pytest.mark.slow
def test_answer_cites_the_right_page(indexed):
    events = list(chat.ask_stream("Wie viel kostet der Pilot des Bürgerservice-Chatbots?", indexed))
    assert events[0].kind == "sources" and events[0].sources, "sources come before the answer"
    assert any(e.kind == "token" for e in events)
    answer = events[-1].answer
    assert not answer.refused
    assert answer.citations, answer.answer
    assert any(c.page == 2 and c.source.endswith("chatbot.pdf") for c in answer.citations), \
        (answer.answer, [(c.n, c.page, c.source) for c in answer.citations])
    ids = {h.chunk.chunk_id for h in answer.sources}
    assert all(c.chunk_id in ids for c in answer.citations), "citations only point to retrieved chunks"
    assert set(answer.timings) >= {"retrieval_ms", "quote_ms", "check_ms", "first_token_ms", "total_ms"}
    assert answer.timings["quote_ms"] <= answer.timings["first_token_ms"]   # the Fundstelle comes first


def test_unknown_subject_is_refused_without_generation(indexed):
    answer = chat.ask("Wie hoch ist der Hebesatz der Grundsteuer in Wien?", indexed,
                      chat_model=object())   # would fail if the model were called
    assert answer.refused and "finde ich dazu nichts" in answer.answer
    assert "Nächstliegende Quellen" in answer.answer and answer.citations == []
    assert answer.extra["refusal_reason"] == "no_evidence"


def test_on_topic_question_the_model_finds_unanswered_is_refused_with_its_signals(indexed):
    # the model is asked one yes/no token and says "Nein"; a second call (writing an answer)
    # would find the fake model's list empty and fail
    says_no = GenericFakeChatModel(messages=iter([AIMessage(
        "Nein", response_metadata={"logprobs": [{"token": "Nein", "logprob": 0.0}]})]))
    answer = chat.ask("Wer leitet das Pilotprojekt des Bürgerservice-Chatbots?", indexed, chat_model=says_no)
    assert answer.refused and "finde ich dazu nichts" in answer.answer and answer.citations == []
    assert answer.extra["refusal_reason"] == "check" and answer.extra["check"]["p_yes"] == 0.0


def test_a_year_no_source_mentions_is_refused_without_the_model(indexed):
    # the costs stand on page 2, but nothing retrieved speaks of 2029: the quote would show the
    # 48.500 Euro as if they answered for that year
    answer = chat.ask("Wie viel kostet der Pilot des Bürgerservice-Chatbots im Jahr 2029?", indexed,
                      chat_model=object())   # would fail if the model were called
    assert answer.refused and answer.extra["refusal_reason"] == "year_missing"
    assert "Das Jahr 2029 kommt in den gefundenen Stellen nicht vor." in answer.answer and answer.citations == []


def test_a_fundstelle_that_speaks_of_another_year_is_refused_without_the_model(indexed):
    # the Zeitplan (2027) answers "wann beginnt"; 2026 stands only in the paper's number on page 1,
    # which is shown too: a check over all shown sources let the question through to the model
    answer = chat.ask("Wann beginnt der Pilot des Bürgerservice-Chatbots im Jahr 2026?", indexed,
                      chat_model=object())   # would fail if the model were called
    assert answer.refused and answer.extra["refusal_reason"] == "year_missing"
    assert "Die passendste Stelle nennt 2027, nicht 2026." in answer.answer and answer.citations == []


def test_empty_index_refuses(settings):
    answer = chat.ask("Was kostet der Chatbot?", settings, chat_model=object())
    assert answer.refused and answer.sources == []


@pytest.mark.parametrize("question", ["", "   ", "x" * 20_000])
def test_bad_questions_are_usage_errors(bare_settings, question):
    with pytest.raises(UsageError):
        chat.ask(question, bare_settings)


@pytest.mark.slow
def test_ask_cli_json_contract(indexed, test_model_path):
    args = ["--data-dir", str(indexed.data_dir), "--model", str(test_model_path), "--threads", "1", "--json"]
    r = run_cli("ask", "Wann beginnt der Pilot des Bürgerservice-Chatbots?", *args)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"answer", "citations", "refused", "model", "timings"} <= set(data)
    assert set(data["timings"]) >= {"retrieval_ms", "first_token_ms", "total_ms"}
    for c in data["citations"]:
        assert {"n", "doc_id", "source", "title", "page", "quote"} <= set(c)
    r = run_cli("ask", "Wie hoch ist der Hebesatz der Grundsteuer in Wien?", *args)   # off the corpus
    assert r.returncode == 0 and json.loads(r.stdout)["refused"] is True
    r = run_cli("ask", "", *args)
    assert r.returncode == 2 and "Frage" in r.stderr


def test_a_compound_question_shows_a_fundstelle_for_each_part_before_the_model(indexed):
    # two questions in one, answered by two documents: the question and each part are searched
    # (every hit knows its rank in all three searches) and the first words answer both halves;
    # the model is then asked and says "Nein"
    q = "Wie viel kostet der Pilot des Bürgerservice-Chatbots, und wie viele Kilometer neue Radwege plant die Stadt?"
    says_no = GenericFakeChatModel(messages=iter([AIMessage(
        "Nein", response_metadata={"logprobs": [{"token": "Nein", "logprob": 0.0}]})]))
    events = {e.kind: e for e in chat.ask_stream(q, indexed, chat_model=says_no)}
    assert all(len(h.query_ranks) == 3 for h in events["sources"].sources)
    radwege = next(h for h in events["sources"].sources if h.chunk.source.endswith("radwege.md"))
    assert radwege.query_ranks[2] == 1                     # the second part's own first page
    assert "48.500 Euro" in events["quote"].text and "12 Kilometer" in events["quote"].text, events["quote"].text
