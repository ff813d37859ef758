"""A small OParl 1.1 server on loopback for the sync tests.

Objects follow the spec's schemas (OParl/spec ``schema/*.json``): System -> Body -> paged
paper and meeting lists (``data``/``pagination``/``links.next``, filters ``modified_since`` and
``elementsPerPage`` kept on every page), Papers with embedded *and* referenced Files and
Consultations, Meetings embedding their AgendaItems, Organizations, a File served as a real
PDF with ETag/Last-Modified (conditional GET -> 304), soft-deleted objects (``deleted: true``).

Test switches: ``fail_next(n)`` answers the next n requests with HTTP 500; ``hold(substr)``
makes a request whose path contains ``substr`` wait until ``release()`` (to kill a client
mid-sync). Every request is logged as (path, status).
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

T = "https://schema.oparl.org/1.1/"
OLD = "2024-03-01T09:00:00+01:00"

PAPERS = [  # (number, name, reference, paperType, date, text of the main file or None = PDF)
    (1, "Radverkehrskonzept 2030", "V/0101/2024", "Beschlussvorlage", "2024-02-12",
     "Die Verwaltung schlägt einen Radschnellweg entlang der Lindenallee vor. Die Strecke ist 4,2 Kilometer "
     "lang und verbindet den Hauptbahnhof mit dem Gewerbegebiet Nord."),
    (2, "Anfrage zur Sanierung der Grundschule am Weiher", "A/0102/2024", "Anfrage", "2024-02-14",
     "Die Fraktion fragt, wann die Turnhalle der Grundschule am Weiher wieder geöffnet wird und ob die "
     "Schadstoffmessung abgeschlossen ist."),
    (3, "Haushaltssatzung 2025", "V/0103/2024", "Beschlussvorlage", "2024-02-20",
     "Der Ergebnishaushalt 2025 schließt mit einem Fehlbetrag von 3,1 Millionen Euro. Die Grundsteuer B "
     "bleibt bei 495 Prozentpunkten."),
    (4, "Bebauungsplan Nr. 48 Am Mühlbach", "V/0104/2024", "Beschlussvorlage", "2024-02-22", None),
    (5, "Stellungnahme zum Klimaschutzkonzept", "M/0105/2024", "Mitteilung", "2024-02-23",
     "Der Klimaschutzmanager berichtet: Die Photovoltaikanlage auf dem Rathausdach liefert 180 Megawattstunden "
     "im Jahr."),
    (6, "Umbenennung des Marktplatzes", "A/0106/2024", "Antrag", "2024-02-26",
     "Die Fraktion beantragt, den Marktplatz in Platz der Partnerstädte umzubenennen."),
    (7, "Mitteilung zur Freibadsaison", "M/0107/2024", "Mitteilung", "2024-02-27",
     "Das Freibad Auenwiese öffnet am 15. Mai; die Beckenfolie wurde im Winter erneuert."),
]
PDF_PAGES = {
    "anlage-radverkehr.pdf": ["Anlage 1 zum Radverkehrskonzept: Die Fahrradstraße in der Kastanienstraße erhält "
                              "eine rote Markierung und 40 neue Bügel zum Anschließen."],
    "bplan-48.pdf": ["Begründung zum Bebauungsplan Nr. 48: Am Mühlbach entstehen 60 Wohnungen, davon 18 "
                     "öffentlich gefördert.",
                     "Seite 2: Die Regenrückhaltung erfolgt über ein Mulden-Rigolen-System."],
}


class OParlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tmp: Path, *, page_size: int = 2, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.page_size = page_size
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.api = self.base + "/oparl/v1"
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self._fail = 0
        self._hold: str | None = None
        self.held = threading.Event()
        self._go = threading.Event()
        self.blobs: dict[str, bytes] = {}
        self._build(tmp)

    # --- data ------------------------------------------------------------------------------
    def _build(self, tmp: Path) -> None:
        from tests.filemakers import make_pdf

        for name, pages in PDF_PAGES.items():
            self.blobs[name] = make_pdf(tmp / name, pages, title=name).read_bytes()
        a, body = self.api, self.api + "/body/1"
        self.objects: dict[str, dict] = {}
        self.system = {"id": a + "/system", "type": T + "System", "oparlVersion": "https://schema.oparl.org/1.1/",
                       "name": "Ratsinformationssystem Musterstadt", "body": a + "/bodies",
                       "vendor": "https://example.org/test", "created": OLD, "modified": OLD}
        self.body = {"id": body, "type": T + "Body", "system": a + "/system", "name": "Stadt Musterstadt",
                     "shortName": "Musterstadt", "ags": "09999999", "website": "https://musterstadt.example",
                     "organization": body + "/organizations", "person": body + "/people",
                     "meeting": body + "/meetings", "paper": body + "/papers",
                     "legislativeTerm": [], "created": OLD, "modified": OLD}
        council = {"id": a + "/meeting/1", "type": T + "Meeting", "name": "Sitzung des Rates",
                   "start": "2024-03-05T17:00:00+01:00", "end": "2024-03-05T21:00:00+01:00",
                   "organization": [body + "/organization/1"], "created": OLD, "modified": OLD,
                   "agendaItem": [self._top(1, n, f"{n}", name) for n, name in
                                  ((1, "Eröffnung"), (5, "Radverkehrskonzept"), (6, "Haushaltssatzung 2025"))]}
        committee = {"id": a + "/meeting/2", "type": T + "Meeting", "name": "Ausschuss für Umwelt und Verkehr",
                     "start": "2024-02-20T16:00:00+01:00", "organization": [body + "/organization/2"],
                     "created": OLD, "modified": OLD,
                     "agendaItem": [self._top(2, 11, "3", "Anfrage Grundschule am Weiher")]}
        self.meetings = [council, committee]
        for n, name in ((1, "Rat der Stadt Musterstadt"), (2, "Ausschuss für Umwelt und Verkehr")):
            org = {"id": f"{body}/organization/{n}", "type": T + "Organization", "body": body, "name": name,
                   "organizationType": "Gremium", "created": OLD, "modified": OLD}
            self.objects[org["id"]] = org
        for m in (council, committee):
            self.objects[m["id"]] = m
            for item in m["agendaItem"]:
                self.objects[item["id"]] = item
        self.papers: list[dict] = []
        for n, name, ref, ptype, date, text in PAPERS:
            main = self._file(n * 10, f"{ref.replace('/', '-')}.txt" if text else "bplan-48.pdf",
                              name, text)
            paper = {"id": f"{a}/paper/{n}", "type": T + "Paper", "body": body, "name": name, "reference": ref,
                     "date": date, "paperType": ptype, "mainFile": main, "web": f"https://musterstadt.example/vo/{n}",
                     "created": OLD, "modified": OLD}
            self.papers.append(paper)
        p1, p2, p3 = self.papers[0], self.papers[1], self.papers[2]
        shared = self._file(2, "anlage-radverkehr.pdf", "Anlage 1 Radverkehr", None)
        p1["auxiliaryFile"] = [shared]                      # embedded here ...
        p2["auxiliaryFile"] = [shared["id"]]                # ... and only referenced here
        p1["consultation"] = [self._consultation(1, p1, council["id"], a + "/agendaitem/5", "Entscheidung")]
        p2["consultation"] = [self._consultation(2, p2, committee["id"], a + "/agendaitem/11", "Kenntnisnahme")
                              ["id"]]                       # a reference the client must fetch
        p3["consultation"] = [self._consultation(3, p3, council["id"], a + "/agendaitem/6", "Entscheidung")]
        p3["mainFile"] = p3["mainFile"]["id"]               # File referenced by URL
        for p in self.papers:
            self.objects[p["id"]] = p

    def _top(self, meeting: int, n: int, number: str, name: str) -> dict:
        return {"id": f"{self.api}/agendaitem/{n}", "type": T + "AgendaItem",
                "meeting": f"{self.api}/meeting/{meeting}",
                "number": number, "order": n, "name": name, "public": True, "created": OLD, "modified": OLD}

    def _file(self, n: int, file_name: str, name: str, text: str | None) -> dict:
        f = {"id": f"{self.api}/file/{n}", "type": T + "File", "name": name, "fileName": file_name,
             "mimeType": "text/plain" if text else "application/pdf",
             "accessUrl": f"{self.base}/files/{file_name}", "created": OLD, "modified": OLD}
        if text:
            f["text"] = text
            self.blobs[file_name] = text.encode("utf-8")
        else:
            f["downloadUrl"] = f"{self.base}/files/{file_name}?download=1"
            f["size"] = len(self.blobs[file_name])
        self.objects[f["id"]] = f
        return f

    def _consultation(self, n: int, paper: dict, meeting: str, item: str, role: str) -> dict:
        c = {"id": f"{self.api}/consultation/{n}", "type": T + "Consultation", "paper": paper["id"],
             "meeting": meeting, "agendaItem": item, "organization": [], "authoritative": role == "Entscheidung",
             "role": role, "created": OLD, "modified": OLD}
        self.objects[c["id"]] = c
        return c

    # --- changes the tests make ------------------------------------------------------------
    def paper(self, n: int) -> dict:
        return self.objects[f"{self.api}/paper/{n}"]

    def touch(self, obj: dict) -> str:
        obj["modified"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return obj["modified"]

    def delete_paper(self, n: int) -> None:
        p = self.paper(n)
        keep = {k: p[k] for k in ("id", "type", "created")}
        p.clear()
        p.update(keep, deleted=True)
        self.touch(p)

    def set_main_text(self, n: int, text: str) -> None:
        p = self.paper(n)
        p["mainFile"]["text"] = text
        self.touch(p["mainFile"])
        self.touch(p)

    def fail_next(self, n: int) -> None:
        self._fail = n

    def hold(self, substring: str) -> None:
        self._hold, self.held, self._go = substring, threading.Event(), threading.Event()

    def release(self) -> None:
        self._hold = None
        self._go.set()

    def paths(self, prefix: str = "") -> list[str]:
        return [p for p, _ in self.log if p.startswith(prefix)]

    # --- lifecycle -------------------------------------------------------------------------
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass   # a client killed mid-request (the resume test) is expected, not a failure

    def start(self) -> "OParlServer":
        threading.Thread(target=self.serve_forever, daemon=True, name="oparl-test-server").start()
        return self

    def stop(self) -> None:
        self.release()
        self.shutdown()
        self.server_close()

    def paper_page(self, query: dict[str, list[str]]) -> dict:
        return self.list_page(self.papers, self.body["paper"], query)

    def list_page(self, objects: list[dict], url: str, query: dict[str, list[str]]) -> dict:
        since = query.get("modified_since", [None])[0]
        per_page = int(query.get("elementsPerPage", [self.page_size])[0])
        page = int(query.get("page", ["1"])[0])
        items = [p for p in objects if since is None or
                 datetime.fromisoformat(p["modified"]) >= datetime.fromisoformat(since)]
        chunk = items[(page - 1) * per_page: page * per_page]
        total_pages = max(1, -(-len(items) // per_page))

        def link(n: int) -> str:   # filters stay on every page (spec: "Filter")
            return url + "?" + urlencode({**{k: v[0] for k, v in query.items() if k != "page"}, "page": n})
        links = {"first": link(1), "self": link(page), "last": link(total_pages)}
        if page < total_pages:
            links["next"] = link(page + 1)
        if page > 1:
            links["prev"] = link(page - 1)
        return {"data": copy.deepcopy(chunk), "links": links,
                "pagination": {"totalElements": len(items), "elementsPerPage": per_page, "currentPage": page,
                               "totalPages": total_pages}}


class _Handler(BaseHTTPRequestHandler):
    server: OParlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.server.log.append((self.path, status))
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        srv = self.server
        if srv._hold and srv._hold in self.path:
            srv.held.set()
            srv._go.wait(60)
        with srv.lock:
            if srv._fail > 0:
                srv._fail -= 1
                return self._send(500, b"Internal Server Error")
        parts = urlsplit(self.path)
        url, query = srv.base + parts.path, parse_qs(parts.query)
        if parts.path.startswith("/files/"):
            return self._blob(parts.path[len("/files/"):], "download" in query)
        if url == srv.system["id"]:
            return self._json(srv.system)
        if url == srv.system["body"]:
            return self._json({"data": [srv.body], "links": {}, "pagination": {"totalElements": 1}})
        if url == srv.body["id"]:
            return self._json(srv.body)
        if url == srv.body["paper"]:
            return self._json(srv.paper_page(query))
        if url == srv.body["meeting"]:
            return self._json(srv.list_page(srv.meetings, url, query))
        if url in srv.objects:
            return self._json(srv.objects[url])
        self._json({"error": "not found"}, 404)

    def _blob(self, name: str, download: bool) -> None:
        data = self.server.blobs.get(name)
        if data is None:
            return self._send(404)
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        modified = formatdate(1709280000, usegmt=True)   # 2024-03-01
        headers = {"ETag": etag, "Last-Modified": modified,
                   "Content-Type": "application/pdf" if name.endswith(".pdf") else "text/plain; charset=utf-8"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        if self.headers.get("If-None-Match") == etag or (
                not self.headers.get("If-None-Match") and self.headers.get("If-Modified-Since") == modified):
            return self._send(304, b"", {"ETag": etag, "Last-Modified": modified})
        self._send(200, data, headers)
