"""Evaluation suites: validation errors that name item and line, CSV import, and
the starter suite itself — its size, and that every key fact really is in its gold document
(on the stated page for PDFs), so a suite item can never reward a wrong answer."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from assistant.errors import UsageError
from assistant.evaluation.metrics import fact_contained
from assistant.evaluation.suites import GoldSource, SuiteError, load_suite

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "evals" / "suites" / "starter.yaml"
CORPUS = ROOT / "corpus"


# ------------------------------------------------------------------ the starter suite
@pytest.fixture(scope="module")
def starter():
    return load_suite(STARTER)


def test_starter_size_and_mix(starter):
    items = starter.items
    assert len(items) >= 40
    assert sum(not i.answerable for i in items) >= 8
    multi = [i for i in items if "multi-doc" in i.tags]
    assert len(multi) >= 5
    assert all(len({g.file for g in i.gold_sources}) >= 2 for i in multi)
    assert all("unanswerable" in i.tags for i in items if not i.answerable)
    assert all(i.gold_sources and i.facts for i in items if i.answerable)
    for tag in ("council", "funding", "report", "numbers"):
        assert any(tag in i.tags for i in items), tag
    assert starter.corpus == CORPUS.resolve()


def test_starter_ci_sample_is_mixed(starter):
    """CI answers the first four items (--limit 4): they must cover answerable and unanswerable."""
    first = starter.items[:4]
    assert any(not i.answerable for i in first) and sum(i.answerable for i in first) >= 3
    assert {"council", "funding", "report"} <= {t for i in first for t in i.tags}


def _ingested_files() -> dict[str, Path]:
    from assistant.ingest.pipeline import discover

    return {f.name.lower(): f for f, _ in discover([CORPUS])}


@lru_cache(maxsize=None)
def _pages(path: Path) -> tuple[str, ...]:
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        return tuple(p.extract_text() or "" for p in PdfReader(path).pages)
    return (path.read_text(encoding="utf-8"),)


def _gold_text(gold: GoldSource, files: dict[str, Path]) -> str:
    pages = _pages(files[gold.file.lower()])
    if gold.pages:
        assert max(gold.pages) <= len(pages), f"{gold.file} hat nur {len(pages)} Seiten"
        return "\n".join(pages[n - 1] for n in gold.pages)
    return "\n".join(pages)


def test_starter_gold_sources_are_ingested_files(starter):
    """Gold names the file the index holds: the PDF, never its Markdown source in council/src/."""
    files = _ingested_files()
    for item in starter.items:
        for g in item.gold_sources:
            assert g.file.lower() in files, f"{item.id}: {g.file} wird nicht indexiert"
            if g.pages:
                assert g.file.lower().endswith(".pdf"), f"{item.id}: Seiten nur bei PDFs"


def test_starter_facts_are_in_the_gold_documents(starter):
    files = _ingested_files()
    problems = []
    for item in starter.items:
        texts = {g.label(): _gold_text(g, files) for g in item.gold_sources}
        for fact in item.facts:
            if not any(fact_contained(fact, t) for t in texts.values()):
                problems.append(f"{item.id}: {fact!r} steht in keiner Goldquelle ({', '.join(texts)})")
        if "multi-doc" in item.tags:
            for label, t in texts.items():
                if all(fact_contained(f, t) for f in item.facts):
                    problems.append(f"{item.id}: alle Fakten stehen schon in {label} – keine Zwei-Dokument-Frage")
    assert not problems, "\n".join(problems)


def test_starter_unanswerable_items_name_nothing_in_the_corpus(starter):
    """The distinctive words of the unanswerable questions (places, programmes) occur nowhere."""
    files = _ingested_files()
    corpus_text = "\n".join("\n".join(_pages(p)) for p in files.values()).lower()
    for word in ("thüringen", "köln", "wien", "grundsteuer", "ladepunkt", "e-akte"):
        assert not re.search(rf"(?<![\w-]){re.escape(word)}", corpus_text), word


# -------------------------------------------------------------------- validation
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = """\
name: kaputt
items:
  - id: ok-1
    question: Wie viel?
    reference: 5 Euro
  - id: ok-1
    question: Noch einmal?
    facts: ["x"]
  - id: ohne-frage
    reference: etwas
  - id: tippfehler
    question: Welche Quelle?
    reference: Die Vorlage.
    gold_source: vorlage.pdf
  - id: seiten
    question: Seite?
    reference: Seite null
    gold_sources: [{file: vorlage.pdf, pages: [0]}]
  - id: komma
    question: Zwei Seiten?
    reference: Zwei
    gold_sources: [vorlage.pdf#1,2]
  - id: vielleicht
    question: Beantwortbar?
    answerable: vielleicht
    reference: ja
  - id: unbeantwortbar
    question: Grundsteuer?
    answerable: false
    gold_sources: [vorlage.pdf]
  - id: leer
    question: Ohne Referenz?
  - id: kommune
    question: Wo?
    reference: hier
    municipality: [München, Augsburg]
"""


def test_validation_collects_every_problem_with_line_and_id(tmp_path):
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, "kaputt.yaml", BROKEN))
    problems = err.value.problems
    text = "\n".join(problems)
    assert "Zeile 6, Eintrag 'ok-1': id kommt doppelt vor (zuerst Zeile 3)" in text
    assert "Zeile 9, Eintrag 'ohne-frage': Feld 'question' fehlt" in text
    assert "Zeile 14, Eintrag 'tippfehler': unbekanntes Feld 'gold_source'" in text
    assert "Eintrag 'seiten': Seiten von vorlage.pdf beginnen bei 1" in text
    assert "Eintrag 'komma'" in text and "Anführungszeichen" in text      # YAML split [a#1,2] into a#1 and 2
    assert "Eintrag 'vielleicht': 'answerable' muss true oder false sein" in text
    assert "Eintrag 'unbeantwortbar': unbeantwortbare Frage (answerable: false) darf keine 'gold_sources'" in text
    assert "Zeile 31, Eintrag 'leer': beantwortbare Frage braucht 'reference' oder 'facts'" in text
    assert "Zeile 36, Eintrag 'kommune': 'municipality' muss ein Text sein" in text
    assert len(problems) == 9
    assert problems[0].startswith("Zeile 6,")                          # sorted by line
    assert err.value.exit_code == 2 and "kaputt.yaml" in str(err.value)


def test_validation_of_the_file_itself(tmp_path):
    with pytest.raises(SuiteError, match="Zeile 4: kein gültiges YAML"):
        load_suite(write(tmp_path, "syntax.yaml", "items:\n  - id: a\n    question: [offen\n"))
    with pytest.raises(SuiteError, match="'items' fehlt"):
        load_suite(write(tmp_path, "leer.yaml", "name: x\n"))
    with pytest.raises(SuiteError, match="unbekanntes Feld 'itmes'"):
        load_suite(write(tmp_path, "typo.yaml", "itmes: []\nitems:\n  - {id: a, question: b, reference: c}\n"))
    with pytest.raises(SuiteError, match="keine Einträge"):
        load_suite(write(tmp_path, "none.yaml", "items: []\n"))
    with pytest.raises(UsageError, match="Unbekanntes Suite-Format"):
        load_suite(write(tmp_path, "suite.json", "{}"))
    with pytest.raises(UsageError, match="nicht lesbar"):
        load_suite(tmp_path / "fehlt.yaml")


def test_yaml_forms_are_equivalent(tmp_path):
    suite = load_suite(write(tmp_path, "forms.yaml", """\
- id: a
  question: Frage?
  facts: "ein Fakt"
  gold_sources:
    - vorlage.pdf#3,1
    - {file: bericht.md}
    - {file: andere.pdf, pages: 2}
  tags: [council]
  municipality: München
"""))   # a bare list is a suite too
    item = suite.items[0]
    assert suite.name == "forms" and item.answerable and item.facts == ["ein Fakt"] and item.municipality == "München"
    assert item.gold_sources == [GoldSource("vorlage.pdf", (1, 3)), GoldSource("bericht.md"), GoldSource("andere.pdf", (2,))]
    assert item.line == 1


# --------------------------------------------------------------------------- CSV
CSV = ("\ufeffid;question;reference;facts;gold_sources;answerable;tags\n"
       "budget;Wie viel Geld bekommt MUSA?;186.500 Euro;186.500 Euro|Planansatz;"
       "0036-2026_vorlage.pdf#1,3|0094.pdf#2;ja;council|numbers\n"
       ";;;;;;\n"
       "grundsteuer;Wie hoch ist die Grundsteuer?;;;;nein;unanswerable\n")


def test_csv_import(tmp_path):
    suite = load_suite(write(tmp_path, "tabelle.csv", CSV))
    a, b = suite.items
    assert suite.name == "tabelle" and len(suite.items) == 2
    assert a.id == "budget" and a.facts == ["186.500 Euro", "Planansatz"] and a.tags == ["council", "numbers"]
    assert a.gold_sources == [GoldSource("0036-2026_vorlage.pdf", (1, 3)), GoldSource("0094.pdf", (2,))]
    assert a.answerable and not b.answerable and b.gold_sources == [] and a.line == 2 and b.line == 4


def test_csv_errors_name_the_row(tmp_path):
    bad = "id,question,reference,answerable,kommentar\na,Frage?,x,vielleicht,\n,Frage ohne id,y,ja,\n"
    with pytest.raises(SuiteError) as err:
        load_suite(write(tmp_path, "bad.csv", bad))
    text = "\n".join(err.value.problems)
    assert "Zeile 1: unbekannte Spalte(n) kommentar" in text
    assert "Zeile 2, Eintrag 'a': 'answerable' muss true oder false sein" in text
    assert "Zeile 3, Eintrag ohne id: Feld 'id' fehlt" in text
    with pytest.raises(SuiteError, match="Spalte 'question' fehlt"):
        load_suite(write(tmp_path, "noq.csv", "id,frage\na,b\n"))
