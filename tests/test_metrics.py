"""Evaluation metrics: pure functions on hand-made cases, each with cases where
the metric must fail or score 0. Also the pure glue around them: item scoring, summaries,
run comparison, judge-reply parsing and the --fail-under gates."""
from __future__ import annotations

import pytest

from assistant.evaluation import metrics as M
from assistant.evaluation.compare import compare_runs, to_markdown
from assistant.evaluation.judge import parse_grade, to_score
from assistant.evaluation.results import ItemResult, Run, expected_metrics, summarise
from assistant.evaluation.runner import score_item
from assistant.evaluation.suites import EvalItem, GoldSource
from assistant.types import Answer, Chunk, Citation, Hit

PDF = "/srv/corpus/council/0036-2026_vorlage.pdf"


def ref(source: str, page: int | None = None, doc_id: str = "") -> M.SourceRef:
    return M.SourceRef(source, page, doc_id)


# ------------------------------------------------------------------ retrieval
def test_source_matches_by_file_name_and_exact_page():
    gold = GoldSource("0036-2026_Vorlage.pdf", (1, 3))
    assert M.source_matches(ref(PDF, 3), gold)                       # path vs file name, case-insensitive
    assert not M.source_matches(ref(PDF, 2), gold)                   # right file, wrong page
    assert not M.source_matches(ref(PDF, None), gold)                # pages asked for, none known
    assert not M.source_matches(ref("/srv/other.pdf", 3), gold)
    assert M.source_matches(ref(PDF, 7), GoldSource("0036-2026_vorlage.pdf"))   # no pages: any page
    assert M.source_matches(ref(r"C:\Daten\bericht.md"), GoldSource("bericht.md"))


def test_source_matches_doc_id_prefix():
    doc = "ab12cd34ef56" + "0" * 52
    assert M.source_matches(ref("/x/renamed.pdf", 1, doc), GoldSource("ab12cd34ef56"))
    assert not M.source_matches(ref("/x/renamed.pdf", 1, doc), GoldSource("ffffffffffff"))


def test_rank_hit_and_mrr():
    gold = [GoldSource("b.md"), GoldSource("c.pdf", (2,))]
    retrieved = [ref("/a.md"), ref("/c.pdf", 1), ref("/c.pdf", 2), ref("/b.md")]
    rank = M.gold_rank(retrieved, gold)
    assert rank == 3
    assert [M.hit_at_k(rank, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert M.reciprocal_rank(rank) == pytest.approx(1 / 3)
    missing = M.gold_rank([ref("/a.md"), ref("/c.pdf", 1)], gold)
    assert missing is None and M.hit_at_k(missing, 10) == 0.0 and M.reciprocal_rank(missing) == 0.0
    assert M.gold_rank([], gold) is None


def test_gold_recall_counts_documents_not_passages():
    gold = [GoldSource("a.pdf", (1,)), GoldSource("b.md")]
    assert M.gold_recall_at_k([ref("/a.pdf", 1), ref("/a.pdf", 1), ref("/x.md")], gold, 5) == 0.5
    assert M.gold_recall_at_k([ref("/x.md"), ref("/a.pdf", 1), ref("/b.md")], gold, 2) == 0.5
    assert M.gold_recall_at_k([ref("/a.pdf", 2)], gold, 5) == 0.0
    assert M.gold_recall_at_k([ref("/a.pdf", 1)], [], 5) is None


# ----------------------------------------------------------- normalisation
def test_norm_tokens_german_numbers_dates_units():
    assert M.norm_tokens("186.500 Euro") == M.norm_tokens("186500 €")
    assert M.norm_tokens("1,5 Mio. €") == M.norm_tokens("1.500.000 Euro")
    assert M.norm_tokens("am 01.04.2026") == M.norm_tokens("am 1. April 2026")
    assert M.norm_tokens("87 %") == M.norm_tokens("87 Prozent")
    assert M.norm_tokens("3,0 Stellen") == M.norm_tokens("3 Stellen")
    assert M.norm_tokens("Förderungen für Kommunen") == M.norm_tokens("Foerderung fuer Kommune")
    assert M.norm_tokens("Antwort [1] mit Quelle [2, 3]") == M.norm_tokens("Antwort mit Quelle")
    assert M.norm_tokens("Produkt 1.1.12") == ["produkt", "1.1.12"]     # not a thousands number
    assert M.norm_tokens("3,8") != M.norm_tokens("38")
    assert M.norm_tokens("01.04.2026") != M.norm_tokens("01.04.2025")


# ---------------------------------------------------------- answer correctness
def test_token_f1():
    assert M.token_f1("Es sind 186.500 Euro.", "186.500 Euro") == 1.0      # stopwords do not count
    # stadt, zahlt, 74000, euro, server: precision 2/5, recall 1
    assert M.token_f1("Die Stadt zahlt 74.000 Euro für Server.", "74.000 Euro") == pytest.approx(2 * 0.4 / 1.4)
    assert M.token_f1("Das weiß ich nicht.", "186.500 Euro") == 0.0        # must fail: nothing in common
    assert M.token_f1("", "186.500 Euro") == 0.0
    assert M.token_f1("irgendwas", "") is None
    assert M.token_f1("186.000 Euro", "186.500 Euro") == pytest.approx(0.5)   # a wrong number is not a match


def test_fact_contained_and_recall():
    answer = "Für MUSA wurden 186.500 € bereitgestellt [1]; der Pilot läuft ab 1. April 2026 mit 150 Beschäftigten [2]."
    assert M.fact_contained("186.500 Euro", answer)
    assert M.fact_contained("01.04.2026", answer)
    assert M.fact_contained("150 Beschäftigte", answer)          # inflection
    assert not M.fact_contained("186.000 Euro", answer)          # must fail: wrong amount
    assert not M.fact_contained("31.12.2026", answer)            # must fail: date absent
    assert not M.fact_contained("150 Server", answer)            # number alone is not enough
    assert not M.fact_contained("", answer)
    assert M.fact_contained("keine Staffel offen", "weil derzeit keine Staffel offener Art besteht")
    assert not M.fact_contained("87 %", "Es waren 78 Prozent.")
    facts = ["186.500 Euro", "31.12.2026", "150 Beschäftigte"]
    assert M.facts_recall(facts, answer) == pytest.approx(2 / 3)
    assert M.missing_facts(facts, answer) == ["31.12.2026"]
    assert M.facts_recall([], answer) is None
    assert M.facts_recall(facts, "In den vorliegenden Unterlagen finde ich dazu nichts.") == 0.0


# ---------------------------------------------------------------- citations
def test_citation_validity():
    assert M.citation_validity([1, 2], 3) == 1.0
    assert M.citation_validity([1, 4], 3) == 0.5
    assert M.citation_validity([1], 3, removed=1) == 0.5         # the chat stripped one that pointed nowhere
    assert M.citation_validity([7, 9], 3) == 0.0                 # must fail
    assert M.citation_validity([], 3, removed=2) == 0.0
    assert M.citation_validity([], 3) is None


def test_citation_accuracy_page_exact():
    gold = [GoldSource("vorlage.pdf", (3,)), GoldSource("bericht.md")]
    assert M.citation_accuracy([ref("/c/vorlage.pdf", 3), ref("/r/bericht.md")], gold) == 1.0
    assert M.citation_accuracy([ref("/c/vorlage.pdf", 2)], gold) == 0.0     # must fail: wrong page
    assert M.citation_accuracy([ref("/c/vorlage.pdf", 3), ref("/x/andere.md")], gold) == 0.5
    assert M.citation_accuracy([], gold) is None
    assert M.citation_accuracy([ref("/c/vorlage.pdf", 3)], []) is None


# ------------------------------------------------------------- faithfulness
PASSAGES = ["Für das Pilotprojekt werden 186.500 Euro aus dem Planansatz Pilotprojekte bereitgestellt.",
            "Der Pilot beginnt am 01.04.2026 mit 150 Beschäftigten aus vier Organisationseinheiten."]


def test_faithfulness_supported_answer():
    answer = ("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [1]. "
              "Der Pilot beginnt am 1. April 2026 mit 150 Beschäftigten [2].")
    f = M.faithfulness(answer, PASSAGES)
    assert f.score == 1.0 and f.numbers == 1.0 and f.checked == 2 and f.unsupported == []


def test_faithfulness_fails_on_wrong_numbers_missing_and_wrong_citations():
    wrong_number = M.faithfulness("Für das Pilotprojekt werden 250.000 Euro bereitgestellt [1].", PASSAGES)
    assert wrong_number.score == 0.0 and wrong_number.numbers == 0.0
    uncited = M.faithfulness("Für das Pilotprojekt werden 186.500 Euro bereitgestellt.", PASSAGES)
    assert uncited.score == 0.0                                   # no citation, no support
    wrong_source = M.faithfulness("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", PASSAGES)
    assert wrong_source.score == 0.0
    nowhere = M.faithfulness("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [9].", PASSAGES)
    assert nowhere.score == 0.0
    invented = M.faithfulness("Die Oberbürgermeisterin lobt das Projekt ausdrücklich [1].", PASSAGES)
    assert invented.score == 0.0 and invented.numbers is None
    half = M.faithfulness("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [1]. "
                          "Die Server stehen in Hamburg bei einem Cloud-Anbieter [1].", PASSAGES)
    assert half.score == 0.5 and len(half.unsupported) == 1


def test_faithfulness_skips_short_sentences_and_enumerations():
    f = M.faithfulness("Kurz gesagt:\n1. Für das Pilotprojekt werden 186.500 Euro bereitgestellt [1].", PASSAGES)
    assert f.checked == 1 and f.score == 1.0                      # "1." is a list marker, not a number
    assert M.faithfulness("", PASSAGES).score is None


def test_numbers_consistent():
    assert M.numbers_consistent("am 1. April 2026", "ab dem 01.04.2026")
    assert M.numbers_consistent("1,5 Mio. Euro", "1.500.000 Euro")
    assert not M.numbers_consistent("am 2. April 2026", "ab dem 01.04.2026")
    assert M.numbers_consistent("ohne Zahlen", "1 2 3")


# ------------------------------------------------------------------ refusals
def test_refusal_scores():
    perfect = M.refusal_scores([(True, False), (True, False), (False, True)])
    assert perfect == {"refusal_precision": 1.0, "refusal_recall": 1.0, "refusal_accuracy": 1.0,
                       "false_refusal_rate": 0.0}
    refuses_all = M.refusal_scores([(True, True), (True, True), (False, True)])
    assert refuses_all["refusal_precision"] == pytest.approx(1 / 3)
    assert refuses_all["refusal_recall"] == 1.0
    assert refuses_all["refusal_accuracy"] == pytest.approx(1 / 3)
    assert refuses_all["false_refusal_rate"] == 1.0
    answers_all = M.refusal_scores([(True, False), (False, False)])
    assert answers_all["refusal_recall"] == 0.0 and answers_all["refusal_precision"] is None
    assert answers_all["refusal_accuracy"] == 0.5
    assert M.refusal_scores([])["refusal_accuracy"] is None


# ------------------------------------------------------------------- latency
def test_percentiles_and_latency_summary():
    assert M.percentile([5, 1, 3, 2, 4], 50) == 3
    assert M.percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert M.percentile([7.0], 95) == 7.0
    assert M.percentile([], 50) is None
    assert M.percentile([None, 2.0], 50) == 2.0
    s = M.latency_summary([100.0, 200.0, 300.0, None])
    assert s == {"p50": 200.0, "p95": pytest.approx(290.0), "mean": 200.0, "max": 300.0, "n": 3}
    assert M.mean([None, None]) is None and M.mean([1.0, None, 3.0]) == 2.0


# --------------------------------------------------- item scoring and summary
def hit(source: str, page: int | None, text: str, rank: int) -> Hit:
    c = Chunk(chunk_id=f"{source}:{page}:{rank}", doc_id=f"doc{rank}", text=text, source=source, page=page)
    return Hit(chunk=c, score=1.0 / rank, rank=rank, similarity=0.9)


HITS = [hit("/c/andere.pdf", 1, "Der Ausschuss tagt monatlich im Rathaus.", 1),
        hit("/c/vorlage.pdf", 3, PASSAGES[0], 2), hit("/c/vorlage.pdf", 1, PASSAGES[1], 3)]
ITEM = EvalItem(id="budget", question="Wie viel Geld?", reference="186.500 Euro", facts=["186.500 Euro"],
                gold_sources=[GoldSource("vorlage.pdf", (3,))], tags=["council", "numbers"])
UNANSWERABLE = EvalItem(id="grundsteuer", question="Hebesatz?", answerable=False, tags=["unanswerable"])


def answer(text: str, cited: list[int], refused: bool = False, total: float = 1000.0) -> Answer:
    cites = [Citation(n=n, doc_id=HITS[n - 1].chunk.doc_id, source=HITS[n - 1].chunk.source, title="",
                      page=HITS[n - 1].chunk.page, quote="") for n in cited]
    return Answer(text, cites, refused, "test", {"retrieval_ms": 5.0, "first_token_ms": total / 2, "total_ms": total},
                  HITS)


def test_score_item_good_answer():
    res = score_item(ITEM, HITS, answer("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", [2]))
    m = res.metrics
    assert res.gold_rank == 2 and m["hit@1"] == 0.0 and m["hit@3"] == 1.0 and m["rr"] == 0.5
    assert m["facts_recall"] == 1.0 and m["citation_accuracy"] == 1.0 and m["citation_validity"] == 1.0
    assert m["faithfulness"] == 1.0 and m["refusal_correct"] == 1.0 and m["cited"] == 1.0
    assert res.citations[0]["gold"] and res.retrieved[1]["gold"] and not res.retrieved[0]["gold"]


def test_score_item_bad_answers():
    wrong = score_item(ITEM, HITS, answer("Der Ausschuss tagt monatlich im Rathaus [1].", [1]))
    assert wrong.metrics["facts_recall"] == 0.0 and wrong.metrics["citation_accuracy"] == 0.0
    assert wrong.missing_facts == ["186.500 Euro"]
    refused = score_item(ITEM, HITS, answer("In den vorliegenden Unterlagen finde ich dazu nichts.", [], True))
    assert refused.metrics["refusal_correct"] == 0.0 and refused.metrics["facts_recall"] == 0.0
    assert "citation_accuracy" not in refused.metrics          # nothing answered, nothing to check
    hallucinated = score_item(UNANSWERABLE, HITS, answer("Der Hebesatz beträgt 520 Prozent [1].", [1]))
    assert hallucinated.metrics["refusal_correct"] == 0.0 and hallucinated.metrics["faithfulness"] == 0.0
    assert "hit@5" not in hallucinated.metrics                   # no gold: not part of retrieval metrics


def test_summarise_and_per_tag():
    items = [score_item(ITEM, HITS, answer("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", [2],
                                           total=1000.0)),
             score_item(UNANSWERABLE, HITS, answer("In den vorliegenden Unterlagen finde ich dazu nichts.", [], True,
                                                   total=3000.0))]
    s = summarise(items)
    a = s.aggregates
    assert a["hit@3"] == 1.0 and a["mrr"] == 0.5 and a["facts_recall"] == 1.0
    assert a["refusal_accuracy"] == 1.0 and a["false_refusal_rate"] == 0.0
    assert a["total_p50_ms"] == 2000.0 and a["retrieval_p50_ms"] == 5.0
    assert "judge_correctness" not in a                          # judged metrics only with --judge
    assert set(expected_metrics("answer")) <= set(a)             # stable keys, null when unmeasured
    assert s.per_tag["numbers"]["n"] == 1 and s.per_tag["unanswerable"]["refusal_accuracy"] == 1.0
    assert s.counts == {"items": 2, "answerable": 1, "unanswerable": 1, "with_gold": 1, "errors": 0, "refused": 1}
    retrieval = summarise([score_item(ITEM, HITS, retrieval_ms=4.0)], mode="retrieval")
    assert set(retrieval.aggregates) == set(expected_metrics("retrieval"))


# --------------------------------------------------------------- comparison
def run_of(run_id: str, items: list[ItemResult], limit: int | None = None) -> Run:
    return Run(run_id=run_id, created=run_id, suite={"name": "s", "sha256": "x"}, mode="answer", config={},
               fingerprint={"model": run_id}, items=items, summary=summarise(items), limit=limit)


def test_compare_runs_regressions_and_improvements():
    good = score_item(ITEM, HITS, answer("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", [2]))
    bad = score_item(ITEM, HITS, answer("Der Ausschuss tagt monatlich im Rathaus [1].", [1]))
    refused_ok = score_item(UNANSWERABLE, HITS, answer("In den vorliegenden Unterlagen finde ich dazu nichts.", [], True))
    answered = score_item(UNANSWERABLE, HITS, answer("Der Hebesatz beträgt 520 Prozent [1].", [1]))
    c = compare_runs(run_of("a", [good, answered]), run_of("b", [bad, refused_ok]))
    assert [x.id for x in c.regressions] == ["budget"]
    assert [x.id for x in c.improvements] == ["grundsteuer"]
    assert "Fakten fehlen jetzt: 186.500 Euro" in c.regressions[0].notes
    assert "beantwortet → abgelehnt" in c.improvements[0].notes
    assert c.metrics["facts_recall"]["delta"] == -1.0
    text = to_markdown(c)
    assert "1 Verschlechterungen, 1 Verbesserungen" in text and "`budget`" in text
    same = compare_runs(run_of("a", [good]), run_of("b", [good]))
    assert same.items == [] and same.unchanged == 1


def test_compare_sample_runs_do_not_report_removed_items():
    good = score_item(ITEM, HITS, answer("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", [2]))
    other = score_item(UNANSWERABLE, HITS, answer("In den vorliegenden Unterlagen finde ich dazu nichts.", [], True))
    c = compare_runs(run_of("a", [good, other]), run_of("b", [good], limit=1))
    assert c.items == [] and any("Stichprobe" in w for w in c.warnings)
    full = compare_runs(run_of("a", [good, other]), run_of("b", [good]))
    assert [(x.id, x.kind) for x in full.items] == [("grundsteuer", "removed")]


# ---------------------------------------------------- judge and CLI gates
def test_parse_judge_grade():
    assert parse_grade("Note: 4") == 4 and parse_grade("note=5\nweil …") == 5 and parse_grade(" 2 ") == 2
    assert parse_grade("Die Antwort ist gut.") is None and parse_grade("Note: 9") is None and parse_grade("") is None
    assert to_score(1) == 0.0 and to_score(5) == 1.0 and to_score(None) is None


def test_fail_under_gates():
    from assistant.cli.eval_cmd import check_gates, parse_gates
    from assistant.errors import UsageError
    from assistant.evaluation.results import METRICS

    gates = parse_gates(["hit@5=0.9", "mrr=0,8"], METRICS)
    assert gates == {"hit@5": 0.9, "mrr": 0.8}
    assert check_gates(gates, {"hit@5": 0.95, "mrr": 0.85}) == []
    failed = check_gates(gates, {"hit@5": 0.85, "mrr": None})
    assert [f["metric"] for f in failed] == ["hit@5", "mrr"]      # unmeasured fails too
    for bad in (["hit@7=0.9"], ["total_p95_ms=5000"], ["hit@5"], ["hit@5=viel"]):
        with pytest.raises(UsageError):
            parse_gates(bad, METRICS)


def test_judge_answer_with_a_scripted_judge():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant.evaluation.judge import judge_answer

    good = answer("Für das Pilotprojekt werden 186.500 Euro bereitgestellt [2].", [2])
    scores = judge_answer(ITEM, good, FakeListChatModel(responses=["Note: 5", "Note: 2"]))
    assert scores["judge_correctness"] == 1.0 and scores["judge_faithfulness"] == 0.25
    garbled = judge_answer(ITEM, good, FakeListChatModel(responses=["Sehr schön!", "Note: 3"]))
    assert garbled["judge_correctness"] is None and garbled["correctness_reply"] == "Sehr schön!"
    refused = judge_answer(ITEM, answer("Dazu finde ich nichts.", [], True), FakeListChatModel(responses=[]))
    assert refused["judge_correctness"] == 0.0 and "judge_faithfulness" not in refused   # no model call
