"""`pilot-assistant council trace REF|QUERY` and `pilot-assistant council open`: procedures
(motion -> consultations -> resolution -> report back) and the tasks still open."""
from __future__ import annotations

import sys
from pathlib import Path

from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("council", help="Ratsvorgänge verfolgen: Zeitleiste eines Vorgangs, offene Aufträge")
    csub = p.add_subparsers(dest="council_command", metavar="UNTERBEFEHL")
    p.set_defaults(run=lambda args, settings: (p.print_help(), 2)[1])

    t = csub.add_parser("trace", help="Vorgang einer Drucksache als Zeitleiste (jeder Schritt mit Datei und Seite)")
    t.add_argument("query", metavar="NUMMER|THEMA", help="Drucksachen-Nummer (z. B. 0087/2025) oder Thema "
                                                        "(z. B. \"Innovationsstrategie\")")
    t.add_argument("--today", metavar="JJJJ-MM-TT", help="Stichtag (künftige Sitzungen gelten als geplant)")
    add_common(t)
    t.set_defaults(run=run_trace)

    o = csub.add_parser("open", help="Offene Aufträge an die Verwaltung aus Beschlüssen, mit Fälligkeit")
    o.add_argument("--ics", metavar="DATEI", help="die Fälligkeiten zusätzlich als Kalenderdatei (.ics) schreiben")
    o.add_argument("--today", metavar="JJJJ-MM-TT", help="Stichtag (Standard: heute)")
    add_common(o)
    o.set_defaults(run=run_open)


def _today(value):
    from ..funding.finder import check_today

    return check_today(value)


def _where(source: str, page) -> str:
    return Path(source).name + (f", S. {page}" if page else "") if source else "(keine Datei)"


def run_trace(args, settings) -> int:
    from ..council.trace import trace

    result = trace(args.query, settings, today=_today(args.today))
    if result.ambiguous:
        lines = [f"Mehrere Vorgänge passen zu „{args.query}“ – bitte die Drucksachen-Nummer angeben:"]
        lines += [f"  {c.reference}  {c.date}  {c.title if c.title.startswith(c.kind) else c.kind + ': ' + c.title}  "
                  f"({_where(c.source, c.page)})"
                  for c in result.candidates]
        if args.json:
            emit([c.to_dict() for c in result.candidates], True)
            print(lines[0], file=sys.stderr)
        else:
            print("\n".join(lines))
        return 1
    lines = [f"Ratsvorgang {result.reference}: {result.title}", ""]
    for s in result.steps:
        what = s.kind + (f" ({s.agenda_item})" if s.agenda_item else "")
        head = f"  {s.date or '?':10}  {what:<24} {s.organization}"
        if s.result:
            head += f" – {s.result}"
        lines += [head, f"  {'':10}  Drucksache {s.reference} · {_where(s.source, s.page)}"]
    if result.related:
        lines += ["", "Verwandte Drucksachen (nicht Teil des Vorgangs):"]
        lines += [f"  {r.reference}  {r.title} – {r.relation}" for r in result.related]
    emit([s.to_dict() for s in result.steps], args.json, "\n".join(lines))
    return 0


def run_open(args, settings) -> int:
    from ..council.watch import open_tasks, write_ics

    today = _today(args.today)
    tasks = open_tasks(settings, today=today)
    if args.ics:
        path = write_ics(args.ics, tasks)
        print(f"{len(tasks)} Fälligkeit(en) geschrieben nach {path}", file=sys.stderr)
    lines = [f"Offene Aufträge an die Verwaltung (Stand {today.isoformat()}):"] if tasks else \
        ["Keine offenen Aufträge mit Frist gefunden."]
    for t in tasks:
        state = f"überfällig seit {-t.days_left} Tagen" if t.overdue else f"in {t.days_left} Tagen"
        lines += [f"  fällig {t.due} ({state}) – {t.reference}: {t.task}",
                  f"  {'':17}Beschluss {t.resolved_on}" + (f", {t.organization}" if t.organization else "")
                  + (f" · {t.recurring}, zuletzt {', '.join(t.answered_by)}" if t.answered_by else
                     f" · {t.recurring}" if t.recurring else "") + f" · {_where(t.source, t.page)}"]
    emit([t.to_dict() for t in tasks], args.json, "\n".join(lines))
    return 0
