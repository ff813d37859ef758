"""`pilot-assistant funding match|list|ics`: the funding finder on the command line.

A programme file with broken front matter is reported on stderr (and under ``errors``
in JSON) with its file name; the command still works with the others and exits 0.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("funding", help="Förderprogramme finden, auflisten, Fristen exportieren")
    fsub = p.add_subparsers(dest="funding_command", metavar="UNTERBEFEHL")
    p.set_defaults(run=lambda args, settings: (p.print_help(), 2)[1])

    m = fsub.add_parser("match", help="Programme passend zu einer Projektidee (mit Beträgen und Fristen)")
    m.add_argument("--idea", required=True, metavar="TEXT|DATEI",
                   help="Projektidee als Text oder Pfad zu einer Textdatei ('-' = stdin)")
    m.add_argument("--applicant", default="kommune", help="Antragsteller (Standard: kommune)")
    m.add_argument("--state", help="Bundesland-Kürzel, z. B. RP, NW, BY")
    m.add_argument("--budget", metavar="EUR", help="Projektbudget in Euro, z. B. 200000 oder 200.000")
    m.add_argument("--instrument", help="nur grant (Zuschuss) oder loan (Darlehen)")
    m.add_argument("--limit", type=int, default=10, help="höchstens so viele Treffer (Standard 10)")
    _shared(m)
    m.set_defaults(run=run_match)

    ls = fsub.add_parser("list", help="alle Förderprogramme mit Status und Frist")
    _shared(ls)
    ls.set_defaults(run=run_list)

    ics = fsub.add_parser("ics", help="Förderfristen als iCalendar-Datei (.ics) exportieren")
    ics.add_argument("--out", required=True, metavar="DATEI", help="Zieldatei, z. B. fristen.ics")
    ics.add_argument("--include-closed", action="store_true", help="auch abgelaufene Fristen")
    ics.add_argument("--no-reminder", action="store_true", help="ohne Erinnerung 14 Tage vorher")
    _shared(ics)
    ics.set_defaults(run=run_ics)


def _shared(p) -> None:
    p.add_argument("--today", metavar="JJJJ-MM-TT", help="Stichtag für Fristen (Standard: heute)")
    p.add_argument("--programmes", action="append", default=[], metavar="ORDNER",
                   help="nur diese Programmordner/-dateien lesen (mehrfach möglich); Standard: corpus/funding, "
                        "DATENVERZEICHNIS/funding und indexierte Förderdokumente")
    add_common(p)


def _idea(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    path = Path(value)
    try:
        if len(value) < 4096 and "\n" not in value and path.is_file():
            return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Datei {value} nicht lesbar: {exc}", f"cannot read {value}: {exc}",
                         "UTF-8-Textdatei angeben oder die Idee als Text") from None
    return value


def _warn(errors) -> None:
    for e in errors:
        print(f"Warnung / warning: {e.name}: {'; '.join(e.problems)}", file=sys.stderr)


def run_match(args, settings) -> int:
    from ..funding.finance import euro, percent
    from ..funding.finder import match_funding

    result = match_funding(_idea(args.idea), settings, applicant=args.applicant, state=args.state,
                           budget=args.budget, instrument=args.instrument, today=args.today,
                           limit=args.limit, sources=args.programmes or None)
    _warn(result.errors)
    lines = []
    for m in result.results:
        p, f = m.programme, m.financing
        loan = p.instrument == "loan"
        lines += [f"{m.rank}. {p.name}  [Passung {m.fit:.2f}]  ({p.id})",
                  f"   {p.funder}",
                  f"   Quote {percent(p.funding_rate)}, höchstens {euro(p.max_amount)}"
                  + (f"; bei {euro(f.budget)}: {'Darlehen' if loan else 'Zuschuss'} {euro(f.grant)}, "
                     f"Eigenanteil {euro(f.own_share)}" if f.grant is not None else ""),
                  f"   {m.deadline.message}; Verfahren {m.procedure}"]
        lines += [f"   Hinweis: {n}" for n in f.notes]
        for e in m.why:
            where = f"{e.source}:{e.line}" if e.line else e.source
            lines.append(f"   Passt, weil: „{e.quote}“ ({e.section}; {where})")
        if m.matched_topics:
            lines.append(f"   Themen: {', '.join(m.matched_topics)}")
        if p.required_documents:
            lines.append(f"   Unterlagen: {'; '.join(p.required_documents)}")
        if p.criteria:
            lines.append(f"   Kriterien: {'; '.join(p.criteria)}")
        lines += [f"   Unsicher: {u}" for u in m.uncertainties]
        lines.append("")
    if not result.results:
        lines.append("Kein offenes Programm passt zu diesen Angaben / no open programme matches.\n")
    if result.excluded:
        lines.append("Ausgeschlossen:")
        lines += [f" - {e.name} ({e.programme_id}): {e.reason}" for e in result.excluded]
    emit(result.to_dict(), args.json, "\n".join(lines))
    return 0


def run_list(args, settings) -> int:
    from ..funding.finance import euro, percent
    from ..funding.finder import check_today, error_dict, load_all, programme_summary

    today = check_today(args.today)
    programmes, errors = load_all(settings, args.programmes or None)
    _warn(errors)
    rows = [programme_summary(p, today) for p in programmes]
    lines = [f"{r['id']}: {r['name']}\n   {r['status']}, {', '.join(r['region'])}, "
             f"{percent(r['funding_rate'])}, max. {euro(r['max_amount'])} – {r['deadline_status']['message']}"
             for r in rows]
    emit({"today": today.isoformat(), "programmes": rows, "errors": [error_dict(e) for e in errors]},
         args.json, "\n".join(lines) or "Keine Programme gefunden / no programmes found")
    return 0


def run_ics(args, settings) -> int:
    from ..funding.finder import check_today, error_dict, load_all
    from ..funding.ics import exportable, write_ics

    today = check_today(args.today)
    programmes, errors = load_all(settings, args.programmes or None)
    _warn(errors)
    path = write_ics(args.out, programmes, today=today, include_closed=args.include_closed,
                     reminder_days=None if args.no_reminder else 14)
    events = [{"id": p.id, "deadline": p.deadline} for p in exportable(programmes, today, args.include_closed)]
    emit({"out": str(path), "events": events, "errors": [error_dict(e) for e in errors]},
         args.json, f"{len(events)} Frist(en) geschrieben nach {path}"
         + ("" if events or args.include_closed else " (abgelaufene mit --include-closed)"))
    return 0
