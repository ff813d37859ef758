"""The form blocks a council system or a funder expects, computed from the profile and the
programme, never generated: the Vorlage header and Beratungsfolge, the Beschlussvorschlag,
the time plan by project months, the KPI list, the Haushaltsauswirkungen and the cost plan
by cost type. Pure functions; German and English wording (EU Part B is English throughout).

What the profile leaves open is written as open ("noch festzulegen"), never guessed.
"""
from __future__ import annotations

import datetime as dt

from .. import text as T
from ..funding import finance
from ..funding.programmes import Programme
from .profile import COST_LABELS
from .record import COST_TYPES, Idea

OPEN = {"de": "noch festzulegen", "en": "to be determined"}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (clamped to the month's last day)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def _start(idea: Idea) -> dt.date | None:
    return dt.date.fromisoformat(idea.start) if idea.start else None


def _fmt_date(day: dt.date, language: str) -> str:
    return day.strftime("%d.%m.%Y") if language == "de" else day.isoformat()


def end_date(idea: Idea) -> dt.date | None:
    start = _start(idea)
    if start is None or not idea.duration_months:
        return None
    return add_months(start, idea.duration_months) - dt.timedelta(days=1)


# ----------------------------------------------------------------------------- time plan

_PHASES = {
    "de": [("Vorbereitung", "Bereitstellung der Lösung, Vorprüfung Datenschutz und IT-Sicherheit, Schulung"),
           ("Pilotbetrieb", "Nutzung durch {group}, begleitende Erhebung der Kennzahlen"),
           ("Auswertung", "Auswertung der Kennzahlen, Abschlussbericht, Entscheidungsvorschlag")],
    "en": [("Preparation", "set-up of the solution, data protection and IT security pre-check, training"),
           ("Pilot operation", "use by {group}, continuous measurement of the indicators"),
           ("Evaluation", "evaluation of the indicators, final report, decision on continuation")],
}
_MILESTONES = {"de": ["Betriebsbereitschaft", "Zwischenbericht", "Abschlussbericht an den Ausschuss"],
               "en": ["Ready for operation", "Interim report", "Final report"]}


def phase_months(months: int) -> list[tuple[int, int]]:
    """(first, last) project month of preparation, pilot and evaluation; covers 1..months exactly."""
    if months <= 2:
        return [(1, months)]
    prep = max(1, round(months * 0.2))
    evaluation = max(1, round(months * 0.15))
    pilot = max(1, months - prep - evaluation)
    prep = months - pilot - evaluation
    return [(1, prep), (prep + 1, prep + pilot), (prep + pilot + 1, months)]


def timeplan_rows(idea: Idea, language: str = "de") -> list[list[str]]:
    """Phases by project month (and calendar dates when the profile has a start), covering
    the whole duration; the last row is the final report in the last month."""
    months = idea.duration_months
    L = language if language in _PHASES else "de"
    if not months:
        return [[("Zeitraum" if L == "de" else "Period"), OPEN[L] + (" (Laufzeit fehlt im Profil)" if L == "de"
                                                                   else " (duration missing in the profile)")]]
    group = idea.target_group or ("die Zielgruppe" if L == "de" else "the target group")
    start = _start(idea)
    head = ["Phase", "Projektmonate" if L == "de" else "Project months", "Zeitraum" if L == "de" else "Dates",
            "Meilenstein" if L == "de" else "Milestone"]
    rows = [head]
    spans = phase_months(months)
    phases = _PHASES[L] if len(spans) == 3 else [(_PHASES[L][1][0], _PHASES[L][1][1])]
    milestones = _MILESTONES[L] if len(spans) == 3 else [_MILESTONES[L][2]]
    word = "Monat" if L == "de" else "Month"
    for (name, what), (a, b), milestone in zip(phases, spans, milestones):
        span = f"{word} {a}–{b}" if b > a else f"{word} {a}"
        dates = (f"{_fmt_date(add_months(start, a - 1), L)} – {_fmt_date(add_months(start, b) - dt.timedelta(days=1), L)}"
                 if start else OPEN[L])
        rows.append([f"{name}: {what.format(group=group)}", span, dates, f"{milestone} ({word} {b})"])
    return rows


def work_packages(idea: Idea, language: str = "de") -> list[list[str]]:
    """Work packages of a funding application over the whole duration (AP 1 management runs
    throughout; AP 2–4 follow the three phases)."""
    months = idea.duration_months
    L = language if language in _PHASES else "de"
    if not months:
        return timeplan_rows(idea, L)
    spans = phase_months(months) if months > 2 else [(1, months)] * 3
    if len(spans) == 1:
        spans = spans * 3
    word = "Monat" if L == "de" else "Month"
    names = (["AP 1 Projektmanagement und Berichtswesen", "AP 2 Vorbereitung und Bereitstellung",
              "AP 3 Pilotbetrieb", "AP 4 Auswertung, Verwertung und Wissenstransfer"] if L == "de" else
             ["WP1 Management and reporting", "WP2 Preparation and set-up", "WP3 Pilot operation",
              "WP4 Evaluation, exploitation and dissemination"])
    outputs = (["Projektplan; Abschlussbericht", "Betriebsbereite Lösung", "Zwischenbericht", "Auswertung; Dokumentation zur Nachnutzung"]
               if L == "de" else ["Project plan; final report", "Solution ready for operation", "Interim report",
                                  "Evaluation; documentation for re-use"])
    ranges = [(1, months), *spans]
    head = ["Arbeitspaket" if L == "de" else "Work package", "Projektmonate" if L == "de" else "Project months",
            "Ergebnis" if L == "de" else "Deliverable"]
    return [head] + [[n, f"{word} {a}–{b}" if b > a else f"{word} {a}", o] for n, (a, b), o in zip(names, ranges, outputs)]


# ----------------------------------------------------------------------------- council paper


def header_rows(idea: Idea, today: dt.date, language: str = "de") -> list[list[str]]:
    return [["Vorlagen-Nr.", "wird vom Ratsbüro vergeben"], ["Vorlagenart", "Beschlussvorlage"],
            ["Datum", today.strftime("%d.%m.%Y")], ["Federführung", idea.department or OPEN["de"]]]


def consultation_rows(idea: Idea) -> list[list[str]]:
    """Beratungsfolge: the committees of the profile, or the usual two steps with open dates."""
    committees = idea.committees or [{"name": "Fachausschuss", "date": "", "role": "Vorberatung", "top": ""},
                                     {"name": "Rat", "date": "", "role": "Entscheidung", "top": ""}]
    rows = [["Gremium", "Sitzung am", "Zuständigkeit", "TOP"]]
    for c in committees:
        date = c.get("date") or ""
        try:
            date = dt.date.fromisoformat(date).strftime("%d.%m.%Y") if date else "Termin offen"
        except ValueError:
            pass
        rows.append([c.get("name") or OPEN["de"], date, c.get("role") or "", c.get("top") or "wird mit der Tagesordnung vergeben"])
    return rows


def decision_text(idea: Idea, programme: Programme | None, fin: finance.Financing) -> str:
    """The Beschlussvorschlag: numbered, every figure from the profile or finance.py."""
    dept = f" (Federführung: {idea.department})" if idea.department else ""
    months = f" mit einer Laufzeit von {idea.duration_months} Monaten" if idea.duration_months else ""
    start = _start(idea)
    begin = f" ab dem {start:%d.%m.%Y}" if start and months else ""
    group = ""
    if idea.target_group and T.fold(idea.target_group) in T.fold(idea.title):
        pass   # the title already names who it is for
    elif idea.staff and idea.target_group:
        group = f" für {idea.staff} {idea.target_group}" if not idea.target_group.startswith(str(idea.staff)) else f" für {idea.target_group}"
    elif idea.staff:
        group = f" für {idea.staff} Beschäftigte"
    elif idea.target_group:
        group = f" für {idea.target_group}"
    cost = f" Die Gesamtkosten betragen {finance.euro(idea.budget)}." if idea.budget is not None else \
        " Die Gesamtkosten sind noch festzulegen."
    lines = [f"1. Der Rat beschließt die Durchführung des Pilotprojekts „{idea.title}“{group}{months}{begin}{dept}.{cost}"]
    if programme and fin.grant is not None:
        lines.append(f"2. Die Verwaltung wird beauftragt, für das Vorhaben eine Förderung aus dem Programm „{programme.name}“ "
                     f"in Höhe von {finance.euro(fin.grant)} zu beantragen. Der Eigenanteil von {finance.euro(fin.own_share)} "
                     "wird im Haushalt bereitgestellt.")
    elif programme:
        lines.append(f"2. Die Verwaltung wird beauftragt, für das Vorhaben eine Förderung aus dem Programm „{programme.name}“ "
                     "zu beantragen; Zuschuss und Eigenanteil sind noch festzulegen.")
    elif idea.budget is not None:
        lines.append(f"2. Die Mittel von {finance.euro(idea.budget)} werden im Haushalt bereitgestellt; die Deckung ist "
                     "unter „Finanzielle Auswirkungen“ dargestellt.")
    committee = next((c.get("name") for c in idea.committees if c.get("role", "").lower().startswith("vorberat")), "") \
        or "zuständigen Fachausschuss"
    when = f" nach Abschluss der Pilotphase (Projektmonat {idea.duration_months})" if idea.duration_months else \
        " nach Abschluss der Pilotphase"
    article = "dem" if committee.startswith("zuständigen") or not committee.lower().startswith(("der ", "die ")) else ""
    lines.append(f"{len(lines) + 1}. Die Verwaltung berichtet {article} {committee}{when} über die Ergebnisse und legt einen "
                 "Vorschlag zur Fortführung, Ausweitung oder Beendigung vor.".replace("  ", " "))
    return "\n".join(lines)


def kpi_items(idea: Idea, language: str = "de") -> list[str]:
    """The KPIs of the profile with their target values; without them, the indicators a pilot
    is measured by, each with an open target (a target value is a decision, not a guess)."""
    L = language if language in OPEN else "de"
    if idea.kpis:
        return [f"{k['name']}: " + ("Zielwert " if L == "de" else "target ") + (k.get("target") or OPEN[L])
                + (f" ({k['when']})" if k.get("when") else "") for k in idea.kpis]
    month = f" {('Monat' if L == 'de' else 'month')} {idea.duration_months}" if idea.duration_months else ""
    who = (f"{idea.staff} " if idea.staff else "") + (idea.target_group or ("Zielgruppe" if L == "de" else "target group"))
    if L == "de":
        items = [f"Nutzung: Anteil der Zielgruppe ({who}), der die Lösung regelmäßig nutzt",
                 "Zufriedenheit der Nutzenden (Befragung)",
                 "Verfügbarkeit und Störungen des Betriebs",
                 "Aufwand für Betrieb und Unterstützung"]
        return [f"{i} – Zielwert: {OPEN[L]}; Messung bis{month or ' Projektende'}" for i in items]
    items = [f"Uptake: share of the target group ({who}) using the solution regularly", "User satisfaction (survey)",
             "Availability and incidents of the service", "Effort for operation and support"]
    return [f"{i} – target: {OPEN[L]}; measured by{month or ' the end of the project'}" for i in items]


# ----------------------------------------------------------------------------- money


def cost_rows(idea: Idea, language: str = "de") -> list[tuple[str, float | None]]:
    """(label, amount) per cost type of the profile; the remainder of the total when the types
    do not add up to it."""
    L = COST_LABELS.get(language, COST_LABELS["de"])
    rows = [(L[k], idea.costs[k]) for k in COST_TYPES if k in idea.costs]
    if rows and idea.budget is not None:
        rest = round(idea.budget - sum(v for _, v in rows), 2)
        if rest > 0.005:
            rows.append(("nicht aufgeteilt" if language == "de" else "not broken down", rest))
    return rows


def by_year(idea: Idea) -> list[tuple[int, float]]:
    """The total spread over budget years in proportion to the project months in each year."""
    start = _start(idea)
    if start is None or not idea.duration_months or idea.budget is None:
        return []
    counts: dict[int, int] = {}
    for i in range(idea.duration_months):
        year = add_months(start, i).year
        counts[year] = counts.get(year, 0) + 1
    out, left = [], idea.budget
    years = sorted(counts)
    for y in years[:-1]:
        share = round(idea.budget * counts[y] / idea.duration_months, 2)
        out.append((y, share))
        left -= share
    out.append((years[-1], round(left, 2)))
    return out


def budget_impact_rows(idea: Idea, programme: Programme | None, fin: finance.Financing) -> list[list[str]]:
    """Haushaltsauswirkungen: Aufwand/Ertrag, Mittel verfügbar, über-/außerplanmäßig, Deckung, Folgekosten."""
    o = OPEN["de"]
    rows = [["Maßnahme", idea.title]]
    if idea.staff:
        rows.append(["Zielgruppe", f"{idea.staff} {idea.target_group or 'Beschäftigte'}"
                     if not (idea.target_group or "").startswith(str(idea.staff)) else idea.target_group])
    if idea.duration_months:
        end = end_date(idea)
        rows.append(["Laufzeit", f"{idea.duration_months} Monate"
                     + (f" ({_fmt_date(_start(idea), 'de')} – {_fmt_date(end, 'de')})" if end else "")])
    rows.append(["Aufwand gesamt (Laufzeit)", finance.euro(idea.budget) if idea.budget is not None else o])
    rows += [[f"  davon {label}", finance.euro(v)] for label, v in cost_rows(idea, "de")]
    rows += [[f"  Aufwand im Haushaltsjahr {y} (anteilig nach Monaten)", finance.euro(v)] for y, v in by_year(idea)]
    if idea.staff and idea.budget:
        rows.append(["Aufwand je Person der Zielgruppe", finance.euro(round(idea.budget / idea.staff, 2))])
    if programme:
        grant = finance.euro(fin.grant) if fin.grant is not None else o
        rows.append(["Ertrag (beantragte Zuwendung)", f"{grant} aus „{programme.name}“"])
        rows.append(["Eigenanteil der Kommune", finance.euro(fin.own_share) if fin.own_share is not None else o])
    else:
        rows.append(["Ertrag", "keiner (kein Förderprogramm gewählt)"])
    available = {"ja": "ja", "nein": "nein", "teilweise": "teilweise"}.get(idea.budget_available, o)
    rows.append(["Mittel im Haushalt verfügbar", available + (f" ({idea.budget_line})" if idea.budget_line else "")])
    rows.append(["Über- oder außerplanmäßige Bereitstellung", {"ja": "nicht erforderlich", "nein": "erforderlich",
                                                               "teilweise": "für den nicht gedeckten Teil erforderlich"}
                 .get(idea.budget_available, o)])
    own = finance.euro(fin.own_share) if programme and fin.own_share is not None else (
        finance.euro(idea.budget) if idea.budget is not None and not programme else o)
    cover = (f"Zuwendung {finance.euro(fin.grant)}; Eigenanteil {own} aus "
             if programme and fin.grant is not None else f"{own} aus ") + (idea.budget_line or f"Haushaltsstelle {o}")
    rows.append(["Deckungsvorschlag", cover])
    rows.append(["Folgekosten nach Pilotende (jährlich)",
                 finance.euro(idea.follow_up_costs) if idea.follow_up_costs is not None else o])
    return rows


def financing_table(idea: Idea, programme: Programme | None, fin: finance.Financing,
                    deadline: finance.DeadlineStatus | None, language: str = "de") -> list[list[str]]:
    """The finance table of a funding application: costs by type, total, rate, grant, own share."""
    L = language if language in OPEN else "de"
    t = {"de": ["Kostenart", "Betrag"], "en": ["Cost category", "Amount"]}[L]
    rows = [t] + [[label, finance.euro(v)] for label, v in cost_rows(idea, L)]
    total = "Gesamtkosten des Vorhabens" if L == "de" else "Total project cost"
    rows.append([total, finance.euro(idea.budget) if idea.budget is not None else OPEN[L]])
    if programme:
        name = {"de": ["Förderprogramm", "Förderquote", "Zuschuss (berechnet)", "Eigenanteil (berechnet)",
                       "durch Höchstbetrag begrenzt", "Antragsfrist"],
                "en": ["Funding programme", "Funding rate", "Grant (computed)", "Own contribution (computed)",
                       "limited by the maximum grant", "Deadline"]}[L]
        rows.append([name[0], programme.name.split(" – ")[0].strip() if L == "en" else programme.name])
        rows.append([name[1], finance.percent(fin.funding_rate) if fin.funding_rate is not None else OPEN[L]])
        grant = finance.euro(fin.grant) if fin.grant is not None else OPEN[L]
        rows.append([name[2], grant + (f" ({name[4]})" if fin.capped else "")])
        own = finance.euro(fin.own_share) if fin.own_share is not None else OPEN[L]
        rows.append([name[3], own + (f" ({finance.percent(fin.own_share_rate)})" if fin.own_share_rate is not None else "")])
        if deadline and deadline.deadline:
            rows.append([name[5], _fmt_date(dt.date.fromisoformat(deadline.deadline), L)])
    if idea.duration_months:
        rows.append(["Laufzeit" if L == "de" else "Duration", f"{idea.duration_months} " + ("Monate" if L == "de" else "months")])
    return rows
