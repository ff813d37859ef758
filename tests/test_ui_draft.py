"""Tab "Antrag entwerfen" without a browser: its views (progress, streamed preview, section
notes) and that the app builds with it and wires the programme hand-over."""
from __future__ import annotations

from draftkit import filled_draft

from assistant.drafting import runner
from assistant.ui import draft_tab


def test_progress_lists_sections_warnings_and_missing_requirements(bare_settings):
    d = filled_draft(bare_settings)
    text = draft_tab.progress_markdown(d, running="ziele")
    assert "⏳" in text and "wird geschrieben" in text and "✓ Betreff" in text
    assert "⚠ Frist abgelaufen am 14.03.2021" in text
    assert "⚠ offen: Identifizierung nach dem Geldwäschegesetz" in text and "Erforderliche Unterlagen" in text
    assert "✓ erfüllt: Ratsbeschluss" in text and "→ Beschlussvorschlag" in text
    assert "0 von 14 Abschnitten freigegeben" in text
    assert draft_tab.progress_markdown(None) == "Noch kein Entwurf."


def test_preview_shows_the_section_being_streamed_without_changing_the_draft(bare_settings):
    d = runner.start_draft(runner.Idea("Test", "Eine Idee."), "beschlussvorlage", bare_settings)
    md = draft_tab.preview_markdown(d, "ziele", "Erstes Ziel")
    assert "Erstes Ziel ▌" in md and md.count("[Abschnitt noch nicht erstellt]") == 4
    assert d.section("ziele").text == ""


def test_section_details_and_choices(bare_settings):
    d = filled_draft(bare_settings)
    text, notes = draft_tab.section_details(d, "ausgangslage")
    assert text.startswith("Zu „Ausgangslage“") and "[1] Antrag" in notes and "Drucksache 0412/2025" in notes
    ids = [sid for _, sid in draft_tab.section_choices(d)]
    assert ids[:4] == ["kopf", "beratungsfolge", "betreff", "beschlussvorschlag"] and "sachverhalt" not in ids
    assert "beteiligte" in ids


def test_the_app_builds_with_the_tab(bare_settings):
    from assistant.ui.app import build_app

    demo = build_app(bare_settings)
    ctx = demo.pilot_context
    assert ctx.selected_programme is not None
    labels = [getattr(b, "label", None) for b in demo.blocks.values()]
    assert "Projektidee (einige Sätze)" in labels and "Förderprogramm" in labels
    programme = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "draft-programme")
    assert ("(kein Programm)", "") in programme.choices and any(v == "mfund" for _, v in programme.choices)
