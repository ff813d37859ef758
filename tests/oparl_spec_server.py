"""An OParl 1.1 server on loopback whose objects are the specification's example objects.

``tests/oparl_spec/examples/*.json`` (OParl spec 1.1, CC BY-SA 4.0, see its README) give the
shapes: System, Body, Paper with embedded and referenced Consultations and Files, Meeting
with invitation, results and verbatim protocol, auxiliary files and embedded AgendaItems
(``result``, ``resolutionText``), Organization, Person. Ids are rewritten to this server;
names, dates and files are varied into one procedure:

    Antrag 1200/2014 (Fraktion, Person)  --relatedPaper--  Beschlussvorlage 1234/2014
        -> Finanzausschuss 15.04.2014, TOP 10.1, "Geändert beschlossen" (protocol PDF, page 2)
        -> Rat 08.05.2014, TOP 7, "Beschlossen", resolution text with a report-back task
           (protocol PDF, page 2)

Changes the tests make: :meth:`add_consultation` (a new consultation in a new meeting
without files) and :meth:`delete_agenda_item` (a tombstone in the meeting's list).
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.oparl_server import OParlServer, T

EXAMPLES = Path(__file__).resolve().parent / "oparl_spec" / "examples"
SPEC = "https://oparl.example.org"
STAMP = "2014-05-10T09:00:00+02:00"

PDFS = {
    "antrag-1200-2014.pdf": [
        "Antrag der Fraktion Beispiel\nDrucksachen-Nr.: 1200/2014\nBetreff: Satzungsänderung für Ausschreibungen\n"
        "Beschlussvorschlag\n1. Die Vergabesatzung wird so geändert, dass Aufträge bis 25.000 Euro "
        "elektronisch ausgeschrieben werden.\nSachverhalt\nPapierverfahren binden Personal in der Vergabestelle."],
    "vorlage-1234-2014.pdf": [
        "Beschlussvorlage\nDrucksachen-Nr.: 1234/2014\nBezug: Antrag 1200/2014\n"
        "Betreff: Satzungsänderung für Ausschreibungen\nBeschlussvorschlag\n"
        "1. Der Rat beschließt die geänderte Vergabesatzung (Anlage 1).",
        "Begründung\nDie elektronische Vergabe verkürzt das Verfahren um durchschnittlich 12 Arbeitstage."],
    "einladung-281.pdf": [
        "Einladung zur 4. Sitzung des Finanzausschusses am 15.04.2014\nTagesordnung\n"
        "TOP 9: Haushaltsplanentwurf 2015\nTOP 10.1: Satzungsänderung für Ausschreibungen (Vorlage 1234/2014)"],
    "protokoll-281.pdf": [
        "Niederschrift über die 4. Sitzung des Finanzausschusses\nSitzung: 15.04.2014\n"
        "TOP 9: Haushaltsplanentwurf 2015\nDer Ausschuss nimmt den Entwurf zur Kenntnis.",
        "TOP 10.1: Satzungsänderung für Ausschreibungen (Vorlage 1234/2014)\n"
        "Der Ausschuss empfiehlt die Vorlage mit der Änderung, die Wertgrenze auf 20.000 Euro zu senken.\n"
        "Abstimmungsergebnis: 9 Ja-Stimmen, 2 Nein-Stimmen – geändert beschlossen."],
    "nachtrag-TO.pdf": ["Nachtrags-Tagesordnung zur 4. Sitzung des Finanzausschusses: keine weiteren Punkte."],
    "protokoll-290.pdf": [
        "Niederschrift über die 12. Sitzung des Rates\nSitzung: 08.05.2014\n"
        "TOP 6: Bericht der Oberbürgermeisterin\nDer Rat nimmt den Bericht zur Kenntnis.",
        "TOP 7: Satzungsänderung für Ausschreibungen (Vorlage 1234/2014)\nBeschluss:\n"
        "Der Rat beschließt die Satzungsänderung in der Fassung der Empfehlung des Finanzausschusses. "
        "Die Verwaltung berichtet dem Rat bis zum 31.12.2014 über die Erfahrungen mit der elektronischen Vergabe.\n"
        "Abstimmungsergebnis: einstimmig beschlossen."],
}
RESOLUTION = ("Der Rat beschließt die Satzungsänderung in der Fassung der Empfehlung des Finanzausschusses. "
              "Die Verwaltung berichtet dem Rat bis zum 31.12.2014 über die Erfahrungen mit der elektronischen Vergabe.")


def _rewrite(value: Any, api: str) -> Any:
    if isinstance(value, str):
        return api + value[len(SPEC):] if value.startswith(SPEC) else value
    if isinstance(value, list):
        return [_rewrite(v, api) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, api) for k, v in value.items()}
    return value


class SpecServer(OParlServer):
    """The OParl example objects as one procedure (see the module docstring)."""

    def example(self, spec_name: str, /, **changes: Any) -> dict:
        obj = _rewrite(json.loads((EXAMPLES / f"{spec_name}-01.json").read_text(encoding="utf-8")), self.api)
        obj.update(changes)
        return {k: v for k, v in obj.items() if v is not None}

    def _file(self, n: int, file_name: str, name: str, text: str | None = None, mime: str = "application/pdf"):
        """A File in the shape of File-01.json, served from /files/ (PDFs built from PDFS)."""
        if file_name in PDFS and file_name not in self.blobs:
            from tests.filemakers import make_pdf

            self.blobs[file_name] = make_pdf(self.tmp / file_name, PDFS[file_name], title=name).read_bytes()
        f = self.example("File", id=f"{self.api}/files/{n}", name=name, fileName=file_name, mimeType=mime,
                         accessUrl=f"{self.base}/files/{file_name}", downloadUrl=f"{self.base}/files/{file_name}?download=1",
                         derivativeFile=None, sha1Checksum=None, size=len(self.blobs.get(file_name, b"")),
                         created=STAMP, modified=STAMP)
        if text:
            f["text"] = text
        if file_name not in self.blobs:
            self.blobs[file_name] = (text or "audio").encode("utf-8")
        self.objects[f["id"]] = f
        return f

    def _org(self, n: int, name: str, short: str, kind: str = "Gremium") -> dict:
        org = self.example("Organization", id=f"{self.api}/organization/{n}", body=self.body["id"], name=name,
                           shortName=short, organizationType=kind, classification=kind, membership=None,
                           meeting=None, location=None, created=STAMP, modified=STAMP)
        self.objects[org["id"]] = org
        return org

    def _item(self, n: int, meeting: str, number: str, name: str, **more: Any) -> dict:
        base = json.loads((EXAMPLES / "Meeting-01.json").read_text(encoding="utf-8"))["agendaItem"][0]
        item = _rewrite(base, self.api)
        item.update(id=f"{self.api}/agendaitem/{n}", meeting=meeting, number=number, name=name, created=STAMP,
                    modified=STAMP, order=n)
        for k in ("consultation", "result", "resolutionText"):
            item.pop(k, None)
        item.update(more)
        self.objects[item["id"]] = item
        return item

    def _build(self, tmp: Path) -> None:
        self.tmp = tmp
        a = self.api
        self.objects = {}
        self.system = self.example("System", id=f"{a}/system", body=f"{a}/bodies", otherOparlVersions=None)
        self.body = self.example("Body", id=f"{a}/body/0", system=self.system["id"], legislativeTerm=None,
                                 location=None, equivalent=None, paper=f"{a}/body/0/papers/",
                                 meeting=f"{a}/body/0/meetings/")
        finance = self._org(34, "Ausschuss für Haushalt und Finanzen", "Finanzausschuss")
        council = self._org(1, "Rat der Stadt Köln", "Rat")
        group = self._org(2000, "Fraktion Beispiel", "Beispiel", "Fraktion")
        office = self._org(3000, "Zentrales Vergabeamt", "Vergabeamt", "Verwaltungsbereich")
        person = self.example("Person", body=self.body["id"], membership=None)
        self.objects[person["id"]] = person

        m281 = self.example("Meeting", start="2014-04-15T16:00:00+02:00", end="2014-04-15T19:00:00+02:00",
                            organization=[finance["id"]], location=None, created=STAMP, modified=STAMP)
        m281.update(invitation=self._file(1, "einladung-281.pdf", "Einladung"),
                    resultsProtocol=self._file(2, "protokoll-281.pdf", "Protokoll"),
                    verbatimProtocol=self._file(3, "wortprotokoll-281.mp3", "Wortprotokoll", mime="audio/mpeg"),
                    auxiliaryFile=[self._file(4, "nachtrag-TO.pdf", "Nachtrags-Tagesordnung")])
        m281["agendaItem"] = [self._item(3270, m281["id"], "9", "Haushaltsplanentwurf 2015"),
                              self._item(3271, m281["id"], "10.1", "Satzungsänderung für Ausschreibungen",
                                         consultation=f"{a}/consultation/47594", result="Geändert beschlossen",
                                         resolutionText="Der Ausschuss empfiehlt die Vorlage mit geänderter Wertgrenze.")]
        m290 = self.example("Meeting", id=f"{a}/meeting/290", name="12. Sitzung des Rates",
                            start="2014-05-08T17:00:00+02:00", end="2014-05-08T21:00:00+02:00",
                            organization=[council["id"]], location=None, invitation=None, verbatimProtocol=None,
                            auxiliaryFile=None, created=STAMP, modified=STAMP,
                            resultsProtocol=self._file(5, "protokoll-290.pdf", "Protokoll"))
        m290["agendaItem"] = [self._item(3299, m290["id"], "6", "Bericht der Oberbürgermeisterin"),
                              self._item(3300, m290["id"], "7", "Satzungsänderung für Ausschreibungen",
                                         consultation=f"{a}/consultation/47595", result="Beschlossen",
                                         resolutionText=RESOLUTION)]
        self.meetings = [m281, m290]
        for m in self.meetings:
            self.objects[m["id"]] = m

        motion = self.example("Paper", id=f"{a}/paper/699", reference="1200/2014", paperType="Antrag",
                              name="Antrag: Satzungsänderung für Ausschreibungen", date="2014-01-10",
                              mainFile=self._file(6, "antrag-1200-2014.pdf", "Antrag"), auxiliaryFile=None,
                              relatedPaper=None, consultation=None, location=None, underDirectionOf=None,
                              originatorPerson=[person["id"]], originatorOrganization=[group["id"]],
                              body=self.body["id"], created=STAMP, modified=STAMP)
        paper = self.example("Paper", name="Satzungsänderung für Ausschreibungen", paperType="Beschlussvorlage",
                             date="2014-04-04", relatedPaper=[motion["id"]], location=None, underDirectionOf=None,
                             originatorPerson=None, originatorOrganization=[office["id"]], body=self.body["id"],
                             created=STAMP, modified=STAMP)
        paper["mainFile"] = self._file(57737, "vorlage-1234-2014.pdf", "Vorlage 1234/2014")
        paper["auxiliaryFile"] = [self._file(57739, "uebersichtsplan.txt", "Anlage 1 Übersichtsplan",
                                             text=paper["auxiliaryFile"][0]["text"], mime="text/plain")]
        cons = paper["consultation"][0]
        cons.update(paper=paper["id"], meeting=m281["id"], agendaItem=f"{a}/agendaitem/3271",
                    organization=[finance["id"]], role="Vorberatung", authoritative=False, created=STAMP,
                    modified=STAMP)
        self.objects[cons["id"]] = cons
        decide = {"id": f"{a}/consultation/47595", "type": T + "Consultation", "paper": paper["id"],
                  "meeting": m290["id"], "agendaItem": f"{a}/agendaitem/3300", "organization": [council["id"]],
                  "authoritative": True, "role": "Beschlussfassung", "created": STAMP, "modified": STAMP}
        self.objects[decide["id"]] = decide
        paper["consultation"] = [cons, decide["id"]]   # one embedded, one by URL
        self.papers = [motion, paper]
        for p in self.papers:
            self.objects[p["id"]] = p

    # --- changes the tests make ------------------------------------------------------------
    def now(self) -> str:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")

    def add_consultation(self) -> None:
        """A new consultation of the Beschlussvorlage in a new meeting that has no files yet."""
        a = self.api
        main = self._org(35, "Hauptausschuss", "HA")
        meeting = {"id": f"{a}/meeting/295", "type": T + "Meeting", "name": "3. Sitzung des Hauptausschusses",
                   "start": "2014-04-28T16:00:00+02:00", "organization": [main["id"]], "created": self.now(),
                   "modified": self.now()}
        meeting["agendaItem"] = [self._item(3350, meeting["id"], "4", "Satzungsänderung für Ausschreibungen",
                                            consultation=f"{a}/consultation/47596", modified=self.now())]
        cons = {"id": f"{a}/consultation/47596", "type": T + "Consultation", "paper": f"{a}/paper/749",
                "meeting": meeting["id"], "agendaItem": f"{a}/agendaitem/3350", "organization": [main["id"]],
                "authoritative": False, "role": "Vorberatung", "created": self.now(), "modified": self.now()}
        self.objects[meeting["id"]], self.objects[cons["id"]] = meeting, cons
        self.meetings.append(meeting)
        paper = self.objects[f"{a}/paper/749"]
        paper["consultation"] = [*paper["consultation"], cons["id"]]
        paper["modified"] = self.now()

    def delete_agenda_item(self, n: int) -> None:
        """The agenda item becomes a tombstone in its meeting's list (and at its own URL)."""
        oid = f"{self.api}/agendaitem/{n}"
        meeting = self.objects[self.objects[oid]["meeting"]]
        tomb = {"id": oid, "type": T + "AgendaItem", "deleted": True, "created": STAMP, "modified": self.now()}
        meeting["agendaItem"] = [tomb if i["id"] == oid else i for i in meeting["agendaItem"]]
        meeting["modified"] = self.now()
        self.objects[oid] = copy.deepcopy(tomb)
