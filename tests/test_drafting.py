"""Drafting: templates (validation with line numbers, user templates, form import), computed
figures equal finance.py, the requirement check, text clean-up, persistence with crash and
resume, edit/approve/regenerate; and the pipeline with the real small model over a small index."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from draftkit import MPSC, TODAY, ScriptedChat, make_corpus, tiny_template
from filemakers import make_docx, make_odt

from assistant.drafting import form_import, runner, templates
from assistant.drafting.finish import renumber, tidy, trim_words, unverified_numbers
from assistant.drafting.templates import TemplateError
from assistant.errors import UsageError
from assistant.funding import finance

IDEA = runner.Idea(title="KI-Assistent im Bürgerbüro", description="Ein lokaler KI-Assistent auf Open-Source-Basis "
                     "beantwortet im Bürgerbüro Fragen zu Bürgerdiensten.", city="Musterstadt",
                     department="Bürgerbüro", budget="250.000", duration_months=18)


# ----------------------------------------------------------------------------- templates


def test_builtin_templates_are_valid_and_complete():
    found, errors = templates.list_templates()
    assert errors == []
    by_name = {t.name: t for t in found}
    assert set(by_name) >= {"beschlussvorlage", "vorhabenbeschreibung", "eu-part-b"}
    heads = [s.heading for s in by_name["beschlussvorlage"].sections]
    for h in ("Betreff", "Beschlussvorschlag", "Sachverhalt / Begründung", "Ausgangslage", "Zeitplan", "Beteiligte",
              "Finanzielle Auswirkungen (Haushaltsauswirkungen)", "Digitale Souveränität", "Datenschutz und IT-Sicherheit",
              "Anlagen", "Vorlage", "Beratungsfolge"):
        assert h in heads
    assert any("KPI" in h for h in heads) and any("Pilotdesign" in h for h in heads)
    assert [s.heading for s in by_name["eu-part-b"].sections if s.level == 1] == [
        "1. Excellence", "2. Impact", "3. Quality and efficiency of the implementation"]
    for t in found:   # a template survives its own YAML round trip (user templates are saved that way)
        assert templates.parse(t.to_yaml()).to_dict() == t.to_dict()


def test_broken_yaml_names_the_line():
    text = "name: x\ntitle: X\nversion: 1\nsections:\n  - id: a\n    heading: A\n    queries: [eins\n  - id: b\n"
    with pytest.raises(TemplateError) as e:
        templates.parse(text, "x.yaml")
    assert e.value.line == 8 and "Zeile 8" in e.value.de and "line 8" in e.value.en and "x.yaml" in e.value.de


def test_schema_errors_name_the_section_and_its_line():
    text = ("name: x\ntitle: X\nversion: 1\nsections:\n  - id: a\n    heading: A\n"
            "  - id: b\n    heading: B\n    kind: computed\n    compute: zauberei\n")
    with pytest.raises(TemplateError) as e:
        templates.parse(text)
    assert e.value.line == 7 and "'b'" in e.value.de and "compute" in e.value.de
    bad_placeholder = "name: x\ntitle: X\nversion: 1\nsections:\n  - id: a\n    heading: A\n    queries: ['{stadt}']\n"
    with pytest.raises(TemplateError, match="Platzhalter"):
        templates.parse(bad_placeholder)


def test_user_templates_are_listed_and_a_broken_one_is_reported(bare_settings, tmp_path):
    folder = templates.user_dir(bare_settings)
    folder.mkdir(parents=True)
    tiny_template(folder)
    (folder / "kaputt.yaml").write_text("name: kaputt\ntitle: K\nversion: 1\nsections: [\n", encoding="utf-8")
    found, errors = templates.list_templates(bare_settings)
    assert "mini" in [t.name for t in found] and not next(t for t in found if t.name == "mini").builtin
    assert len(errors) == 1 and "kaputt.yaml" in errors[0].de and errors[0].line
    with pytest.raises(TemplateError, match="Zeile"):
        templates.load_template("kaputt", bare_settings)
    with pytest.raises(UsageError, match="beschlussvorlage"):
        templates.load_template("gibt-es-nicht", bare_settings)


@pytest.mark.parametrize("maker", [make_docx, make_odt])
def test_import_form_turns_headings_into_a_template(maker, tmp_path, bare_settings):
    form = maker(tmp_path / f"antrag-formular{'.docx' if maker is make_docx else '.odt'}", [
        ("h1", "1 Ziele des Vorhabens"),
        ("h2", "1.1 Gesamtziel"),
        ("p", "Beschreiben Sie das Gesamtziel in max. 2.000 Zeichen."),
        ("h2", "1.2 Bezug zum Förderprogramm"),
        ("p", "Höchstens 1 Seite."),
        ("h1", "2 Arbeitsplan"),
        ("p", "Arbeitspakete und Meilensteine."),
    ])
    t = form_import.import_form(form)
    assert [(s.level, s.heading, s.kind) for s in t.sections] == [
        (1, "1 Ziele des Vorhabens", "static"), (2, "1.1 Gesamtziel", "generated"),
        (2, "1.2 Bezug zum Förderprogramm", "generated"), (1, "2 Arbeitsplan", "generated")]
    assert t.sections[1].word_limit == 285 and t.sections[2].word_limit == 400 and t.sections[3].word_limit == 120
    assert "Gesamtziel" in t.sections[1].guidance
    path = templates.save_template(t, bare_settings)
    assert templates.load_template(t.name, bare_settings).to_dict() == templates.load_file(path).to_dict()


def test_import_form_without_heading_styles_uses_numbering(tmp_path):
    form = make_docx(tmp_path / "formular.docx", [("p", "1. Ausgangslage"), ("p", "Bitte kurz beschreiben."),
                                                  ("p", "2. Maßnahmen"), ("p", "2.1 Arbeitspakete")])
    t = form_import.import_form(form)
    assert [(s.level, s.heading) for s in t.sections] == [(1, "1. Ausgangslage"), (1, "2. Maßnahmen"),
                                                         (2, "2.1 Arbeitspakete")]
    with pytest.raises(UsageError, match="docx oder .odt"):
        form_import.import_form(tiny_template(tmp_path))


# ----------------------------------------------------------------------------- computed parts


def test_financing_in_the_draft_is_what_finance_computes(bare_settings):
    d = runner.start_draft(IDEA, "vorhabenbeschreibung", bare_settings, programme_id=MPSC, today=TODAY)
    programme = runner.find_programme(MPSC, bare_settings)
    expected = finance.compute_financing(250000.0, programme)
    assert d.financing == expected.to_dict()
    rows = dict(map(tuple, d.section("finanzierungsplan").table))
    assert rows["Zuschuss (berechnet)"] == finance.euro(expected.grant) == "162.500 €"
    assert rows["Eigenanteil (berechnet)"].startswith(finance.euro(expected.own_share))
    assert rows["Förderquote"] == "65 %"
    facts = dict(map(tuple, d.facts))   # the model gets the same strings, minus what it mixed up
    assert facts["Zuschuss (berechnet)"] == rows["Zuschuss (berechnet)"] and facts["Förderquote"] == "65 %"
    assert "Höchstbetrag der Förderung" not in facts and "Verfahren" not in facts and "Antragsfrist" not in facts


def test_cap_limits_the_grant(bare_settings):
    d = runner.start_draft(runner.Idea("Online-Dienste", "Zwanzig neue Online-Dienste im BayernPortal.",
                                           budget=100000), "vorhabenbeschreibung", bare_settings,
                             programme_id="by-digitales-rathaus", today=TODAY)
    rows = dict(map(tuple, d.section("finanzierungsplan").table))
    assert rows["Zuschuss (berechnet)"] == "20.000 € (durch Höchstbetrag begrenzt)"
    assert rows["Eigenanteil (berechnet)"] == "80.000 € (80 %)"


def test_a_passed_deadline_is_a_visible_warning(bare_settings):
    d = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, programme_id=MPSC, today=TODAY)
    assert d.warnings[0] == "⚠ Frist abgelaufen am 14.03.2021"
    assert d.deadline["passed"] is True and d.today == TODAY.isoformat()
    early = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, programme_id=MPSC,
                                 today=dt.date(2021, 3, 1))
    assert not any("abgelaufen" in w for w in early.warnings)
    assert dict(map(tuple, early.facts))["Antragsfrist"] == "Frist: 14.03.2021 (noch 13 Tage)"   # open: told


def test_requirement_check_marks_covered_and_missing(bare_settings):
    programme = runner.find_programme(MPSC, bare_settings)
    template = templates.load_template("beschlussvorlage")
    result = {r.text: r.sections for r in runner.check_requirements(programme, template)}
    assert result["Kosten- und Finanzierungsplan"] == ["finanzen"]
    assert result["Ratsbeschluss"] == ["beschlussvorschlag"]
    assert result["Identifizierung nach dem Geldwäschegesetz"] == []          # missing: its own document
    assert "beteiligte" in result["Beteiligung und Wissensaustausch"]
    # drafted text counts: a section that talks about the Smart City Charta covers that criterion
    texts = {"ausgangslage": "Das Vorhaben folgt der Smart City Charta des Bundes."}
    again = {r.text: r.sections for r in runner.check_requirements(programme, template, texts)}
    assert again["Übereinstimmung mit der Smart City Charta"] == ["ausgangslage"]
    assert runner.check_requirements(None, template) == []


def test_attachments_list_the_programmes_required_documents(bare_settings):
    d = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, programme_id=MPSC, today=TODAY)
    items = d.section("anlagen").items
    assert items[:2] == ["Projektsteckbrief", "Kosten- und Finanzierungsplan"] and "Ratsbeschluss" in items
    assert items.count("Kosten- und Finanzierungsplan") == 1


# ----------------------------------------------------------------------------- bad input


def test_bad_input_gets_clear_messages(bare_settings):
    with pytest.raises(UsageError, match="Projektidee ist leer"):
        runner.start_draft(runner.Idea("", "   "), "beschlussvorlage", bare_settings)
    with pytest.raises(UsageError, match="Unbekannte Vorlage 'antrag'"):
        runner.start_draft(IDEA, "antrag", bare_settings)
    with pytest.raises(UsageError, match="Unbekanntes Förderprogramm 'foerder-x'.*mfund"):
        runner.start_draft(IDEA, "beschlussvorlage", bare_settings, programme_id="foerder-x")
    with pytest.raises(UsageError, match="Budget"):
        runner.start_draft(runner.Idea("T", "Idee", budget="viel"), "beschlussvorlage", bare_settings)
    with pytest.raises(UsageError, match="Entwurfs-ID"):
        runner.load_draft("../../etc/passwd", bare_settings)
    with pytest.raises(UsageError, match="nicht gefunden"):
        runner.load_draft("20260101-nichts-abc123", bare_settings)


def test_title_comes_from_the_idea_when_missing():
    idea = runner.check_idea(runner.Idea("", "Ein Chatbot für die Bibliothek. Er beantwortet Fragen."))
    assert idea.title == "Ein Chatbot für die Bibliothek"


# ----------------------------------------------------------------------------- text clean-up (pure)


def test_tidy_drops_echoed_heading_task_and_markup():
    raw = ("**Ausgangslage (höchstens 80 Wörter)**\nAufgabe: Schreibe den Abschnitt\n"
           '<quelle nr="1" titel="x">Quelltext.</quelle>\nText: Der Rat hat **2025** beschlossen [1].')
    assert tidy(raw, "Ausgangslage") == "Der Rat hat 2025 beschlossen [1]."


def test_trim_words_keeps_whole_sentences_and_drops_a_cut_off_one():
    text = "Erster Satz mit fünf Wörtern. " * 6 + "Dieser Satz bricht ab und"
    out, cut = trim_words(text, 12)
    assert cut and out.endswith("Wörtern.") and len(out.split()) <= 14
    listed, cut = trim_words("- eins\n- zwei", 40)
    assert listed == "- eins\n- zwei" and not cut


def test_a_computed_section_keeps_no_restated_figures():
    from assistant.drafting.finish import finish_section
    from assistant.drafting.record import Section

    tsec = templates.load_template("beschlussvorlage").section("finanzen")
    sec = Section("finanzen", tsec.heading, kind="computed", word_limit=tsec.word_limit)
    finish_section(sec, tsec, "Förderung: 65 % der Kosten, also 15.000.000 €.\nEigenanteil: 87.500 €.", [], "", 0)
    assert sec.text == "" and sec.status == "drafted" and "2 Sätze" in sec.warnings[-1]   # the table stands alone


def test_renumber_and_unverified_numbers():
    assert renumber("A [3]. B [1][3]. C [2, 9].", [3, 1, 2]) == "A [1]. B [2] [1]. C [3]."
    assert unverified_numbers("Quote 65 % [1], 40 Stellen, Monat 3, 2027, 1.500.000 €.", "65 % 2027") == \
        ["40", "1.500.000"]


# ----------------------------------------------------------------------------- pipeline (scripted model)


SUPPORTED = "Ein lokaler KI-Assistent auf Open-Source-Basis beantwortet im Bürgerbüro Fragen zu Bürgerdiensten."


def test_sections_are_generated_checked_and_saved(bare_settings):
    chat = ScriptedChat(responses=["Der Rat hat 2025 einen KI-Assistenten beantragt [1][7]. "
                                   "Die Förderquote beträgt 65 %, also 15.000.000 €. " + SUPPORTED])
    d = runner.draft(IDEA, "beschlussvorlage", bare_settings, programme_id=MPSC, today=TODAY, chat_model=chat)
    assert d.complete and chat.calls == 5          # only the sections the model phrases; the rest is computed
    saved = json.loads((bare_settings.drafts_dir / d.id / "draft.json").read_text(encoding="utf-8"))
    assert [s["status"] for s in saved["sections"]] == ["drafted"] * len(d.sections)
    for sid in ("ausgangslage", "massnahmen", "souveraenitaet", "datenschutz"):
        sec = d.section(sid)
        assert sec.text == SUPPORTED                # grounded in the profile: kept
        assert "15.000.000" not in sec.text and "2025" not in sec.text   # no source holds them: removed ...
        assert any("15.000.000" in r for r in sec.removed) and any("2025" in r for r in sec.removed)   # ... and shown
    ziele = d.section("ziele")                     # computed KPI list beside a checked text, no target values
    assert ziele.items and all("Zielwert: noch festzulegen" in i for i in ziele.items)
    assert "Zuschuss (berechnet)" not in chat.prompts[0]                      # figures only where a section asks
    decision = d.section("beschlussvorschlag").text                           # computed, never generated
    assert "„KI-Assistent im Bürgerbüro“" in decision and "250.000 €" in decision and "18 Monaten" in decision
    assert "162.500 €" in decision and "87.500 €" in decision
    assert saved["model"].startswith("llamacpp:") and saved["prompt"] == "draft/v2"
    assert saved["template_snapshot"]["name"] == "beschlussvorlage" and saved["schema"] == 2


def test_a_crash_in_section_four_keeps_one_to_three_and_resume_finishes(bare_settings):
    texts = ["Ein lokaler KI-Assistent beantwortet Fragen zu Bürgerdiensten.",
             "Der KI-Assistent läuft auf Open-Source-Basis im Bürgerbüro.",
             "Im Bürgerbüro beantwortet der Assistent Fragen zu Bürgerdiensten."]
    chat = ScriptedChat(responses=texts, fail_on=[4])
    with pytest.raises(runner.DraftInterrupted) as e:
        runner.draft(IDEA, "beschlussvorlage", bare_settings, programme_id=MPSC, today=TODAY, chat_model=chat)
    d_id = e.value.draft.id
    assert "--resume " + d_id in e.value.fix and e.value.to_dict()["draft_id"] == d_id
    on_disk = runner.load_draft(d_id, bare_settings)
    template = templates.load_template("beschlussvorlage")
    generated = [s for s in on_disk.sections if template.section(s.id).generates]
    assert [s.status for s in generated[:4]] == ["drafted", "drafted", "drafted", "failed"]
    assert [s.text for s in generated[:3]] == texts
    assert "ausgefallen" in generated[3].error and all(s.status == "pending" for s in generated[4:])
    resumed = runner.resume_draft(d_id, bare_settings, chat_model=ScriptedChat(responses=[texts[0]]))
    assert resumed.complete
    assert [s.text for s in resumed.sections if s.id in {g.id for g in generated[:3]}] == texts
    assert resumed.section(generated[3].id).text == texts[0]


def test_edit_review_and_regenerate(bare_settings):
    old, fresh = ("Der KI-Assistent beantwortet im Bürgerbüro Fragen.", "Ein lokaler KI-Assistent beantwortet Fragen.")
    d = runner.draft(IDEA, "beschlussvorlage", bare_settings, today=TODAY, chat_model=ScriptedChat(responses=[old]))
    d = runner.edit_section(d.id, "ziele", "- Ziel 1: Wartezeit senken [4]", bare_settings, user="anna")
    assert d.section("ziele").status == "edited" and "4" in d.section("ziele").warnings[0]
    assert d.section("ziele").author == "anna"
    with pytest.raises(UsageError, match="Vier-Augen"):            # the author cannot review her own text
        runner.review_section(d.id, "ziele", "geprueft", "anna", bare_settings)
    d = runner.review_section(d.id, "ziele", "geprueft", "bernd", bare_settings, comment="passt")
    d = runner.regenerate_all(d.id, bare_settings, chat_model=ScriptedChat(responses=[fresh]))
    assert d.section("ziele").text == "- Ziel 1: Wartezeit senken [4]" and d.section("ziele").review == "geprueft"
    assert d.section("massnahmen").text == fresh
    d = runner.regenerate_section(d.id, "ziele", bare_settings, chat_model=ScriptedChat(responses=[fresh]))
    assert d.section("ziele").text == fresh and d.section("ziele").review == "entwurf"   # new text: review again
    assert [c.what for c in d.section("ziele").history][-3:] == ["edited", "review:geprueft", "regenerated"]
    with pytest.raises(UsageError, match="Abschnitt 'gibtsnicht'"):
        runner.edit_section(d.id, "gibtsnicht", "x", bare_settings)
    d = runner.edit_section(d.id, "beteiligte", "- Federführung: Amt 10", bare_settings)
    d = runner.resume_draft(d.id, bare_settings, chat_model=ScriptedChat())   # a static edit survives runs
    assert d.section("beteiligte").text == "- Federführung: Amt 10"
    assert [r["id"] for r in runner.list_drafts(bare_settings)] == [d.id]


def test_owner_filter(bare_settings):
    a = runner.start_draft(IDEA, "beschlussvorlage", bare_settings, owner="anna")
    runner.start_draft(IDEA, "beschlussvorlage", bare_settings, owner="ben")
    assert [r["id"] for r in runner.list_drafts(bare_settings, owner="anna")] == [a.id]


# ----------------------------------------------------------------------------- the real small model


@pytest.mark.slow
def test_pipeline_with_the_small_model_over_an_index(settings, tmp_path):
    from assistant.ingest.pipeline import ingest

    report = ingest([make_corpus(tmp_path / "corpus")], settings)
    assert not report.failed
    events = []
    d = runner.draft(IDEA, str(tiny_template(tmp_path)), settings, programme_id=MPSC, today=TODAY,
                       progress=events.append)
    assert d.complete and d.template == "mini"
    kinds = [e.kind for e in events]
    assert kinds.count("section_start") == 2 and kinds.count("section_done") == 2 and "token" in kinds
    for s in d.sections:
        if s.kind == "generated":
            assert (s.text or s.removed) and s.words <= 40 * 1.15 + 2, s.text   # kept, or checked and shown
            assert all(" — " in r for r in s.removed)
            assert s.sources, "retrieval found nothing"
            cited = {int(n) for n in re.findall(r"\[(\d+)\]", s.text)}
            assert cited <= {r.n for r in s.cited}               # every [n] maps to a listed source
            assert {r.type for r in s.sources} <= {"council", "report", "funding"}
            assert s.timings["retrieval_s"] >= 0 and s.seconds > 0
    assert any(r.paper_number == "0412/2025" for s in d.sections for r in s.sources)
    assert dict(map(tuple, d.section("finanzen").table))["Zuschuss (berechnet)"] == "162.500 €"
    assert {r.text: r.covered for r in d.requirements}["Kosten- und Finanzierungsplan"]
