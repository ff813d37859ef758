"""`pilot-assistant ask "FRAGE"`: a cited answer, streamed to the terminal."""
from __future__ import annotations

import sys

from . import add_common, emit
from .filters import add_filter_flags, filters_from


def register(sub) -> None:
    p = sub.add_parser("ask", help="Frage an die Unterlagen stellen (Antwort mit Quellen)")
    p.add_argument("question", metavar="FRAGE")
    add_filter_flags(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..answer.chat import ask_stream

    answer = None
    streamed = False
    for event in ask_stream(args.question, settings, filters=filters_from(args)):
        if event.kind == "token" and not args.json and sys.stdout.isatty():
            print(event.text, end="", flush=True)
            streamed = True
        elif event.kind == "done":
            answer = event.answer
    data = answer.to_dict()
    data.pop("sources")
    lines = [] if streamed else [answer.answer]
    if answer.citations:
        lines.append("\nQuellen:")
        for c in answer.citations:
            where = f", S. {c.page}" if c.page else ""
            paper = f" (Drucksache {c.paper_number})" if c.paper_number else ""
            lines.append(f"[{c.n}] {c.title}{paper}{where} – {c.source}")
    emit(data, args.json, "\n".join(lines))
    return 0
