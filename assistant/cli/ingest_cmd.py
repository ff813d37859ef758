"""`pilot-assistant ingest PATH...`, `pilot-assistant remove SOURCE` and `pilot-assistant reindex`."""
from __future__ import annotations

import sys

from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("ingest", help="Dateien und Ordner in den Index aufnehmen (PDF, DOCX, ODT, HTML, MD, TXT)")
    p.add_argument("paths", nargs="+", metavar="PFAD", help="Dateien oder Ordner (rekursiv)")
    p.add_argument("--collection", default="default", help="Sammlung (Standard: default)")
    p.add_argument("--type", choices=["council", "funding", "report", "other"],
                   help="Dokumenttyp; sonst aus Metadaten oder Ordnernamen (council/funding/reports)")
    p.add_argument("--prune", action="store_true", help="Dokumente entfernen, deren Dateien fehlen")
    add_common(p)
    p.set_defaults(run=run)

    r = sub.add_parser("remove", help="Ein Dokument aus dem Index entfernen")
    r.add_argument("source", metavar="QUELLE", help="Pfad des Dokuments, wie indexiert")
    add_common(r)
    r.set_defaults(run=run_remove)

    x = sub.add_parser("reindex", help="Alle Dokumente neu einbetten (nach einem Wechsel des Einbettungsmodells)")
    add_common(x)
    x.set_defaults(run=run_reindex)


def run(args, settings) -> int:
    from ..ingest.pipeline import ingest

    with _Progress(enabled=not args.json) as progress:
        report = ingest(args.paths, settings, collection=args.collection, type=args.type,
                        prune=args.prune, progress=progress)
    out = report.to_dict()
    out["procedures"] = _procedures(settings)
    emit(out, args.json, _summary(report))
    return report.exit_code


def run_reindex(args, settings) -> int:
    from ..ingest.pipeline import reindex

    with _Progress(enabled=not args.json) as progress:
        report = reindex(settings, progress=progress)
    emit(report.to_dict(), args.json, _summary(report))
    return report.exit_code


def _procedures(settings) -> dict:
    """Council papers just ingested join their procedures (``council trace``) right away; a
    failure here costs nothing that is indexed: the next ``council`` command retries."""
    from ..council.procedures import refresh
    from ..errors import UserError

    try:
        r = refresh(settings)
    except UserError as exc:
        print(f"Warnung / warning: {exc}", file=sys.stderr)
        return {"error": str(exc)}
    return {"added": r.added, "updated": r.updated, "removed": r.removed}


def run_remove(args, settings) -> int:
    from ..ingest.pipeline import remove_source

    removed = remove_source(args.source, settings)
    if removed:
        _procedures(settings)
    text = (f"Entfernt / removed: {args.source}" if removed
            else f"Nicht im Index / not indexed: {args.source}")
    emit({"source": args.source, "removed": removed}, args.json, text)
    return 0 if removed else 1


def _summary(report) -> str:
    c = report.counts
    lines = [f"{c['ingested']} neu, {c['replaced']} ersetzt, {c['unchanged']} unverändert, "
             f"{c['duplicate']} doppelt, {c['removed']} entfernt, {c['failed']} fehlgeschlagen"
             + (f", {c['skipped']} übersprungen" if c.get("skipped") else "")
             + f" ({report.chunks_added} Abschnitte, {report.seconds:.1f} s)"]
    for f in report.failed:
        lines.append(f"  FEHLER {f.source}: {f.reason}")
    for f in report.files:
        if f.status == "skipped":
            lines.append(f"  ÜBERSPRUNGEN {f.source}: {f.reason}")
    if report.collection_created:
        lines.append("Hinweis: Die Sammlung ist neu und nur für die Verwaltung sichtbar; freigeben mit "
                     "`pilot-assistant collection grant NAME --read GRUPPE` (oder --read '*' für alle).")
    return "\n".join(lines)


class _Progress:
    """A rich bar on a terminal; one plain line per file otherwise (CI logs stay readable).
    Goes to stderr so stdout stays clean for --json."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.task = None

    def __enter__(self) -> "_Progress":
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.bar.start()
        return self

    def __call__(self, event: dict) -> None:
        if event.get("event") == "wait" and self.enabled:
            print("Warte auf eine laufende Indexierung / waiting for another ingest …", file=sys.stderr, flush=True)
        if event.get("event") != "file":
            return
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("Indexieren", total=event["total"])
            self.bar.update(self.task, completed=event["done"], total=max(event["total"], event["done"]))
            if event["status"] == "failed":
                self.bar.console.print(f"[red]FEHLER[/red] {event['source']}: {event['reason']}")
        elif self.enabled:
            extra = f": {event['reason']}" if event.get("reason") else ""
            extra += f" ({event['chunks']} Abschnitte)" if event["status"] in ("ingested", "replaced") else ""
            print(f"[{event['done']}/{event['total']}] {event['status']} {event['source']}{extra}",
                  file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
