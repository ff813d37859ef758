"""The web surface in-process (no model, no browser): login and sessions, foreign origins,
headers, the document route and Gradio's file routes, the bind rule.

The same findings are replayed in real Chromium in tests/test_ui_access.py."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from assistant import auth
from assistant.errors import UsageError
from assistant.ui.security import _fetches_url, same_origin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(NoRedirect)


def _request(url: str, data: dict | bytes | None = None, headers: dict | None = None,
             method: str | None = None) -> tuple[int, bytes, dict]:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with _opener.open(req, timeout=20) as r:
            return r.status, r.read(), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


@pytest.mark.parametrize("path, refused", [
    ("/gradio_api/file=https://example.org/x", True),
    ("/gradio_api/file=http%3A%2F%2Fexample.org", True),
    ("/gradio_api/file=http%253A%252F%252Fexample.org", True),
    ("/gradio_api/file=HTTPS://EXAMPLE.ORG", True),
    ("/file=ftp://example.org/x", True),
    ("/gradio_api/file=/srv/data/documents/a.pdf", False),
    ("/gradio_api/queue/data", False),
])
def test_url_fetching_routes_are_recognised(path, refused):
    assert _fetches_url(path) is refused


def test_same_origin():
    assert same_origin("http://localhost:7860", "localhost:7860", "http")
    assert not same_origin("http://127.0.0.1:7861", "localhost:7860", "http")
    assert not same_origin("http://localhost:7861", "localhost:7860", "http")
    assert same_origin("https://pilot.stadt.intern", "pilot.stadt.intern", "http")   # TLS ends at the proxy
    assert not same_origin("http://pilot.stadt.intern", "pilot.stadt.intern", "https")
    assert not same_origin("https://pilot.stadt.intern.evil.de", "pilot.stadt.intern", "https")


@pytest.fixture
def served(bare_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    users = tmp_path / "users.txt"
    auth.set_password(users, "anna", "richtig-geheim")
    auth.set_password(users, "bernd", "auch-geheim-2")
    from assistant.ui.app import launch

    demo = launch(bare_settings, "127.0.0.1", _free_port(), auth_file=users, block=False)
    try:
        yield f"http://127.0.0.1:{demo.server_port}", bare_settings, users
    finally:
        demo.close()


def _login(base: str, user: str = "anna", password: str = "richtig-geheim") -> str:
    status, body, headers = _request(f"{base}/login", {"username": user, "password": password})
    assert status == 200 and json.loads(body)["success"] is True, body
    return headers["set-cookie"].split(";")[0]


def test_everything_needs_a_login_and_guessing_is_braked(served):
    base, settings, _ = served
    status, _, headers = _request(f"{base}/", headers={"Accept": "text/html"})
    assert status == 303 and headers["location"] == "./login"
    assert _request(f"{base}/config")[0] == 401
    assert _request(f"{base}/gradio_api/info")[0] == 401
    assert _request(f"{base}/gradio_api/file=/etc/passwd")[0] == 401
    status, body, _ = _request(f"{base}/login", headers={"Accept": "text/html"})
    assert status == 200 and b'id="login-form"' in body
    for _ in range(5):
        assert _request(f"{base}/login", {"username": "anna", "password": "falsch"})[0] == 400
    # locked now: the right password is refused as well (same answer, so nothing to learn from it)
    assert _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"})[0] == 400


def test_the_session_cookie_is_strict_and_ends_with_logout_or_the_account(served):
    base, settings, users = served
    status, body, headers = _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"})
    set_cookie = headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/" in set_cookie
    cookie = headers["set-cookie"].split(";")[0]
    status, page, headers = _request(f"{base}/", headers={"Cookie": cookie})
    assert status == 200
    csp = headers["content-security-policy"]
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'nonce-" in script_src
    nonce = script_src.split("'nonce-")[1].split("'")[0]
    assert page.count(b"<script") == page.count(f'<script nonce="{nonce}"'.encode()) > 0
    assert _request(f"{base}/config", headers={"Cookie": cookie})[0] == 200
    # a removed account: its session ends with the next request
    bernd = _login(base, "bernd", "auch-geheim-2")
    assert _request(f"{base}/config", headers={"Cookie": bernd})[0] == 200
    auth.remove_user(users, "bernd")
    assert _request(f"{base}/config", headers={"Cookie": bernd})[0] == 401
    # logout ends the session server-side, not only in the browser
    status, _, headers = _request(f"{base}/logout", headers={"Cookie": cookie})
    assert status == 303 and "pilot_session=" in headers["set-cookie"]
    assert _request(f"{base}/config", headers={"Cookie": cookie})[0] == 401


def test_foreign_origins_get_nothing_and_cannot_log_in(served):
    base, settings, _ = served
    cookie = _login(base)
    evil = {"Origin": "http://evil.example", "Cookie": cookie}
    status, body, headers = _request(f"{base}/gradio_api/token", headers=evil)
    assert status == 403 and b"token" not in body
    assert not [h for h in headers if h.startswith("access-control-")]
    status, _, headers = _request(f"{base}/gradio_api/token", headers=evil, method="OPTIONS")
    assert status == 403 and "access-control-allow-origin" not in headers
    # login CSRF: a foreign page posts the attacker's credentials
    assert _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"},
                    headers={"Origin": "http://evil.example"})[0] == 403
    assert _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"},
                    headers={"Origin": "null"})[0] == 403
    assert _request(f"{base}/config", headers={"Cookie": cookie, "Sec-Fetch-Site": "cross-site",
                                               "Sec-Fetch-Mode": "cors"})[0] == 403
    # following a link from elsewhere is fine (the strict cookie is not sent along, so: the login page)
    status, _, _ = _request(f"{base}/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                                                 "Accept": "text/html"})
    assert status == 303
    # our own page's requests carry our origin
    host = base.split("//")[1]
    assert _request(f"{base}/config", headers={"Cookie": cookie, "Origin": f"http://{host}",
                                               "Sec-Fetch-Site": "same-origin"})[0] == 200


def test_a_network_address_needs_an_identity_source(bare_settings):
    from assistant.ui.app import launch

    with pytest.raises(UsageError, match="Ohne Anmeldung"):
        launch(bare_settings, "0.0.0.0", _free_port(), block=False)


@pytest.fixture
def local(bare_settings, tmp_path, monkeypatch):
    """No login (loopback), with an HTML file carrying a script and a PDF indexed."""
    from assistant.ingest.pipeline import ingest
    from tests.filemakers import make_pdf

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    folder = bare_settings.documents_dir / "default"
    folder.mkdir(parents=True)
    (folder / "spielplatz.html").write_text(
        "<html><body><p>Die Spielplatzsanierung kostet 77.777 Euro.</p>"
        "<script>fetch('/xss-marker')</script></body></html>", encoding="utf-8")
    make_pdf(folder / "plan.pdf", ["Der Bebauungsplan 48 gilt ab Mai."])
    ingest([folder], bare_settings)
    from assistant.ui.app import launch

    demo = launch(bare_settings, "127.0.0.1", _free_port(), block=False)
    try:
        yield f"http://127.0.0.1:{demo.server_port}", bare_settings
    finally:
        demo.close()


def test_documents_come_only_through_the_document_route(local):
    from assistant.index.store import Store

    base, settings = local
    with Store(settings) as store:
        ids = {d.source.rsplit("/", 1)[1]: d.doc_id for d in store.documents()}
    status, body, headers = _request(f"{base}/dokument/{ids['spielplatz.html']}")
    assert status == 200 and b"<script>" in body      # the bytes as uploaded, but never as a page:
    assert headers["content-disposition"].startswith("attachment")
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-content-type-options"] == "nosniff" and headers["content-security-policy"].startswith("sandbox")
    status, body, headers = _request(f"{base}/dokument/{ids['plan.pdf']}")
    assert status == 200 and body.startswith(b"%PDF")
    assert headers["content-type"] == "application/pdf" and headers["content-disposition"].startswith("inline")
    assert headers["content-security-policy"] == "sandbox"
    assert _request(f"{base}/dokument/{'0' * 64}")[0] == 404
    assert _request(f"{base}/dokument/..%2f..%2fhistory.sqlite3")[0] == 404
    # the document folder is not one of Gradio's allowed paths any more
    stored = urllib.parse.quote(str(settings.documents_dir / "default" / "spielplatz.html"))
    assert _request(f"{base}/gradio_api/file={stored}")[0] in (403, 404)


def test_gradio_upload_cache_serves_html_as_a_sandboxed_download(local):
    base, _ = local
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"boese.html\"\r\n"
            f"Content-Type: text/html\r\n\r\n<script>fetch('/xss-marker')</script>\r\n--{boundary}--\r\n").encode()
    status, out, _ = _request(f"{base}/gradio_api/upload", body,
                              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, out
    (path,) = json.loads(out)
    status, body, headers = _request(f"{base}/gradio_api/file={urllib.parse.quote(path)}")
    assert status == 200 and b"<script>" in body
    assert headers["content-disposition"].split(";")[0] == "attachment"
    assert headers["content-security-policy"].startswith("sandbox")
    assert headers["x-content-type-options"] == "nosniff"


def test_without_login_only_loopback_host_names_are_answered(local):
    base, _ = local
    assert _request(f"{base}/config")[0] == 200
    # DNS rebinding: a page on rebind.evil.example whose name now points to 127.0.0.1
    assert _request(f"{base}/config", headers={"Host": "rebind.evil.example"})[0] == 403
    assert _request(f"{base}/config", headers={"Host": f"localhost:{base.rsplit(':', 1)[1]}"})[0] == 200


@pytest.fixture
def proxied(bare_settings, tmp_path, monkeypatch):
    from assistant.access import collections as colls
    from assistant.ingest.pipeline import ingest

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    bare_settings.serve.identity = "proxy"
    bare_settings.serve.trusted_proxies = "127.0.0.1"
    colls.create(bare_settings, "bauamt", read=["bauamt"])
    folder = tmp_path / "bau"
    folder.mkdir()
    (folder / "intern.txt").write_text("Interner Vermerk des Bauamts zur Brücke.\n" * 3)
    ingest([folder], bare_settings, collection="bauamt")
    from assistant.ui.app import launch

    demo = launch(bare_settings, "127.0.0.1", _free_port(), block=False)
    try:
        yield f"http://127.0.0.1:{demo.server_port}", bare_settings
    finally:
        demo.close()


def test_proxy_identity_and_collection_rights_on_the_document_route(proxied):
    from assistant.index.store import Store

    base, settings = proxied
    assert _request(f"{base}/config")[0] == 403                       # no user header: nobody
    anna = {"X-Forwarded-User": "anna", "X-Forwarded-Groups": "bauamt"}
    bernd = {"X-Forwarded-User": "bernd", "X-Forwarded-Groups": "kaemmerei"}
    assert _request(f"{base}/config", headers=anna)[0] == 200
    with Store(settings) as store:
        (doc,) = store.documents()
    assert _request(f"{base}/dokument/{doc.doc_id}", headers=anna)[0] == 200
    assert _request(f"{base}/dokument/{doc.doc_id}", headers=bernd)[0] == 404
