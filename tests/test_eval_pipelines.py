"""Pipelines measured together (default, naive, oracle), fixed samples, answer-sentence recall.

The answer model here is scripted (it records the prompts it gets), so the tests check what
each pipeline shows the model and how answers are scored; the real models run in
tests/test_eval_run.py and in the stored reports under evals/reports/.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.evaluation import metrics as M
from assistant.evaluation import pipelines
from assistant.evaluation.report import write_pipelines_report
from assistant.evaluation.runner import run_eval
from assistant.evaluation.suites import SuiteError, load_suite, sample
from assistant.ingest.pipeline import ingest
from tests.draftkit import ScriptedChat

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "evals" / "suites" / "integreat-de-dev.yaml"

PAGES = {
    "kita.txt": ["Kita-Anmeldung", "Die Anmeldung für einen Kita-Platz erfolgt online über das Kita-Portal.",
                 "Die Frist endet am 31. Januar.", "Bei Fragen hilft das Jugendamt."],
    "muell.txt": ["Müllabfuhr", "Die Restmülltonne wird alle zwei Wochen geleert.",
                  "Sperrmüll holt die Stadt zweimal im Jahr kostenlos ab."],
    "bus.txt": ["Busfahren", "Das Deutschlandticket kostet 58 Euro im Monat.", "Kinder unter sechs Jahren fahren gratis."],
    "bad.txt": ["Schwimmbad", "Das Hallenbad öffnet um 7 Uhr.", "Montags ist das Bad geschlossen."],
}
SUITE = """
name: mini
corpus: corpus
items:
  - id: kita
    question: Wie meldet man ein Kind für einen Kita-Platz an?
    answer_sentences: ["Die Anmeldung für einen Kita-Platz erfolgt online über das Kita-Portal."]
    gold_sources: [kita.txt]
    page: kita.txt
  - id: muell
    question: Wie oft wird die Restmülltonne geleert?
    answer_sentences: ["Die Restmülltonne wird alle zwei Wochen geleert."]
    gold_sources: [muell.txt]
    page: muell.txt
  - id: bus-kosten-schule
    question: Was kostet das Schülerticket für den Bus?
    answerable: false
    page: bus.txt
"""


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    from assistant import config

    tmp = tmp_path_factory.mktemp("pipelines")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for name, lines in PAGES.items():
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    suite = tmp / "mini.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    settings = config.load({"data_dir": str(tmp / "data")}, environ={}, config_file=tmp / "none.toml")
    ingest([corpus], settings)
    return settings, suite


def test_suite_fields_answer_sentences_and_page():
    suite = load_suite(DEV)
    assert len(suite.items) == 193 and sum(not i.answerable for i in suite.items) == 38
    answerable = [i for i in suite.items if i.answerable]
    assert all(i.answer_sentences and i.page for i in answerable)
    unanswerable = [i for i in suite.items if not i.answerable]
    assert all(i.page and not i.gold_sources and i.oracle_sources == [i.page] for i in unanswerable)
    text = DEV.read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "Digitalfabrik" in text   # the licence travels with the suite


def test_unanswerable_item_with_answer_sentences_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("items:\n  - id: x\n    question: Frage?\n    answerable: false\n"
                   "    answer_sentences: [Ein Satz.]\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="answer_sentences"):
        load_suite(bad)


def test_sample_is_fixed_by_seed_and_keeps_the_share_of_unanswerable():
    items = load_suite(DEV).items
    a, b, c = sample(items, 60, 7), sample(items, 60, 7), sample(items, 60, 8)
    assert [i.id for i in a] == [i.id for i in b] and [i.id for i in a] != [i.id for i in c]
    assert len(a) == 60 and sum(not i.answerable for i in a) == round(60 * 38 / 193)
    order = {i.id: n for n, i in enumerate(items)}
    assert [order[i.id] for i in a] == sorted(order[i.id] for i in a)     # suite order kept


def test_answer_sentence_recall_counts_content_words():
    gold = ["Die Restmülltonne wird alle zwei Wochen geleert."]
    assert M.answer_sentence_recall(gold, "Alle zwei Wochen wird die Restmülltonne geleert [1].") == 1.0
    half = M.answer_sentence_recall(gold, "Sie wird geleert, alle paar Wochen.")
    assert 0.3 < half < 0.8
    assert M.answer_sentence_recall(gold, "Dazu steht nichts da.") == 0.0
    assert M.answer_sentence_recall([], "egal") is None


def test_three_pipelines_see_what_they_should(mini):
    settings, suite = mini
    seen = {}
    for name in pipelines.PIPELINES:
        model = ScriptedChat(responses=["Die Restmülltonne wird alle zwei Wochen geleert [1]."], prompts=[])
        run = run_eval(suite, settings, pipeline=name, chat_model=model)
        assert run.pipeline == name and run.fingerprint["pipeline"] == name
        seen[name] = (run, model)
    naive_prompt = seen["naive"][1].prompts[1]          # item "muell"
    assert len(re.findall(r"^\[\d\] ", naive_prompt, re.M)) == pipelines.NAIVE_K   # three whole passages
    oracle_prompts = seen["oracle"][1].prompts
    assert "Restmülltonne" in oracle_prompts[1] and "Kita" not in oracle_prompts[1]   # the gold page only
    assert "Deutschlandticket" in oracle_prompts[2]     # unanswerable: the page it was asked about
    muell = {n: next(i for i in r.items if i.id == "muell") for n, (r, _) in seen.items()}
    assert muell["oracle"].metrics["answer_sentence_recall"] == 1.0 and muell["oracle"].metrics["gold_cited"] == 1.0
    kita = next(i for i in seen["oracle"][0].items if i.id == "kita")
    assert kita.metrics["answer_sentence_recall"] < 0.5    # the scripted answer is about rubbish, not Kita


def test_pipelines_report_puts_them_side_by_side(mini, tmp_path):
    settings, suite = mini
    runs = [run_eval(suite, settings, pipeline=n, chat_model=ScriptedChat(
        responses=["In den vorliegenden Unterlagen finde ich dazu nichts."], prompts=[])) for n in ("naive", "oracle")]
    assert all(i.refused for r in runs for i in r.items)
    assert all(i.metrics.get("answer_sentence_recall") in (0.0, None) for r in runs for i in r.items)
    paths = write_pipelines_report(runs, tmp_path / "rep")
    md = Path(paths["markdown"]).read_text(encoding="utf-8")
    assert "| naive | oracle |" in md and "answer_sentence_recall" in md
    assert Path(paths["html"]).is_file() and any(p.endswith("pipelines.png") for p in paths["plots"])


def test_unknown_pipeline_is_a_usage_error():
    from assistant.errors import UsageError

    with pytest.raises(UsageError, match="oracle"):
        pipelines.check(["default,orakel"])
    assert pipelines.check(["naive", "default,naive"]) == ["naive", "default"]


def test_the_integreat_suites_are_rebuilt_byte_for_byte(tmp_path):
    """The committed suites and corpora are what the build script makes of the dataset."""
    import filecmp
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_integreat", ROOT / "scripts" / "build_integreat_suites.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    if not build.DEFAULT_DATA.is_dir():
        pytest.skip(f"dataset not beside the repository ({build.DEFAULT_DATA})")
    build.build(build.DEFAULT_DATA, tmp_path)
    for rel in ("evals/suites/integreat-de-train.yaml", "evals/suites/integreat-de-dev.yaml"):
        assert (tmp_path / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    for split in ("train", "dev"):
        cmp = filecmp.dircmp(tmp_path / "evals" / "corpora" / f"integreat-de-{split}",
                             ROOT / "evals" / "corpora" / f"integreat-de-{split}")
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), (split, cmp.left_only, cmp.right_only,
                                                                         cmp.diff_files)


def test_an_items_municipality_narrows_its_search_unless_the_run_names_one():
    from assistant.evaluation.runner import item_filters
    from assistant.evaluation.suites import EvalItem
    from assistant.index.filters import Filters

    item = EvalItem(id="a", question="Wo?", reference="hier", municipality="München")
    assert item_filters(item, None) == Filters(municipality="München")
    assert item_filters(item, Filters(type="report")) == Filters(type="report", municipality="München")
    run_wide = Filters(municipality="Rems-Murr-Kreis")
    assert item_filters(item, run_wide) is run_wide
    assert item_filters(EvalItem(id="b", question="Wo?", reference="x"), None) is None
