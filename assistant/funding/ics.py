"""Funding deadlines as an iCalendar file (RFC 5545), for the city's calendar.

One all-day event per programme with a known deadline. The UID depends only on the
programme id, so importing an updated file moves the event instead of adding a copy.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable

from .. import ical
from .finance import euro, percent
from .finder import FIELD_LABELS
from .programmes import Programme

UID_DOMAIN = "pilot-assistant.local"


def uid(programme: Programme) -> str:
    return f"foerderfrist-{programme.id}@{UID_DOMAIN}"


def exportable(programmes: Iterable[Programme], today: dt.date, include_closed: bool = False) -> list[Programme]:
    """Programmes with a deadline; by default only those still open on ``today``."""
    out = [p for p in programmes if p.deadline_date is not None]
    if not include_closed:
        out = [p for p in out if p.status != "closed" and p.deadline_date >= today]
    return sorted(out, key=lambda p: (p.deadline_date, p.id))


def description(p: Programme) -> str:
    lines = [p.name, f"Fördergeber: {p.funder}",
             f"Förderquote: {percent(p.funding_rate)}", f"Höchstbetrag: {euro(p.max_amount)}",
             f"Instrument: {'Darlehen' if p.instrument == 'loan' else 'Zuschuss'}",
             f"Verfahren: {'zweistufig (Skizze, dann Antrag)' if p.procedure == 'two-stage' else 'einstufig'}",
             f"Rhythmus: {p.call_rhythm}"]
    if p.uncertain:
        lines.append("Unsicher: " + ", ".join(FIELD_LABELS.get(f, f) for f in p.uncertain)
                     + " – beim Fördergeber prüfen")
    lines.append(f"Stand: {p.last_checked}")
    lines += p.sources[:1]
    return "\n".join(lines)


def deadlines_ics(programmes: Iterable[Programme], *, today: dt.date | None = None,
                  include_closed: bool = False, reminder_days: int | None = 14,
                  stamp: dt.datetime | None = None) -> bytes:
    """The calendar as bytes. ``stamp`` (DTSTAMP, UTC) and ``today`` are injectable for tests."""
    today = today or dt.date.today()
    stamp = ical.stamp_of(stamp)
    cal = ical.calendar("Förderfristen", "Foerderfristen")
    for p in exportable(programmes, today, include_closed):
        day = p.deadline_date
        notes = [n for n, on in (("Achtung: Frist unsicher", p.is_uncertain("deadline")),
                                 ("Programm geschlossen / Frist abgelaufen", day < today or p.status == "closed"))
                 if on]
        ical.all_day(cal, uid=uid(p), stamp=stamp, day=day, summary=f"Förderfrist: {p.name}",
                     description="\n".join([*notes, description(p)]), category="Förderfrist",
                     reminder_days=reminder_days, reminder=f"In {reminder_days} Tagen: Förderfrist {p.name}",
                     url=p.sources[0] if p.sources else "")
    return cal.to_ical()


def write_ics(path: str | Path, programmes: Iterable[Programme], **kwargs) -> Path:
    """Write :func:`deadlines_ics` to ``path`` (crash-safe, folders created); returns the path."""
    return ical.write(path, deadlines_ics(programmes, **kwargs))
