"""Identity, roles and safe file serving replayed against a served instance in real Chromium.

Each test replays one finding of the security review against `pilot-assistant serve` (a
subprocess, real Gradio, the small test model): an uploaded HTML file with a script, a
foreign page reading the token or logging a colleague in, a removed account's cookie, a
reader deleting, "Alle meine Daten löschen", an alias-bomb programme, a PDF page that
renders for half an hour; and two people through the proxy-header path.

The password server listens on 127.0.0.1 and is opened as http://localhost:PORT; the
foreign page is served from http://127.0.0.1:OTHER_PORT: another site for the browser.
"""
from __future__ import annotations

import http.server
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS, run_cli
from filemakers import make_slow_render_pdf
from serving import chromium, serve
from test_ui_browser import _wait_idle

from assistant import auth, config

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PASSWORDS = {"anna": "anna-passwort-1", "bernd": "bernd-passwort-2", "carl": "carl-passwort-3",
             "mallory": "mallory-passwort-4"}
SPIELPLATZ = ("<html><head><title>Spielplatz Sanierung</title></head><body>"
              "<p>Die Spielplatzsanierung im Stadtpark kostet 77.777 Euro und beginnt im April.</p>"
              "<script>fetch('/xss-marker-script')</script>"
              "<img src=\"x\" onerror=\"fetch('/xss-marker-img')\"></body></html>")
BOMB = ("---\n" + 'lol0: &a0 ["LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL", "LOL"]\n'
        + "".join(f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
        + "---\n# Lachgasprogramm\n\nDas Lachgasprogramm fördert Heiterkeit in Kommunen.\n")


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def pw(tmp_path_factory, test_model_path):
    """`serve --auth-file` with four accounts, an admin's document and a draft for anna and bernd."""
    from assistant.drafting import runner

    base = tmp_path_factory.mktemp("access-pw")
    data = base / "data"
    users = base / "users.txt"
    for name, password in PASSWORDS.items():
        auth.set_password(users, name, password)
    amt = base / "amt"
    amt.mkdir()
    (amt / "haushalt.txt").write_text("Der Haushaltsplan 2026 sieht Investitionen von 12 Millionen Euro vor.\n" * 3)
    out = run_cli("ingest", str(amt), "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    settings = config.load({"data_dir": str(data)}, environ={}, config_file=base / "none.toml")
    idea = runner.Idea(title="Sanierung Freibad", description="Das Freibad braucht neue Becken und eine "
                       "Solaranlage für das Warmwasser; die Stadt sucht Fördermittel.")
    drafts = {who: runner.start_draft(idea, "beschlussvorlage", settings, owner=who).id for who in ("anna", "bernd")}
    with serve(base, data, test_model_path, log_name="ui-access-pw.log", extra=["--auth-file", str(users)]) as srv:
        yield {"url": f"http://localhost:{srv.port}/", "port": srv.port, "data": data, "users": users, "base": base,
               "drafts": drafts}


@pytest.fixture(scope="module")
def foreign_site(pw):
    """Another site (http://127.0.0.1:OTHER): a page that reads the token, one that logs in as mallory."""
    app = pw["url"]
    pages = {
        "/steal.html": ("<pre id='out'>...</pre><script>fetch('" + app + "gradio_api/token', {credentials: 'include'})"
                        ".then(r => r.text()).then(t => { document.getElementById('out').textContent = 'GOT ' + t; })"
                        ".catch(e => { document.getElementById('out').textContent = 'BLOCKED ' + e; });</script>"),
        "/csrf.html": ("<form id='f' method='POST' action='" + app + "login'>"
                       "<input name='username' value='mallory'><input name='password' value='"
                       + PASSWORDS["mallory"] + "'></form><script>document.getElementById('f').submit();</script>"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):   # noqa: N802 (http.server's name)
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _login(page, url: str, name: str) -> None:
    """Sign in the way the browser does (a same-origin POST from the app's own page), so the
    browser keeps whatever cookies the server sets; then open the app."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(url)
    page.wait_for_load_state("load")
    status = page.evaluate("""async ([u, p]) => (await fetch('login', {method: 'POST',
        body: new URLSearchParams({username: u, password: p})})).status""", [name, PASSWORDS[name]])
    assert status == 200, status
    page.goto(url)


def _ask(page, question: str) -> None:
    box = page.locator("#msg textarea")
    box.fill(question)
    box.press("Enter")


def _upload(page, path: Path, *, funding: bool = False) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Dokumente").click()
    if funding:
        page.locator("#doc-type input").click()
        page.get_by_role("option", name="Förderprogramm").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#upload")).to_contain_text(path.stem[:10], timeout=30_000)
    page.locator("#upload-button").click()
    expect(page.locator("#upload-note")).to_contain_text("verarbeitet", timeout=180_000)


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"ui-access-{name}.png"), full_page=True)


# --- the browser boundary ---------------------------------------------------------------------

def test_a_foreign_page_gets_no_token_and_cannot_log_anyone_in(pw, foreign_site, browser):
    from playwright.sync_api import expect

    context = browser.new_context(locale="de-DE")
    try:
        _login(context.new_page(), pw["url"], "anna")
        page = context.new_page()
        page.goto(foreign_site + "/steal.html")
        expect(page.locator("#out")).not_to_have_text("...", timeout=30_000)
        text = page.locator("#out").inner_text()
        assert text.startswith("BLOCKED"), f"a foreign page read: {text}"
    finally:
        context.close()
    victim = browser.new_context(locale="de-DE")   # not logged in; visits the attacker's page
    try:
        page = victim.new_page()
        page.goto(foreign_site + "/csrf.html")
        page.wait_for_load_state("load")
        page.goto(pw["url"])
        page.wait_for_selector("#login-form, #status", timeout=60_000)
        if page.locator("#status").count():   # the app opened: whose is it?
            expect(page.locator("#status")).to_contain_text("Backend", timeout=60_000)
            page.wait_for_timeout(2_000)
        assert "mallory" not in page.content(), "a foreign page logged the victim in as mallory"
        assert page.locator("#login-form").is_visible()
    finally:
        victim.close()


def test_a_removed_users_cookie_is_refused(pw, browser):
    from playwright.sync_api import expect

    context = browser.new_context(locale="de-DE")
    try:
        page = context.new_page()
        _login(page, pw["url"], "carl")
        expect(page.locator("#msg textarea")).to_be_visible(timeout=60_000)
        out = run_cli("user", "remove", "carl", "--auth-file", str(pw["users"]), "--data-dir", str(pw["data"]))
        assert out.returncode == 0, out.stderr
        page.reload()
        page.wait_for_selector("#login-form, #msg textarea", timeout=60_000)
        page.wait_for_timeout(1_000)
        assert not page.locator("#msg textarea").is_visible(), "the removed account is still signed in"
        assert page.locator("#login-form").is_visible()
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        r = context.request.get(pw["url"] + "config")   # the old cookie, sent by hand: refused
        assert r.status == 401 and cookies
    finally:
        context.close()


# --- roles ------------------------------------------------------------------------------------

def test_a_reader_cannot_delete(pw, browser):
    from playwright.sync_api import expect

    context = browser.new_context(locale="de-DE")
    try:
        page = context.new_page()
        _login(page, pw["url"], "anna")
        page.get_by_role("tab", name="Dokumente").click()
        expect(page.locator("#documents")).to_contain_text("haushalt.txt", timeout=60_000)
        page.locator("#delete-doc input").click()
        page.get_by_role("option", name=re.compile("haushalt")).click()
        page.locator("#delete-doc-button").click()
        expect(page.locator("#delete-note")).to_contain_text("Keine Berechtigung", timeout=30_000)
        page.locator("#refresh-documents").click()
        page.wait_for_timeout(1_000)
        expect(page.locator("#documents")).to_contain_text("haushalt.txt")
        _shot(page, "reader-delete")
    finally:
        context.close()
    assert (pw["base"] / "amt" / "haushalt.txt").exists()


# --- files ------------------------------------------------------------------------------------

def test_an_uploaded_html_file_with_a_script_never_runs(pw, browser, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    html_file = tmp_path / "Spielplatz.html"
    html_file.write_text(SPIELPLATZ, encoding="utf-8")
    ran: list[str] = []
    downloads: list[str] = []
    context = browser.new_context(locale="de-DE", accept_downloads=True)
    context.on("request", lambda r: ran.append(r.url) if "xss-marker" in r.url else None)
    context.on("page", lambda p: p.on("download", lambda d: downloads.append(d.suggested_filename)))
    try:
        page = context.new_page()
        _login(page, pw["url"], "anna")
        _upload(page, html_file)
        page.get_by_role("tab", name="Chat").click()
        _ask(page, "Was kostet die Spielplatzsanierung im Stadtpark?")
        expect(page.locator("#sources")).to_contain_text("Spielplatz", timeout=120_000)
        page.locator("#source-viewer").click()
        page.locator("#source-pick input").click()
        page.get_by_role("option", name=re.compile("Spielplatz")).first.click()
        link = page.locator("#page-link a")
        expect(link).to_be_visible(timeout=30_000)
        href = link.get_attribute("href")
        link.click()                 # "Originaldatei …": a colleague opens the upload
        page.wait_for_timeout(3_000)
        assert not ran, f"the uploaded script ran: {ran}"
        assert downloads == ["Spielplatz.html"], downloads
        opened = context.new_page()
        try:   # opened directly (a colleague clicks a sent link): a download, never a page of this site
            opened.goto(pw["url"] + href)
        except PlaywrightError as exc:
            assert "Download is starting" in str(exc)
        # and the same file through Gradio's own upload route
        r = context.request.post(pw["url"] + "gradio_api/upload", multipart={
            "files": {"name": "boese.html", "mimeType": "text/html", "buffer": SPIELPLATZ.encode()}})
        assert r.ok, r.text()
        cached = r.json()[0]
        try:
            opened.goto(pw["url"] + "gradio_api/file=" + cached)
        except PlaywrightError as exc:
            assert "Download is starting" in str(exc)
        page.wait_for_timeout(3_000)
        _wait_idle(page, "#chat")
        assert not ran, f"the uploaded script ran: {ran}"
    finally:
        context.close()


def test_a_hanging_pdf_page_is_cut_off_while_the_server_keeps_answering(pw, browser, tmp_path):
    from playwright.sync_api import expect

    pdf = make_slow_render_pdf(tmp_path / "Turnhalle.pdf", "Die Turnhallensanierung in Nord kostet 55.555 Euro.")
    context = browser.new_context(locale="de-DE")
    try:
        page = context.new_page()
        _login(page, pw["url"], "anna")
        _upload(page, pdf)
        page.get_by_role("tab", name="Chat").click()
        _ask(page, "Was kostet die Turnhallensanierung in Nord?")
        expect(page.locator("#sources")).to_contain_text("55.555", timeout=120_000)
        page.locator("#source-viewer").click()
        page.locator("#source-pick input").click()
        page.get_by_role("option", name=re.compile("S. 1")).first.click()
        started = time.monotonic()
        answered = []
        while time.monotonic() - started < 120 and "Zeitlimit" not in page.locator("#page-link").inner_text():
            answered.append(context.request.get(pw["url"] + "config").status)
            page.wait_for_timeout(1_000)
        expect(page.locator("#page-link")).to_contain_text("Zeitlimit", timeout=5_000)
        expect(page.locator("#page-text textarea")).to_have_value(re.compile("55.555"), timeout=30_000)
        assert answered and set(answered) == {200}, answered   # the server answered throughout
        _shot(page, "render-limit")
        _wait_idle(page, "#chat")
    finally:
        context.close()


def test_an_alias_bomb_programme_does_not_slow_the_next_page_load(pw, browser, tmp_path):
    from playwright.sync_api import expect

    bomb = tmp_path / "lachgas.md"
    bomb.write_text(BOMB, encoding="utf-8")
    context = browser.new_context(locale="de-DE")
    try:
        page = context.new_page()
        _login(page, pw["url"], "anna")
        _upload(page, bomb, funding=True)
        for _ in range(2):   # every page load lists the programmes (deadline calendar, drafting)
            page.reload()
            expect(page.locator("#msg textarea")).to_be_visible(timeout=60_000)
            expect(page.locator("#status")).to_contain_text("Dokumente", timeout=60_000)
        page.get_by_role("tab", name="Förderprogramme").click()
        page.locator("#funding-idea textarea").fill("Heiterkeit in der Verwaltung fördern")
        page.locator("#funding-search").click()
        expect(page.locator("#funding-notice")).to_contain_text("lachgas.md", timeout=60_000)
    finally:
        context.close()


# --- data protection ----------------------------------------------------------------------------

def test_erasure_removes_own_drafts_and_uploads_but_not_others_or_the_audit_entry(pw, browser, tmp_path):
    from playwright.sync_api import expect

    notes = {}
    for who in ("anna", "bernd"):
        notes[who] = tmp_path / f"{who}-notiz.txt"
        notes[who].write_text(f"Notiz von {who}: Der Radweg an der Nordstraße wird im Sommer gebaut.\n" * 3)
    pages, contexts = {}, []
    try:
        for who in ("anna", "bernd"):
            context = browser.new_context(locale="de-DE")
            contexts.append(context)
            pages[who] = page = context.new_page()
            _login(page, pw["url"], who)
            _upload(page, notes[who])
        stored = {p.name: p for p in (pw["data"] / "documents").rglob("*-notiz.txt")}
        assert set(stored) == {"anna-notiz.txt", "bernd-notiz.txt"}
        page = pages["anna"]
        page.get_by_role("tab", name="Chat").click()
        page.locator("#privacy").click()
        page.locator("#wipe-confirm input").check()
        page.locator("#wipe").click()
        expect(page.locator("#privacy-result")).to_contain_text("Gelöscht", timeout=60_000)
        _shot(page, "erase")
        # anna's draft and uploads are gone, bernd's are not
        left = {p.parent.name for p in (pw["data"] / "drafts").glob("*/draft.json")}
        assert left == {pw["drafts"]["bernd"]}
        assert not stored["anna-notiz.txt"].exists() and stored["bernd-notiz.txt"].exists()
        assert not list((pw["data"] / "documents").rglob("Spielplatz.html"))
        pages["bernd"].locator("#refresh-documents").click()
        expect(pages["bernd"].locator("#documents")).to_contain_text("bernd-notiz.txt", timeout=30_000)
        expect(pages["bernd"].locator("#documents")).not_to_contain_text("anna-notiz.txt")
    finally:
        for context in contexts:
            context.close()
    db = sqlite3.connect(pw["data"] / "history.sqlite3")
    events = [r[0] for r in db.execute("SELECT event FROM audit WHERE user='anna' ORDER BY id")]
    assert events and events[-1] == "erase"                        # the trail stays, with the erasure
    assert db.execute("SELECT COUNT(*) FROM conversations WHERE user='anna'").fetchone()[0] == 0


# --- two people through the proxy ---------------------------------------------------------------

@pytest.fixture(scope="module")
def proxied(tmp_path_factory, test_model_path):
    """`serve --identity proxy --trusted-proxy 127.0.0.1`: the test browser plays oauth2-proxy."""
    from assistant.access import collections as colls

    base = tmp_path_factory.mktemp("access-proxy")
    data = base / "data"
    settings = config.load({"data_dir": str(data)}, environ={}, config_file=base / "none.toml")
    colls.create(settings, "bauamt", read=["bauamt"], write=["bauamt"])
    colls.create(settings, "kaemmerei", read=["kaemmerei"], write=["kaemmerei"])
    for coll, name, text in (("bauamt", "bruecke.txt", "Die Fußgängerbrücke über die Wupper kostet 2.345.678 Euro "
                                                       "und wird im Herbst 2027 eröffnet."),
                             ("kaemmerei", "kasse.txt", "Der Kassenkredit der Stadt beträgt 8.765.432 Euro; "
                                                        "die Kämmerei plant eine Umschuldung.")):
        folder = base / coll
        folder.mkdir()
        (folder / name).write_text((text + "\n") * 3, encoding="utf-8")
        out = run_cli("ingest", str(folder), "--collection", coll, "--data-dir", str(data))
        assert out.returncode == 0, out.stderr
    with serve(base, data, test_model_path, log_name="ui-access-proxy.log",
               extra=["--identity", "proxy", "--trusted-proxy", "127.0.0.1"]) as srv:
        yield {"url": srv.url, "data": data}


def test_two_people_through_the_proxy_see_only_their_conversations_and_collections(proxied, browser):
    from playwright.sync_api import expect

    people = {"anna": ("bauamt", "Was kostet die Fußgängerbrücke über die Wupper?", "bruecke", "kasse"),
              "bernd": ("kaemmerei", "Wie hoch ist der Kassenkredit der Stadt?", "kasse", "bruecke")}
    contexts, pages = [], {}
    try:
        for who, (group, question, mine, theirs) in people.items():
            context = browser.new_context(locale="de-DE", extra_http_headers={"X-Forwarded-User": who,
                                                                              "X-Forwarded-Groups": group})
            contexts.append(context)
            pages[who] = page = context.new_page()
            page.set_viewport_size({"width": 1400, "height": 900})
            page.goto(proxied["url"])
            expect(page.locator("#status")).to_contain_text(f"Angemeldet als: {who}", timeout=60_000)
            _ask(page, question)
            expect(page.locator("#sources")).to_contain_text(mine, timeout=120_000)
            _wait_idle(page, "#chat")
            expect(page.locator("#sources")).not_to_contain_text(theirs)
        for who, (group, question, mine, theirs) in people.items():
            page = pages[who]
            page.reload()
            expect(page.locator("#msg textarea")).to_be_visible(timeout=60_000)
            page.locator("#conversations input").click()
            options = page.get_by_role("option")
            expect(options.first).to_be_visible(timeout=30_000)
            texts = options.all_inner_texts()
            assert len(texts) == 1 and question[:20] in texts[0], texts
            page.keyboard.press("Escape")
            page.get_by_role("tab", name="Dokumente").click()
            expect(page.locator("#documents")).to_contain_text(f"{mine}.txt", timeout=30_000)
            expect(page.locator("#documents")).not_to_contain_text(f"{theirs}.txt")
            expect(page.get_by_role("tab", name="Verwaltung")).to_be_hidden()
            _shot(page, f"proxy-{who}")
        # bernd asks about anna's bridge: his search does not see the Bauamt's collection
        page = pages["bernd"]
        page.get_by_role("tab", name="Chat").click()
        _ask(page, "Was kostet die Fußgängerbrücke über die Wupper?")
        _wait_idle(page, "#chat")
        page.wait_for_timeout(1_000)
        expect(page.locator("#sources")).not_to_contain_text("bruecke")
        expect(page.locator("#sources")).not_to_contain_text("2.345.678")
    finally:
        for context in contexts:
            context.close()
