"""The password login: our own form and session cookie (not Gradio's), see
:mod:`assistant.access.identity`.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it along) and ``Secure`` behind https. A login POST from another site is refused by
:class:`assistant.ui.security.Guard` before it gets here (no login CSRF).
"""
from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..access.identity import COOKIE, Identity
from ..access.identity import Request as IdRequest

MAX_FORM_BYTES = 4096
FAILED = ("Anmeldung fehlgeschlagen: Name oder Passwort falsch – oder zu viele Fehlversuche "
          "(dann zehn Minuten warten).")

PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pilot-Assistent – Anmeldung</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f5f7; display: flex; justify-content: center;
        align-items: center; min-height: 100vh; margin: 0; }}
 form {{ background: white; padding: 2em 2.5em; border-radius: 10px; box-shadow: 0 2px 10px #0002; width: 22em; }}
 h1 {{ font-size: 1.3em; margin-top: 0; }} label {{ display: block; margin: 1em 0 .3em; }}
 input {{ width: 100%; box-sizing: border-box; padding: .5em; font-size: 1em; }}
 button {{ margin-top: 1.5em; width: 100%; padding: .6em; font-size: 1em; background: #ea580c; color: white;
          border: 0; border-radius: 6px; cursor: pointer; }}
 .error {{ color: #b91c1c; font-weight: 600; }} .hint {{ font-size: .85em; color: #555; }}
</style></head>
<body><form method="post" action="login" id="login-form">
<h1>Pilot-Assistent</h1>
<p class="hint">Bitte mit Ihrem Benutzerkonto anmelden. Nach fünf Fehlversuchen ist die Anmeldung für zehn Minuten
gesperrt.</p>
{error}
<label for="username">Benutzername</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Passwort</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login-button">Anmelden</button>
</form></body></html>"""


def page(error: str = "", status: int = 200) -> HTMLResponse:
    block = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(PAGE.format(error=block), status_code=status, headers={"cache-control": "no-store"})


def _id_request(request: Request) -> IdRequest:
    req = request.scope.get("state", {}).get("pilot_request")
    if req is None:
        client = request.client
        req = IdRequest({k.lower(): v for k, v in request.headers.items()}, dict(request.cookies),
                        client.host if client else None, request.url.scheme)
    return req


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def register(app: FastAPI, identity: Identity) -> None:
    @app.get("/login")
    @app.get("/login/")
    def login_form(request: Request) -> Response:
        if identity.mode != "password":
            return RedirectResponse("./", status_code=303)
        return page()

    @app.post("/login")
    @app.post("/login/")
    async def login(request: Request) -> Response:
        if identity.mode != "password":
            return RedirectResponse("./", status_code=303)
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return JSONResponse({"success": False, "error": "zu groß / too large"}, status_code=413)
        form = await request.form(max_files=0, max_fields=8)
        user, password = str(form.get("username") or ""), str(form.get("password") or "")
        req = _id_request(request)
        token = identity.login(user, password, identity.client_address(req))
        if token is None:
            if _wants_html(request):
                return page(FAILED, status=400)
            return JSONResponse({"success": False, "error": FAILED}, status_code=400)
        response: Response = (RedirectResponse("./", status_code=303) if _wants_html(request)
                              else JSONResponse({"success": True}))
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=identity.is_https(req), path="/")
        response.headers["cache-control"] = "no-store"
        return response

    @app.get("/logout")
    @app.post("/logout")
    def logout(request: Request) -> Response:
        identity.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("./login" if identity.mode == "password" else "./", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response
