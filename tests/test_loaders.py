"""Loaders on real files of every format, written by tests/filemakers.py (no parser mocks)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from filemakers import (
    COUNCIL_PAPER,
    make_docx,
    make_html,
    make_markdown,
    make_odt,
    make_pdf,
    make_sidecar,
    make_text,
    make_truncated,
)

from assistant.config import IngestSettings
from assistant.errors import UserError
from assistant.ingest.loaders import SUPPORTED_EXTENSIONS, LoadError, decode_text, is_sidecar, load

SETTINGS = IngestSettings(ocr=False)
BLOCKS = [("h1", "Förderrichtlinie Digitale Kommune"),
          ("p", "Gefördert werden Kommunen unter 50.000 Einwohnern."),
          ("h2", "1. Zuwendungszweck"), ("bullet", "Online-Dienste"), ("bullet", "Offene Daten"),
          ("table", [["Posten", "Betrag"], ["Software", "45.000 EUR"]]), ("p", "Schlusssatz.")]


def test_pdf_pages_are_numbered_from_one_and_keep_their_own_text(tmp_path: Path) -> None:
    pages = ["Erste Seite über Förderung.", "Zweite Seite: Größe, Maß.", "Dritte Seite mit Beschluss."]
    path = make_pdf(tmp_path / "vorlage.pdf", pages, title="Vorlage 2024/117")
    doc = load(path, settings=SETTINGS)
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "Erste Seite" in doc.pages[0].text and "Zweite" not in doc.pages[0].text
    assert "Größe, Maß" in doc.pages[1].text
    assert "Beschluss" in doc.pages[2].text
    assert doc.title == "Vorlage 2024/117"
    assert doc.source == str(path) and not doc.warnings


def test_pdf_running_heads_and_feet_are_page_furniture_not_text(tmp_path: Path) -> None:
    head = "Musterstadt · Beschlussvorlage · Drucksache 0036/2026 27.01.2026"
    bodies = ["Der Stadtrat beschließt den Pilotbetrieb.", "Am Pilot nehmen 150 Beschäftigte teil.",
              "Die Hardware kostet 74.000 Euro."]
    pages = [f"{head}\n{body}\nKeine echte Ratsvorlage Seite {n} von 3" for n, body in enumerate(bodies, 1)]
    doc = load(make_pdf(tmp_path / "vorlage.pdf", pages), settings=SETTINGS)
    texts = [p.text for p in doc.pages]
    assert all(body in text for body, text in zip(bodies, texts))
    assert head in texts[0]                                   # the document's number and date, once
    assert not any(head in t for t in texts[1:])
    assert not any("Seite" in t for t in texts)               # page numbers differ: still one running foot


def test_pdf_without_title_metadata_is_named_after_the_file(tmp_path: Path) -> None:
    doc = load(make_pdf(tmp_path / "Bericht_Breitband.pdf", ["Text"]), settings=SETTINGS)
    assert doc.title == "Bericht Breitband"


@pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract not installed")
def test_scanned_pdf_page_is_ocrd(tmp_path: Path) -> None:
    scan = "Förderbescheid für die Gemeinde Musterhausen\nAktenzeichen 4711-0815"
    path = make_pdf(tmp_path / "scan.pdf", ["Getippte erste Seite.", scan], scanned=[2])
    doc = load(path, settings=IngestSettings(ocr=True))
    assert not doc.pages[0].ocr and doc.pages[1].ocr
    assert "Musterhausen" in doc.pages[1].text and "4711-0815" in doc.pages[1].text
    assert "Förderbescheid" in doc.pages[1].text


@pytest.mark.skipif(not shutil.which("tesseract"), reason="tesseract not installed")
def test_ocr_stops_at_its_time_budget_and_keeps_the_typed_pages(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["Getippte Seite.", "Bild eins", "Bild zwei"], scanned=[2, 3])
    doc = load(path, settings=IngestSettings(ocr=True, timeout_s=0.001))
    assert doc.pages[0].text == "Getippte Seite."
    assert [p.text for p in doc.pages[1:]] == ["", ""]
    assert all("OCR übersprungen" in w for w in doc.warnings) and len(doc.warnings) == 2


def test_scanned_page_without_ocr_is_reported_as_having_no_text_layer(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["Getippte Seite.", "Nur ein Bild"], scanned=[2])
    doc = load(path, settings=IngestSettings(ocr=False))
    assert doc.pages[1].text == "" and "Seite 2: keine Textebene (no text layer)" in doc.warnings


def test_pdf_that_is_only_scans_without_ocr_fails_with_a_reason(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["Nur ein Bild"], scanned=[1])
    with pytest.raises(LoadError, match="Kein Text gefunden.*keine Textebene"):
        load(path, settings=IngestSettings(ocr=False))


def test_encrypted_pdf(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="passwortgeschützt") as info:
        load(make_pdf(tmp_path / "geheim.pdf", ["Geheim"], user_password="s3cret"), settings=SETTINGS)
    assert isinstance(info.value, UserError) and info.value.fix
    # only an owner password (printing/copying restricted): readable like any other PDF
    doc = load(make_pdf(tmp_path / "owner.pdf", ["Offen lesbar"], owner_password="s3cret"), settings=SETTINGS)
    assert "Offen lesbar" in doc.pages[0].text


def test_truncated_pdf_fails_cleanly(tmp_path: Path) -> None:
    full = make_pdf(tmp_path / "full.pdf", ["Seite eins " * 50, "Seite zwei " * 50, "Seite drei " * 50])
    with pytest.raises(LoadError, match="PDF beschädigt"):
        load(make_truncated(tmp_path / "cut.pdf", full, keep=0.4), settings=SETTINGS)


def test_pdf_over_max_pages_is_refused(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "lang.pdf", ["a", "b", "c"])
    with pytest.raises(LoadError, match="zu viele Seiten"):
        load(path, settings=IngestSettings(max_pages=2))


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = load(make_docx(tmp_path / "r.docx", BLOCKS, title="Richtlinie"), settings=SETTINGS)
    text = doc.pages[0].text
    assert doc.title == "Richtlinie" and doc.pages[0].number is None
    assert "# Förderrichtlinie Digitale Kommune" in text.splitlines()
    assert "## 1. Zuwendungszweck" in text.splitlines()
    assert "- Online-Dienste\n- Offene Daten" in text
    assert "Posten | Betrag\nSoftware | 45.000 EUR" in text
    order = [text.index(word) for word in ("Gefördert", "Zuwendungszweck", "Software", "Schluss")]
    assert order == sorted(order)


def test_odt_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = load(make_odt(tmp_path / "r.odt", BLOCKS, title="Richtlinie ODT"), settings=SETTINGS)
    text = doc.pages[0].text
    assert doc.title == "Richtlinie ODT"
    assert "# Förderrichtlinie Digitale Kommune" in text.splitlines()
    assert "## 1. Zuwendungszweck" in text.splitlines()
    assert "- Online-Dienste\n- Offene Daten" in text
    assert "Software | 45.000 EUR" in text


def test_html_drops_scripts_and_page_chrome(tmp_path: Path) -> None:
    body = ("<h1>Sitzung des Rates</h1><p>Der Rat tagt am <b>5. März</b>.</p>"
            "<article><header><h2>TOP 1: Haushalt</h2></header><p>Beratung &amp; Beschluss.</p></article>"
            "<ul><li>Punkt eins</li><li>Punkt zwei</li></ul>")
    doc = load(make_html(tmp_path / "s.html", body, title="Ratssitzung"), settings=SETTINGS)
    text = doc.pages[0].text
    for gone in ("NAVSCRIPT", "tracking", "MENUEPUNKT", "KOPFZEILE", "FUSSZEILE", "SEITENLEISTE",
                 "NOSCRIPTTEXT", "font-family", "example.org"):
        assert gone not in text
    assert doc.title == "Ratssitzung"
    assert "# Sitzung des Rates" in text.splitlines() and "## TOP 1: Haushalt" in text.splitlines()
    assert "Der Rat tagt am 5. März." in text and "Beratung & Beschluss." in text
    assert "- Punkt eins\n- Punkt zwei" in text


def test_html_declared_charset_and_h1_title(tmp_path: Path) -> None:
    path = make_html(tmp_path / "alt.htm", "<h1>Bürgerhaushalt</h1><p>Größe</p>", title="", chrome=False,
                     encoding="iso-8859-1")
    doc = load(path, settings=SETTINGS)
    assert doc.title == "Bürgerhaushalt" and "Größe" in doc.pages[0].text


def test_markdown_front_matter_becomes_meta(tmp_path: Path) -> None:
    path = make_markdown(tmp_path / "p.md", "# Programm\n\nText zum Programm.\n",
                         {"title": "Digitale Kommune", "date": "2024-05-01", "municipality": "Musterhausen",
                          "tags": ["digital", "förderung"]})
    path.write_text(path.read_text(encoding="utf-8").replace("'2024-05-01'", "2024-05-01"), encoding="utf-8")
    doc = load(path, settings=SETTINGS)
    assert doc.title == "Digitale Kommune"
    assert doc.meta["date"] == "2024-05-01"          # YAML date object -> ISO string
    assert doc.meta["municipality"] == "Musterhausen" and doc.meta["tags"] == ["digital", "förderung"]
    assert doc.pages[0].text.startswith("# Programm") and "---" not in doc.pages[0].text


def test_markdown_with_broken_front_matter_keeps_its_text(tmp_path: Path) -> None:
    path = tmp_path / "kaputt.md"
    path.write_text("---\ntitle: [offen\n---\n# Überschrift\n\nText.\n", encoding="utf-8")
    doc = load(path, settings=SETTINGS)
    assert "Text." in doc.pages[0].text and any("Front Matter" in w for w in doc.warnings)
    assert doc.title == "Überschrift"


@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("cp1252", False)])
def test_txt_encodings(tmp_path: Path, encoding: str, bom: bool) -> None:
    text = "Grüße aus Köln – Kosten 45 € „zitiert“\nZweite Zeile"
    doc = load(make_text(tmp_path / "t.txt", text, encoding=encoding, bom=bom), settings=SETTINGS)
    assert doc.pages[0].text == text


def test_txt_latin1_fallback_when_cp1252_cannot_decode(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252: only latin-1 decodes this file
    data = ("Straße und Größe. " * 20).encode("latin-1") + b"\x81"
    path = tmp_path / "l1.txt"
    path.write_bytes(data)
    assert load(path, settings=SETTINGS).pages[0].text.startswith("Straße und Größe.")


def test_invalid_utf8_falls_back_instead_of_failing() -> None:
    assert decode_text("Maßnahme".encode("cp1252")) == "Maßnahme"
    assert decode_text(b"ok \xc3\xa4 und ung\xfcltig") == "ok Ã¤ und ungültig"   # cp1252 reading


@pytest.mark.parametrize("data", [bytes(range(256)) * 4, b"PK\x03\x04" + bytes(500),
                                  b"\x01\x02\x03\x1b" * 300])
def test_binary_garbage_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fake.txt"
    path.write_bytes(data)
    with pytest.raises(LoadError, match="Binärdatei|keinen lesbaren Text"):
        load(path, settings=SETTINGS)


def test_sidecar_meta_is_merged_and_wins(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "v.pdf", ["Beschlusstext"], title="PDF-Titel")
    make_sidecar(path, {"Titel": "Vorlage Digitalisierung", "date": "2024-03-05", "Drucksache": "2024/117",
                        "gemeinde": "Musterhausen", "committee": "Digitalausschuss"})
    doc = load(path, settings=SETTINGS)
    assert doc.title == "Vorlage Digitalisierung"
    assert doc.meta == {"title": "Vorlage Digitalisierung", "date": "2024-03-05", "paper_number": "2024/117",
                        "municipality": "Musterhausen", "committee": "Digitalausschuss"}
    assert is_sidecar(tmp_path / "v.pdf.meta.yaml") and not is_sidecar(path)


def test_broken_sidecar_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    path = make_text(tmp_path / "a.txt", "Inhalt")
    Path(str(path) + ".meta.yaml").write_text("- nur\n- eine Liste\n", encoding="utf-8")
    doc = load(path, settings=SETTINGS)
    assert doc.pages[0].text == "Inhalt" and "fehlerhaft" in doc.warnings[0]


def test_empty_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "leer.txt").write_bytes(b"")
    with pytest.raises(LoadError, match="leer"):
        load(tmp_path / "leer.txt", settings=SETTINGS)
    (tmp_path / "blank.md").write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(LoadError, match="Kein Text"):
        load(tmp_path / "blank.md", settings=SETTINGS)


def test_unknown_extension_and_oversized_file(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"data")
    with pytest.raises(LoadError, match="Dateityp nicht unterstützt"):
        load(tmp_path / "x.xlsx", settings=SETTINGS)
    big = make_text(tmp_path / "big.txt", "x" * (1024 * 1024 + 10))
    with pytest.raises(LoadError, match="zu groß"):
        load(big, settings=IngestSettings(max_file_mb=1))
    assert {".pdf", ".docx", ".odt", ".html", ".md", ".txt"} <= set(SUPPORTED_EXTENSIONS)


def test_council_paper_text_survives_the_pdf_round_trip(tmp_path: Path) -> None:
    doc = load(make_pdf(tmp_path / "vorlage.pdf", [COUNCIL_PAPER]), settings=SETTINGS)
    lines = doc.pages[0].text.splitlines()
    assert "Beschlussvorschlag:" in lines and "1. Ausgangslage" in lines
    assert "- einmalig 45.000 EUR (Haushalt 2025)" in lines
