"""Running heads and feet: pure function over page texts."""
from __future__ import annotations

from assistant.ingest.running_lines import strip_running_lines


def test_lines_repeated_at_the_page_edges_go_heads_stay_on_page_one() -> None:
    words = "Antrag Beschluss Haushalt Stadtrat Ausschuss Vorlage Pilot Förderung Kosten Termin Bericht Anlage".split()
    bodies = ["\n".join(f"{w} steht auf Seite {n}." for w in words[n:] + words[:n]) for n in range(1, 5)]
    pages = [f"Stadt X · Vorlage 12/2026\n{body}\nSeite {n} von 4" for n, body in enumerate(bodies, 1)]
    title_page = "Deckblatt ohne Kopf\n" + bodies[0] + "\nSeite 1 von 4"   # a title page with its own head
    assert strip_running_lines([title_page, *pages[1:]]) == ["Deckblatt ohne Kopf\n" + bodies[0], *bodies[1:]]
    assert strip_running_lines(pages) == ["Stadt X · Vorlage 12/2026\n" + bodies[0], *bodies[1:]]


def test_content_that_repeats_only_inside_pages_or_on_few_pages_is_kept() -> None:
    body = "Erste Zeile.\nZweite Zeile.\nDritte Zeile.\nGemeinsamer Absatz.\nVierte Zeile.\nFünfte Zeile.\nSechste Zeile."
    pages = [body, body.replace("Erste", "Andere"), "Nur ein anderer Text.\nZwei Zeilen.", "Noch einer.\nUnd Schluss."]
    out = strip_running_lines(pages)
    assert out == pages   # "Sechste Zeile." ends 2 of 4 pages: too few; the shared middle is content


def test_short_pages_offer_only_their_first_and_last_line() -> None:
    pages = [f"Kopf\nAbschnitt {n}.\nGleicher Satz.\nSeite {n}" for n in range(1, 4)]
    assert strip_running_lines(pages) == ["Kopf\nAbschnitt 1.\nGleicher Satz."] + [
        f"Abschnitt {n}.\nGleicher Satz." for n in (2, 3)]


def test_single_page_and_unrepeated_documents_are_unchanged() -> None:
    assert strip_running_lines(["Kopf\nText\nSeite 1 von 1"]) == ["Kopf\nText\nSeite 1 von 1"]
    pages = ["Eins.\nA", "Zwei.\nB"]
    assert strip_running_lines(pages) == pages
    assert strip_running_lines([]) == []
