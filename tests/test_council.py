"""Council procedures on the starter corpus (no OParl): trace, open tasks, chat, drafting;
and the parsing they rest on (references, dates, tasks, a document's structure)."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from assistant import config
from assistant.council.extract import extract
from assistant.council.references import (
    due_of,
    find_refs,
    is_task,
    looks_like_ref,
    normalize,
    object_stems,
    overlap,
    recurrence,
)
from tests.conftest import run_cli

TODAY = "2026-11-24"
D = dt.date


def _settings(data: Path) -> config.Settings:
    return config.load({"data_dir": str(data)}, environ={}, config_file=data.parent / "none.toml")


def _cli(data: Path, *args: str):
    return run_cli("council", *args, "--data-dir", str(data))


def _name(path: str) -> str:
    return Path(path).name


# --- references, dates, tasks (pure) ---------------------------------------------------------

def test_paper_numbers_are_found_and_normalised():
    text = ("Bezug: Antrag 0087/2025; Drucksache V/0101/2024, Vorlage VO/2024/0123 und (0584/2025). "
            "Haushaltsjahre 2025/2026, Seite 3/2025, Antrag Nr. 12/2024")
    assert [(r.norm, r.qualifier) for r in find_refs(text)] == [
        ("87/2025", "Antrag"), ("V/101/2024", "Drucksache"), ("VO/2024/123", "Vorlage"), ("584/2025", ""),
        ("12/2024", "Antrag")]
    assert normalize("0087-2025") == normalize("87/2025") == "87/2025"
    assert looks_like_ref("Antrag 0087/2025") == "87/2025" and looks_like_ref("Innovationsstrategie") is None


@pytest.mark.parametrize("sentence,resolved,due,every", [
    ("Das Exit-Konzept ist bis zum 31.03.2027 vorzulegen.", D(2025, 12, 18), D(2027, 3, 31), None),
    ("Die Verwaltung legt bis 31. März 2027 einen Bericht vor.", D(2025, 1, 1), D(2027, 3, 31), None),
    ("Die Verwaltung berichtet jährlich über den Stand, erstmals im vierten Quartal 2026.", D(2025, 12, 18),
     D(2026, 12, 31), 12),
    ("Die Verwaltung berichtet dem Ausschuss vierteljährlich über den Pilot.", D(2026, 2, 24), D(2026, 5, 24), 3),
    ("Strategie und Maßnahmenplan werden dem Stadtrat spätestens in seiner letzten Sitzung des Jahres 2025 "
     "zur Beschlussfassung vorgelegt.", D(2025, 3, 20), D(2025, 12, 31), None),
    ("Die Verwaltung legt innerhalb von sechs Monaten ein Konzept vor.", D(2026, 1, 15), D(2026, 7, 15), None),
    ("Die Verwaltung berichtet bis zum 30.11. über die Ergebnisse.", D(2026, 12, 5), D(2027, 11, 30), None),
    ("Die Verwaltung berichtet bis Ende 2025.", D(2025, 3, 1), D(2025, 12, 31), None),
    ("Die Verwaltung berichtet bis Jahresende.", D(2025, 3, 1), D(2025, 12, 31), None),
])
def test_due_dates_are_read_against_the_resolution(sentence, resolved, due, every):
    got = due_of(sentence, resolved)
    assert got is not None and got.first(resolved) == due and got.every_months == every
    assert is_task(sentence)


def test_dates_that_start_something_are_no_deadlines_and_statements_no_tasks():
    assert due_of("Der Kriterienkatalog ist ab dem 01.03.2026 verbindlich.", D(2025, 12, 18)) is None
    assert not is_task("Der Kriterienkatalog ist ab dem 01.03.2026 verbindlich.")
    assert not is_task("Die Stabsstelle wird zum 01.01.2026 mit 3,0 Stellen eingerichtet.")
    assert is_task("Die Verwaltung richtet bis zum 31.03.2027 ein öffentliches Register ein.")
    assert recurrence("einmal im Jahr") == 12 and recurrence("halbjährlich") == 6 and recurrence("bald") is None
    assert overlap(object_stems("Abschlussbericht mit Empfehlung zum Regelbetrieb"),
                   object_stems("Zwischenbericht zum Pilotprojekt")) == 0.0
    assert overlap(object_stems("Strategie und Maßnahmenplan"),
                   object_stems("Innovationsstrategie und Cloud-Strategie mit Maßnahmenplan")) == 1.0


MINUTES = """Auszug aus der Niederschrift über die 2. Sitzung des Ausschusses für Umwelt
Drucksachen-Nr.: 0050/2027
Sitzung: 14.01.2027, 17:00 Uhr
TOP 3: Baumschutzsatzung (Vorlage 0012/2027)
Der Hauptausschuss hat die Vorlage am 07.01.2027 einstimmig empfohlen.
Aussprache:
• Herr A fragt, ob die Verwaltung bis zum 01.02.2027 berichten kann.
Änderungsantrag 1 (Fraktion X): Die Verwaltung legt bis zum 30.06.2027 ein Baumkataster vor.
Abstimmung: 7 Ja-Stimmen, 4 Nein-Stimmen – angenommen.
Änderungsantrag 2 (Fraktion Y): Die Verwaltung berichtet bis zum 31.03.2027 über Fällungen.
Abstimmung: 3 Ja-Stimmen, 8 Nein-Stimmen – abgelehnt.
Beschluss:
Der Ausschuss beschließt die Vorlage 0012/2027 mit der Änderung.
Abstimmungsergebnis: 9 Ja-Stimmen, 2 Nein-Stimmen – mehrheitlich beschlossen.
TOP 4: Verschiedenes
Keine Wortmeldungen."""


def test_minutes_yield_decisions_consultations_and_tasks_of_accepted_amendments_only():
    f = extract({"paper_type": "Niederschrift", "committee": "Ausschuss für Umwelt", "date": "2027-01-14"},
                [(1, MINUTES)], title="Niederschrift Umweltausschuss")
    assert (f.norm, f.category, f.meeting_date) == ("50/2027", "minutes", "2027-01-14")
    assert [(e.norm, e.kind, e.date, e.organization, e.result, e.agenda_item) for e in f.events] == [
        ("12/2027", "Beratung", "2027-01-07", "Hauptausschuss", "einstimmig empfohlen", ""),
        ("12/2027", "Beschluss", "2027-01-14", "Ausschuss für Umwelt",
         "mehrheitlich beschlossen (9 Ja-Stimmen, 2 Nein-Stimmen)", "TOP 3")]
    assert [t.text for t in f.tasks] == ["Die Verwaltung legt bis zum 30.06.2027 ein Baumkataster vor."]
    assert {(x.norm, x.relation) for x in f.links} == {("12/2027", "decides")}


def test_a_paper_yields_its_plan_its_links_and_its_proposed_tasks():
    text = ("Beschlussvorlage\nDrucksachen-Nr.: 0012/2027\nBezug: Antrag 0007/2026\n"
            "Beratungsfolge: Hauptausschuss (07.01.2027, vorberatend) – Ausschuss für Umwelt (14.01.2027, "
            "beschließend)\nBeschlussvorschlag\n1. Die Baumschutzsatzung wird beschlossen.\n"
            "2. Die Verwaltung berichtet jährlich über Fällungen, erstmals im ersten Quartal 2028.\n"
            "Sachverhalt\nDie Satzung von 1998 (Drucksache 0099/1998) ist veraltet.")
    f = extract({"paper_type": "Beschlussvorlage", "date": "2026-12-01"}, [(1, text)])
    assert [(x.norm, x.relation) for x in f.links] == [("7/2026", "bezug"), ("99/1998", "mention")]
    assert [(e.date, e.organization, e.role, e.origin) for e in f.events] == [
        ("2027-01-07", "Hauptausschuss", "vorberatend", "plan"),
        ("2027-01-14", "Ausschuss für Umwelt", "beschließend", "plan")]
    assert [(t.basis, t.text) for t in f.tasks] == [
        ("proposal", "2. Die Verwaltung berichtet jährlich über Fällungen, erstmals im ersten Quartal 2028.")]


# --- the starter corpus -------------------------------------------------------------------

def test_trace_of_the_motion_lists_motion_decision_paper_and_minutes_in_order(council_index):
    res = _cli(council_index, "trace", "0087/2025", "--json", "--today", TODAY)
    assert res.returncode == 0, res.stderr
    steps = json.loads(res.stdout)
    assert [(s["date"], s["kind"], s["reference"], _name(s["source"]), s["page"]) for s in steps] == [
        ("2025-02-11", "Antrag", "0087/2025", "0087-2025_antrag-innovationsstrategie.pdf", 1),
        ("2025-03-05", "Beratung", "0087/2025", "0112-2025_niederschrift-stadtrat-antrag-innovationsstrategie.pdf", 1),
        ("2025-03-20", "Beschluss", "0087/2025", "0112-2025_niederschrift-stadtrat-antrag-innovationsstrategie.pdf", 1),
        ("2025-11-18", "Beschlussvorlage", "0584/2025", "0584-2025_beschlussvorlage-innovationsstrategie.pdf", 1),
        ("2025-12-02", "Beratung", "0584/2025", "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf", 1),
        ("2025-12-09", "Beratung", "0584/2025", "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf", 1),
        ("2025-12-18", "Beschluss", "0584/2025", "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf", 2),
    ]
    decided = steps[-1]
    assert decided["organization"] == "Stadtrat" and decided["agenda_item"] == "TOP 7"
    assert decided["result"].startswith("mehrheitlich beschlossen (38 Ja-Stimmen") and decided["document"] == "0631/2025"
    assert steps[0]["organization"] == "Ratsgruppe Offene Liste"
    for s in steps:   # the cited page holds what the step says
        assert Path(s["source"]).is_file()
    from assistant.index.store import Store
    with Store(_settings(council_index)) as store:
        assert "38 Ja-Stimmen" in store.page_text(decided["doc_id"], decided["page"])
        assert "05.03.2025" in store.page_text(steps[1]["doc_id"], steps[1]["page"])
    # the text output names file and page too
    text = _cli(council_index, "trace", "0087/2025", "--today", TODAY).stdout
    assert "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf, S. 2" in text and "0231/2025" in text


def test_a_topic_finds_the_procedure_and_an_ambiguous_one_lists_candidates(council_index):
    same = _cli(council_index, "trace", "Antrag zur Innovationsstrategie", "--json", "--today", TODAY)
    assert res_ok(same) and json.loads(same.stdout)[-1]["document"] == "0631/2025"
    musa = json.loads(_cli(council_index, "trace", "0342/2026", "--json", "--today", TODAY).stdout)
    assert [(s["kind"], s["reference"]) for s in musa][:3] == [
        ("Beschlussvorlage", "0036/2026"), ("Beschluss", "0036/2026"), ("Mitteilung", "0342/2026")]
    amb = _cli(council_index, "trace", "KI", "--json")
    assert amb.returncode == 1 and "Mehrere Vorgänge" in amb.stderr
    assert {c["reference"] for c in json.loads(amb.stdout)} == {"0036/2026", "0297/2026"}
    assert all(c["category"] == "candidate" and c["page"] == 1 for c in json.loads(amb.stdout))
    missing = _cli(council_index, "trace", "0999/2025")
    assert missing.returncode == 1 and "nicht gefunden" in missing.stderr


def res_ok(res) -> bool:
    assert res.returncode == 0, res.stdout + res.stderr
    return True


def test_open_lists_the_report_back_tasks_with_due_dates_and_none_answered(council_index, tmp_path):
    ics = tmp_path / "auftraege.ics"
    res = _cli(council_index, "open", "--json", "--today", TODAY, "--ics", str(ics))
    assert res_ok(res)
    tasks = json.loads(res.stdout)
    assert [(t["reference"], t["due"], _name(t["source"]), t["page"]) for t in tasks] == [
        ("0584/2025", "2026-12-31", "0584-2025_beschlussvorlage-innovationsstrategie.pdf", 1),
        ("0036/2026", "2027-01-06", "0094-2026_niederschrift-adv-ki-assistent.pdf", 1),
        ("0036/2026", "2027-03-31", "0036-2026_beschlussvorlage-ki-assistent-musa.pdf", 1),
        ("0584/2025", "2027-03-31", "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf", 2),
    ]
    by_text = {t["task"]: t for t in tasks}
    assert "Das Exit-Konzept für Bürosoftware und E-Mail ist bis zum 31.03.2027 vorzulegen." in by_text
    quarterly = tasks[1]
    assert quarterly["recurring"] == "vierteljährlich" and quarterly["answered_by"] == ["0342/2026"]
    assert tasks[0]["resolution"] == "0631/2025" and tasks[0]["recurring"] == "jährlich"
    # answered: the motion's "Strategie und Maßnahmenplan … vorgelegt" (by the decision paper 0584/2025)
    assert not any("Maßnahmenplan" in t["task"] for t in tasks)
    assert not any(t["reference"] in ("0297/2026", "0121/2026") for t in tasks)   # proposals not decided
    assert all(not t["overdue"] and t["days_left"] > 0 for t in tasks)
    cal = ics.read_text(encoding="utf-8")
    assert cal.count("BEGIN:VEVENT") == 4 and "DTSTART;VALUE=DATE:20270331" in cal
    later = json.loads(_cli(council_index, "open", "--json", "--today", "2027-02-01").stdout)
    assert [t["overdue"] for t in later] == [True, True, False, False]


def test_a_new_paper_updates_procedures_incrementally(council_index, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(council_index, data)
    answer = tmp_path / "0058-2027_mitteilung-exit-konzept.md"
    answer.write_text("---\ntitle: \"Mitteilung: Exit-Konzept für Bürosoftware und E-Mail\"\ntype: council\n"
                      "paper_number: \"0058/2027\"\npaper_type: Mitteilung\ndate: 2027-02-02\n"
                      "municipality: \"Musterstadt (fiktiv)\"\n---\n\n# Mitteilung der Verwaltung\n\n"
                      "**Bezug:** Beschluss des Stadtrats vom 18.12.2025 zur Vorlage 0584/2025\n\n"
                      "Die Verwaltung legt das Exit-Konzept für Bürosoftware und E-Mail vor.\n", encoding="utf-8")
    res = run_cli("ingest", str(answer), "--json", "--data-dir", str(data))
    assert res_ok(res) and json.loads(res.stdout)["procedures"] == {"added": 1, "updated": 0, "removed": 0}
    steps = json.loads(_cli(data, "trace", "0087/2025", "--json", "--today", "2027-03-01").stdout)
    assert steps[-1]["reference"] == "0058/2027" and steps[-1]["kind"] == "Mitteilung"
    tasks = json.loads(_cli(data, "open", "--json", "--today", "2027-03-01").stdout)
    assert not any("Exit-Konzept" in t["task"] for t in tasks) and len(tasks) == 3
    assert res_ok(run_cli("remove", str(answer), "--data-dir", str(data)))
    tasks = json.loads(_cli(data, "open", "--json", "--today", "2027-03-01").stdout)
    assert any("Exit-Konzept" in t["task"] for t in tasks)


# --- chat and drafting ----------------------------------------------------------------------

def test_chat_answers_the_procedure_question_citing_each_step(council_index):
    from assistant.answer import chat

    settings = _settings(council_index)
    answer = chat.ask("Was wurde aus dem Antrag 0087/2025?", settings)   # no model is loaded for this
    steps = json.loads(_cli(council_index, "trace", "0087/2025", "--json").stdout)
    assert not answer.refused and len(answer.citations) == len(steps) == 7
    for n, (c, s) in enumerate(zip(answer.citations, steps), 1):
        assert c.n == n and f"[{n}]" in answer.answer
        assert (c.source, c.page, c.paper_number) == (s["source"], s["page"], s["reference"])
        assert c.chunk_id.startswith(s["doc_id"])   # the cited passage lies on the cited page
    assert "20.03.2025" in answer.answer and "angenommen" in answer.answer
    assert [h.chunk.page for h in answer.sources] == [s["page"] for s in steps]
    # an open-tasks question, and content questions stay with retrieval
    tasks = chat.ask("Welche Berichtsaufträge an die Verwaltung sind noch offen?", settings)
    assert "Exit-Konzept" in tasks.answer and len(tasks.citations) >= 4
    from assistant.answer.procedures import detect
    assert detect("Was beantragte die Ratsgruppe Offene Liste mit der Drucksache 0087/2025?") is None


def test_drafting_opens_the_ausgangslage_with_the_beschlusslage(council_index, tmp_path):
    from draftkit import ScriptedChat, tiny_template

    from assistant.drafting import runner

    data = tmp_path / "data"
    shutil.copytree(council_index, data)
    settings = _settings(data)
    idea = runner.Idea(title="Open-Source-Büroarbeitsplatz", description="Pilot eines Open-Source-Arbeitsplatzes "
                       "auf Grundlage der Innovationsstrategie (Vorlage 0584/2025).", city="Musterstadt")
    model = ScriptedChat(responses=["Die Stadt erprobt openDesk [1]."])
    d = runner.draft(idea, str(tiny_template(tmp_path)), settings, chat_model=model, today=dt.date(2026, 5, 4))
    sec = d.section("ausgangslage")
    assert sec.text.startswith("Antrag 0087/2025 (Ratsgruppe Offene Liste) vom 11.02.2025 [1] wurde am "
                               "20.03.2025 vom Stadtrat angenommen [2]. Beschlussvorlage 0584/2025 vom 18.11.2025 "
                               "[3] wurde am 18.12.2025 vom Stadtrat mehrheitlich beschlossen [4].")
    assert [(s.n, s.paper_number, _name(s.source), s.page) for s in sec.sources[:4]] == [
        (1, "0087/2025", "0087-2025_antrag-innovationsstrategie.pdf", 1),
        (2, "0112/2025", "0112-2025_niederschrift-stadtrat-antrag-innovationsstrategie.pdf", 1),
        (3, "0584/2025", "0584-2025_beschlussvorlage-innovationsstrategie.pdf", 1),
        (4, "0631/2025", "0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf", 2)]
    # the model's own citations follow, renumbered
    if "[5]" in sec.text:
        assert any(s.n == 5 for s in sec.sources)
    assert d.section("datenschutz").text.startswith("Die Stadt erprobt")   # other sections untouched


# --- hostile input ------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_long_hostile_text_is_read_in_bounded_time():
    """Regexes over document text stay linear: one endless 'sentence' of committee names,
    vote counts and dates, and a huge field line, must not hang the refresh."""
    sentence = ("Der Ausschuss für " + "Umwelt und " * 4000 + "hat am 01.02.2026 " + "1 Ja-Stimmen 2 " * 3000
                + "empfohlen (Vorlage 0001/2026)")
    field = "Beratungsfolge: " + "Ausschuss " * 20000
    f = extract({"paper_type": "Niederschrift"}, [(1, "TOP 1: X (Vorlage 0001/2026)\n" + sentence + "\n" + field)])
    assert f.norm is None and any(x.norm == "1/2026" for x in f.links)


def test_document_titles_reach_the_council_tab_as_inert_text():
    from assistant.council.trace import Related, Trace
    from assistant.ui.council_tab import related_markdown

    evil = '<img src=x onerror="alert(1)">[klick](javascript:alert(1))'
    md = related_markdown(Trace(query="x", related=[Related("0001/2026", evil, "", "Antrag", "wird erwähnt", "", 1)]))
    assert "<img" not in md and "](javascript:" not in md and "&lt;img" in md
