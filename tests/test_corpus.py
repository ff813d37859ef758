"""The starter corpus: schema of the funding programmes, reports, the fictional
Musterstadt council papers, the reproducible PDF build, and the programme loader."""
from __future__ import annotations

import datetime as dt
import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.frontmatter import FrontMatterError
from assistant.frontmatter import split as split_front_matter
from assistant.funding.programmes import FIELDS, OPTIONAL, Programme, load_programmes, validate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
FUNDING = CORPUS / "funding"
REPORTS = CORPUS / "reports"
COUNCIL = CORPUS / "council"
COUNCIL_SRC = COUNCIL / "src"
TODAY = dt.date(2026, 11, 24)
URL = re.compile(r"^https?://\S+$")

FUNDING_FILES = sorted(FUNDING.glob("*.md"))
REPORT_FILES = sorted(REPORTS.glob("*.md"))
COUNCIL_FILES = sorted(COUNCIL_SRC.glob("*.md"))

FUNDING_SECTIONS = ("## Ziel", "## Wer wird gefördert", "## Förderhöhe", "## Fristen und Verfahren",
                    "## Erforderliche Unterlagen", "## Hinweise / Unsicherheiten", "## Quellen")
REPORT_SECTIONS = ("## Wer", "## Wann", "## Was", "## Umfang", "## Kosten", "## Ergebnisse",
                   "## Probleme und Lehren", "## Quellen")
COUNCIL_FIELDS = ("title", "type", "paper_number", "paper_type", "date", "committee", "municipality")
PAPER_TYPES = {"Antrag", "Anfrage", "Antwort", "Beschlussvorlage", "Niederschrift", "Mitteilung"}


def _build_module():
    spec = importlib.util.spec_from_file_location("corpus_build_pdfs", CORPUS / "build_pdfs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return _build_module()


def _fm(path: Path) -> tuple[dict, str]:
    return split_front_matter(path.read_text(encoding="utf-8"))


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [" ".join((page.extract_text() or "").split()) for page in PdfReader(path).pages]


# --------------------------------------------------------------------------- funding


def test_at_least_twelve_funding_programmes():
    assert len(FUNDING_FILES) >= 12


@pytest.mark.parametrize("path", FUNDING_FILES, ids=lambda p: p.name)
def test_funding_front_matter_matches_schema(path: Path):
    fm, body = _fm(path)
    assert validate(fm, today=TODAY) == [], path.name
    assert set(FIELDS) <= set(fm) <= set(FIELDS) | set(OPTIONAL), f"{path.name}: genau die Schema-Felder erwartet"
    assert fm["id"] == path.stem, "Dateiname = id"
    assert any(URL.match(s) for s in fm["sources"])
    assert body.strip()
    for heading in FUNDING_SECTIONS:
        assert f"\n{heading}\n" in body, f"{path.name}: Abschnitt {heading} fehlt"
    for url in fm["sources"]:
        assert url in body, f"{path.name}: Quelle {url} nicht im Text zitiert"


@pytest.mark.parametrize("path", FUNDING_FILES, ids=lambda p: p.name)
def test_funding_status_consistent_with_today(path: Path):
    fm, body = _fm(path)
    if fm["deadline"] is not None and _iso(fm["deadline"]) < TODAY.isoformat():
        assert fm["status"] == "closed", f"{path.name}: Frist abgelaufen, Status muss closed sein"
    if fm["uncertain"]:
        section = body.split("## Hinweise / Unsicherheiten", 1)[1].split("\n## ", 1)[0]
        assert section.strip(), f"{path.name}: unsichere Felder ohne Erläuterung"


def test_funding_loader_loads_everything():
    programmes, errors = load_programmes(FUNDING)
    assert errors == []
    assert len(programmes) == len(FUNDING_FILES) >= 12
    assert len({p.id for p in programmes}) == len(programmes)
    assert {p.level for p in programmes} == {"federal", "state", "eu"}
    assert {"grant", "loan"} <= {p.instrument for p in programmes}
    assert all(isinstance(p, Programme) and p.body.strip() and p.path for p in programmes)
    assert all(p.deadline is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.deadline) for p in programmes)
    assert all(p.last_checked == "2026-11-23" for p in programmes)
    assert any(p.open_on(TODAY) for p in programmes)
    kfw = next(p for p in programmes if p.id == "kfw-208-investitionskredit-kommunen")
    assert kfw.instrument == "loan" and kfw.max_amount == 150_000_000
    assert set(kfw.meta()) == set(FIELDS)


# --------------------------------------------------------------------------- reports


def test_at_least_ten_reports():
    assert len(REPORT_FILES) >= 10


@pytest.mark.parametrize("path", REPORT_FILES, ids=lambda p: p.name)
def test_report_front_matter_and_sections(path: Path):
    fm, body = _fm(path)
    assert set(fm) >= {"title", "type", "municipality", "date", "topics", "sources"}
    assert fm["type"] == "report"
    assert isinstance(fm["title"], str) and fm["title"].strip()
    assert isinstance(fm["municipality"], str) and fm["municipality"].strip()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", _iso(fm["date"]))
    assert isinstance(fm["topics"], list) and fm["topics"]
    assert fm["sources"] and all(URL.match(s) for s in fm["sources"])
    for heading in REPORT_SECTIONS:
        assert f"\n{heading}\n" in body, f"{path.name}: Abschnitt {heading} fehlt"
    for url in fm["sources"]:
        assert url in body, f"{path.name}: Quelle {url} nicht im Text zitiert"


# --------------------------------------------------------------------------- council


def test_at_least_eight_council_papers():
    assert len(COUNCIL_FILES) >= 8


@pytest.mark.parametrize("path", COUNCIL_FILES, ids=lambda p: p.name)
def test_council_paper_metadata(path: Path):
    fm, body = _fm(path)
    assert set(fm) == set(COUNCIL_FIELDS)
    assert fm["type"] == "council"
    assert re.fullmatch(r"\d{4}/\d{4}", str(fm["paper_number"]))
    assert path.name.startswith(str(fm["paper_number"]).replace("/", "-") + "_")
    assert fm["paper_type"] in PAPER_TYPES
    assert isinstance(fm["date"], dt.date) and dt.date(2025, 1, 1) <= fm["date"] <= dt.date(2026, 12, 31)
    assert str(fm["date"]).split("-")[0] == str(fm["paper_number"]).split("/")[1], "Jahr der Drucksache"
    assert isinstance(fm["committee"], str) and fm["committee"].strip()
    assert fm["municipality"] == "Musterstadt (fiktiv)"
    assert "Fiktives Beispiel" in body, "jedes Musterstadt-Dokument muss als fiktiv markiert sein"
    assert str(fm["paper_number"]) in body


def test_council_formats_follow_the_seeds():
    papers = {str(_fm(p)[0]["paper_number"]): (_fm(p)[0], _fm(p)[1]) for p in COUNCIL_FILES}
    assert len(papers) == len(COUNCIL_FILES), "Drucksachen-Nummern eindeutig"
    types = {fm["paper_type"] for fm, _ in papers.values()}
    assert {"Antrag", "Antwort", "Beschlussvorlage", "Niederschrift"} <= types
    for fm, body in papers.values():
        if fm["paper_type"] == "Antrag":
            assert "## Beschlussvorschlag" in body and "## Sachverhalt" in body
        if fm["paper_type"] == "Beschlussvorlage":
            assert "## Beschlussvorschlag" in body and "## Sachverhalt" in body
            assert "## Finanzielle Auswirkungen" in body
        if fm["paper_type"] == "Antwort":
            assert f"Antwort zur Anfrage Nr. {fm['paper_number']}" in body
        if fm["paper_type"] == "Niederschrift":
            assert "Auszug" in body and "Abstimmungsergebnis" in body
    # papers reference each other by number
    for paper, cites in {"0584/2025": "0087/2025", "0631/2025": "0584/2025", "0036/2026": "0584/2025",
                         "0094/2026": "0036/2026", "0121/2026": "0036/2026", "0342/2026": "0094/2026"}.items():
        assert cites in papers[paper][1], f"{paper} sollte {cites} zitieren"


def test_pdfs_and_sidecars_exist(build):
    names = build.pdf_names()
    assert len(names) >= 6
    for name in names:
        pdf = COUNCIL / name
        assert pdf.is_file() and pdf.stat().st_size > 1000, name
        sidecar = COUNCIL / f"{name}.meta.yaml"
        assert sidecar.is_file(), f"Sidecar fehlt: {sidecar.name}"
        meta = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
        src_meta, _ = _fm(COUNCIL_SRC / name.replace(".pdf", ".md"))
        assert meta == {k: src_meta[k] for k in COUNCIL_FIELDS}
    markdown = [COUNCIL / f"{stem}.md" for stem in build.MARKDOWN_ONLY]
    assert 1 <= len(markdown) <= 2
    for md in markdown:
        assert md.read_bytes() == (COUNCIL_SRC / md.name).read_bytes()
    # nothing else lies in council/ that the build does not make
    expected = set(names) | {f"{n}.meta.yaml" for n in names} | {m.name for m in markdown} | {"src"}
    assert {p.name for p in COUNCIL.iterdir()} == expected


def test_pdf_pages_metadata_and_text(build):
    from pypdf import PdfReader

    page_counts = []
    for name in build.pdf_names():
        path = COUNCIL / name
        reader = PdfReader(path)
        src_meta, src_body = _fm(COUNCIL_SRC / name.replace(".pdf", ".md"))
        # every page break is planned: no automatic overflow moves facts to another page
        assert len(reader.pages) == src_body.count(build.PAGEBREAK) + 1, name
        page_counts.append(len(reader.pages))
        assert reader.metadata.title == src_meta["title"]
        assert str(src_meta["paper_number"]) in reader.metadata.subject
        assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)   # A4
        pages = _pdf_pages(path)
        assert all(text.strip() for text in pages), f"{name}: leere Seite"
        assert all("fiktives Beispiel" in text for text in pages), f"{name}: Fiktions-Hinweis fehlt"
    assert sum(2 <= n <= 4 for n in page_counts) >= 3


@pytest.mark.parametrize("stem,page,fact", [
    ("0584-2025_beschlussvorlage-innovationsstrategie", 1, "Stabsstelle „Digitale Innovation“ mit 3,0 Stellen"),
    ("0584-2025_beschlussvorlage-innovationsstrategie", 3, "weniger als 5 Punkte hinter dem besten"),
    ("0584-2025_beschlussvorlage-innovationsstrategie", 4, "M8 Exit-Konzept für Bürosoftware und E-Mail bis 31.03.2027"),
    ("0584-2025_beschlussvorlage-innovationsstrategie", 5, "1.573.000 Euro"),
    ("0631-2025_niederschrift-stadtrat-innovationsstrategie", 2, "38 Ja-Stimmen, 10 Nein-Stimmen, 3 Enthaltungen"),
    ("0036-2026_beschlussvorlage-ki-assistent-musa", 2, "9.800 Kilowattstunden"),
    ("0036-2026_beschlussvorlage-ki-assistent-musa", 3, "Hardware (zwei GPU-Server) 74.000"),
    ("0121-2026_beschlussvorlage-urbane-datenplattform", 2, "82 von 100 Punkten"),
    ("0188-2026_mitteilung-opendesk-evaluation", 2, "41 der 60 Teilnehmenden (68 Prozent)"),
    ("0231-2025_antwort-digitale-souveraenitaet", 1, "1.184.000 Euro"),
    ("0342-2026_mitteilung-zwischenbericht-musa", 2, "261 von 300 geprüften Antworten"),
    ("0342-2026_mitteilung-zwischenbericht-musa", 3, "141.300 Euro"),
])
def test_facts_sit_on_specific_pages(stem: str, page: int, fact: str):
    pages = _pdf_pages(COUNCIL / f"{stem}.pdf")
    assert fact in pages[page - 1], f"'{fact}' nicht auf Seite {page}"
    assert sum(fact in text for text in pages) == 1


def test_rebuild_is_byte_identical(build, tmp_path: Path):
    written = build.build(tmp_path)
    assert len(written) >= 6
    for fresh in written:
        committed = COUNCIL / fresh.name
        assert committed.is_file(), f"{fresh.name} nicht eingecheckt – build_pdfs.py ausführen"
        assert fresh.read_bytes() == committed.read_bytes(), \
            f"{fresh.name} veraltet oder nicht reproduzierbar – build_pdfs.py ausführen"


def test_ingestignore_keeps_sources_out():
    lines = [l.strip() for l in (CORPUS / ".ingestignore").read_text(encoding="utf-8").splitlines()]
    assert "council/src/" in lines


def test_no_document_is_empty():
    for path in [*FUNDING_FILES, *REPORT_FILES, *COUNCIL_FILES, *COUNCIL.glob("*.md")]:
        fm, body = _fm(path)
        assert fm and len(body.split()) >= 80, f"{path.name} ist (fast) leer"
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "fiktiv" in readme and "--type council" in readme


# --------------------------------------------------------------------------- loader and schema


def test_broken_file_is_reported_by_name_while_others_load(tmp_path: Path):
    for src in FUNDING_FILES[:2]:
        shutil.copy(src, tmp_path / src.name)
    (tmp_path / "kaputt.md").write_text("---\nid: kaputt\nname: [nicht geschlossen\n---\nText\n", encoding="utf-8")
    fm, body = _fm(FUNDING_FILES[0])
    fm.pop("funder")
    fm["id"] = "ohne-foerdergeber"
    (tmp_path / "ohne-foerdergeber.md").write_text(
        "---\n" + yaml.safe_dump(fm, allow_unicode=True) + "---\n" + body, encoding="utf-8")
    (tmp_path / "kein-front-matter.md").write_text("# Nur Text\n", encoding="utf-8")

    programmes, errors = load_programmes(tmp_path)

    assert sorted(p.id for p in programmes) == sorted(p.stem for p in FUNDING_FILES[:2])
    by_name = {e.name: e for e in errors}
    assert set(by_name) == {"kaputt.md", "ohne-foerdergeber.md", "kein-front-matter.md"}
    assert "Zeile" in str(by_name["kaputt.md"]) and "line" in by_name["kaputt.md"].en
    assert "funder" in str(by_name["ohne-foerdergeber.md"])
    assert str(by_name["kaputt.md"]).startswith("kaputt.md: ")


def test_duplicate_id_is_an_error(tmp_path: Path):
    shutil.copy(FUNDING_FILES[0], tmp_path / "a.md")
    shutil.copy(FUNDING_FILES[0], tmp_path / "b.md")
    programmes, errors = load_programmes([tmp_path / "a.md", tmp_path / "b.md"])
    assert len(programmes) == 1 and [e.name for e in errors] == ["b.md"]
    assert "a.md" in str(errors[0])


def test_split_front_matter():
    assert split_front_matter("# Titel\n") == ({}, "# Titel\n")
    fm, body = split_front_matter("\ufeff---\r\ntitle: X\r\n---\r\nText\r\n")
    assert fm == {"title": "X"} and body == "Text\r\n"
    with pytest.raises(FrontMatterError) as exc:
        split_front_matter("---\ntitle: ok\nid: [a, b\nname: x\n---\nText")
    assert exc.value.line is not None and exc.value.line >= 3
    assert f"Zeile {exc.value.line}" in exc.value.de
    with pytest.raises(FrontMatterError) as exc:
        split_front_matter("---\ntitle: ok\n")
    assert "---" in exc.value.de
    with pytest.raises(FrontMatterError):
        split_front_matter("---\n- a\n- b\n---\n")


def test_validate_reports_each_problem():
    good, _ = _fm(FUNDING / "modellprojekte-smart-cities.md")
    assert validate(good, today=TODAY) == []

    def problems(**changes):
        fm = {**good, **changes}
        return " | ".join(validate({k: v for k, v in fm.items() if v is not ...}, today=TODAY))

    assert "funder" in problems(funder=...)
    assert "kebab-case" in problems(id="Smart Cities")
    assert "level" in problems(level="city")
    assert "region" in problems(region=["XX"])
    assert "applicants" in problems(applicants=["behoerde"])
    assert "instrument" in problems(instrument="gift")
    assert "funding_rate" in problems(funding_rate=1.5)
    assert "funding_rate" in problems(funding_rate="65 %")
    assert "own_share" in problems(funding_rate=0.9, own_share=0.35)
    assert "max_amount" in problems(max_amount=-5)
    assert "deadline" in problems(deadline="31.12.2025")
    assert "last_checked" in problems(last_checked=None)
    assert "http" in problems(sources=["foerderdatenbank.de"])
    assert "sources" in problems(sources=[])
    assert "uncertain" in problems(uncertain=["gibtsnicht"])
    assert "unbekanntes Feld" in problems(extra="x")
    assert "title" in problems(title="anders")
    assert "abgelaufen" in problems(status="open")            # deadline 2021 has passed
    assert validate([]) != []                                  # type: ignore[arg-type]
