"""The draft tab's "In openDesk speichern", end to end: `pilot-assistant serve` with a WebDAV folder
configured (a real WebDAV server on loopback), driven by Debian chromium through Playwright."""
from __future__ import annotations

import pytest
from conftest import ARTIFACTS
from draftkit import filled_draft
from serving import chromium, serve
from test_ui_browser import _wait_idle

from assistant import config
from tests.webdav_server import NextcloudDav

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "app-passwort-pilot"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, test_model_path):
    base = tmp_path_factory.mktemp("ui-opendesk")
    dav = NextcloudDav(base / "dav", {"pilot": PASSWORD}).start()
    data = base / "data"
    settings = config.load({"data_dir": str(data)}, environ={}, config_file=base / "none.toml")
    draft = filled_draft(settings)
    env = {"PILOT_ASSISTANT_WEBDAV__SAVE_TO": dav.url("pilot", "Entwürfe").replace("http://", "webdav+http://"),
           "PILOT_ASSISTANT_WEBDAV__USER": "pilot", "PILOT_ASSISTANT_WEBDAV_PASSWORD": PASSWORD}
    try:
        with serve(base, data, test_model_path, log_name="ui-opendesk-serve.log", env=env) as srv:
            yield {"url": srv.url, "dav": dav, "draft": draft}
    finally:
        dav.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_save_to_opendesk_shows_the_saved_path(setup, browser):
    from playwright.sync_api import expect

    draft, dav = setup["draft"], setup["dav"]
    remote = dav.folder("pilot") / "Entwürfe" / f"{draft.id}.odt"
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="de-DE")
    try:
        page.goto(setup["url"])
        page.get_by_role("tab", name="Antrag entwerfen").click()
        page.get_by_text("Frühere Entwürfe").click()
        page.locator("#draft-previous input").click()
        page.get_by_role("option", name="KI-Assistent im Bürgerbüro").first.click()
        page.locator("#draft-open").click()
        expect(page.locator("#draft-progress")).to_contain_text(draft.id, timeout=30_000)

        button = page.locator("#draft-opendesk")
        expect(button).to_have_text("In openDesk speichern")
        button.click()
        notice = page.locator("#draft-notice")
        expect(notice).to_contain_text(f"In openDesk gespeichert: /Entwürfe/{draft.id}.odt (neu angelegt)",
                                       timeout=60_000)
        assert remote.is_file() and remote.stat().st_size > 0
        page.screenshot(path=str(ARTIFACTS / "ui-opendesk.png"), full_page=True)

        _wait_idle(page, "#draft-opendesk")
        button.click()
        expect(notice).to_contain_text("aktualisiert, openDesk behält die vorige Version", timeout=60_000)

        # edited in openDesk meanwhile: the next save is refused and says so
        remote.write_bytes(remote.read_bytes() + b"\0bearbeitet")
        _wait_idle(page, "#draft-opendesk")
        button.click()
        expect(notice).to_contain_text("Konflikt", timeout=60_000)
        expect(notice).to_contain_text("nicht überschrieben")
        assert remote.read_bytes().endswith(b"bearbeitet")
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "ui-opendesk-failure.png"), full_page=True)
        raise
    finally:
        page.close()
