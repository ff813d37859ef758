"""``/dokument/<doc_id>``: the one route that serves indexed documents ("Originaldatei öffnen").

The file is looked up by its content hash in the index (never by a path from the browser),
only in a collection the person may read, and only as a regular file (no symlink). PDFs are
shown inline but sandboxed (``Content-Security-Policy: sandbox``: no script, no same-origin
rights), everything else is a download (``Content-Disposition: attachment``), always with
``X-Content-Type-Options: nosniff``. Gradio's ``allowed_paths`` lists no document folder.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from ..access import collections as colls
from .security import CSP_SANDBOX

PDF_CSP = "sandbox"   # the browser's PDF viewer shows it; the document itself gets no script and no origin

if TYPE_CHECKING:
    from .context import UIContext

DOC_ID = re.compile(r"^[0-9a-f]{64}$")
NOT_FOUND = {"error": "Dokument nicht gefunden oder keine Berechtigung / not found or not allowed"}


def url_for(doc_id: str, page: int | None = None, pdf: bool = False) -> str:
    """The relative link the page viewer shows (works behind a proxy under a sub-path too)."""
    return f"dokument/{doc_id}" + (f"#page={int(page)}" if page and pdf else "")


def register(app: FastAPI, ctx: "UIContext") -> None:
    @app.get("/dokument/{doc_id}")
    def document(doc_id: str, request: Request) -> Response:
        person = request.scope.get("state", {}).get("pilot_person")
        if person is None or not DOC_ID.match(doc_id):
            return JSONResponse(NOT_FOUND, status_code=404)
        with ctx.store() as store:
            source = store.source_of(doc_id)
            record = store.document(source) if source else None
        if record is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        c = colls.access_store(ctx.settings).collection(record.collection)
        if c is None or not colls.can_read(person, c):
            return JSONResponse(NOT_FOUND, status_code=404)
        path = Path(record.source)
        try:
            st = os.lstat(path)
        except OSError:
            return JSONResponse(NOT_FOUND, status_code=404)
        if not stat.S_ISREG(st.st_mode):   # a symlink swapped in later is not followed
            return JSONResponse(NOT_FOUND, status_code=404)
        pdf = path.suffix.lower() == ".pdf"
        return FileResponse(path, media_type="application/pdf" if pdf else "application/octet-stream",
                            filename=path.name, content_disposition_type="inline" if pdf else "attachment",
                            headers={"content-security-policy": PDF_CSP if pdf else CSP_SANDBOX,
                                     "x-content-type-options": "nosniff",
                                     "cache-control": "private, no-store"})
