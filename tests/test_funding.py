"""Funding finder over the starter corpus, with hand-checked expectations (today = 2026-11-24).

How the expectations were derived, from the front matter of corpus/funding/*.md:

Open on 2026-11-24 are only programmes with status != closed and no passed deadline:
by-digitales-rathaus (BY), eu-digital-europe, eu-horizon-europe, eu-interreg-europe,
eu-interreg-nordwesteuropa (all EU), kfw-208-investitionskredit-kommunen (DE, loan),
nrw-digitale-infrastruktur-koordination (NW, deadline 2027-08-31), rp-efre-2021-2027 (RP,
applicants [kommune]) and he-starke-heimat-smarte-kommunen (HE, applicants [kommune]).
Closed (status: closed): bw-future-communities (deadline 2019-07-31),
eu-cef-digital-5g-smart-communities (2024-02-20), eu-netzerocities-pilot-cities (2023-11-06),
ki-leuchttuerme-umwelt-klima (2024-05-17), mfund (2025-12-31), modellprojekte-smart-cities
(2021-03-14), nrw-digitale-modellregionen (no deadline), rp-kipki (no deadline).
"(Angabe unsicher)" is appended where the file lists the field under `uncertain`.
Amounts: grant = min(funding_rate x budget, max_amount), own share = budget - grant.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from icalendar import Calendar

from assistant.errors import UsageError
from assistant.funding.finder import FundingResult, hard_filter, load_all, match_funding
from assistant.funding.ics import deadlines_ics, uid, write_ics
from assistant.funding.programmes import load_programmes
from tests.conftest import ROOT, run_cli

TODAY = dt.date(2026, 11, 24)
CORPUS = ROOT / "corpus" / "funding"

AI_RP = ("Pilotprojekt für einen KI-Assistenten in der Verwaltung: ein Chatbot mit Sprachmodell beantwortet "
         "Fragen von Bürgerinnen und Bürgern und unterstützt Mitarbeitende beim Entwerfen von Vorlagen.")
DATA_NW = ("Urbane Datenplattform für die Smart City: Sensordaten zu Verkehr, Parken und Umwelt zusammenführen, "
           "als Open Data bereitstellen und einen digitalen Zwilling der Stadt aufbauen.")
DESK_BY = ("Open-Source-Arbeitsplatz (openDesk) für die Kreisverwaltung pilotieren: souveräne Software für E-Mail, "
           "Dateiablage und Zusammenarbeit statt proprietärer Produkte, Online-Dienste für Bürger.")

# exclusions that hold for every idea below (status/deadline only, region DE or EU)
CLOSED_EVERYWHERE = {
    "eu-cef-digital-5g-smart-communities": ["Programm geschlossen (Angabe unsicher)", "Frist abgelaufen am 20.02.2024"],
    "ki-leuchttuerme-umwelt-klima": ["Programm geschlossen (Angabe unsicher)", "Frist abgelaufen am 17.05.2024"],
    "modellprojekte-smart-cities": ["Programm geschlossen (Angabe unsicher)", "Frist abgelaufen am 14.03.2021"],
}


@pytest.fixture(scope="module")
def settings_mod(tmp_path_factory):
    from assistant import config

    tmp = tmp_path_factory.mktemp("funding")
    return config.load({"data_dir": str(tmp / "data")}, environ={}, config_file=tmp / "none.toml")


@pytest.fixture(scope="module")
def ai_rp(settings_mod) -> FundingResult:
    return match_funding(AI_RP, settings_mod, applicant="kommune", state="RP", budget="200.000", today=TODAY)


@pytest.fixture(scope="module")
def data_nw(settings_mod) -> FundingResult:
    return match_funding(DATA_NW, settings_mod, applicant="kommune", state="NW", budget=500000, today=TODAY)


@pytest.fixture(scope="module")
def desk_by(settings_mod) -> FundingResult:
    return match_funding(DESK_BY, settings_mod, applicant="landkreis", state="BY", budget=50000, today=TODAY)


def by_id(result: FundingResult):
    return {m.programme.id: m for m in result.results}


def reasons(result: FundingResult) -> dict[str, list[str]]:
    return {e.programme_id: e.reasons for e in result.excluded}


# --------------------------------------------------------------------------- idea 1: KI-Assistent, Kommune in RP


def test_ai_assistant_rp_ranking_and_exclusions(ai_rp):
    assert ai_rp.errors == []
    # eligible for a Kommune in RP: the four EU programmes, KfW 208 (DE) and EFRE RP
    assert set(by_id(ai_rp)) == {"eu-digital-europe", "eu-horizon-europe", "eu-interreg-europe",
                                 "eu-interreg-nordwesteuropa", "kfw-208-investitionskredit-kommunen",
                                 "rp-efre-2021-2027"}
    # Digital Europe names AI ("künstliche Intelligenz", topic `ki`) - the only open one that does;
    # Horizon Europe follows (topic `pilotprojekt`); the rest share no topic with the idea
    assert [m.programme.id for m in ai_rp.results[:2]] == ["eu-digital-europe", "eu-horizon-europe"]
    assert ai_rp.results[0].matched_topics == ["ki"]
    assert reasons(ai_rp) == {
        **CLOSED_EVERYWHERE,
        "bw-future-communities": ["nur für BW (gewählt: RP)", "Programm geschlossen", "Frist abgelaufen am 31.07.2019"],
        "by-digitales-rathaus": ["nur für BY (gewählt: RP)"],
        "eu-netzerocities-pilot-cities": ["Programm geschlossen (Angabe unsicher)", "Frist abgelaufen am 06.11.2023"],
        "he-starke-heimat-smarte-kommunen": ["nur für HE (gewählt: RP)"],
        "mfund": ["Programm geschlossen (Angabe unsicher)", "Frist abgelaufen am 31.12.2025"],
        "nrw-digitale-infrastruktur-koordination": ["nur für NW (gewählt: RP)"],
        "nrw-digitale-modellregionen": ["nur für NW (gewählt: RP)", "Programm geschlossen"],
        "rp-kipki": ["Programm geschlossen"],
    }


def test_ai_assistant_rp_amounts(ai_rp):
    m = by_id(ai_rp)
    # budget 200.000 €:  rate x budget, no cap reached
    expected = {
        "eu-digital-europe": (100000.0, 100000.0),          # 0.5
        "eu-horizon-europe": (200000.0, 0.0),               # 1.0
        "eu-interreg-nordwesteuropa": (120000.0, 80000.0),  # 0.6
        "rp-efre-2021-2027": (80000.0, 120000.0),           # 0.4, max_amount null
        "kfw-208-investitionskredit-kommunen": (200000.0, 0.0),   # loan 1.0, cap 150 Mio
        "eu-interreg-europe": (None, None),                 # funding_rate null: not computable
    }
    assert {pid: (x.financing.grant, x.financing.own_share) for pid, x in m.items()} == expected
    assert all(not x.financing.capped for x in m.values())
    assert any("Darlehen" in n for n in m["kfw-208-investitionskredit-kommunen"].financing.notes)
    efre = m["rp-efre-2021-2027"]
    assert "Eigenanteil unsicher (Angabe: leer) – beim Fördergeber prüfen." in efre.uncertainties
    assert efre.deadline.deadline is None and "Förderperiode 2021–2027" in efre.deadline.message


# --------------------------------------------------------------------------- idea 2: urban data platform, Kommune in NW


def test_data_platform_nw(data_nw):
    ids = [m.programme.id for m in data_nw.results]
    assert set(ids) == {"eu-digital-europe", "eu-horizon-europe", "eu-interreg-europe", "eu-interreg-nordwesteuropa",
                        "kfw-208-investitionskredit-kommunen", "nrw-digitale-infrastruktur-koordination"}
    # Digital Europe: local digital twins / data spaces (topic `digitaler zwilling`)
    assert ids[0] == "eu-digital-europe"
    assert data_nw.results[0].matched_topics == ["digitaler zwilling"]
    r = reasons(data_nw)
    # the programmes that fit best on paper are closed or in another state
    assert r["modellprojekte-smart-cities"] == CLOSED_EVERYWHERE["modellprojekte-smart-cities"]
    assert r["he-starke-heimat-smarte-kommunen"] == ["nur für HE (gewählt: NW)"]
    assert r["nrw-digitale-modellregionen"] == ["Programm geschlossen"]      # NW itself passes
    assert r["rp-efre-2021-2027"] == ["nur für RP (gewählt: NW)"]
    assert len(data_nw.excluded) == 11

    nrw = by_id(data_nw)["nrw-digitale-infrastruktur-koordination"]
    # 0.8 x 500.000 = 400.000 > max_amount 210.000 -> capped; own share 500.000 - 210.000
    assert (nrw.financing.grant, nrw.financing.own_share, nrw.financing.capped) == (210000.0, 290000.0, True)
    # 2026-11-24 -> 2027-08-31: 6 + 31+31+28+31+30+31+30+31+31 = 280 days
    assert (nrw.deadline.deadline, nrw.deadline.days_left) == ("2027-08-31", 280)
    assert "Frist unsicher (Angabe: 31.08.2027) – beim Fördergeber prüfen." in nrw.uncertainties
    de = by_id(data_nw)["eu-digital-europe"]
    assert (de.financing.grant, de.financing.own_share) == (250000.0, 250000.0)


# --------------------------------------------------------------------------- idea 3: openDesk, Landkreis in BY


def test_opendesk_landkreis_by(desk_by):
    ids = [m.programme.id for m in desk_by.results]
    assert set(ids) == {"by-digitales-rathaus", "eu-digital-europe", "eu-horizon-europe", "eu-interreg-europe",
                        "eu-interreg-nordwesteuropa", "kfw-208-investitionskredit-kommunen"}
    # the Bavarian programme funds software for online services (topics online-dienste, software)
    assert ids[0] == "by-digitales-rathaus"
    top = desk_by.results[0]
    assert top.matched_topics == ["online-dienste", "software"]
    # 0.8 x 50.000 = 40.000 > max_amount 20.000 -> capped; own share 30.000
    assert (top.financing.grant, top.financing.own_share, top.financing.capped) == (20000.0, 30000.0, True)
    assert top.procedure.startswith("einstufig")
    assert top.programme.required_documents == ["Förderantrag vor Beginn des Vorhabens"]
    r = reasons(desk_by)
    # applicant filter: these list no `landkreis`
    assert r["mfund"][0] == ("nicht antragsberechtigt: landkreis (antragsberechtigt: kommune, hochschule, "
                             "forschungseinrichtung, unternehmen, verein)")
    assert r["he-starke-heimat-smarte-kommunen"] == [
        "nicht antragsberechtigt: landkreis (antragsberechtigt: kommune)", "nur für HE (gewählt: BY)"]
    assert r["rp-efre-2021-2027"] == [
        "nicht antragsberechtigt: landkreis (antragsberechtigt: kommune) (Angabe unsicher)", "nur für RP (gewählt: BY)"]
    assert r["eu-netzerocities-pilot-cities"][0].startswith("nicht antragsberechtigt: landkreis")


def test_results_cite_the_programme_document(ai_rp, data_nw, desk_by):
    for result in (ai_rp, data_nw, desk_by):
        for m in result.results:
            assert m.why, m.programme.id
            for e in m.why:
                path = Path(e.source)
                assert path.is_file() and path.parent == CORPUS
                assert e.section and e.page is None
                lines = path.read_text(encoding="utf-8").splitlines()
                # the quote starts on the cited line (markup and wrapping normalised)
                first_words = " ".join(e.quote.split()[:3])
                assert first_words in lines[e.line - 1].replace("**", ""), (e.quote, e.line)
    data = ai_rp.to_dict()
    json.dumps(data)
    assert data["results"][0]["why"][0]["source"].endswith("eu-digital-europe.md")
    assert data["excluded"][0]["reason"]


def test_ranking_is_deterministic(settings_mod, ai_rp):
    again = match_funding(AI_RP, settings_mod, state="RP", budget=200000, today="2026-11-24")
    assert [(m.programme.id, m.fit) for m in again.results] == [(m.programme.id, m.fit) for m in ai_rp.results]


# --------------------------------------------------------------------------- filters without the model


def test_instrument_and_deadline_filters():
    programmes, errors = load_programmes(CORPUS)
    assert errors == []
    eligible, excluded = hard_filter(programmes, applicant="kommune", state="RP", instrument="grant", today=TODAY)
    kfw = {e.programme_id: e for e in excluded}["kfw-208-investitionskredit-kommunen"]
    assert kfw.codes == ["instrument"] and kfw.reasons == ["Darlehen statt Zuschuss"]
    # the NW deadline is still open on its last day and gone the day after
    for day, open_ in ((dt.date(2027, 8, 31), True), (dt.date(2027, 9, 1), False)):
        eligible, excluded = hard_filter(programmes, applicant="kommune", state="NW", instrument=None, today=day)
        assert ("nrw-digitale-infrastruktur-koordination" in {p.id for p in eligible}) is open_
    assert {e.programme_id: e.reasons for e in excluded}["nrw-digitale-infrastruktur-koordination"] == [
        "Frist abgelaufen am 31.08.2027 (Angabe unsicher)"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, words", [
    ({"budget": "viel"}, ["'viel'", "keine Zahl"]),
    ({"state": "XY"}, ["'XY'", "BW", "RP", "TH"]),
    ({"applicant": "firma"}, ["'firma'", "kommune"]),
    ({"today": "24.11.2026"}, ["JJJJ-MM-TT"]),
])
def test_bad_input_is_a_usage_error(kwargs, words):
    with pytest.raises(UsageError) as info:
        match_funding(AI_RP, None, **kwargs)
    assert info.value.exit_code == 2
    for w in words:
        assert w in str(info.value)


def test_broken_front_matter_is_reported_by_name(tmp_path, settings_mod):
    folder = tmp_path / "funding"
    shutil.copytree(CORPUS, folder)
    text = (folder / "mfund.md").read_text(encoding="utf-8")
    (folder / "mfund.md").write_text(text.replace("status: closed", "status: [closed"), encoding="utf-8")
    programmes, errors = load_all(None, [folder])
    assert [e.name for e in errors] == ["mfund.md"]
    assert "Zeile" in errors[0].de
    assert len(programmes) == 16
    result = match_funding(DESK_BY, settings_mod, applicant="landkreis", state="BY", today=TODAY, sources=[folder])
    assert [e.name for e in result.errors] == ["mfund.md"]
    assert result.results[0].programme.id == "by-digitales-rathaus"
    assert result.to_dict()["errors"][0]["file"] == "mfund.md"


def test_sources_include_data_dir_and_indexed_funding_documents(tmp_path):
    from assistant import config
    from assistant.funding.finder import programme_sources
    from assistant.index.store import INDEXED, DocumentRecord, Store

    settings = config.load({"data_dir": str(tmp_path / "data")}, environ={}, config_file=tmp_path / "none.toml")
    own = tmp_path / "data" / "funding"
    own.mkdir(parents=True)
    text = (CORPUS / "rp-kipki.md").read_text(encoding="utf-8")
    (own / "stadt-eigen.md").write_text(text.replace("id: rp-kipki", "id: stadt-eigen"), encoding="utf-8")
    uploaded = tmp_path / "uploads"
    uploaded.mkdir()
    (uploaded / "upload.md").write_text(text.replace("id: rp-kipki", "id: hochgeladen"), encoding="utf-8")
    (uploaded / "richtlinie.md").write_text("# Eine Förderrichtlinie ohne Front Matter\n", encoding="utf-8")
    assert not settings.index_dir.exists()
    assert len(programme_sources(settings)) == 18      # no index: starter folder + data_dir/funding
    assert not settings.index_dir.exists()             # looking did not create one
    with Store(settings) as store:
        for name in ("upload.md", "richtlinie.md"):
            store.record_status(DocumentRecord(source=str(uploaded / name), doc_id=name, type="funding",
                                               status=INDEXED))
        store.record_status(DocumentRecord(source=str(CORPUS / "mfund.md"), doc_id="m", type="funding",
                                           status=INDEXED))   # the starter corpus ingested: no double
    programmes, errors = load_all(settings)
    assert errors == []
    assert {"stadt-eigen", "hochgeladen"} <= {p.id for p in programmes} and len(programmes) == 19


def test_programmes_are_parsed_once_per_change_and_only_from_readable_collections(tmp_path, monkeypatch):
    """The UI lists programmes on every page load: an uploaded alias bomb is refused once and cached,
    and a programme indexed in a collection the person cannot read is not listed for them."""
    from assistant import config
    from assistant.funding import programmes as prog_mod
    from assistant.index.store import INDEXED, DocumentRecord, Store

    settings = config.load({"data_dir": str(tmp_path / "data")}, environ={}, config_file=tmp_path / "none.toml")
    laughs = 'lol0: &a0 ["LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL"]\n' + "".join(
        f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    uploaded = tmp_path / "uploads"
    uploaded.mkdir()
    bomb = uploaded / "bombe.md"
    bomb.write_text("---\n" + laughs + "---\n# Lachgas\n\nText.\n", encoding="utf-8")
    text = (CORPUS / "rp-kipki.md").read_text(encoding="utf-8")
    (uploaded / "bauamt.md").write_text(text.replace("id: rp-kipki", "id: nur-bauamt"), encoding="utf-8")
    with Store(settings) as store:
        store.record_status(DocumentRecord(source=str(bomb), doc_id="b", type="funding", status=INDEXED))
        store.record_status(DocumentRecord(source=str(uploaded / "bauamt.md"), doc_id="c", type="funding",
                                           collection="bauamt", status=INDEXED))
    calls = []
    real = prog_mod.parse_programme
    monkeypatch.setattr(prog_mod, "parse_programme", lambda text, path="": calls.append(path) or real(text, path))
    for _ in range(3):
        programmes, errors = load_all(settings, collections=["default"])
        assert [e.name for e in errors] == ["bombe.md"] and "Aliase" in errors[0].de
        assert "nur-bauamt" not in {p.id for p in programmes}
    assert calls.count(str(bomb)) == 1 and len(calls) == len(set(calls))   # parsed once, not per page load
    assert "nur-bauamt" in {p.id for p in load_all(settings, collections=["default", "bauamt"])[0]}
    bomb.write_text("---\nid: kaputt\n---\n", encoding="utf-8")        # a change is parsed again
    load_all(settings, collections=["default"])
    assert calls.count(str(bomb)) == 2


# --------------------------------------------------------------------------- iCalendar


def test_ics_parses_with_dates_and_stable_uids(tmp_path):
    programmes, _ = load_programmes(CORPUS)
    stamp = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.timezone.utc)
    cal = Calendar.from_ical(deadlines_ics(programmes, today=TODAY, stamp=stamp))
    events = list(cal.walk("VEVENT"))
    # only one open programme has a fixed deadline
    assert [str(e["UID"]) for e in events] == ["foerderfrist-nrw-digitale-infrastruktur-koordination@pilot-assistant.local"]
    e = events[0]
    assert e.decoded("DTSTART") == dt.date(2027, 8, 31) and e.decoded("DTEND") == dt.date(2027, 9, 1)
    assert e.decoded("DTSTAMP") == stamp
    assert str(e["SUMMARY"]) == "Förderfrist: Richtlinie Digitale Infrastruktur-Koordination (Nordrhein-Westfalen)"
    desc = str(e["DESCRIPTION"])
    assert "80 %" in desc and "210.000 €" in desc and "https://foerdermittelkompass.reflecta.org" in desc
    assert "Frist unsicher" in desc
    alarms = list(e.walk("VALARM"))
    assert len(alarms) == 1 and alarms[0].decoded("TRIGGER") == -dt.timedelta(days=14)

    path = write_ics(tmp_path / "out" / "fristen.ics", programmes, today=TODAY, include_closed=True,
                     reminder_days=None, stamp=stamp)
    events = list(Calendar.from_ical(path.read_bytes()).walk("VEVENT"))
    dates = {str(e["UID"]).split("@")[0].removeprefix("foerderfrist-"): e.decoded("DTSTART") for e in events}
    assert dates == {"bw-future-communities": dt.date(2019, 7, 31), "modellprojekte-smart-cities": dt.date(2021, 3, 14),
                     "eu-netzerocities-pilot-cities": dt.date(2023, 11, 6),
                     "eu-cef-digital-5g-smart-communities": dt.date(2024, 2, 20),
                     "ki-leuchttuerme-umwelt-klima": dt.date(2024, 5, 17), "mfund": dt.date(2025, 12, 31),
                     "nrw-digitale-infrastruktur-koordination": dt.date(2027, 8, 31)}
    assert not any(list(e.walk("VALARM")) for e in events)
    assert uid(programmes[0]) == "foerderfrist-bw-future-communities@pilot-assistant.local"


# --------------------------------------------------------------------------- CLI contract


def test_cli_match_json(tmp_path):
    idea = tmp_path / "idee.txt"
    idea.write_text(DESK_BY, encoding="utf-8")
    proc = run_cli("funding", "match", "--idea", str(idea), "--applicant", "landkreis", "--state", "BY",
                   "--budget", "50000", "--today", "2026-11-24", "--json", "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"idea", "applicant", "state", "budget", "today", "results", "excluded", "errors"} <= set(data)
    top = data["results"][0]
    assert top["id"] == "by-digitales-rathaus" and top["rank"] == 1
    assert top["financing"]["grant"] == 20000.0 and top["financing"]["own_share"] == 30000.0
    assert top["deadline"]["deadline"] is None and top["procedure"] == "one-stage"
    assert top["why"][0]["source"].endswith("by-digitales-rathaus.md") and top["why"][0]["quote"]
    assert {"uncertain", "uncertainties", "required_documents", "criteria", "fit"} <= set(top)
    assert {e["id"] for e in data["excluded"]} >= {"mfund", "rp-efre-2021-2027"}
    assert data["idea"] == DESK_BY   # read from the file


def test_cli_bad_input_and_list_and_ics(tmp_path):
    data_dir = str(tmp_path / "data")
    bad = run_cli("funding", "match", "--idea", "KI-Pilot", "--budget", "viel", "--data-dir", data_dir)
    assert bad.returncode == 2 and "keine Zahl" in bad.stderr and "not a number" in bad.stderr
    bad = run_cli("funding", "match", "--idea", "KI-Pilot", "--state", "XY", "--data-dir", data_dir)
    assert bad.returncode == 2 and "'XY'" in bad.stderr and "RP" in bad.stderr

    folder = tmp_path / "funding"
    shutil.copytree(CORPUS, folder)
    (folder / "rp-kipki.md").write_text("---\ntype: funding\nid: rp-kipki\n# no closing line\n", encoding="utf-8")
    listing = run_cli("funding", "list", "--programmes", str(folder), "--json", "--today", "2026-11-24",
                      "--data-dir", data_dir)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert len(data["programmes"]) == 16 and [e["file"] for e in data["errors"]] == ["rp-kipki.md"]
    assert "rp-kipki.md" in listing.stderr

    out = tmp_path / "fristen.ics"
    ics = run_cli("funding", "ics", "--out", str(out), "--today", "2026-11-24", "--json", "--data-dir", data_dir)
    assert ics.returncode == 0, ics.stderr
    assert json.loads(ics.stdout)["events"] == [{"id": "nrw-digitale-infrastruktur-koordination",
                                                 "deadline": "2027-08-31"}]
    assert len(list(Calendar.from_ical(out.read_bytes()).walk("VEVENT"))) == 1


# --------------------------------------------------------------------------- UI tab


def test_ui_tab_builds_and_renders(settings_mod, desk_by):
    import types

    import gradio as gr

    from assistant.ui import funding_tab

    ctx = types.SimpleNamespace(settings=settings_mod, on_load=[])
    with gr.Blocks():
        funding_tab.build(ctx)
    assert isinstance(ctx.selected_programme, gr.State) and len(ctx.on_load) == 1
    rows = funding_tab.table_rows(desk_by)
    assert rows[0][:5] == ["Förderrichtlinie digitales Rathaus (FöRdR) – Bayern", f"{desk_by.results[0].fit:.2f}",
                           "80 %", "20.000 €", "30.000 €"]
    details = funding_tab.details_markdown(desk_by.results[0])
    assert "by-digitales-rathaus.md" in details and "Unsicher" in details
