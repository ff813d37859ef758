"""Drafting in the browser with two logins: Anna fills the project profile and generates the
Beschlussvorlage; she cannot release her own sections; Bernd opens her draft for review,
releases every section, and the exported file no longer carries the "ENTWURF" watermark."""
from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import ARTIFACTS
from serving import chromium, serve

from assistant import auth

pytestmark = [pytest.mark.slow, pytest.mark.browser]
USERS = {"anna": "anna-passwort-1", "bernd": "bernd-passwort-2"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_model_path):
    base = tmp_path_factory.mktemp("ui-draft")
    users = base / "users.txt"
    for name, password in USERS.items():
        auth.set_password(users, name, password)
    exe = Path(sys.executable).with_name("pilot-assistant")
    for name in USERS:   # drafting and the four-eyes review are the editors' work
        subprocess.run([str(exe), "user", "set", name, "--role", "editor", "--data-dir", str(base / "data")],
                       check=True, cwd=base, capture_output=True)
    with serve(base, base / "data", test_model_path, log_name="ui-draft-serve.log", max_tokens=48,
               extra=["--auth-file", str(users)]) as srv:
        yield {"url": srv.url, "data": base / "data"}


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def login(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="de-DE")
    r = context.request.post(url + "login", form={"username": name, "password": USERS[name]})
    assert r.ok, r.status
    page = context.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Antrag entwerfen").click()
    return context, page


def test_profile_generate_release_by_a_second_person_and_export_without_watermark(server, browser):
    from playwright.sync_api import expect

    url = server["url"]
    anna, page = login(browser, url, "anna")
    try:
        page.locator("#draft-title textarea").fill("openDesk im Bürgeramt")
        page.locator("#draft-idea textarea").fill("Pilotprojekt: openDesk als souveräne Büro- und "
                                                  "Kollaborationsplattform für 200 Beschäftigte des Bürgeramts, "
                                                  "18 Monate, Budget 250.000 Euro.")
        page.locator("#draft-profile").click()
        page.locator("#draft-read-idea").click()                  # the idea's figures, for confirmation
        expect(page.locator("#draft-notice")).to_contain_text("Budget: 250.000 €", timeout=30_000)
        expect(page.locator("#draft-budget textarea")).to_have_value("250000")
        expect(page.locator("#draft-staff input")).to_have_value("200")
        page.locator("#draft-goal textarea").fill("Souveräne Büro- und Kollaborationsplattform openDesk erproben")
        page.locator("#draft-start-date textarea").fill("2027-03-01")
        page.locator("#draft-start").click()
        expect(page.locator("#draft-notice")).to_contain_text("Fertig", timeout=900_000)
        preview = page.locator("#draft-preview")
        expect(preview).to_contain_text("ENTWURF – nicht freigegeben")
        expect(preview).to_contain_text("Der Rat beschließt die Durchführung des Pilotprojekts „openDesk im Bürgeramt“")
        expect(preview).to_contain_text("Monat 16–18")
        page.locator("#draft-review").click()
        page.locator("#draft-release-all").click()                # her own text: nothing to release for her
        expect(page.locator("#draft-notice")).to_contain_text("0 Abschnitte geprüft und freigegeben", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "ui-draft-anna.png"), full_page=True)
    finally:
        anna.close()

    bernd, page = login(browser, url, "bernd")
    try:
        page.get_by_text("Frühere Entwürfe").click()
        page.locator("#draft-previous input").click()
        page.get_by_role("option", name="zur Prüfung (anna)").first.click()
        page.locator("#draft-open").click()
        expect(page.locator("#draft-progress")).to_contain_text("0 von 14 Abschnitten freigegeben", timeout=30_000)
        page.locator("#draft-review").click()
        page.locator("#draft-comment textarea").fill("Zahlen mit dem Steckbrief abgeglichen.")
        page.locator("#draft-release-all").click()
        expect(page.locator("#draft-notice")).to_contain_text("Alle Abschnitte sind freigegeben", timeout=60_000)
        expect(page.locator("#draft-progress")).to_contain_text("14 von 14 Abschnitten freigegeben")
        page.locator("#draft-format").get_by_label("Markdown").check()
        page.locator("#draft-export").click()
        link = page.locator("#draft-download a").first
        expect(link).to_be_attached(timeout=60_000)
        r = bernd.request.get(urllib.parse.urljoin(url, link.get_attribute("href")))
        text = r.text()
        assert "ENTWURF" not in text and "nicht freigegeben" not in text
        assert "alle Abschnitte im Vier-Augen-Prinzip geprüft und freigegeben" in text
        assert "freigegeben von bernd" in text and "250.000 €" in text and "Monat 16–18" in text
        page.screenshot(path=str(ARTIFACTS / "ui-draft-bernd.png"), full_page=True)
    finally:
        bernd.close()
