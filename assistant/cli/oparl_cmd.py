"""`pilot-assistant oparl sync URL`: papers of a council information system (OParl) into the index."""
from __future__ import annotations

import sys

from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("oparl", help="Ratsinformationssystem (OParl) abgleichen")
    actions = p.add_subparsers(dest="oparl_command", metavar="AKTION", required=True)
    s = actions.add_parser("sync", help="Drucksachen und Dateien abrufen und indexieren (inkrementell, "
                                        "setzt nach Abbruch fort)")
    s.add_argument("url", metavar="URL", help="URL des OParl-System-Objekts, z. B. "
                                              "https://ris.example.de/oparl/v1/system")
    s.add_argument("--body", metavar="ID", help="nur diese Körperschaft (ID-URL, letzter Pfadteil oder Kurzname)")
    s.add_argument("--since", metavar="DATUM", help="nur seit DATUM geänderte Objekte (ISO, z. B. 2024-01-31); "
                                                   "Standard: seit dem letzten vollständigen Abgleich")
    add_common(s)
    s.set_defaults(run=run)


def run(args, settings) -> int:
    from ..council.sync import sync

    def progress(event: dict) -> None:
        if not args.json and event.get("event") == "page":
            p = event["papers"]
            print(f"  Seite {event['pages']}: {p['new']} neu, {p['updated']} geändert, {p['deleted']} gelöscht",
                  file=sys.stderr, flush=True)

    report = sync(args.url, settings, body=args.body, since=args.since, progress=progress)
    p, f = report.papers, report.files
    lines = [f"Körperschaften: {', '.join(report.bodies) or '-'}" + (" (fortgesetzt)" if report.resumed else ""),
             f"Drucksachen: {p['new']} neu, {p['updated']} geändert, {p['deleted']} gelöscht, "
             f"{p['unchanged']} unverändert",
             f"Dateien: {f['ingested']} indexiert, {f['unchanged']} unverändert ({f['not_modified']} × 304), "
             f"{f['removed']} entfernt, {f['skipped']} übersprungen, {f['failed']} fehlgeschlagen",
             f"{report.requests} Anfragen, {report.retries} Wiederholungen, {report.seconds:.1f} s"]
    lines += [f"  Fehler: {e}" for e in report.errors[:20]]
    emit(report.to_dict(), args.json, "\n".join(lines))
    return report.exit_code
