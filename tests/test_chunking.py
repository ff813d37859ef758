"""Chunking: pure functions on ParsedDoc values, no files."""
from __future__ import annotations

import re

import pytest
from filemakers import COUNCIL_PAPER
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.index.embeddings import embedding_text
from assistant.ingest.chunking import chunk_document, chunk_page, estimate_tokens, flatten_meta
from assistant.text import sentence_starts
from assistant.types import Page, ParsedDoc

SENTENCES = [
    "Die Stadtverwaltung wird beauftragt, ein Konzept für die Digitalisierung der Bürgerdienste "
    "zu erarbeiten.",
    "Die Kosten in Höhe von 45.000 EUR werden aus dem Haushalt 2025 finanziert.",
    "Der Ausschuss nimmt den Sachstandsbericht zur Kenntnis, z. B. zu den Wartezeiten im Bürgerbüro.",
    "Gemäß § 3 Abs. 2 der Richtlinie sind Verwendungsnachweise innerhalb von sechs Monaten vorzulegen.",
    "Am 1. Januar 2025 tritt die Satzung in Kraft und ersetzt die bisherige Regelung vollständig.",
]


def prose(n: int, start: int = 0) -> str:
    return " ".join(SENTENCES[(start + i) % len(SENTENCES)] for i in range(n))


def doc_of(*pages: str, paged: bool = True, **meta) -> ParsedDoc:
    return ParsedDoc(source="/d/vorlage.pdf", title="Vorlage 117",
                     pages=[Page(i + 1 if paged else None, t) for i, t in enumerate(pages)], meta=meta)


def chunks_of(doc: ParsedDoc, **kw):
    return chunk_document(doc, doc_id="abc", collection="rat", type="council", **kw)


def test_offsets_point_at_the_exact_text_and_ids_run_over_the_document() -> None:
    doc = doc_of(COUNCIL_PAPER, prose(40), "# Anhang\n\n" + prose(3))
    chunks = chunks_of(doc)
    for i, c in enumerate(chunks):
        assert doc.pages[c.page - 1].text[c.char_start:c.char_end] == c.text
        assert c.chunk_index == i and c.chunk_id == f"abc:{i}"
        assert (c.doc_id, c.collection, c.type, c.source) == ("abc", "rat", "council", "/d/vorlage.pdf")


def test_chunks_never_span_pages() -> None:
    pages = [prose(12, start=p) + f" Seitenmarke{p}." for p in range(4)]
    chunks = chunks_of(doc_of(*pages))
    assert {c.page for c in chunks} == {1, 2, 3, 4}
    for c in chunks:
        marks = set(re.findall(r"Seitenmarke(\d)", c.text))
        assert marks <= {str(c.page - 1)}
        assert c.text in pages[c.page - 1]


def test_council_paper_sections() -> None:
    chunks = chunks_of(doc_of(COUNCIL_PAPER))
    by_section = {c.section: c.text for c in chunks}
    assert by_section["Beschlussvorschlag"].startswith("Beschlussvorschlag:\nDer Ausschuss")
    assert "47 Minuten" in by_section["1. Ausgangslage"]
    assert "45.000 EUR und jährlich" in by_section["2. Kosten"]
    assert "47 Minuten" not in by_section["2. Kosten"]
    # the list under its label line stays one passage
    assert by_section["Finanzielle Auswirkungen"].endswith("Digitale Kommune: 50 Prozent")
    assert "- laufend 6.000 EUR pro Jahr" in by_section["Finanzielle Auswirkungen"]


@pytest.mark.parametrize("heading,section", [
    ("## 2. Kosten", "2. Kosten"), ("**Beschlussvorschlag:**", "Beschlussvorschlag"),
    ("Sachverhalt:", "Sachverhalt"), ("Begründung", "Begründung"), ("§ 4 Zuwendungsvoraussetzungen",
                                                                     "§ 4 Zuwendungsvoraussetzungen"),
    ("II. Stellungnahme der Verwaltung", "II. Stellungnahme der Verwaltung"),
    ("3.2 Zeitplan", "3.2 Zeitplan")])
def test_heading_forms(heading: str, section: str) -> None:
    text = f"Einleitender Satz.\n\n{heading}\n{SENTENCES[0]}"
    spans, last = chunk_page(text)
    assert [s for _, _, s in spans] == ["", section] and last == section
    assert text[spans[1][0]:spans[1][1]].startswith(heading)


def test_short_numbered_list_and_sentences_with_colon_are_not_headings() -> None:
    text = ("Der Rat beschließt:\n1. Antrag A\n2. Antrag B\n3. Antrag C\n\nDie Verwaltung schlägt vor:\n"
            "- weiter so")
    spans, section = chunk_page(text)
    assert len(spans) == 1 and section == ""


def test_section_carries_over_to_the_next_page() -> None:
    chunks = chunks_of(doc_of("# Kosten\n\n" + prose(2), prose(2)))
    assert [(c.page, c.section) for c in chunks] == [(1, "Kosten"), (2, "Kosten")]


def test_size_bounds_on_long_flowing_text() -> None:
    chunks = chunks_of(doc_of(prose(120)))
    sizes = [estimate_tokens(c.text) for c in chunks]
    assert max(sizes) <= 500
    assert min(sizes[:-1]) >= 300                      # packed, not fragmented
    assert len(chunks) >= 5


def test_overlap_repeats_the_last_sentence_within_the_budget() -> None:
    chunks = chunks_of(doc_of(prose(60)), overlap_tokens=40)
    for a, b in zip(chunks, chunks[1:]):
        assert b.char_start < a.char_end                      # they overlap ...
        shared = a.text[b.char_start - a.char_start:]
        assert b.text.startswith(shared) and 0 < estimate_tokens(shared) <= 40
        assert shared in SENTENCES                            # ... by whole sentences here
    no_overlap = chunks_of(doc_of(prose(60)), overlap_tokens=0)
    assert all(b.char_start >= a.char_end for a, b in zip(no_overlap, no_overlap[1:]))


def test_no_overlap_across_headings() -> None:
    text = "# Eins\n\n" + prose(30) + "\n\n# Zwei\n\n" + prose(30)
    chunks = chunks_of(doc_of(text))
    first_two = next(i for i, c in enumerate(chunks) if c.section == "Zwei")
    assert chunks[first_two].text.startswith("# Zwei")
    assert chunks[first_two].char_start >= chunks[first_two - 1].char_end


def test_long_paragraph_is_split_at_sentence_ends_only() -> None:
    chunks = chunks_of(doc_of(prose(50)), overlap_tokens=0)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.endswith(".") and c.text[0].isupper()
        assert not c.text.startswith(("B. zu", "Januar", "Abs."))


def test_sentence_splitter_knows_german_abbreviations_and_ordinals() -> None:
    text = ("Siehe z. B. Nr. 5 der Anlage. Am 1. Januar 2025 gilt sie. Das Jahr endete 2024. "
            "Danach folgt mehr.")
    starts = sentence_starts(text, 0, len(text))
    assert [text[s:s + 6] for s in starts] == ["Am 1. ", "Das Ja", "Danach"]


def test_lists_stay_together_when_they_fit() -> None:
    items = "\n".join(f"- Maßnahme {i}: Ausbau der digitalen Dienste im Ortsteil {i}" for i in range(12))
    text = prose(14) + "\n\n" + items + "\n\n" + prose(3)
    chunks = chunks_of(doc_of(text))
    holding = [c for c in chunks if "- Maßnahme 0" in c.text]
    assert len(holding) == 1 and "- Maßnahme 11" in holding[0].text


def test_overlong_list_is_split_between_items() -> None:
    items = "\n".join(f"- Maßnahme {i}: " + SENTENCES[i % 5] for i in range(40))
    chunks = chunks_of(doc_of(items), overlap_tokens=0)
    assert len(chunks) > 1 and all(c.text.startswith("- Maßnahme") for c in chunks)
    assert all(estimate_tokens(c.text) <= 500 for c in chunks)


def test_text_without_any_boundary_is_still_cut_to_size() -> None:
    text = "x" * 9000 + " " + "wort " * 900
    chunks = chunks_of(doc_of(text))
    assert all(estimate_tokens(c.text) <= 500 for c in chunks)
    assert "".join(c.text for c in chunks).count("x") >= 9000


def test_metadata_and_unpaged_documents() -> None:
    doc = doc_of("# Titel\n\nInhalt.", paged=False, date="2024-03-05", municipality="Musterhausen",
                 paper_number="2024/117", tags=["a", "b"], extra={"gremium": "Rat"}, empty=None)
    (chunk,) = chunks_of(doc)
    assert chunk.page is None and chunk.title == "Vorlage 117"
    assert (chunk.date, chunk.municipality, chunk.paper_number) == ("2024-03-05", "Musterhausen", "2024/117")
    assert chunk.meta == {"date": "2024-03-05", "municipality": "Musterhausen", "paper_number": "2024/117",
                          "tags": "a, b", "extra.gremium": "Rat"}


def test_ocr_pages_are_marked() -> None:
    doc = doc_of("Getippt.", "Gescannt.")
    doc.pages[1].ocr = True
    assert [c.meta.get("ocr", False) for c in chunks_of(doc)] == [False, True]


def test_embedding_text_adds_title_and_section_once() -> None:
    chunks = chunks_of(doc_of("# Kosten\n\n" + prose(40)))
    assert embedding_text(chunks[0]).startswith("Vorlage 117\n# Kosten")       # heading already in text
    assert embedding_text(chunks[-1]).startswith("Vorlage 117 – Kosten\n")


def test_flatten_meta_and_bad_parameters() -> None:
    import datetime
    assert flatten_meta({"d": datetime.date(2024, 1, 2), "n": 3, "x": None, "l": [1, None, "z"]}) == {
        "d": "2024-01-02", "n": 3, "l": "1, z"}
    with pytest.raises(ValueError):
        chunks_of(doc_of("a"), target_tokens=600, max_tokens=500)


def test_empty_pages_give_no_chunks() -> None:
    assert chunks_of(doc_of("", "  \n ")) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SENTENCES + ["# Abschnitt", "- Punkt", "1. Ausgangslage", "", "Kosten:",
                                             "x" * 300, "\n"]), max_size=80),
       st.integers(min_value=50, max_value=400))
def test_invariants_on_random_layouts(parts: list[str], target: int) -> None:
    text = "\n".join(parts)
    chunks = chunks_of(doc_of(text), target_tokens=target, max_tokens=target + 60, overlap_tokens=20)
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text and c.text.strip() == c.text and c.text
        assert estimate_tokens(c.text) <= target + 60
    covered = set().union(*(range(c.char_start, c.char_end) for c in chunks))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())   # nothing is lost
