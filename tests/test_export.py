"""Exports parsed back: every template heading with its outline level, inline citations, the
computed figures and the provenance appendix in ODT (odfpy), DOCX (python-docx), PDF (pypdf;
LibreOffice and the pure-Python renderer) and Markdown; LibreOffice opens the ODT and DOCX;
bad paths fail clearly. The slow test runs the real CLI with the small model."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from draftkit import filled_draft, make_corpus

from assistant.drafting import export
from assistant.errors import UsageError, UserError

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_soffice = pytest.mark.skipif(not SOFFICE, reason="LibreOffice (soffice) nicht installiert")
APPENDIX = "Anhang: Herkunft und Prüfung"


@pytest.fixture
def draft(bare_settings):
    return filled_draft(bare_settings)


def expected_headings(d) -> list[tuple[int, str]]:
    return [(s.level, s.heading) for s in d.sections]


def odt_contents(path: Path) -> tuple[list[tuple[int, str]], str]:
    from odf import teletype, text
    from odf.opendocument import load

    doc = load(str(path))
    heads = [(int(h.getAttribute("outlinelevel")), teletype.extractText(h)) for h in doc.getElementsByType(text.H)]
    body = "\n".join(teletype.extractText(p) for p in doc.getElementsByType(text.P))
    return heads, body


def heads_text(heads) -> str:
    return "\n".join(h for _, h in heads)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def soffice_convert(src: Path, outdir: Path) -> Path:
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{outdir}/profile", "--headless", "--norestore",
                    "--convert-to", "pdf", "--outdir", str(outdir), str(src)], capture_output=True, timeout=180,
                   check=True)
    return outdir / (src.stem + ".pdf")


def assert_content(text: str, d) -> None:
    for s in d.sections:
        assert s.heading in text
    assert "[1]" in text and "Drucksache 0412/2025" in text
    assert "162.500 €" in text and "87.500 €" in text       # computed, from finance.py
    assert "⚠ Frist abgelaufen am 14.03.2021" in text
    assert APPENDIX in text and "draft/v1" in text and "beschlussvorlage@2" in text and d.model in text
    assert "ENTWURF – nicht freigegeben" in text             # not every section released yet
    assert "/corpus/council/antrag.md" not in text and "antrag.md" in text   # file names, never server paths


@pytest.mark.parametrize("template", ["beschlussvorlage", "vorhabenbeschreibung", "eu-part-b"])
def test_odt_has_every_heading_with_its_outline_level(bare_settings, tmp_path, template):
    d = filled_draft(bare_settings, template)
    heads, body = odt_contents(export.export(d, tmp_path / "x.odt"))
    assert heads[:len(d.sections)] == expected_headings(d)
    assert (1, "Anhang: Herkunft und Prüfung" if d.language == "de" else "Annex: provenance and checks") in heads


def test_odt_citations_figures_lists_and_provenance(draft, tmp_path):
    from odf import text
    from odf.opendocument import load

    path = export.export(draft, tmp_path / "entwurf.odt")
    heads, body = odt_contents(path)
    assert_content("\n".join(h for _, h in heads) + "\n" + body, draft)
    doc = load(str(path))
    assert doc.getElementsByType(text.List), "bullet lists must be real lists"
    assert "Checkliste des Fördergebers" in heads_text(heads) and "⚠ offen" in body and "✓ erfüllt" in body
    assert "Finanzielle Auswirkungen (Haushaltsauswirkungen)" in body and "Erforderliche Unterlagen" in body


def test_docx_headings_and_content(draft, tmp_path):
    import docx

    doc = docx.Document(str(export.export(draft, tmp_path / "entwurf.docx")))
    heads = [(int(p.style.name.split()[-1]), p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert heads[:len(draft.sections)] == expected_headings(draft)
    assert doc.paragraphs[0].style.name == "Title"
    cells = "\n".join(c.text for t in doc.tables for r in t.rows for c in r.cells)
    header = "\n".join(p.text for p in doc.sections[0].header.paragraphs)   # the watermark, on every page
    assert_content("\n".join(p.text for p in doc.paragraphs) + "\n" + cells + "\n" + header, draft)
    assert any(p.style.name == "List Bullet" for p in doc.paragraphs)


@needs_soffice
def test_pdf_through_libreoffice(draft, tmp_path):
    path = export.export(draft, tmp_path / "entwurf.pdf")
    assert path.read_bytes()[:5] == b"%PDF-"
    assert_content(pdf_text(path), draft)


def test_pdf_without_libreoffice_uses_fpdf(draft, tmp_path, monkeypatch):
    monkeypatch.setattr(export.shutil, "which", lambda name: None)
    path = export.export(draft, tmp_path / "entwurf.pdf")
    text = pdf_text(path)
    assert_content(text, draft)
    from pypdf import PdfReader
    outline = [o["/Title"] for o in PdfReader(str(path)).outline if isinstance(o, dict)]
    assert outline[:3] == ["Vorlage", "Beratungsfolge", "Betreff"]


def test_markdown(draft, tmp_path):
    md = export.export(draft, tmp_path / "entwurf.md").read_text(encoding="utf-8")
    assert md.startswith("**ENTWURF – nicht freigegeben**\n\n# Beschlussvorlage: KI-Assistent im Bürgerbüro")
    assert "\n## Betreff\n" in md and "\n### Ausgangslage\n" in md and "\n## Anlagen\n" in md
    assert "| Ertrag (beantragte Zuwendung) | 162.500 € aus „Modellprojekte Smart Cities" in md
    assert "| Eigenanteil der Kommune | 87.500 € |" in md
    assert_content(md, draft)


@needs_soffice
@pytest.mark.parametrize("ext", [".odt", ".docx"])
def test_libreoffice_opens_the_export(draft, tmp_path, ext):
    src = export.export(draft, tmp_path / f"entwurf{ext}")
    pdf = soffice_convert(src, tmp_path)
    text = pdf_text(pdf)
    for s in draft.sections:
        assert s.heading in text
    assert APPENDIX in text


def test_unwritable_or_wrong_paths_fail_clearly(draft, tmp_path):
    blocker = tmp_path / "datei"
    blocker.write_text("kein Ordner")
    with pytest.raises(UserError, match="Export nach .* nicht möglich"):
        export.export(draft, blocker / "entwurf.odt")
    with pytest.raises(UserError, match="ist ein Verzeichnis"):
        export.export(draft, tmp_path)
    with pytest.raises(UsageError, match="Exportformat .rtf"):
        export.export(draft, tmp_path / "entwurf.rtf")
    assert not list(tmp_path.glob(".*tmp*")), "no temp file left behind"


def test_an_unfinished_draft_exports_with_placeholders(bare_settings, tmp_path):
    from assistant.drafting import runner

    d = runner.start_draft(runner.Idea("Test", "Eine Idee."), "beschlussvorlage", bare_settings)
    md = export.export(d, tmp_path / "x.md").read_text(encoding="utf-8")
    assert md.count("[Abschnitt noch nicht erstellt]") == 5


# ----------------------------------------------------------------------------- the real CLI


@pytest.mark.slow
def test_cli_draft_beschlussvorlage_to_every_format(settings, tmp_path, test_model_path):
    from assistant.ingest.pipeline import ingest

    ingest([make_corpus(tmp_path / "corpus")], settings)
    env = {"PILOT_ASSISTANT_LLM__MAX_TOKENS": "48"}
    common = ["--data-dir", str(settings.data_dir), "--model", str(test_model_path), "--threads", "1"]
    out = tmp_path / "x.odt"
    r = run_cli("draft", "--template", "beschlussvorlage", "--idea",
                "Ein lokaler KI-Assistent auf Open-Source-Basis beantwortet im Bürgerbüro Fragen zu Bürgerdiensten.",
                "--title", "KI-Assistent im Bürgerbüro", "--budget", "250.000", "--duration", "18",
                "--programme", "modellprojekte-smart-cities", "--out", str(out), "--json", *common, env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert "[5/5] Datenschutz und IT-Sicherheit" in r.stderr                 # progress per generated section
    assert data["complete"] and data["output"] == str(out)
    assert [s["status"] for s in data["sections"]] == ["drafted"] * 14
    assert data["profile"]["budget"]["total"] == 250000 and data["review"]["released"] is False
    assert data["computed"]["financing"]["grant"] == 162500.0
    assert any(not r_["covered"] for r_ in data["requirements"])
    heads, body = odt_contents(out)
    assert [h for h in heads[:14]] == [(s["level"], s["heading"]) for s in data["sections"]]
    assert APPENDIX in [h for _, h in heads] and "draft/v2" in body
    assert "Der Rat beschließt die Durchführung des Pilotprojekts „KI-Assistent im Bürgerbüro“" in body
    for ext in (".docx", ".pdf", ".md"):   # the same draft, exported again without generating
        r = run_cli("draft", "--resume", data["draft_id"], "--out", str(tmp_path / f"x{ext}"), "--json", *common)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"x{ext}").stat().st_size > 0
    assert "Datenschutz und IT-Sicherheit" in pdf_text(tmp_path / "x.pdf")
    if SOFFICE:
        assert "Beschlussvorschlag" in pdf_text(soffice_convert(out, tmp_path / "lo"))


def test_cli_errors_are_clear(bare_settings, tmp_path):
    common = ["--data-dir", str(bare_settings.data_dir)]
    r = run_cli("draft", "--template", "gibtsnicht", "--idea", "Eine Idee", "--out", str(tmp_path / "x.odt"), *common)
    assert r.returncode == 2 and "Unbekannte Vorlage 'gibtsnicht'" in r.stderr
    r = run_cli("draft", "--idea", "", "--out", str(tmp_path / "x.odt"), *common)
    assert r.returncode == 2 and "Projektidee ist leer" in r.stderr
    r = run_cli("draft", "--idea", "Idee", "--programme", "nix", "--out", str(tmp_path / "x.odt"), "--json", *common)
    assert r.returncode == 2 and json.loads(r.stdout)["error"].startswith("Unbekanntes Förderprogramm 'nix'")
    r = run_cli("draft", "--idea", "Idee", "--out", str(tmp_path / "x.txt"), *common)
    assert r.returncode == 2 and "--out muss auf" in r.stderr
    r = run_cli("draft", "--list-templates", "--json", *common)
    assert {t["name"] for t in json.loads(r.stdout)["templates"]} >= {"beschlussvorlage", "eu-part-b"}
