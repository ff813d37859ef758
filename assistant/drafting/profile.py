"""The project profile (Projektsteckbrief): one record of the facts a draft may state.

A profile comes from a YAML file (``draft --profile profile.yaml``), from the UI form, or
from the old flags; a free-text idea is read deterministically for what it plainly says
(amounts, durations, head counts, the title, the office) and what was read is shown for
confirmation, never silently trusted. Everything here is pure except :func:`load_profile`.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from .. import frontmatter
from ..errors import UsageError
from ..funding import finance
from .record import COST_TYPES, Idea

# the keys a profile file may use; the first block is the contract of `draft --profile`
KEYS = ("title", "department", "goal", "target_group", "staff", "start", "duration_months", "budget", "programme",
        "related_papers", "city", "description", "idea", "committees", "kpis", "budget_line", "budget_available",
        "follow_up_costs")
BUDGET_KEYS = ("total", *COST_TYPES)
COST_LABELS = {"de": {"staff": "Personal", "services": "Sach- und Dienstleistungen", "contracts": "Aufträge an Dritte",
                      "investment": "Investitionen"},
               "en": {"staff": "Staff", "services": "Goods and services", "contracts": "Subcontracting",
                      "investment": "Equipment and investment"}}
EXAMPLE = """title: openDesk im Bürgeramt
department: Bürgeramt
goal: Souveräne Büro- und Kollaborationsplattform erproben
target_group: Beschäftigte des Bürgeramts
staff: 200
start: 2027-03-01
duration_months: 18
budget: {total: 250000, staff: 60000, services: 90000, contracts: 100000, investment: 0}
programme: null
related_papers: ["0188/2026"]"""


def _fail(de: str, en: str) -> UsageError:
    return UsageError(de, en, "Aufbau einer Profildatei:\n" + EXAMPLE)


def _amount(value: Any, key: str) -> float | None:
    try:
        return finance.parse_amount(value)
    except UsageError:
        raise _fail(f"Profil: {key} = {value!r} ist kein Betrag", f"profile: {key} = {value!r} is not an amount") from None


def _int(value: Any, key: str, low: int, high: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise _fail(f"Profil: {key} = {value!r} ist keine ganze Zahl", f"profile: {key} = {value!r} is not a whole number") from None
    if not low <= n <= high:
        raise _fail(f"Profil: {key} = {n} liegt nicht zwischen {low} und {high}",
                    f"profile: {key} = {n} is not between {low} and {high}")
    return n


def _date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise _fail(f"Profil: start = {value!r} ist kein ISO-Datum (JJJJ-MM-TT)",
                    f"profile: start = {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _texts(value: Any, key: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _fail(f"Profil: {key} muss eine Liste von Texten sein", f"profile: {key} must be a list of texts")
    return [str(v).strip() for v in value if str(v).strip()]


def _records(value: Any, key: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _fail(f"Profil: {key} muss eine Liste von Einträgen ({', '.join(fields)}) sein",
                    f"profile: {key} must be a list of entries ({', '.join(fields)})")
    out = []
    for v in value:
        unknown = set(v) - set(fields)
        if unknown:
            raise _fail(f"Profil: {key} kennt {sorted(unknown)} nicht (erlaubt: {', '.join(fields)})",
                        f"profile: {key} has unknown fields {sorted(unknown)}")
        out.append({f: str(v.get(f) or "").strip() if not isinstance(v.get(f), dt.date) else v[f].isoformat()
                    for f in fields})
    return out


def from_dict(data: Any) -> Idea:
    """Profile fields (YAML/JSON/UI form) -> a checked Idea; unknown keys are an error, not ignored."""
    if not isinstance(data, dict):
        raise _fail("Die Profildatei muss Felder enthalten (title, department, …)",
                    "the profile must hold fields (title, department, …)")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise _fail(f"Profil: unbekannte Felder {', '.join(map(str, unknown))} (erlaubt: {', '.join(KEYS)})",
                    f"profile: unknown fields {', '.join(map(str, unknown))} (allowed: {', '.join(KEYS)})")
    budget = data.get("budget")
    costs: dict[str, float] = {}
    total = None
    if isinstance(budget, dict):
        bad = [k for k in budget if k not in BUDGET_KEYS]
        if bad:
            raise _fail(f"Profil: budget kennt {bad} nicht (erlaubt: {', '.join(BUDGET_KEYS)})",
                        f"profile: budget has unknown keys {bad} (allowed: {', '.join(BUDGET_KEYS)})")
        total = _amount(budget.get("total"), "budget.total")
        for k in COST_TYPES:
            v = _amount(budget.get(k), f"budget.{k}")
            if v is not None:
                costs[k] = v
        if costs and total is None:
            total = sum(costs.values())
        elif costs and abs(sum(costs.values()) - total) > 0.005 and len(costs) == len(COST_TYPES):
            raise _fail(f"Profil: die Kostenarten ergeben {finance.euro(sum(costs.values()))}, budget.total ist "
                        f"{finance.euro(total)}", f"profile: cost types add up to {sum(costs.values())}, total is {total}")
        elif costs and sum(costs.values()) - total > 0.005:
            raise _fail(f"Profil: die Kostenarten ({finance.euro(sum(costs.values()))}) übersteigen budget.total "
                        f"({finance.euro(total)})", "profile: cost types exceed budget.total")
    elif budget not in (None, ""):
        total = _amount(budget, "budget")
    description = str(data.get("description") or data.get("idea") or "").strip()
    title = str(data.get("title") or "").strip()
    available = str(data.get("budget_available") or "").strip().lower()
    available = {"true": "ja", "false": "nein", "yes": "ja", "no": "nein"}.get(available, available)
    if available not in ("", "ja", "nein", "teilweise"):
        raise _fail("Profil: budget_available muss ja, nein oder teilweise sein",
                    "profile: budget_available must be ja, nein or teilweise")
    return Idea(title=title, description=description, city=str(data.get("city") or "").strip(),
                department=str(data.get("department") or "").strip(), budget=total,
                duration_months=_int(data.get("duration_months"), "duration_months", 1, 120),
                programme_id=str(data["programme"]).strip() if data.get("programme") else None,
                goal=str(data.get("goal") or "").strip(), target_group=str(data.get("target_group") or "").strip(),
                staff=_int(data.get("staff"), "staff", 0, 10_000_000), start=_date(data.get("start")), costs=costs,
                related_papers=_texts(data.get("related_papers"), "related_papers"),
                committees=_records(data.get("committees"), "committees", ("name", "date", "role", "top")),
                kpis=_records(data.get("kpis"), "kpis", ("name", "target", "when")),
                budget_line=str(data.get("budget_line") or "").strip(), budget_available=available,
                follow_up_costs=_amount(data.get("follow_up_costs"), "follow_up_costs"))


def load_profile(path: str | Path) -> Idea:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Profildatei {p} nicht lesbar: {exc}", f"profile {p} unreadable: {exc}",
                         "Pfad prüfen; UTF-8-Datei (.yaml oder .json) angeben") from None
    try:
        data = frontmatter.load_yaml(text)   # JSON is YAML too
    except frontmatter.FrontMatterError as exc:
        raise _fail(f"Profildatei {p.name} ist {exc.de}", f"profile {p.name} is {exc.en}") from None
    return from_dict(data)


# ----------------------------------------------------------------------------- reading an idea

_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"
_MONEY = re.compile(rf"(?:budget|kosten|gesamtkosten|volumen|mittel)?\s*(?:von|:|in höhe von)?\s*({_NUM})\s*"
                    r"(mio\.?|millionen|tsd\.?|tausend)?\s*(?:€|euro\b|eur\b)", re.IGNORECASE)
_MONTHS = re.compile(rf"({_NUM})\s*(monate?n?|jahre?n?)\b", re.IGNORECASE)
_PEOPLE = re.compile(rf"({_NUM})\s+(beschäftigte\w*|mitarbeite\w*|bedienstete\w*|personen|nutzer\w*|anwender\w*|"
                     r"schüler\w*|bürger\w*)", re.IGNORECASE)
_OFFICE = re.compile(r"\b(?:des|im|dem|vom|der)\s+((?:[A-ZÄÖÜ][\w-]*)?(?:amt|ämter|büro|referat|fachbereich|"
                     r"dezernat|abteilung|bibliothek|rathaus)(?:e?s)?)\b")
_LABEL = re.compile(r"^\s*(?:pilotprojekt|projekt|idee|vorhaben|projektidee)\s*:\s*", re.IGNORECASE)
_FACT_TAIL = re.compile(rf",\s*(?:{_NUM}|budget|laufzeit|kosten|dauer)", re.IGNORECASE)


def _number(text: str) -> float:
    return float(text.replace(".", "").replace(",", "."))


def read_idea(text: str) -> dict[str, Any]:
    """What a free-text idea states plainly: title, budget, duration, head count, target group,
    office. Pure and conservative: a value is read only when its unit says what it is."""
    text = (text or "").strip()
    out: dict[str, Any] = {}
    if not text:
        return out
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0].strip()
    head = _LABEL.sub("", first)
    cut = _FACT_TAIL.search(head)
    title = (head[:cut.start()] if cut else head).strip().rstrip(".!?:;,")
    if title:
        out["title"] = title if len(title) <= 140 else " ".join(title[:137].split()[:-1]) + " …"
    if m := _MONEY.search(text):
        factor = {"mio": 1e6, "millionen": 1e6, "tsd": 1e3, "tausend": 1e3}.get((m.group(2) or "").lower().rstrip("."), 1)
        out["budget"] = _number(m.group(1)) * factor
    if m := _MONTHS.search(text):
        n = _number(m.group(1))
        months = round(n * 12) if m.group(2).lower().startswith("jahr") else round(n)
        if 1 <= months <= 120:
            out["duration_months"] = months
    if m := _PEOPLE.search(text):
        out["staff"] = int(_number(m.group(1)))
        group = re.match(r"[\w-]+(?:\s+(?:des|der|im|aus dem|in der)\s+[\w-]+)?", text[m.start(2):])
        out["target_group"] = group.group(0) if group else m.group(2)
    if m := _OFFICE.search(text):
        office = m.group(1)
        out["department"] = re.sub(r"(?<=amt)e?s$|(?<=büro)s$|(?<=referat)e?s$", "", office)
    return out


def merge_idea(idea: Idea) -> Idea:
    """Fill what the profile leaves open from what the idea text says; record what was read.

    Explicit fields always win: the parsed values only fill gaps, and ``idea.parsed`` lists
    every value taken from the text so the UI and CLI can show it for confirmation."""
    found = read_idea(idea.description)
    used: dict[str, Any] = {}
    for key, value in found.items():
        if getattr(idea, key) in (None, "", [], {}):
            setattr(idea, key, value)
            used[key] = value
    idea.parsed = used
    return idea


def confirmation(idea: Idea) -> list[str]:
    """Human-readable lines: what was read from the idea text (to be confirmed)."""
    labels = {"title": "Titel", "budget": "Budget", "duration_months": "Laufzeit", "staff": "Anzahl Beschäftigte",
              "target_group": "Zielgruppe", "department": "Federführung"}
    out = []
    for key, value in idea.parsed.items():
        shown = finance.euro(value) if key == "budget" else f"{value} Monate" if key == "duration_months" else value
        out.append(f"{labels.get(key, key)}: {shown}")
    return out


def profile_dict(idea: Idea) -> dict[str, Any]:
    """The profile as the keys of a profile file (for `--json`, the UI and the eval)."""
    budget = {"total": idea.budget, **{k: idea.costs.get(k) for k in COST_TYPES}}
    return {"title": idea.title, "department": idea.department, "goal": idea.goal, "target_group": idea.target_group,
            "staff": idea.staff, "start": idea.start, "duration_months": idea.duration_months, "budget": budget,
            "programme": idea.programme_id, "related_papers": list(idea.related_papers), "city": idea.city}
