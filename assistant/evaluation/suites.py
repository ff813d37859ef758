"""Evaluation suites: YAML (the native format) or CSV (for staff who keep questions in a
spreadsheet). Both become a :class:`Suite` of :class:`EvalItem`.

Validation collects every problem before failing, and each message names the file, the
line and the item id: a suite of 50 questions written by hand should not be fixed one
error per run.
"""
from __future__ import annotations

import csv
import hashlib
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import frontmatter
from ..errors import UsageError

ITEM_FIELDS = ("id", "question", "reference", "facts", "gold_sources", "answerable", "tags", "notes",
               "answer_sentences", "page", "municipality")
SUITE_FIELDS = ("name", "description", "version", "corpus", "items")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TRUE = {"true", "ja", "yes", "1", "wahr", "j", "y"}
FALSE = {"false", "nein", "no", "0", "falsch", "n"}


class SuiteError(UsageError):
    """A suite file that cannot be used; the message lists every problem found."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Suite {path} ist fehlerhaft ({len(problems)} Problem(e)):\n{listing}",
                         f"suite {path} is invalid ({len(problems)} problem(s), listed above)",
                         "Einträge wie in evals/README.md beschrieben korrigieren")
        self.problems = problems


@dataclass(frozen=True)
class GoldSource:
    """A document that holds the answer: a file name (or doc id prefix), optionally pages."""

    file: str
    pages: tuple[int, ...] = ()

    def label(self) -> str:
        return f"{self.file}#{','.join(map(str, self.pages))}" if self.pages else self.file


@dataclass
class EvalItem:
    id: str
    question: str
    reference: str = ""
    facts: list[str] = field(default_factory=list)
    gold_sources: list[GoldSource] = field(default_factory=list)
    answerable: bool = True
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    # the sentences of the source that answer the question (scored by answer-sentence recall)
    answer_sentences: list[str] = field(default_factory=list)
    # the page the question was asked about, also when it holds no answer (for the oracle pipeline)
    page: GoldSource | None = None
    # whose documents the question is asked against, as a person using one city's assistant;
    # empty: the whole index. A corpus of several cities otherwise answers one city's question
    # from another's page, and "no answer on its page" stops meaning "no answer".
    municipality: str = ""
    line: int = 0              # where the item starts in its file (1-based), for messages

    @property
    def oracle_sources(self) -> list[GoldSource]:
        """Where the oracle pipeline reads: the gold sources, else the page the question is about."""
        return list(self.gold_sources) or ([self.page] if self.page else [])


@dataclass
class Suite:
    name: str
    path: Path
    items: list[EvalItem]
    description: str = ""
    version: str = ""
    corpus: Path | None = None   # the corpus the suite was written for (resolved against the file)
    sha256: str = ""

    @property
    def tags(self) -> list[str]:
        return sorted({t for item in self.items for t in item.tags})


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Suite nicht lesbar: {path} ({exc.strerror})", f"Cannot read suite {path} ({exc.strerror})",
                         "Pfad prüfen, z. B. evals/suites/starter.yaml") from None
    try:
        text = raw.decode("utf-8-sig")   # spreadsheets like to write a BOM
    except UnicodeDecodeError:
        raise SuiteError(path, ["Datei ist nicht UTF-8-kodiert / file is not UTF-8"]) from None
    if path.suffix.lower() == ".csv":
        suite = _from_csv(text, path)
    elif path.suffix.lower() in (".yaml", ".yml"):
        suite = _from_yaml(text, path)
    else:
        raise UsageError(f"Unbekanntes Suite-Format: {path.suffix or '(keins)'}",
                         f"Unknown suite format: {path.suffix or '(none)'}", "Dateiendung .yaml, .yml oder .csv")
    suite.sha256 = hashlib.sha256(raw).hexdigest()
    return suite


# ------------------------------------------------------------------------------ YAML
def _from_yaml(text: str, path: Path) -> Suite:
    try:
        data = frontmatter.load_yaml(text)
    except frontmatter.FrontMatterError as exc:
        where = f"Zeile {exc.line}: " if exc.line else ""
        raise SuiteError(path, [f"{where}kein gültiges YAML ({exc.problem})"]) from None
    root = yaml.compose(text, Loader=yaml.SafeLoader)   # node tree (aliases not expanded) for line numbers
    problems: list[str] = []
    meta: dict[str, Any] = {}
    if isinstance(data, list):                    # a bare list of items is allowed too
        items_data, items_node = data, root
    elif isinstance(data, dict):
        meta = data
        for key in data:
            if key not in SUITE_FIELDS:
                problems.append(f"Zeile {_key_line(root, key)}: unbekanntes Feld {key!r} "
                                f"(erlaubt: {', '.join(SUITE_FIELDS)})")
        items_data = data.get("items")
        items_node = _value_node(root, "items")
        if not isinstance(items_data, list):
            problems.append("Feld 'items' fehlt oder ist keine Liste")
            raise SuiteError(path, problems)
    else:
        raise SuiteError(path, ["Die Datei muss eine Liste von Einträgen oder ein Objekt mit 'items' enthalten"])
    lines = [n.start_mark.line + 1 for n in getattr(items_node, "value", [])]
    items = []
    for i, entry in enumerate(items_data):
        line = lines[i] if i < len(lines) else 0
        item_node = items_node.value[i] if i < len(lines) else None
        items.append(_item(entry, line, problems, lambda key, n=item_node, ln=line: _key_line(n, key) or ln))
    return _finish(path, items, problems, meta)


def _value_node(node, key: str):
    for k, v in getattr(node, "value", []) if isinstance(node, yaml.MappingNode) else []:
        if k.value == key:
            return v
    return None


def _key_line(node, key: str) -> int:
    if not isinstance(node, yaml.MappingNode):
        return 0
    for k, _ in node.value:
        if k.value == key:
            return k.start_mark.line + 1
    return 0


# ------------------------------------------------------------------------------- CSV
def _from_csv(text: str, path: Path) -> Suite:
    """One item per row; list fields split on '|'; gold sources as 'datei.pdf#3' or 'datei.pdf#1,3'."""
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    problems: list[str] = []
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h and h not in ITEM_FIELDS]
    if unknown:
        problems.append(f"Zeile 1: unbekannte Spalte(n) {', '.join(unknown)} (erlaubt: {', '.join(ITEM_FIELDS)})")
    if "question" not in header:
        raise SuiteError(path, problems + ["Zeile 1: Spalte 'question' fehlt"])
    items = []
    for row in reader:
        line = reader.line_num
        entry: dict[str, Any] = {}
        for key, value in row.items():
            if key is None or not key.strip() or key.strip() not in ITEM_FIELDS:
                continue
            value = (value or "").strip()
            if not value:
                continue
            key = key.strip()
            if key in ("facts", "tags", "gold_sources", "answer_sentences"):
                entry[key] = [v.strip() for v in value.split("|") if v.strip()]
            else:
                entry[key] = value
        if not entry:
            continue   # blank row
        if "answerable" in entry:
            word = entry["answerable"].lower()
            entry["answerable"] = True if word in TRUE else False if word in FALSE else entry["answerable"]
        items.append(_item(entry, line, problems, lambda key, ln=line: ln))
    return _finish(path, items, problems, {"name": path.stem})


# ----------------------------------------------------------------------- both formats
def _item(entry: Any, line: int, problems: list[str], line_of) -> EvalItem:
    if not isinstance(entry, dict):
        problems.append(f"Zeile {line}: Eintrag ist kein Objekt (id, question, ...)")
        return EvalItem(id="", question="", line=line)
    raw_id = entry.get("id")
    item_id = str(raw_id).strip() if raw_id is not None else ""
    label = f"Eintrag {item_id!r}" if item_id else "Eintrag ohne id"

    def bad(key: str, message: str) -> None:
        problems.append(f"Zeile {line_of(key)}, {label}: {message}")

    for key in entry:
        if key not in ITEM_FIELDS:
            bad(key, f"unbekanntes Feld {key!r} (erlaubt: {', '.join(ITEM_FIELDS)})")
    if not item_id:
        bad("id", "Feld 'id' fehlt")
    elif not ID.match(item_id):
        bad("id", f"id {item_id!r} darf nur Buchstaben, Ziffern, '-', '_' und '.' enthalten")
    question = entry.get("question")
    if not isinstance(question, str) or not question.strip():
        bad("question", "Feld 'question' fehlt oder ist leer")
        question = ""
    answerable = entry.get("answerable", True)
    if not isinstance(answerable, bool):
        bad("answerable", f"'answerable' muss true oder false sein, nicht {answerable!r}")
        answerable = True
    reference = entry.get("reference", "")
    if reference is None or not isinstance(reference, (str, int, float)):
        bad("reference", "'reference' muss ein Text sein")
        reference = ""
    facts = _str_list(entry.get("facts", []), "facts", bad)
    tags = _str_list(entry.get("tags", []), "tags", bad)
    gold = _gold(entry.get("gold_sources", []), bad)
    sentences = _str_list(entry.get("answer_sentences", []), "answer_sentences", bad)
    page = _gold(entry["page"], bad) if entry.get("page") else []
    if len(page) > 1:
        bad("page", "'page' nennt genau eine Quelle")
    municipality = entry.get("municipality") or ""
    if not isinstance(municipality, str):
        bad("municipality", "'municipality' muss ein Text sein (der Name der Kommune wie im Index)")
        municipality = ""
    if answerable and not (str(reference).strip() or facts or sentences):
        bad("reference", "beantwortbare Frage braucht 'reference' oder 'facts' (oder 'answer_sentences')")
    if not answerable and sentences:
        bad("answer_sentences", "unbeantwortbare Frage (answerable: false) darf keine 'answer_sentences' haben")
    if not answerable and gold:
        bad("gold_sources", "unbeantwortbare Frage (answerable: false) darf keine 'gold_sources' haben")
    if not answerable and facts:
        bad("facts", "unbeantwortbare Frage (answerable: false) darf keine 'facts' haben")
    return EvalItem(id=item_id, question=question.strip(), reference=str(reference).strip(), facts=facts,
                    gold_sources=gold, answerable=answerable, tags=tags,
                    notes=str(entry.get("notes") or "").strip(), answer_sentences=sentences,
                    page=page[0] if page else None, municipality=municipality.strip(), line=line)


def _str_list(value: Any, name: str, bad) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        bad(name, f"'{name}' muss eine Liste von Texten sein")
        return []
    out = [str(v).strip() for v in value]
    if any(not v for v in out):
        bad(name, f"'{name}' enthält einen leeren Eintrag")
    return [v for v in out if v]


def _gold(value: Any, bad) -> list[GoldSource]:
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        bad("gold_sources", "'gold_sources' muss eine Liste sein")
        return []
    out = []
    for g in value:
        if isinstance(g, str):
            name, _, pages_text = g.partition("#")
            pages: Any = [p for p in re.split(r"[,\s]+", pages_text) if p] if pages_text else []
        elif isinstance(g, dict):
            extra = set(g) - {"file", "pages"}
            if extra:
                bad("gold_sources", f"unbekanntes Feld in gold_sources: {', '.join(sorted(extra))} (erlaubt: file, pages)")
            name, pages = g.get("file", ""), g.get("pages", [])
            pages = [pages] if isinstance(pages, (int, str)) else pages
        else:
            hint = (" – Tipp: in [ … ] die Quelle in Anführungszeichen setzen, z. B. ['datei.pdf#1,2']"
                    if isinstance(g, int) else "")
            bad("gold_sources", f"ungültige Quelle {g!r} (erwartet 'datei.pdf', 'datei.pdf#3' oder file/pages){hint}")
            continue
        name = str(name or "").strip()
        if not name:
            bad("gold_sources", "Quelle ohne Dateinamen")
            continue
        try:
            nums = tuple(int(p) for p in (pages or []))
        except (TypeError, ValueError):
            bad("gold_sources", f"Seiten von {name} müssen ganze Zahlen sein, nicht {pages!r}")
            continue
        if any(n < 1 for n in nums):
            bad("gold_sources", f"Seiten von {name} beginnen bei 1")
            continue
        out.append(GoldSource(name, tuple(sorted(set(nums)))))
    return out


def _line_of(problem: str) -> int:
    m = re.match(r"Zeile (\d+)", problem)
    return int(m.group(1)) if m else 0


def _finish(path: Path, items: list[EvalItem], problems: list[str], meta: dict[str, Any]) -> Suite:
    seen: dict[str, int] = {}
    for item in items:
        if item.id and item.id in seen:
            problems.append(f"Zeile {item.line}, Eintrag {item.id!r}: id kommt doppelt vor (zuerst Zeile {seen[item.id]})")
        seen.setdefault(item.id, item.line)
    if not items and not problems:
        problems.append("Die Suite enthält keine Einträge")
    if problems:
        raise SuiteError(path, sorted(problems, key=_line_of))
    corpus = meta.get("corpus")
    return Suite(name=str(meta.get("name") or path.stem), path=path, items=items,
                 description=str(meta.get("description") or "").strip(), version=str(meta.get("version") or ""),
                 corpus=(path.parent / str(corpus)).resolve() if corpus else None)


def sample(items: list[EvalItem], n: int, seed: int) -> list[EvalItem]:
    """A fixed random sample of ``n`` items with the suite's share of unanswerable ones (rounded),
    in suite order; the same ``seed`` gives the same items, so runs on the sample compare."""
    if n <= 0:
        raise UsageError("--sample muss >= 1 sein", "--sample must be >= 1", "--sample 60 --seed 1")
    if n >= len(items):
        return list(items)
    rng = random.Random(seed)
    unanswerable = [i for i in items if not i.answerable]
    k = round(n * len(unanswerable) / len(items))
    chosen = set(map(id, rng.sample(unanswerable, k))) | set(map(id, rng.sample([i for i in items if i.answerable],
                                                                                  n - k)))
    return [i for i in items if id(i) in chosen]
