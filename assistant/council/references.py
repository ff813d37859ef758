"""What council texts say about each other and about deadlines: pure functions, no I/O.

Paper numbers ("Antrag 0087/2025", "Drucksache V/0101/2024", "VO/2024/0123"), agenda items
("TOP 7"), German dates ("31.03.2027", "31. März 2027", "Ende 2025", "im vierten Quartal
2026"), report-back tasks ("Die Verwaltung berichtet …", "… ist bis … vorzulegen") and how
often they recur ("vierteljährlich"). A number is normalised without leading zeros, so
"87/2025" and "0087/2025" name the same paper.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from .. import text as T

# --- paper numbers ---------------------------------------------------------------------------

QUALIFIERS = {   # word before a number -> what kind of paper it names (as written in German)
    "antrag": "Antrag", "antrags": "Antrag", "antrages": "Antrag", "änderungsantrag": "Antrag",
    "anfrage": "Anfrage", "vorlage": "Vorlage", "beschlussvorlage": "Vorlage", "sitzungsvorlage": "Vorlage",
    "verwaltungsvorlage": "Vorlage", "informationsvorlage": "Mitteilung", "drucksache": "Drucksache",
    "drucksachen-nr": "Drucksache", "ds": "Drucksache", "vorlagen-nr": "Vorlage", "mitteilung": "Mitteilung",
    "niederschrift": "Niederschrift", "protokoll": "Niederschrift", "antwort": "Antwort",
    "stellungnahme": "Stellungnahme", "bericht": "Bericht", "nr": "", "bezug": "", "vorlagennummer": "Vorlage",
}
_QUAL = "|".join(sorted((re.escape(q) for q in QUALIFIERS), key=len, reverse=True))
# "0087/2025", "V/0101/2024" (prefix letters), "VO/2024/0123" (year first)
_NUMBER = r"(?:[A-Z]{1,4}/)?\d{1,5}/(?:19|20)\d\d|[A-Z]{1,4}/(?:19|20)\d\d/\d{1,5}"
REF = re.compile(rf"(?:(?P<q>\b(?:{_QUAL}))\.?:?\s*(?:Nr\.?\s*)?)?(?<![\w/])(?P<n>{_NUMBER})(?![\w/])",
                 re.IGNORECASE)
TOP = re.compile(r"\b(?:TOP|Tagesordnungspunkt)\s*(?P<n>\d{1,3}(?:\.\d{1,3})*[a-z]?)\b")


@dataclass(frozen=True)
class Ref:
    norm: str          # "87/2025": the key papers are matched by
    number: str        # as written: "0087/2025"
    qualifier: str     # "Antrag", "Vorlage", … ("" when the text gives none)
    start: int
    end: int


def normalize(number: str) -> str | None:
    """A paper number as a comparable key ("0087-2025" and "87/2025" -> "87/2025"); None if none."""
    raw = re.sub(r"\s+", "", str(number or "")).replace("-", "/").upper()
    m = re.fullmatch(r"(?:([A-Z]{1,4})/)?(\d{1,5})/((?:19|20)\d\d)", raw)
    if m:
        return (f"{m.group(1)}/" if m.group(1) else "") + f"{int(m.group(2))}/{m.group(3)}"
    m = re.fullmatch(r"([A-Z]{1,4})/((?:19|20)\d\d)/(\d{1,5})", raw)
    if m:
        return f"{m.group(1)}/{m.group(2)}/{int(m.group(3))}"
    return None


def find_refs(text: str) -> list[Ref]:
    """Paper numbers in ``text``. A bare number needs three digits and must not be a year pair
    ("2025/2026"), so page ranges and years are not mistaken for papers."""
    out = []
    for m in REF.finditer(text or ""):
        number, qual = m.group("n"), (m.group("q") or "")
        head = number.split("/")[0]
        if not qual and (len(re.sub(r"\D", "", head)) < 3 and not head.isalpha()
                         or re.fullmatch(r"(?:19|20)\d\d", head)):
            continue
        norm = normalize(number)
        if norm:
            out.append(Ref(norm, number, QUALIFIERS.get(qual.lower(), ""), m.start("n") if not qual else m.start(),
                           m.end()))
    return out


def looks_like_ref(text: str) -> str | None:
    """The normalised number when ``text`` is (essentially) a paper number, else None."""
    cleaned = re.sub(rf"^\s*(?:{_QUAL})\.?:?\s*(?:Nr\.?\s*)?", "", text.strip(), flags=re.IGNORECASE)
    return normalize(cleaned.strip(" .,;:()"))


# --- dates -----------------------------------------------------------------------------------

MONTHS = {"januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6,
          "juli": 7, "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12}
ORDINALS = {"ersten": 1, "1.": 1, "zweiten": 2, "2.": 2, "dritten": 3, "3.": 3, "vierten": 4, "4.": 4}
NUMBER_WORDS = {"einem": 1, "einer": 1, "eins": 1, "ein": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
                "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12}
_MONTH = "|".join(MONTHS)
DATE = re.compile(rf"\b(?P<d>\d{{1,2}})\.\s*(?:(?P<m>\d{{1,2}})\.\s*(?P<y>(?:19|20)\d\d)?|(?P<mn>{_MONTH})\s+(?P<y2>(?:19|20)\d\d))",
                  re.IGNORECASE)


def _date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def parse_date(text: str) -> dt.date | None:
    """The first full date in ``text`` ("18.12.2025", "18. Dezember 2025")."""
    for m in DATE.finditer(text or ""):
        if m.group("mn"):
            got = _date(int(m.group("y2")), MONTHS[m.group("mn").lower()], int(m.group("d")))
        elif m.group("y"):
            got = _date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        else:
            continue
        if got:
            return got
    return None


def iso_day(value: object) -> str:
    """An ISO date string from a date, an ISO string or a German date; "" when none."""
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    s = str(value or "")
    m = re.match(r"\d{4}-\d{2}-\d{2}", s)
    if m:
        return m.group(0)
    got = parse_date(s)
    return got.isoformat() if got else ""


# --- tasks and their due dates -------------------------------------------------------------------

# a deliverable to the council (a report back, a paper to be put before it)
_DELIVER = re.compile(r"\bberichte[tn]?\b|\bzu berichten\b|\bBericht\w*\b.{0,60}\b(?:vor|vorzulegen|vorgelegt|erstatte\w*)\b"
                      r"|\bleg(?:t|en)\b.{0,160}?\bvor\b|\bvorzulegen\b|\bvorgelegt\b|\bvorlegen\b|\bvorzustellen\b"
                      r"|\bstell(?:t|en)\b.{0,120}?\bvor\b|\bunterrichte[tn]?\b", re.IGNORECASE)
# the administration as the one who acts
_ADMIN = re.compile(r"\b(?:Verwaltung|Oberbürgermeister\w*|Bürgermeister\w*|Landrät\w*|Landrat|Dezernat\w*|Amt)\b")
_ACT = re.compile(r"\b(?:beauftragt|erarbeite[tn]?|zu erarbeiten|richte[tn]? .{0,80}?\bein\b|einzurichten|prüf(?:t|en)|"
                  r"zu prüfen|erstell(?:t|en)|zu erstellen|legt?\b|schließt .{0,60}\bab\b)", re.IGNORECASE)
_RECUR = [(re.compile(r"\b(?:vierteljährlich|quartalsweise|jedes Quartal|in jedem Quartal|pro Quartal)\b", re.I), 3),
          (re.compile(r"\b(?:halbjährlich|zweimal im Jahr|jedes halbe Jahr)\b", re.I), 6),
          (re.compile(r"\b(?:jährlich|einmal im Jahr|jedes Jahr|alljährlich)\b", re.I), 12),
          (re.compile(r"\bmonatlich\b", re.I), 1)]


@dataclass(frozen=True)
class Due:
    """When a task is due: a date, or months after the resolution, and how often it recurs."""

    date: dt.date | None = None
    months_after: int | None = None      # "innerhalb von sechs Monaten"
    every_months: int | None = None      # recurring report: 3 = quarterly
    text: str = ""                       # the words the date was read from

    def first(self, resolved: dt.date | None) -> dt.date | None:
        """The first due date, given the date of the resolution."""
        if self.date:
            return self.date
        if resolved is None:
            return None
        if self.months_after:
            return add_months(resolved, self.months_after)
        if self.every_months:
            return add_months(resolved, self.every_months)
        return None


def is_task(sentence: str) -> bool:
    """Does the sentence give the administration something to deliver (report, paper) or to do by a date?"""
    s = sentence or ""
    if _DELIVER.search(s):
        return True
    if not (_ADMIN.search(s) and _ACT.search(s)):
        return False
    due = due_of(s, None)
    return due is not None and due.date is not None


def recurrence(text: str) -> int | None:
    """Months between recurring reports ("vierteljährlich" -> 3), or None."""
    for pattern, months in _RECUR:
        if pattern.search(text or ""):
            return months
    return None


_QUARTER = re.compile(r"\b(?P<o>ersten|zweiten|dritten|vierten|[1-4]\.)\s+Quartal[s]?\s+(?:des Jahres\s+)?(?P<y>(?:19|20)\d\d)", re.I)
_HALF = re.compile(r"\b(?P<o>ersten|zweiten|1\.|2\.)\s+Halbjahr(?:es|s)?\s+(?:des Jahres\s+)?(?P<y>(?:19|20)\d\d)", re.I)
_PART_OF_YEAR = re.compile(r"\b(?P<w>Ende|Mitte|Anfang)\s+(?:des Jahres\s+)?(?P<y>(?:19|20)\d\d)\b", re.I)
_MONTH_YEAR = re.compile(rf"\b(?:bis\s+(?:Ende\s+|zum Ende\s+)?)(?P<m>{_MONTH})\s+(?P<y>(?:19|20)\d\d)\b", re.I)
_LAST_SITTING = re.compile(r"\bletzten\s+Sitzung\s+(?:des Jahres|im Jahr|in)\s+(?P<y>(?:19|20)\d\d)", re.I)
_WITHIN = re.compile(r"\b(?:innerhalb|binnen)\s+(?:von\s+)?(?P<n>\d{1,2}|" + "|".join(NUMBER_WORDS)
                     + r")\s+(?P<u>Monat\w*|Woche\w*|Jahr\w*)", re.I)
_YEAR_END = re.compile(r"\b(?:bis\s+(?:zum\s+)?Jahresende|bis\s+Ende\s+des\s+(?:laufenden\s+)?Jahres)\b(?!\s+(?:19|20)\d\d)", re.I)
_DAY_NO_YEAR = re.compile(r"\bbis\s+(?:spätestens\s+)?(?:zum\s+)?(?P<d>\d{1,2})\.\s*(?P<m>\d{1,2})\.(?!\s*\d)")
_START_WORDS = re.compile(r"\b(?:ab|seit|vom|von|(?:hat|haben|wurde|wurden)\s+am)\s+(?:dem\s+)?$", re.I)


def due_of(sentence: str, resolved: dt.date | None) -> Due | None:
    """The due date a task sentence states (or implies), read against the resolution date.

    Dates after "ab", "seit", "vom" start something and are not deadlines; "erstmals …"
    names the first of recurring reports."""
    s = sentence or ""
    every = recurrence(s)
    first_part = s
    if every and (m := re.search(r"\berstmals\b(.*)", s, re.I)):
        first_part = m.group(1)
    found = _due_date(first_part, resolved)
    if found:
        return Due(date=found[0], every_months=every, text=found[1])
    if m := _WITHIN.search(s):
        n = int(m.group("n")) if m.group("n").isdigit() else NUMBER_WORDS[m.group("n").lower()]
        unit = m.group("u").lower()
        months = n if unit.startswith("monat") else n * 12 if unit.startswith("jahr") else None
        if months is None:   # weeks: rounded up to months, a deadline is never earlier than written
            months = max(1, -(-n * 7 // 30))
        return Due(months_after=months, every_months=every, text=m.group(0))
    if every:
        return Due(every_months=every, text=next(p.search(s).group(0) for p, n in _RECUR if n == every))
    return None


def _due_date(s: str, resolved: dt.date | None) -> tuple[dt.date, str] | None:
    for m in DATE.finditer(s):
        if _START_WORDS.search(s[max(0, m.start() - 12):m.start()]):
            continue
        got = parse_date(m.group(0))
        if got:
            return got, m.group(0)
    for pattern, fn in ((_QUARTER, lambda m: month_end(int(m.group("y")), 3 * ORDINALS[m.group("o").lower()])),
                        (_HALF, lambda m: month_end(int(m.group("y")), 6 * ORDINALS[m.group("o").lower()])),
                        (_LAST_SITTING, lambda m: dt.date(int(m.group("y")), 12, 31)),
                        (_MONTH_YEAR, lambda m: month_end(int(m.group("y")), MONTHS[m.group("m").lower()])),
                        (_PART_OF_YEAR, lambda m: month_end(int(m.group("y")),
                                                            {"ende": 12, "mitte": 6, "anfang": 3}[m.group("w").lower()]))):
        if m := pattern.search(s):
            return fn(m), m.group(0)
    if resolved is not None:
        if m := _YEAR_END.search(s):
            return dt.date(resolved.year, 12, 31), m.group(0)
        if m := _DAY_NO_YEAR.search(s):
            got = _date(resolved.year, int(m.group("m")), int(m.group("d")))
            if got and got < resolved:
                got = _date(resolved.year + 1, got.month, got.day)
            if got:
                return got, m.group(0)
    return None


# --- words that say little about what a task is about ----------------------------------------------

GENERIC = frozenset(T.stem(w) for w in T.tokens("""
verwaltung oberbürgermeisterin oberbürgermeister bürgermeister stadtrat rat ausschuss ausschusses gremien gremium
berichtet berichten bericht berichte vorgelegt vorzulegen vorlegen legt vor vorgestellt vorzustellen
erstmals jährlich vierteljährlich halbjährlich quartal quartals jahres jahr bis spätestens zum sitzung seiner
ihrer letzten nächsten beschlussfassung über stand ende mitte anfang damit insbesondere jeweils dabei
digitalisierung verwaltungsmodernisierung haupt finanzausschuss ersten zweiten dritten vierten
"""))


def object_stems(text: str) -> set[str]:
    """What a task or a title is about: content stems without generic council words or numbers."""
    return {s for s in T.stems(text) if s not in GENERIC and not s.isdigit() and len(s) > 2}


def overlap(a: set[str], b: set[str]) -> float:
    """Share of ``a`` found in ``b``; German compounds count ("strategi" in "innovationsstrategi",
    "pilot" in "pilotprojekt")."""
    if not a:
        return 0.0
    hits = sum(1 for x in a if x in b or len(x) >= 5 and any(y.endswith(x) or y.startswith(x) for y in b))
    return hits / len(a)
