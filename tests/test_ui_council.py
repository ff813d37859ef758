"""The "Ratsvorgänge" tab in real Chromium: search by number and by topic, the timeline,
the cited page of a step, the open tasks. `pilot-assistant serve` runs on a copy of the
starter corpus's council index (the session fixture ``council_index``)."""
from __future__ import annotations

import re
import shutil

import pytest
from serving import serve
from test_ui_browser import _shot, browser  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def served(tmp_path_factory, council_index, test_model_path):
    base = tmp_path_factory.mktemp("ui-council")
    data = base / "data"
    shutil.copytree(council_index, data)
    with serve(base, data, test_model_path, log_name="ui-council-serve.log") as srv:
        yield srv.url


def test_search_timeline_cited_page_and_open_tasks(served, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="de-DE")
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:",
                                                                                      "blob:")) else None)
    try:
        page.goto(served)
        page.get_by_role("tab", name="Ratsvorgänge").click()
        box = page.locator("#council-query textarea")
        expect(box).to_be_visible(timeout=60_000)

        # unknown number: a clear message, nothing else
        box.fill("0999/2025")
        page.locator("#council-search").click()
        expect(page.locator("#council-notice")).to_contain_text("nicht gefunden", timeout=60_000)

        # by number: the timeline, each step with file and page
        box.fill("0087/2025")
        page.locator("#council-search").click()
        timeline = page.locator("#council-timeline")
        expect(page.locator("#council-notice")).to_contain_text("Ratsvorgang 0087/2025", timeout=60_000)
        expect(timeline).to_contain_text("0631-2025_niederschrift-stadtrat-innovationsstrategie.pdf, S. 2")
        expect(timeline).to_contain_text("0087-2025_antrag-innovationsstrategie.pdf, S. 1")
        expect(timeline).to_contain_text("mehrheitlich beschlossen")
        expect(page.locator("#council-related")).to_contain_text("0231/2025")

        # open the cited page of the council's decision: its text and the rendered PDF page
        page.locator("#council-pick input").click()
        page.get_by_role("option", name=re.compile(r"18\.12\.2025 Beschluss")).click()
        expect(page.locator("#council-page-text textarea")).to_have_value(re.compile(r"38 Ja-Stimmen"),
                                                                           timeout=30_000)
        expect(page.locator("#council-page-image img")).to_be_visible(timeout=30_000)
        expect(page.locator("#council-page-link")).to_contain_text("S. 2")

        # the open tasks with their due dates
        tasks = page.locator("#council-open")
        expect(tasks).to_contain_text("Exit-Konzept", timeout=30_000)
        expect(tasks).to_contain_text("31.03.2027")
        expect(tasks).to_contain_text("vierteljährlich")
        _shot(page, "ratsvorgaenge", docs=True)

        # by topic: ambiguous -> candidates; choosing one shows its procedure
        box.fill("KI")
        page.locator("#council-search").click()
        expect(page.locator("#council-notice")).to_contain_text("Mehrere Vorgänge", timeout=60_000)
        page.locator("#council-candidates label", has_text="0036/2026").click()
        expect(timeline).to_contain_text("0094-2026_niederschrift-adv-ki-assistent.pdf, S. 2", timeout=60_000)
        expect(box).to_have_value("0036/2026")
        assert not outside, f"the page tried to load from outside: {outside}"
    except Exception:
        _shot(page, "council-failure")
        raise
    finally:
        page.close()
