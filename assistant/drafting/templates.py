"""Document templates as data: ``prompts/templates/*.yaml`` (built in) and
``<data_dir>/templates/*.yaml`` (a city's own), plus the import of a funder's DOCX/ODT form.

A template is a list of sections; each says what it is for, how long it may be, what to
retrieve for it and whether its text is generated, computed (figures from finance.py) or
static. Validation is a pure function over the parsed YAML; every message names the line,
because the people fixing these files edit them by hand.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import config, frontmatter
from ..errors import UsageError, UserError
from ..fsutil import atomic_write
from ..types import DOC_TYPES

BUILTIN_DIR = config.PROMPTS_DIR / "templates"
KINDS = ("generated", "computed", "static")
SOURCE_TYPES = DOC_TYPES
# computed blocks (forms.py): figures, dates, lists and the council form fields, never generated
COMPUTE = ("financing", "attachments", "header", "consultation", "decision", "timeplan", "workplan", "kpis",
           "budget_impact")
PLACEHOLDERS = ("title", "idea", "city", "department", "programme", "duration", "budget", "goal", "target_group",
                "staff", "start")
LANGUAGES = ("de", "en")
MAX_WORDS = 600            # one section; beyond this a small model loses the thread
_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_FIELD = re.compile(r"\{(\w*)\}")


class TemplateError(UserError):
    """A template file that cannot be used; ``line`` is 1-based when known."""

    exit_code = 2

    def __init__(self, de: str, en: str = "", fix: str = "", line: int | None = None, path: str = "") -> None:
        super().__init__(de, en, fix or "Vorlage korrigieren (siehe prompts/templates/beschlussvorlage.yaml)")
        self.line = line
        self.path = path


@dataclass
class TemplateSection:
    id: str
    heading: str
    level: int = 1
    kind: str = "generated"
    purpose: str = ""
    guidance: str = ""
    word_limit: int = 120
    queries: list[str] = field(default_factory=list)
    source_types: list[str] = field(default_factory=lambda: ["council", "funding", "report"])
    compute: str = ""                 # computed sections: one of COMPUTE
    covers: list[str] = field(default_factory=list)   # requirement words this section answers
    text: str = ""                    # static sections (placeholders allowed)
    items: list[str] = field(default_factory=list)    # attachments always listed
    # give the computed figures to the model: only where the text must name them (a Beschlussvorschlag
    # names the own share); next to a computed table the model only restates them, and wrongly
    facts: bool = False

    @property
    def generates(self) -> bool:
        """Does this section need the model? (computed sections may carry a short text)"""
        return self.kind == "generated" or (self.kind == "computed" and self.word_limit > 0)


@dataclass
class Template:
    name: str
    title: str
    version: str
    sections: list[TemplateSection]
    description: str = ""
    language: str = "de"
    path: str = ""
    builtin: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def section(self, section_id: str) -> TemplateSection | None:
        return next((s for s in self.sections if s.id == section_id), None)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "title": self.title, "version": self.version, "description": self.description,
             "language": self.language, "sections": []}
        defaults = asdict(TemplateSection("x", "x"))
        for s in self.sections:   # only what differs from the defaults: the files stay short
            sd = {k: v for k, v in asdict(s).items() if k in ("id", "heading") or v != defaults[k]}
            d["sections"].append(sd)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False, width=100)


# ----------------------------------------------------------------------------- parsing


class _Map(dict):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line so schema errors can point at it."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    m = _Map(loader.construct_mapping(node, deep=True))
    m.line = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, path: str = "", *, builtin: bool = False) -> Template:
    """YAML text -> validated Template; raises TemplateError naming the line."""
    where = f"{Path(path).name}: " if path else ""
    try:
        data = frontmatter.load_yaml(text, loader=_LineLoader)
    except frontmatter.FrontMatterError as exc:
        raise TemplateError(f"{where}Vorlage ist {exc.de}", f"{where}template is {exc.en}",
                            "Einrückung, Doppelpunkte und Anführungszeichen in dieser Zeile prüfen",
                            line=exc.line, path=path) from None
    return from_dict(data, path, builtin=builtin)


def from_dict(data: Any, path: str = "", *, builtin: bool = False) -> Template:
    """Parsed YAML (or a draft's stored copy) -> validated Template."""
    problems = validate(data)
    if problems:
        where = f"{Path(path).name}: " if path else ""
        line, de, en = problems[0]
        more = f" (+{len(problems) - 1} weitere)" if len(problems) > 1 else ""
        more_en = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        at_de, at_en = (f"Zeile {line}: ", f"line {line}: ") if line else ("", "")
        raise TemplateError(f"{where}{at_de}{de}{more}", f"{where}{at_en}{en}{more_en}", line=line, path=path)
    return _build(data, path, builtin)


def validate(data: Any) -> list[tuple[int | None, str, str]]:
    """Every problem as (line, German, English); empty list = valid."""
    out: list[tuple[int | None, str, str]] = []
    if not isinstance(data, dict):
        return [(1, "Vorlage muss eine Zuordnung mit name, title, version, sections sein",
                 "template must be a mapping with name, title, version, sections")]
    top = getattr(data, "line", 1)
    for key in ("name", "title", "version", "sections"):
        if key not in data:
            out.append((top, f"Pflichtfeld fehlt: '{key}'", f"missing required field: '{key}'"))
    if "name" in data and not (isinstance(data["name"], str) and _ID.match(data["name"])):
        out.append((top, f"'name' muss klein geschrieben sein (a-z, 0-9, '-'), ist {data['name']!r}",
                    f"'name' must be lower case (a-z, 0-9, '-'), is {data['name']!r}"))
    if data.get("language", "de") not in LANGUAGES:
        out.append((top, "'language' muss de oder en sein", "'language' must be de or en"))
    sections = data.get("sections")
    if "sections" in data and (not isinstance(sections, list) or not sections):
        return out + [(top, "'sections' muss eine nicht-leere Liste sein", "'sections' must be a non-empty list")]
    seen: set[str] = set()
    for i, s in enumerate(sections or [], 1):
        out += _validate_section(s, i, seen)
    return out


def _validate_section(s: Any, i: int, seen: set[str]) -> list[tuple[int | None, str, str]]:
    if not isinstance(s, dict):
        return [(None, f"Abschnitt {i} ist keine Zuordnung", f"section {i} is not a mapping")]
    line = getattr(s, "line", None)
    name = s.get("id", f"#{i}")
    out = []

    def bad(de: str, en: str) -> None:
        out.append((line, f"Abschnitt '{name}': {de}", f"section '{name}': {en}"))

    known = set(TemplateSection.__dataclass_fields__)
    for key in s:
        if key not in known:
            bad(f"unbekanntes Feld '{key}'", f"unknown field '{key}'")
    if not (isinstance(s.get("id"), str) and _ID.match(s["id"])):
        bad("'id' fehlt oder ist nicht a-z/0-9/-/_", "'id' missing or not a-z/0-9/-/_")
    elif s["id"] in seen:
        bad("'id' kommt doppelt vor", "duplicate 'id'")
    else:
        seen.add(s["id"])
    if not (isinstance(s.get("heading"), str) and s["heading"].strip()):
        bad("'heading' fehlt", "'heading' missing")
    kind = s.get("kind", "generated")
    if kind not in KINDS:
        bad(f"'kind' muss einer von {', '.join(KINDS)} sein", f"'kind' must be one of {', '.join(KINDS)}")
    level = s.get("level", 1)
    if not (isinstance(level, int) and not isinstance(level, bool) and 1 <= level <= 4):
        bad("'level' muss 1 bis 4 sein", "'level' must be 1 to 4")
    limit = s.get("word_limit", 0 if kind != "generated" else 120)
    if not (isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit <= MAX_WORDS):
        bad(f"'word_limit' muss eine ganze Zahl von 0 bis {MAX_WORDS} sein", f"'word_limit' must be 0..{MAX_WORDS}")
    elif kind == "generated" and limit == 0:
        bad("generierte Abschnitte brauchen 'word_limit' > 0", "generated sections need 'word_limit' > 0")
    if kind == "computed" and s.get("compute") not in COMPUTE:
        bad(f"'compute' muss einer von {', '.join(COMPUTE)} sein", f"'compute' must be one of {', '.join(COMPUTE)}")
    for key in ("queries", "source_types", "covers", "items"):
        value = s.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)):
            bad(f"'{key}' muss eine Liste von Texten sein", f"'{key}' must be a list of texts")
    unknown = [t for t in s.get("source_types", []) if isinstance(t, str) and t not in SOURCE_TYPES]
    if unknown:
        bad(f"unbekannte source_types {unknown} (erlaubt: {', '.join(SOURCE_TYPES)})",
            f"unknown source_types {unknown} (allowed: {', '.join(SOURCE_TYPES)})")
    if "facts" in s and not isinstance(s["facts"], bool):
        bad("'facts' muss true oder false sein", "'facts' must be true or false")
    for key in ("purpose", "guidance", "text"):
        if key in s and not isinstance(s[key], str):
            bad(f"'{key}' muss ein Text sein", f"'{key}' must be a text")
    texts = [*(s.get("queries") or []), s.get("text") or ""]
    fields = {f for t in texts if isinstance(t, str) for f in _FIELD.findall(t)}
    if fields - set(PLACEHOLDERS):
        bad(f"unbekannte Platzhalter {sorted(fields - set(PLACEHOLDERS))} (erlaubt: "
            f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
            f"unknown placeholders {sorted(fields - set(PLACEHOLDERS))}")
    return out


def _build(data: dict, path: str, builtin: bool) -> Template:
    sections = []
    for s in data["sections"]:
        kind = s.get("kind", "generated")
        sections.append(TemplateSection(
            id=s["id"], heading=s["heading"].strip(), level=s.get("level", 1), kind=kind,
            purpose=(s.get("purpose") or "").strip(), guidance=(s.get("guidance") or "").strip(),
            word_limit=s.get("word_limit", 120 if kind == "generated" else 0), queries=list(s.get("queries") or []),
            source_types=list(s.get("source_types") or (["council", "funding", "report"] if kind != "static" else [])),
            compute=s.get("compute") or "", covers=list(s.get("covers") or []), text=(s.get("text") or "").strip(),
            items=list(s.get("items") or []), facts=bool(s.get("facts", False))))
    return Template(name=data["name"], title=str(data["title"]), version=str(data["version"]), sections=sections,
                    description=str(data.get("description") or "").strip(), language=data.get("language", "de"),
                    path=path, builtin=builtin)


def load_file(path: str | Path, *, builtin: bool = False) -> Template:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"Vorlage {p} ist nicht lesbar: {exc}", f"template {p} is not readable: {exc}",
                            "Pfad und Kodierung (UTF-8) prüfen", path=str(p)) from None
    return parse(text, str(p), builtin=builtin)


# ----------------------------------------------------------------------------- listing


def user_dir(settings) -> Path:
    return Path(settings.data_dir) / "templates"


def list_templates(settings=None) -> tuple[list[Template], list[TemplateError]]:
    """Built-in and user templates (a user template shadows a built-in of the same name),
    plus the files that failed: one broken file never hides the others."""
    found: dict[str, Template] = {}
    errors: list[TemplateError] = []
    folders = [(BUILTIN_DIR, True)] + ([(user_dir(settings), False)] if settings is not None else [])
    for folder, builtin in folders:
        for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
            try:
                t = load_file(path, builtin=builtin)
            except TemplateError as exc:
                errors.append(exc)
                continue
            found[t.name] = t
    return sorted(found.values(), key=lambda t: (not t.builtin, t.name)), errors


def load_template(name: str, settings=None) -> Template:
    """A template by name, or by path to a YAML file."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_file(name)
    templates, errors = list_templates(settings)
    for t in templates:
        if t.name == name:
            return t
    broken = [e for e in errors if Path(e.path).stem == name]
    if broken:
        raise broken[0]
    names = ", ".join(t.name for t in templates)
    raise UsageError(f"Unbekannte Vorlage {name!r}. Vorhanden: {names}", f"Unknown template {name!r}. Available: {names}",
                     "pilot-assistant draft --list-templates")


def save_template(template: Template, settings) -> Path:
    """Write a (user) template to ``<data_dir>/templates/<name>.yaml``; re-validated first."""
    text = template.to_yaml()
    parse(text, template.name)
    folder = user_dir(settings)
    target = folder / f"{template.name}.yaml"
    try:
        atomic_write(target, text)
    except OSError as exc:
        raise UserError(f"Vorlage kann nicht nach {target} geschrieben werden: {exc.strerror}",
                        f"cannot write template to {target}: {exc.strerror}", "Schreibrechte von --data-dir prüfen")
    return target
