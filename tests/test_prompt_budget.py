"""One budget for source text in prompts: ``retrieval.context_chars`` governs chat and drafting alike."""
from __future__ import annotations

import copy
import re

import pytest

from assistant.answer import chat
from assistant.drafting import runner
from assistant.ingest.pipeline import ingest
from tests.draftkit import MPSC, TODAY, ScriptedChat, make_corpus


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from assistant import config

    tmp = tmp_path_factory.mktemp("budget")
    settings = config.load({"data_dir": str(tmp / "data")}, environ={}, config_file=tmp / "none.toml")
    ingest([make_corpus(tmp / "corpus")], settings)
    return settings


def _source_chars(prompt: str) -> int:
    return sum(len(m.strip()) for m in re.findall(r"<quelle [^>]*>(.*?)</quelle>", prompt, re.S))


def _with_budget(settings, chars: int):
    s = copy.deepcopy(settings)
    s.retrieval.context_chars = chars
    s.retrieval.context_chars_per_passage = min(chars, s.retrieval.context_chars_per_passage)
    return s


def test_lower_context_chars_shortens_the_chat_prompt(indexed):
    question = "Was soll die Verwaltung zum KI-Assistenten im Bürgerbüro prüfen, und was ist zu beachten?"
    sizes = {}
    for budget in (1600, 250):
        model = ScriptedChat(responses=["Die Verwaltung prüft den KI-Assistenten [1]."], prompts=[])
        answer = chat.ask(question, _with_budget(indexed, budget), chat_model=model)
        assert not answer.refused and model.calls == 1
        sizes[budget] = _source_chars(model.prompts[0])
    assert 0 < sizes[250] <= 250 < sizes[1600] <= 1600


def test_lower_context_chars_shortens_the_draft_prompts(indexed):
    idea = runner.Idea(title="KI-Assistent im Bürgerbüro", description="Ein lokaler KI-Assistent beantwortet "
                       "Fragen zu Bürgerdiensten.", city="Musterstadt", department="Bürgerbüro", budget=250000,
                       duration_months=18)
    sizes = {}
    for budget in (1600, 250):
        model = ScriptedChat(responses=["Der Rat hat einen KI-Assistenten beantragt [1]."], prompts=[])
        runner.draft(idea, "beschlussvorlage", _with_budget(indexed, budget), programme_id=MPSC, today=TODAY,
                     chat_model=model)
        per_section = [_source_chars(p) for p in model.prompts]
        assert max(per_section) <= budget
        sizes[budget] = sum(per_section)
    assert 0 < sizes[250] < sizes[1600]
