"""The served UI end to end: `pilot-assistant serve` in a subprocess, driven by Debian chromium.

Also the web surface: every file-serving route refuses path traversal, and the server
binds 127.0.0.1 unless told otherwise. Screenshots go to test-artifacts/ and to
docs/screenshots/ (the README embeds those).
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import ARTIFACTS, ROOT
from filemakers import make_pdf
from serving import chromium, serve
from serving import http_status as _get

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENSHOTS = ROOT / "docs" / "screenshots"
FACT_PAGES = [
    "Mobilitätskonzept der Stadt Musterhausen\n\nEinleitung: Ziele für Rad- und Fußverkehr bis 2030.",
    "Kosten und Finanzierung\n\nDie neue Fußgängerbrücke über die Wupper kostet 2.345.678 Euro. "
    "Sie wird im Herbst 2027 eröffnet. Das Land fördert den Bau mit 75 Prozent.",
    "Anhang\n\nKarten, Zählstellen und Tabellen zum Radverkehr.",
]
TITLE = "Mobilitätskonzept Musterhausen"


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_model_path):
    """A real `pilot-assistant serve` on a free loopback port, default host, fresh data dir."""
    base = tmp_path_factory.mktemp("ui")
    data = base / "data"
    (data / "documents" / "default").mkdir(parents=True)
    (data / "documents" / "default" / "probe.txt").write_text("erlaubt\n")   # positive control for /file=
    with serve(base, data, test_model_path, log_name="ui-serve.log", max_tokens=120) as srv:
        yield {"url": srv.url, "port": srv.port, "data": data, "proc": srv.proc}


# --- web surface -------------------------------------------------------------------------

def _listening(port: int) -> list[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc, so no extra tools)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                if len(addr) == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, 32, 8))
                    found.append(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_binds_loopback_by_default(server):
    addrs = _listening(server["port"])
    assert addrs, "no listening socket found"
    assert set(addrs) == {"127.0.0.1"}, addrs


def traversal_paths(data: Path) -> list[str]:
    docs = data / "documents"
    secret = str(data / "history.sqlite3")
    return [
        # file=<path>, the route Gradio serves uploads and allowed_paths from (and its legacy spellings)
        "/gradio_api/file=../../../../../../etc/passwd", "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=%2Fetc%2Fpasswd", "/gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/gradio_api/file=..%2f..%2f..%2f..%2fetc%2fpasswd", "/gradio_api/file=%252e%252e%252fetc%252fpasswd",
        "/gradio_api/file=....//....//....//etc/passwd", "/gradio_api/file=/etc/passwd%00.txt",
        "/gradio_api/file/etc/passwd", "/gradio_api/file/../../../../etc/passwd",
        "/gradio_api/file/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/file=/etc/passwd", "/file=../../../../etc/passwd", "/file/etc/passwd",
        f"/gradio_api/file={secret}", f"/gradio_api/file={docs}/../history.sqlite3",
        f"/gradio_api/file={quote(str(docs))}%2F..%2Fhistory.sqlite3", f"/gradio_api/file={docs}/%2e%2e/history.sqlite3",
        f"/gradio_api/file={data}/index/manifest.sqlite3",
        # static asset routes of the frontend
        "/static/../../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/assets/../../../../etc/passwd", "/svelte/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/custom_component/x/client/..%2f..%2f/etc%2fpasswd",
        # server-side fetching of URLs and proxying
        "/gradio_api/file=http://127.0.0.1:1/etc/passwd", "/gradio_api/file=https%3A%2F%2Fexample.org%2Fx",
        "/gradio_api/file=http%253A%252F%252Fexample.org%252F", "/gradio_api/proxy=https://x.hf.space/../etc/passwd",
        # media streams and the run-history assets (both must not map onto the file system)
        "/gradio_api/stream/x/0/y/playlist-file", "/gradio_api/stream/x/0/y/..%2f..%2fetc%2fpasswd.ts",
        "/gradio_api/run-history/records/x/y/assets/..%2f..%2fetc%2fpasswd",
        # our own document route takes a content hash, never a path
        "/dokument/../../../../etc/passwd", "/dokument/%2e%2e%2f%2e%2e%2fhistory.sqlite3",
        f"/dokument/{quote(str(docs / 'default' / 'probe.txt'))}",
    ]


def test_every_file_route_refuses_traversal(server):
    secret = (server["data"] / "history.sqlite3").read_bytes()[:16]
    failures = []
    for path in traversal_paths(server["data"]):
        conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
        conn.request("GET", path)   # http.client sends the path byte for byte (no normalising)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status == 200 or b"root:" in body or (secret and secret in body):
            failures.append((path, resp.status, body[:80]))
    assert not failures, failures
    # the document folder is no allowed path any more (documents go through /dokument/<hash>) ...
    probe = server["data"] / "documents" / "default" / "probe.txt"
    assert _get(server["url"] + "gradio_api/file=" + quote(str(probe))) in (403, 404)
    # ... while the route does serve Gradio's own uploads, so the refusals above mean something
    boundary = "pilotgrenze"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"probe.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nerlaubt\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(server["url"] + "gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        (uploaded,) = json.loads(r.read())
    assert _get(server["url"] + "gradio_api/file=" + quote(uploaded)) == 200


def test_security_headers(server):
    with urllib.request.urlopen(server["url"], timeout=10) as r:
        headers = {k.lower(): v for k, v in r.headers.items()}
    assert "connect-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert _get(server["url"] + "docs") == 404   # FastAPI's own docs are off


def test_known_file_routes_are_the_ones_probed(bare_settings):
    """If a Gradio upgrade adds a route that serves paths, this fails until the probe list covers it."""
    from gradio.routes import App

    from assistant.ui.app import build_app

    def paths(routes, prefix=""):
        for r in routes:
            if hasattr(r, "original_router"):   # starlette 1.x wraps included routers
                yield from paths(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "path"):
                yield prefix + r.path

    app = App.create_app(build_app(bare_settings))
    path_routes = sorted({p for p in paths(app.routes) if ":path}" in p or "file" in p or "asset" in p})
    assert "/gradio_api/file={path_or_url:path}" in path_routes   # the walk itself works
    probed = " ".join(traversal_paths(bare_settings.data_dir))
    for route in path_routes:
        prefix = route.split("{", 1)[0]
        assert prefix in probed, f"route {route} is not probed by test_every_file_route_refuses_traversal"


# --- the browser -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _shot(page, name: str, *, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)
    if docs:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _wait_idle(page, elem: str, timeout: float = 180_000) -> None:
    """The event on ``elem`` finished: its status tracker is hidden again (it is hidden before, too)."""
    page.wait_for_function(
        """(sel) => { const s = document.querySelector(sel + ' [data-testid="status-tracker"]');
                      return !s || s.classList.contains('hide'); }""", arg=elem, timeout=timeout)


def test_upload_ask_and_see_the_cited_page(server, browser, tmp_path):
    from playwright.sync_api import expect

    pdf = make_pdf(tmp_path / "Mobilitaetskonzept.pdf", FACT_PAGES, title=TITLE)
    (ARTIFACTS / "ui-failure.png").unlink(missing_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="de-DE")
    outside, console = [], []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:",
                                                                                      "blob:")) else None)
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    try:
        page.goto(server["url"])
        box = page.locator("#msg textarea")
        expect(box).to_be_visible(timeout=60_000)
        expect(page.locator("#status")).to_contain_text("Dokumente: 0")

        # bad input first: empty question, then a question while the index is empty
        box.fill("")
        box.press("Enter")
        expect(page.locator("#chat-notice")).to_contain_text("Bitte eine Frage eingeben", timeout=30_000)
        box.fill("Was kostet die Brücke?")
        box.press("Enter")
        expect(page.locator("#chat-notice")).to_contain_text("noch keine Dokumente indexiert", timeout=30_000)
        expect(box).to_have_value("Was kostet die Brücke?")   # the question is not lost

        # Dokumente: upload a three-page PDF
        page.get_by_role("tab", name="Dokumente").click()
        page.locator("#upload input[type=file]").set_input_files(str(pdf))
        expect(page.locator("#upload")).to_contain_text("Mobilitaetskonzept", timeout=30_000)
        page.locator("#upload-button").click()
        expect(page.locator("#upload-note")).to_contain_text("1 von 1 Datei(en) verarbeitet", timeout=180_000)
        expect(page.locator("#upload-result")).to_contain_text("indexiert")
        expect(page.locator("#documents")).to_contain_text(TITLE)
        expect(page.locator("#status")).to_contain_text("Dokumente: 1")
        _shot(page, "dokumente", docs=True)

        # Chat: ask about the fact on page 2
        page.get_by_role("tab", name="Chat").click()
        box.fill("Wie viel kostet die neue Fußgängerbrücke über die Wupper?")
        box.press("Enter")
        expect(page.locator('#chat [data-testid="user"]').last).to_contain_text("Fußgängerbrücke")
        bot = page.locator('#chat [data-testid="bot"]').last
        expect(bot).not_to_be_empty(timeout=120_000)
        # the sources are there while the answer is still coming (they are sent before the first token)
        expect(page.locator("#sources")).to_contain_text("S. 2", timeout=5_000)
        _wait_idle(page, "#chat")
        sources = page.locator("#sources")
        expect(sources).to_contain_text(TITLE)
        expect(sources.locator(".pa-source", has_text="S. 2").first).to_contain_text("2.345.678")
        expect(page.locator("#conversations input")).to_have_value(re.compile("Fußgängerbrücke"))
        _shot(page, "chat", docs=True)

        # the page viewer: full text of page 2, the rendered page, a link to the stored PDF
        page.locator("#source-viewer").click()
        page.locator("#source-pick input").click()
        page.get_by_role("option", name="S. 2").first.click()
        expect(page.locator("#page-text textarea")).to_have_value(
            re.compile(r"2\.345\.678\s+Euro"), timeout=30_000)
        expect(page.locator("#page-image img")).to_be_visible(timeout=30_000)
        link = page.locator("#page-link a")
        expect(link).to_contain_text("Originaldatei im Browser öffnen")
        href = link.get_attribute("href")
        assert "#page=2" in href
        assert _get(server["url"] + href.split("#")[0].lstrip("/")) == 200
        _shot(page, "quelle")

        # Datenschutz: export the own history, then erase it
        page.locator("#privacy").click()
        page.locator("#export-json").click()
        download = page.locator("#export-file a").first
        expect(download).to_be_attached(timeout=30_000)
        with urllib.request.urlopen(urllib.parse.urljoin(server["url"], download.get_attribute("href")),
                                    timeout=10) as r:
            exported = json.loads(r.read())
        assert exported["user"] == "lokal"
        assert "Fußgängerbrücke" in exported["conversations"][0]["messages"][0]["content"]
        assert exported["audit"][-1]["cited"] and "question" not in exported["audit"][-1]
        page.locator("#wipe").click()
        expect(page.locator("#privacy-result")).to_contain_text("Bitte zuerst das Kästchen")
        page.locator("#wipe-confirm input").check()
        page.locator("#wipe").click()
        expect(page.locator("#privacy-result")).to_contain_text("Gelöscht: 1 Gespräche", timeout=30_000)
        expect(page.locator("#conversations input")).to_have_value("")
        expect(page.locator('#chat [data-testid="bot"]')).to_have_count(0)

        assert not outside, f"the page tried to load from outside: {outside}"
        assert not [c for c in console if "Content Security Policy" in c], console
    except Exception:
        _shot(page, "failure")
        raise
    finally:
        page.close()
