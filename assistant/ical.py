"""iCalendar files (RFC 5545) of all-day dates: funding deadlines and council tasks alike.

UIDs are stable across exports, so importing an updated file moves an event instead of
adding a copy; each event can remind a number of days before.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from . import __version__
from .fsutil import atomic_write


def calendar(name: str, product: str):
    """An empty calendar called ``name`` (shown by calendar apps) from ``product``."""
    from icalendar import Calendar

    cal = Calendar()
    cal.add("prodid", f"-//Pilot Assistant//{product} {__version__}//DE")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    return cal


def stamp_of(stamp: dt.datetime | None) -> dt.datetime:
    """DTSTAMP: now (or ``stamp``, for tests) in UTC, whole seconds."""
    return (stamp or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)


def all_day(cal, *, uid: str, stamp: dt.datetime, day: dt.date, summary: str, description: str, category: str,
            reminder_days: int | None, reminder: str, url: str = "") -> None:
    """Add one all-day event that does not block the day, with an optional display alarm."""
    from icalendar import Alarm, Event

    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", day)                       # a date value makes it all-day
    event.add("dtend", day + dt.timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("categories", [category])
    event.add("transp", "TRANSPARENT")
    if url:
        event.add("url", url)
    if reminder_days:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", reminder)
        alarm.add("trigger", dt.timedelta(days=-reminder_days))
        event.add_component(alarm)
    cal.add_component(event)


def write(path: str | Path, data: bytes) -> Path:
    """A calendar file written crash-safe (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return path
