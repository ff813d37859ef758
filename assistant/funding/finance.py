"""Figures that are computed, never generated: grant, own share, cap, deadline vs today.

Pure functions used by the funding finder and the drafting pipeline alike, so a
proposal and the finder can never disagree on a number.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from .programmes import Programme


@dataclass
class Financing:
    budget: float | None
    funding_rate: float | None
    max_amount: float | None
    grant: float | None              # min(rate x budget, cap); None when rate or budget unknown
    own_share: float | None          # budget - grant
    own_share_rate: float | None
    capped: bool                     # the cap, not the rate, limits the grant
    min_own_share_rate: float | None # what the programme demands at least
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeadlineStatus:
    deadline: str | None
    days_left: int | None
    passed: bool
    call_rhythm: str
    status: str
    message: str                     # German, ready to show

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_financing(budget: float | None, programme: Programme | None) -> Financing:
    rate = programme.funding_rate if programme else None
    cap = programme.max_amount if programme else None
    min_own = programme.own_share if programme else None
    notes: list[str] = []
    if programme and programme.instrument == "loan":
        notes.append("Darlehen: der Betrag ist zurückzuzahlen, kein Zuschuss.")
    if programme and set(programme.uncertain) & {"funding_rate", "max_amount", "own_share"}:
        notes.append("Förderquote oder Höchstbetrag sind unsicher: "
                     + ", ".join(sorted(set(programme.uncertain) & {"funding_rate", "max_amount", "own_share"}))
                     + " – vor Antragstellung beim Fördergeber prüfen.")
    if budget is None or rate is None:
        if rate is None and programme:
            notes.append("Keine Förderquote bekannt: Zuschuss nicht berechenbar.")
        return Financing(budget, rate, cap, None, None, None, False, min_own, notes)
    grant = budget * rate
    capped = cap is not None and grant > cap
    if capped:
        grant = float(cap)
        notes.append(f"Der Höchstbetrag von {euro(cap)} begrenzt die Förderung.")
    grant = round(grant, 2)
    own = round(budget - grant, 2)
    own_rate = own / budget if budget else None
    if min_own is not None and own_rate is not None and own_rate + 1e-9 < min_own:
        notes.append(f"Der Eigenanteil muss mindestens {percent(min_own)} betragen.")
    return Financing(budget, rate, cap, grant, own, own_rate, capped, min_own, notes)


def deadline_status(programme: Programme, today: dt.date | None = None) -> DeadlineStatus:
    today = today or dt.date.today()
    d = programme.deadline_date
    if d is None:
        msg = f"Keine feste Frist ({programme.call_rhythm})" if programme.call_rhythm else "Keine Frist bekannt"
        if programme.status == "closed":
            msg = "Programm geschlossen" + (f" ({programme.call_rhythm})" if programme.call_rhythm else "")
        return DeadlineStatus(None, None, False, programme.call_rhythm, programme.status, msg)
    days = (d - today).days
    if days < 0:
        msg = f"⚠ Frist abgelaufen am {d:%d.%m.%Y}"
    elif days == 0:
        msg = f"⚠ Frist endet heute ({d:%d.%m.%Y})"
    else:
        msg = f"Frist: {d:%d.%m.%Y} (noch {days} Tage)"
    return DeadlineStatus(d.isoformat(), days, days < 0, programme.call_rhythm, programme.status, msg)


def euro(amount: float | None) -> str:
    """German money format: 1.234.567,89 € (cents only when present)."""
    if amount is None:
        return "unbekannt"
    whole = abs(amount) == int(abs(amount))
    s = f"{abs(amount):,.0f}" if whole else f"{abs(amount):,.2f}"
    s = s.replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{'-' if amount < 0 else ''}{s} €"


def percent(rate: float | None) -> str:
    if rate is None:
        return "unbekannt"
    value = rate * 100
    return f"{value:.0f} %" if value == int(value) else f"{value:.1f} %".replace(".", ",")


def parse_amount(text: str | float | int | None) -> float | None:
    """Budget input from people: '250000', '250.000', '250.000,50 €', '1,5 Mio'."""
    from ..errors import UsageError

    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().lower().replace("€", "").replace("eur", "").replace(" ", "")
        factor = 1.0
        for word, f in (("mio.", 1e6), ("mio", 1e6), ("tsd.", 1e3), ("tsd", 1e3)):
            if s.endswith(word):
                s, factor = s[: -len(word)], f
                break
        if "," in s:
            s = s.replace(".", "").replace(",", ".")
        elif s.count(".") >= 1 and all(len(p) == 3 for p in s.split(".")[1:]):
            s = s.replace(".", "")
        try:
            value = float(s) * factor
        except ValueError:
            raise UsageError(f"Budget {text!r} ist keine Zahl", f"Budget {text!r} is not a number",
                             "z. B. --budget 250000 oder 250.000") from None
    if value < 0 or value != value or value == float("inf"):
        raise UsageError(f"Budget {text!r} ist ungültig", f"Budget {text!r} is invalid", "positiven Betrag angeben")
    return value
