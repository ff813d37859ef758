"""`pilot-assistant doctor`: what runs, and what to fix."""
from __future__ import annotations

from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("doctor", help="Systemprüfung: Backend, Modell, Index, Telemetrie, Netz")
    add_common(p)
    p.add_argument("--generate", action="store_true", help="zusätzlich eine kurze Testantwort erzeugen")
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..runtime import doctor

    report = doctor.run(settings, generate=args.generate)
    emit(report, args.json, doctor.format_text(report))
    return 0 if report["ok"] else 1
