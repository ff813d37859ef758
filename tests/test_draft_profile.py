"""Drafts a city could submit: the project profile, computed form blocks, the funder's checklist,
sentence checks, four-eyes review, the AZA cost plan (recalculated by LibreOffice Calc), English
EU Part B, migration of stored drafts, and the drafting evaluation's metrics. No model here."""
from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from draftkit import MPSC, TODAY, ScriptedChat

from assistant.drafting import checklist, export, forms, profile, review, runner, templates, verify
from assistant.drafting.record import Draft
from assistant.errors import UsageError

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
OPENDESK_IDEA = ("Pilotprojekt: openDesk als souveräne Büro- und Kollaborationsplattform für 200 Beschäftigte des "
                 "Bürgeramts, 18 Monate, Budget 250.000 Euro.")
PROFILE = {"title": "openDesk im Bürgeramt", "department": "Bürgeramt",
           "goal": "Souveräne Büro- und Kollaborationsplattform openDesk erproben",
           "target_group": "Beschäftigte des Bürgeramts", "staff": 200, "start": "2027-03-01", "duration_months": 18,
           "budget": {"total": 250000, "staff": 60000, "services": 90000, "contracts": 100000, "investment": 0},
           "programme": MPSC, "related_papers": ["0188/2026"]}


def write_profile(folder: Path, data: dict = PROFILE) -> Path:
    import yaml

    path = folder / "profil.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the profile


def test_the_idea_text_is_read_deterministically():
    found = profile.read_idea(OPENDESK_IDEA)
    assert found == {"title": "openDesk als souveräne Büro- und Kollaborationsplattform für 200 Beschäftigte des "
                              "Bürgeramts", "budget": 250000.0, "duration_months": 18, "staff": 200,
                     "target_group": "Beschäftigte des Bürgeramts", "department": "Bürgeramt"}
    assert profile.read_idea("Ein Chatbot, Laufzeit 2 Jahre, 1,5 Mio. Euro")["duration_months"] == 24
    assert profile.read_idea("Ein Chatbot, Laufzeit 2 Jahre, 1,5 Mio. Euro")["budget"] == 1_500_000
    assert profile.read_idea("Wir wollen etwas ausprobieren.") == {"title": "Wir wollen etwas ausprobieren"}


def test_the_opendesk_idea_as_a_profile_fills_betreff_decision_and_finance(bare_settings):
    d = runner.start_draft(runner.Idea("", OPENDESK_IDEA), "beschlussvorlage", bare_settings, today=TODAY)
    title = "openDesk als souveräne Büro- und Kollaborationsplattform für 200 Beschäftigte des Bürgeramts"
    assert d.idea.parsed["budget"] == 250000 and d.idea.parsed["staff"] == 200   # shown for confirmation
    assert "Budget: 250.000 €" in profile.confirmation(d.idea)
    assert d.section("betreff").text == title
    decision = d.section("beschlussvorschlag").text
    assert f"„{title}“" in decision and "18 Monaten" in decision and "250.000 €" in decision
    assert decision.count(OPENDESK_IDEA) == 0 and decision.startswith("1. Der Rat beschließt")
    rows = dict(map(tuple, d.section("finanzen").table))
    assert rows["Maßnahme"] == title and rows["Aufwand gesamt (Laufzeit)"] == "250.000 €"
    assert rows["Zielgruppe"] == "200 Beschäftigte des Bürgeramts" and rows["Laufzeit"] == "18 Monate"
    assert rows["Aufwand je Person der Zielgruppe"] == "1.250 €"
    plan = d.section("zeitplan").table
    assert plan[-1][1] == "Monat 16–18" and "Monat 18" in plan[-1][3]       # covers all 18 months
    assert all("Zielwert: noch festzulegen" in k for k in d.section("ziele").items)   # no invented targets


def test_profile_file_keys_and_errors(tmp_path):
    idea = profile.load_profile(write_profile(tmp_path))
    assert (idea.title, idea.staff, idea.start, idea.duration_months, idea.budget) == \
        ("openDesk im Bürgeramt", 200, "2027-03-01", 18, 250000.0)
    assert idea.costs == {"staff": 60000, "services": 90000, "contracts": 100000, "investment": 0}
    assert idea.programme_id == MPSC and idea.related_papers == ["0188/2026"]
    with pytest.raises(UsageError, match="unbekannte Felder budgett"):
        profile.from_dict({"title": "x", "budgett": 1})
    with pytest.raises(UsageError, match="Kostenarten ergeben"):
        profile.from_dict({"title": "x", "budget": {"total": 100, "staff": 10, "services": 10, "contracts": 10,
                                                    "investment": 10}})
    with pytest.raises(UsageError, match="ISO-Datum"):
        profile.from_dict({"title": "x", "start": "März 2027"})
    assert profile.from_dict({"title": "x", "budget": {"staff": 10, "services": 5}}).budget == 15


def test_time_plan_and_work_packages_cover_every_duration():
    for months in (1, 2, 3, 7, 12, 18, 24, 36, 120):
        spans = forms.phase_months(months)
        assert spans[0][0] == 1 and spans[-1][1] == months
        assert all(b >= a for a, b in spans) and all(spans[i][1] + 1 == spans[i + 1][0] for i in range(len(spans) - 1))
    idea = profile.from_dict({**PROFILE, "programme": None})
    rows = forms.timeplan_rows(idea)
    assert rows[1][2] == "01.03.2027 – 30.06.2027" and rows[-1][2].endswith("31.08.2028")
    assert [y for y, _ in forms.by_year(idea)] == [2027, 2028] and sum(v for _, v in forms.by_year(idea)) == 250000
    assert forms.work_packages(idea, "en")[1][1] == "Month 1–18"


# ----------------------------------------------------------------------------- checklist


def test_checklist_items_have_their_place_and_coverage(bare_settings):
    d = runner.start_draft(profile.from_dict(PROFILE), "beschlussvorlage", bare_settings, today=TODAY)
    by = {r.text: r for r in d.requirements}
    assert by["Ratsbeschluss"].status == "met" and by["Ratsbeschluss"].sections == ["beschlussvorschlag"]
    assert by["Ratsbeschluss"].source == "modellprojekte-smart-cities.md"
    assert by["Ratsbeschluss"].where == "Erforderliche Unterlagen"
    assert by["Identifizierung nach dem Geldwäschegesetz"].status == "open"
    assert by["Kosten- und Finanzierungsplan"].status == "met"
    mfund = runner.start_draft(profile.from_dict({**PROFILE, "programme": "mfund"}), "vorhabenbeschreibung",
                               bare_settings, today=TODAY)
    later = {r.text: r.status for r in mfund.requirements}["förmlicher Förderantrag nach Aufforderung (zweite Stufe)"]
    assert later == "n/a"                                               # second stage of a two-stage call
    d = runner.mark_requirement(d.id, 1, "n/a", bare_settings, note="Antrag über Kämmerei")
    assert d.requirements[1].status == "n/a"
    again = runner.edit_section(d.id, "ausgangslage", "Neu.", bare_settings)   # a hand mark survives updates
    assert again.requirements[1].status == "n/a"


def test_a_calls_requirements_are_read_with_their_page():
    from assistant.types import Chunk

    chunks = [Chunk("c1", "d", "Einleitung zum Aufruf. Antragsberechtigt sind Kommunen und Landkreise.", "/x/aufruf.pdf",
                    page=1, section="1 Zuwendungsempfänger"),
              Chunk("c2", "d", "Dem Antrag ist ein Beschluss des Rates beizufügen. Auswahlkriterien sind Innovationsgrad "
                    "und Übertragbarkeit.", "/x/aufruf.pdf", page=3, section="4 Verfahren")]
    items = checklist.call_items(chunks)
    assert [(r.kind, r.page, r.source) for r in items] == [("document", 1, "aufruf.pdf"), ("document", 3, "aufruf.pdf"),
                                                            ("criterion", 3, "aufruf.pdf")]
    assert items[1].text == "Dem Antrag ist ein Beschluss des Rates beizufügen."


# ----------------------------------------------------------------------------- sentence checks


def test_sentences_with_invented_numbers_names_or_unsupported_citations_are_removed():
    passage = "Die Mitteilung 0188/2026 berichtet über die Erprobung von openDesk in zwei Ämtern mit 40 Beschäftigten."
    allowed = "Titel: openDesk im Bürgeramt\nZielgruppe: 200 Beschäftigte des Bürgeramts\nLaufzeit: 18 Monate"
    text = ("Die Erprobung von openDesk in zwei Ämtern mit 40 Beschäftigten verlief positiv [1].\n"
            "- Zielwert: 7000 Nutzende [1]\n"
            "Heidelberg nutzt bereits Microsoft Office Apps [1].\n"
            "Das Robert Koch-Institut (RKI) betreibt das Forum Agora.\n"
            "openDesk wird im Bürgeramt für 200 Beschäftigte erprobt.")
    v = verify.check_text(text, [passage], allowed, profile=allowed, months=18)
    assert v.text == ("Die Erprobung von openDesk in zwei Ämtern mit 40 Beschäftigten verlief positiv [1].\n"
                      "openDesk wird im Bürgeramt für 200 Beschäftigte erprobt.")
    assert "7000" in v.numbers and "Heidelberg" in v.names and "RKI" in v.names
    assert len(v.removed) == 3 and all(" — " in r for r in v.removed)


def test_the_task_or_a_source_title_written_back_is_removed_a_title_inside_a_statement_stays():
    """Seen in a real draft: "… was andere Verwaltungen mit einer vergleichbaren Lösung erfahren
    haben: [1] openDesk: der souveräne Arbeitsplatz des Bundes … [2]" passed every other check."""
    title = "openDesk: der souveräne Arbeitsplatz des Bundes und seine ersten Einsätze"
    passage = f"{title}\nMehrere Länder nutzen openDesk bereits im Alltag der Verwaltung."
    task = ("Warum das Vorhaben jetzt ansteht.\nZwei bis drei Sätze: was andere Verwaltungen mit einer "
            "vergleichbaren Lösung erfahren haben.")
    allowed = "Titel: openDesk im Bürgeramt\nZielgruppe: 200 Beschäftigte des Bürgeramts"
    text = (f"Verwaltungen mit einer vergleichbaren Lösung erfahren haben: [1] {title} [1].\n"
            f"{title} [1].\n"
            f"Laut dem Bericht „{title}“ nutzen mehrere Länder openDesk bereits im Alltag der Verwaltung [1].")
    v = verify.check_text(text, [passage], allowed, profile=allowed, task=task, titles=[title])
    assert v.text == f"Laut dem Bericht „{title}“ nutzen mehrere Länder openDesk bereits im Alltag der Verwaltung [1]."
    assert len(v.removed) == 2 and all("wiederholt die Aufgabe" in r for r in v.removed)
    without = verify.check_text(text, [passage], allowed, profile=allowed)   # what the check let through before
    assert len(without.removed) < 2


def test_language_detection():
    assert verify.language_of("The project will be evaluated by the city and its partners.") == "en"
    assert verify.language_of("Das Vorhaben wird von der Stadt ausgewertet und dem Rat berichtet.") == "de"
    assert verify.foreign_sentences("The city pilots it. Die Stadt prüft das Ergebnis.", "en") == \
        ["Die Stadt prüft das Ergebnis."]


# ----------------------------------------------------------------------------- review


def test_four_eyes_review_needs_a_second_person_and_a_new_text_starts_over(bare_settings):
    d = runner.draft(profile.from_dict(PROFILE), "beschlussvorlage", bare_settings, today=TODAY,
                     chat_model=ScriptedChat(responses=["openDesk wird im Bürgeramt erprobt."]))
    d.owner = "anna"
    for s in d.sections:
        s.author = ""
    with pytest.raises(UsageError, match="Vier-Augen"):
        review.set_review(d, "ausgangslage", "geprueft", "anna")
    with pytest.raises(UsageError, match="noch nicht geprüft"):
        review.set_review(d, "ausgangslage", "freigegeben", "bernd")
    review.set_review(d, "ausgangslage", "geprueft", "bernd", "Quelle passt")
    review.set_review(d, "ausgangslage", "freigegeben", "bernd")
    assert [c.what for c in d.section("ausgangslage").history][-2:] == ["review:geprueft", "review:freigegeben"]
    assert not d.released and "ENTWURF" in export.to_markdown(export.blocks(d))
    assert len(review.release_all(d, "bernd")) == len(d.sections) - 1 and d.released
    md = export.to_markdown(export.blocks(d))
    assert "ENTWURF" not in md and "freigegeben von bernd" in md
    review.record_change(d, d.section("ziele"), "anna", "edited")
    assert d.section("ziele").review == "entwurf" and not d.released


def test_old_drafts_load_and_migrate(bare_settings):
    d = runner.start_draft(runner.Idea("Alt", "Eine alte Idee."), "beschlussvorlage", bare_settings, today=TODAY)
    data = d.to_dict()
    data.pop("schema")
    for key in ("goal", "target_group", "staff", "start", "costs", "related_papers", "parsed"):
        data["idea"].pop(key)
    for s in data["sections"]:
        for key in ("review", "author", "history", "removed"):
            s.pop(key)
    data["sections"][3]["status"] = "approved"
    path = bare_settings.drafts_dir / d.id / "draft.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    old = runner.load_draft(d.id, bare_settings)
    assert old.schema == 2 and old.idea.staff is None and old.idea.costs == {}
    assert old.sections[3].status == "edited" and old.sections[3].review == "geprueft"   # not released by itself
    assert not old.released


# ----------------------------------------------------------------------------- cost plan and EU


@pytest.mark.skipif(not SOFFICE, reason="LibreOffice fehlt")
def test_aza_cost_plan_opens_in_calc_with_working_sums(bare_settings, tmp_path):
    from openpyxl import load_workbook

    d = runner.start_draft(profile.from_dict(PROFILE), "vorhabenbeschreibung", bare_settings, today=TODAY)
    path = export.export(d, tmp_path / "kostenplan.xlsx")

    def recalculated(src: Path) -> dict[str, list[str]]:
        out = tmp_path / f"csv-{src.stem}"
        subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path}/lo", "--headless", "--norestore",
                        "--convert-to", 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false', "--outdir", str(out), str(src)],
                       capture_output=True, timeout=180, check=True)
        rows = list(csv.reader((out / f"{src.stem}.csv").open(encoding="utf-8")))
        return {r[1]: r[2:] for r in rows if len(r) > 2 and r[1]}

    rows = recalculated(path)
    assert [float(x) for x in rows["Gesamtausgaben"][:3]] == pytest.approx([138888.89, 111111.11, 250000.0])
    assert float(rows["Beantragte Zuwendung"][0]) == 162500 and float(rows["Eigenanteil der Kommune"][0]) == 87500
    wb = load_workbook(path)          # the finance office changes an amount: the sums follow
    ws = wb["Kostenplan"]
    assert str(ws["E5"].value).startswith("=SUM(")
    ws["C5"] = ws["C5"].value + 10000
    wb.save(tmp_path / "geaendert.xlsx")
    changed = recalculated(tmp_path / "geaendert.xlsx")
    assert float(changed["Gesamtausgaben"][2]) == 260000 and float(changed["Beantragte Zuwendung"][0]) == 169000


def test_eu_part_b_export_has_no_german_sentence(bare_settings, tmp_path):
    english = "The city pilots openDesk for municipal staff and shares the results with other cities."
    idea = profile.from_dict({**PROFILE, "title": "Sovereign workplace openDesk", "goal": "Pilot openDesk for municipal "
                              "staff and share the results with other cities", "target_group": "municipal staff",
                              "programme": "eu-horizon-europe"})
    chat = ScriptedChat(responses=[english + " Die Stadt prüft das Ergebnis im Rat."])
    d = runner.draft(idea, "eu-part-b", bare_settings, programme_id="eu-horizon-europe", today=TODAY, chat_model=chat)
    md = export.export(d, tmp_path / "part-b.md").read_text(encoding="utf-8")
    body = [ln for ln in md.splitlines() if ln.strip() and not ln.startswith(("<small>", "#"))]
    german = [s for ln in body for s in verify.foreign_sentences(ln.strip("-*|> "), "en")]
    assert german == [], german
    assert "Excellence" in md and "Funder's checklist" in md and "Month 1–18" in md and "Total project cost" in md
    assert any("Die Stadt prüft" in r for s in d.sections for r in s.removed)   # taken out, shown to the author


# ----------------------------------------------------------------------------- CLI


def test_cli_profile_and_review(bare_settings, tmp_path):
    common = ["--data-dir", str(bare_settings.data_dir)]
    prof = write_profile(tmp_path, {**PROFILE, "programme": None})
    # a profile with nothing for the model: no index, no generated text needed for the form blocks
    r = run_cli("draft", "--template", "beschlussvorlage", "--profile", str(prof), "--out", str(tmp_path / "v.md"),
                "--json", *common, env={"PILOT_ASSISTANT_LLM__BACKEND": "ollama", "OLLAMA_HOST": "http://127.0.0.1:9"})
    assert r.returncode == 1 and "draft_id" in json.loads(r.stdout)   # model down: saved, resumable
    draft_id = json.loads(r.stdout)["draft_id"]
    d = runner.load_draft(draft_id, bare_settings)
    assert d.idea.title == "openDesk im Bürgeramt" and d.idea.staff == 200
    assert "250.000 €" in d.section("beschlussvorschlag").text
    r = run_cli("draft", "--review", draft_id, "--section", "betreff", "--status", "geprueft", "--user", "", *common)
    assert r.returncode == 2 and "--user" in r.stderr
    r = run_cli("draft", "--review", draft_id, "--section", "betreff", "--status", "geprueft", "--user", "pruefer",
                "--json", *common)
    assert r.returncode == 0 and json.loads(r.stdout)["sections"]["betreff"] == "geprueft"


# ----------------------------------------------------------------------------- evaluation metrics


def test_drafting_metrics_find_leaks_facts_and_unsupported_numbers(bare_settings):
    from assistant.evaluation import drafting as E

    d = runner.start_draft(profile.from_dict(PROFILE), "beschlussvorlage", bare_settings, today=TODAY)
    md = export.to_markdown(export.blocks(d))
    facts = E.fact_scores(d, md)
    assert facts["present"] == 1.0 and facts["correct"] == 1.0, facts
    assert E.leaks(md, []) == []
    bad = md + "\nläuft bis zum [fakten] – /work/corpus/x.md\nAufgabe: Schreibe den Abschnitt\n"
    kinds = sorted(x.split(":")[0] for x in E.leaks(bad, []))
    assert kinds == ["path", "placeholder", "prompt"]
    guidance = templates.load_template("beschlussvorlage").section("ausgangslage").guidance
    assert E.leaks(md + "\n" + guidance, [guidance])
    sec = d.section("ausgangslage")
    sec.text, sec.model = "Das Vorhaben erreicht 500 Nutzende in Heidelberg.", "x"
    scores = E.sentence_scores(d, {}, "")
    assert scores["unsupported"] == ["ausgangslage: 500", "ausgangslage: Heidelberg"]
    suite = E.load_suite(Path(__file__).resolve().parent.parent / "evals" / "suites" / "drafting.yaml")
    assert len(suite.items) >= 6 and {i.template for i in suite.items} == {"beschlussvorlage", "vorhabenbeschreibung",
                                                                           "eu-part-b"}
    assert E.is_drafting_suite(suite.path)


def test_a_decision_without_programme_and_with_dates(bare_settings):
    idea = profile.from_dict({**PROFILE, "programme": None,
                              "committees": [{"name": "Ausschuss für Digitalisierung", "date": "2027-01-20",
                                              "role": "Vorberatung", "top": "5"}]})
    d = runner.start_draft(idea, "beschlussvorlage", bare_settings, today=dt.date(2026, 12, 5))
    text = d.section("beschlussvorschlag").text
    assert "ab dem 01.03.2027" in text and "Die Mittel von 250.000 €" in text
    assert "Ausschuss für Digitalisierung nach Abschluss der Pilotphase (Projektmonat 18)" in text
    assert d.section("beratungsfolge").table[1] == ["Ausschuss für Digitalisierung", "20.01.2027", "Vorberatung", "5"]
    assert isinstance(Draft.from_dict(d.to_dict()), Draft)


# ----------------------------------------------------------------------------- the suite, through Ollama


@pytest.mark.slow
def test_drafting_suite_runs_against_an_ollama_model(settings, tmp_path):
    """The drafting suite's first profile, drafted by a model behind the Ollama API (the test
    server forwards to the small embedded model), scored and stored like any run."""
    from draftkit import make_corpus
    from ollama_server import OllamaAPI

    from assistant.evaluation import drafting as E
    from assistant.ingest.pipeline import ingest
    from assistant.runtime import llm

    ingest([make_corpus(tmp_path / "corpus")], settings)
    srv = OllamaAPI(llm.EmbeddedEngine.get(settings), "qwen2.5-coder:0.5b").start()
    try:
        settings.llm.backend, settings.llm.ollama_host = "ollama", srv.url
        settings.llm.ollama_model, settings.llm.max_tokens = "qwen2.5-coder:0.5b", 64
        suite = Path(__file__).resolve().parent.parent / "evals" / "suites" / "drafting.yaml"
        run = E.run_drafting_suite(suite, settings, limit=1, out_dir=tmp_path / "report")
    finally:
        srv.stop()
    assert run["model"] == "ollama:qwen2.5-coder:0.5b" and run["summary"]["errors"] == 0, run["items"]
    item = run["items"][0]
    assert item["metrics"]["facts_present"] == 1.0 and item["metrics"]["facts_correct"] == 1.0
    assert item["leaks"] == [] and run["summary"]["leaks"] == 0
    stored = json.loads((tmp_path / "report" / "run.json").read_text(encoding="utf-8"))
    assert stored["summary"] == run["summary"] and (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "report" / f"{item['id']}.md").read_text(encoding="utf-8").count("openDesk im Bürgeramt") >= 2


def test_an_uploaded_call_adds_its_requirements_with_pages(bare_settings, tmp_path):
    from filemakers import make_pdf

    from assistant.ingest.pipeline import ingest

    pdf = make_pdf(tmp_path / "aufruf-digitale-verwaltung.pdf", [
        "Förderaufruf Digitale Verwaltung 2027\n\nGefördert werden Pilotprojekte von Kommunen.",
        "Antragsberechtigt sind Kommunen und Landkreise mit eigenem IT-Betrieb.",
        "Dem Antrag ist ein Beschluss des Rates beizufügen. Auswahlkriterien sind Übertragbarkeit und Open Source."],
        title="Förderaufruf Digitale Verwaltung 2027")
    assert not ingest([pdf], bare_settings, type="funding").failed
    d = runner.start_draft(profile.from_dict({**PROFILE, "programme": None}), "beschlussvorlage", bare_settings,
                           today=TODAY, call="aufruf-digitale-verwaltung.pdf")
    by = {r.text: r for r in d.requirements}
    council = by["Dem Antrag ist ein Beschluss des Rates beizufügen."]
    assert (council.page, council.source, council.kind) == (3, pdf.name, "document")
    assert by["Antragsberechtigt sind Kommunen und Landkreise mit eigenem IT-Betrieb."].page == 2
    crit = next(r for r in d.requirements if r.kind == "criterion")
    assert crit.page == 3 and "Open Source" in crit.text and crit.sections == ["souveraenitaet"]
    md = export.to_markdown(export.blocks(d))
    assert "aufruf-digitale-verwaltung.pdf, S. 3" in md and str(tmp_path) not in md
    with pytest.raises(UsageError, match="nicht indexiert"):
        runner.start_draft(profile.from_dict(PROFILE), "beschlussvorlage", bare_settings, call="fehlt.pdf")
