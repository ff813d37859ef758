"""`pilot-assistant sync webdav URL` and `sync all`: folders on openDesk/Nextcloud into the index.

    pilot-assistant sync webdav URL --user NAME [--password-file FILE] [--collection NAME] [--json]
    pilot-assistant sync all [--force] [--json]        (every [[sources]] entry that is due)

The password comes from FILE or PILOT_ASSISTANT_WEBDAV_PASSWORD, never from a flag.
Exit codes as for `ingest`: 0 ok, 1 problem, 2 usage error, 3 some files failed.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("sync", help="Ordner aus openDesk/Nextcloud (WebDAV) abgleichen und indexieren")
    actions = p.add_subparsers(dest="sync_command", metavar="QUELLE", required=True)
    # no abbreviations: `--password x` must not pass for `--password-file x`
    w = actions.add_parser("webdav", allow_abbrev=False, help="einen WebDAV-Ordner abgleichen (inkrementell nach "
                                                              "ETag, mit Unterordnern, Löschungen; setzt nach Abbruch fort)")
    w.add_argument("url", metavar="URL", help="WebDAV-Adresse des Ordners, z. B. "
                                              "https://cloud.stadt.de/remote.php/dav/files/NAME/Ratsunterlagen")
    w.add_argument("--user", required=True, metavar="NAME", help="Anmeldename in openDesk/Nextcloud")
    w.add_argument("--password-file", dest="password_file", metavar="DATEI",
                   help="Datei mit dem App-Passwort (erste Zeile); sonst PILOT_ASSISTANT_WEBDAV_PASSWORD")
    w.add_argument("--password", nargs="?", action=_NoPassword, help=argparse.SUPPRESS)
    w.add_argument("--collection", default="default", help="Sammlung, in die der Ordner kommt (Standard: default)")
    w.add_argument("--type", choices=["council", "funding", "report", "other"],
                   help="Dokumenttyp; sonst aus Metadaten oder Ordnernamen")
    add_common(w)
    w.set_defaults(run=run_webdav)
    a = actions.add_parser("all", help="alle fälligen [[sources]] aus pilot-assistant.toml abgleichen "
                                       "(für einen systemd-Timer)")
    a.add_argument("--force", action="store_true", help="auch Quellen, deren Intervall noch nicht abgelaufen ist")
    add_common(a)
    a.set_defaults(run=run_all)


class _NoPassword(argparse.Action):
    """A password on the command line ends up in shell histories and process lists: refused,
    without repeating it (argparse would echo an unknown option's value)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("--password gibt es nicht: das Passwort nie als Argument übergeben / no --password flag: "
                     "use --password-file DATEI oder PILOT_ASSISTANT_WEBDAV_PASSWORD")


def _progress(enabled: bool):
    def show(event: dict) -> None:
        if not enabled:
            return
        if event.get("event") == "listed":
            print(f"  {event['files']} Dateien im Ordner", file=sys.stderr, flush=True)
        elif event.get("event") == "batch":
            f = event["files"]
            print(f"  … {f.get('new', 0)} neu, {f.get('changed', 0)} geändert, {f.get('failed', 0)} fehlgeschlagen",
                  file=sys.stderr, flush=True)
    return show


def _text(report) -> str:
    f = report.files
    lines = [f"{report.url} → Sammlung {report.collection}" + (" (fortgesetzt)" if report.resumed else ""),
             f"Dateien: {f['new']} neu, {f['changed']} geändert, {f['unchanged']} unverändert, {f['deleted']} gelöscht, "
             f"{f['skipped']} übersprungen, {f['failed']} fehlgeschlagen ({report.chunks_added} Abschnitte)",
             f"{report.requests} Anfragen, {report.retries} Wiederholungen, {report.seconds:.1f} s"]
    return "\n".join(lines + [f"  Fehler: {e}" for e in report.errors[:20]])


def run_webdav(args, settings) -> int:
    from ..sources.sync import sync
    from ..sources.webdav import read_password

    report = sync(args.url, settings, user=args.user, password=read_password(args.password_file or ""),
                  collection=args.collection, type=args.type, progress=_progress(not args.json))
    emit(report.to_dict(), args.json, _text(report))
    return report.exit_code


def run_all(args, settings) -> int:
    from ..sources.sync import due, sync_source

    if not settings.sync_sources:
        raise UserError("Keine [[sources]] in der Konfiguration", "no [[sources]] in the configuration",
                        '[[sources]] url = "https://…/remote.php/dav/files/NAME/ORDNER" user = "NAME" in '
                        "pilot-assistant.toml")
    rows, code = [], 0
    for source in settings.sync_sources:
        row = {"name": source.name, "url": source.url, "collection": source.collection}
        try:
            if not args.force and not due(source, settings):
                rows.append({**row, "ran": False, "reason": f"nicht fällig (alle {source.interval_minutes} min)"})
                continue
            if not args.json:
                print(f"{source.name}: {source.url}", file=sys.stderr, flush=True)
            report = sync_source(source, settings, progress=_progress(not args.json))
        except UserError as exc:   # one source failing does not stop the others
            rows.append({**row, "ran": True, **exc.to_dict()})
            code = max(code, 1)
            continue
        rows.append({**row, "ran": True, "report": report.to_dict()})
        code = max(code, report.exit_code)
    lines = []
    for r in rows:
        if not r["ran"]:
            lines.append(f"{r['name']}: übersprungen, {r['reason']}")
        elif "error" in r:
            lines.append(f"{r['name']}: FEHLER {r['error']} — {r['fix']}")
        else:
            f = r["report"]["files"]
            lines.append(f"{r['name']}: {f['new']} neu, {f['changed']} geändert, {f['deleted']} gelöscht, "
                         f"{f['failed']} fehlgeschlagen")
    emit({"sources": rows, "ok": code == 0}, args.json, "\n".join(lines))
    return code
