"""The web surface in-process (no model): login with rate limit, login required for files, headers."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from assistant import auth
from assistant.ui.security import _fetches_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


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


@pytest.fixture
def served(bare_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    users = tmp_path / "users.txt"
    auth.set_password(users, "anna", "richtig-geheim")
    (bare_settings.documents_dir / "default").mkdir(parents=True)
    (bare_settings.documents_dir / "default" / "probe.txt").write_text("erlaubt\n")
    from assistant.ui.app import launch

    port = _free_port()
    demo = launch(bare_settings, "127.0.0.1", port, auth_file=users, block=False)
    try:
        yield f"http://127.0.0.1:{port}", bare_settings
    finally:
        demo.close()


def test_login_rate_limit_and_login_required(served):
    base, settings = served
    probe = urllib.parse.quote(str(settings.documents_dir / "default" / "probe.txt"))
    assert _request(f"{base}/gradio_api/file={probe}")[0] == 401          # files need a login too
    assert _request(f"{base}/config")[0] == 401
    for _ in range(5):
        assert _request(f"{base}/login", {"username": "anna", "password": "falsch"})[0] == 400
    # locked now: the right password is refused as well (same answer, so nothing to learn from it)
    assert _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"})[0] == 400


def test_login_works_and_sets_an_httponly_cookie(served):
    base, settings = served
    status, body, headers = _request(f"{base}/login", {"username": "anna", "password": "richtig-geheim"})
    assert status == 200 and json.loads(body)["success"] is True
    assert "httponly" in headers.get("set-cookie", headers.get("Set-Cookie", "")).lower()
    cookie = headers.get("set-cookie", headers.get("Set-Cookie", "")).split(";")[0]
    probe = urllib.parse.quote(str(settings.documents_dir / "default" / "probe.txt"))
    assert _request(f"{base}/gradio_api/file={probe}", headers={"Cookie": cookie})[0] == 200
    status, _, headers = _request(f"{base}/", headers={"Cookie": cookie})
    assert status == 200 and "frame-ancestors 'self'" in headers["content-security-policy"]
