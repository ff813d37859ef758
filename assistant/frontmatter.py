"""YAML front matter and YAML from untrusted files: the one reader every module uses.

YAML aliases share objects, so 400 bytes (``a: &a [x,x,x,x,x,x,x,x,x]``, ``b: &b [*a,*a,…]``…)
describe a tree of a hundred million nodes. Loading it is cheap; anything that walks it
later (formatting a page, JSON, the index) is not. :func:`load_yaml` therefore measures the
expanded size of the composed node graph (aliases counted each time they are used) and
refuses self-referencing documents and documents that aliases blow up beyond
``MAX_NODES`` (a long file written out in full, such as an evaluation suite, is fine)
*before* any Python object is built.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import UserError

MAX_NODES = 10_000        # expanded size allowed whatever the file; a real programme has a few hundred
ALIAS_GROWTH = 4          # beyond MAX_NODES, aliases may repeat what is written at most this often
MAX_DEPTH = 32


class FrontMatterError(UserError):
    """A YAML block (front matter, sidecar, suite, template) cannot be read safely."""

    def __init__(self, de: str, en: str = "", fix: str = "", line: int | None = None, problem: str = "") -> None:
        super().__init__(de, en, fix)
        self.line = line
        self.problem = problem or de   # the parser's own words, for callers that phrase the message


def check_size(node: yaml.Node | None, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`FrontMatterError` when ``node`` expands beyond the limits."""
    if node is None:
        return
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if depth > max_depth or key in active:
            raise _too_big(max_nodes, max_depth)
        active.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        else:
            children = []
        for child in children:
            total += size(child, depth + 1)
            if total > max_nodes and total > ALIAS_GROWTH * (len(sizes) + len(active) + len(children)):
                raise _too_big(max_nodes, max_depth)   # early exit: a bomb must not be walked to the end
        active.discard(key)
        sizes[key] = total
        return total

    try:
        size(node, 0)
    except FrontMatterError:
        raise
    if sizes[id(node)] > max(max_nodes, ALIAS_GROWTH * len(sizes)):
        raise _too_big(max_nodes, max_depth)


def _too_big(max_nodes: int, max_depth: int) -> FrontMatterError:
    return FrontMatterError(
        f"YAML zu groß oder selbstbezüglich (mehr als {max_nodes} Einträge oder {max_depth} Ebenen, "
        "vermutlich YAML-Aliase)",
        f"YAML too large or self-referencing (over {max_nodes} entries or {max_depth} levels, "
        "probably YAML aliases)",
        "Aliase (&name / *name) durch ausgeschriebene Werte ersetzen")


def load_yaml(text: str, *, loader: type[yaml.SafeLoader] = yaml.SafeLoader, max_nodes: int = MAX_NODES,
              line_offset: int = 0) -> Any:
    """Parse YAML safely and bounded. ``line_offset`` shifts line numbers in messages (front matter
    starts on line 2 of its file). Raises :class:`FrontMatterError` naming the line."""
    try:
        ldr = loader(text)
        try:
            node = ldr.get_single_node()
            check_size(node, max_nodes=max_nodes)
            return ldr.construct_document(node) if node is not None else None
        finally:
            ldr.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where_de, where_en = (f" in Zeile {line}", f" on line {line}") if line else ("", "")
        ctx = getattr(exc, "context_mark", None)
        if line and ctx is not None and ctx.line + 1 + line_offset != line:   # where the construct began
            where_de += f" (begonnen in Zeile {ctx.line + 1 + line_offset})"
            where_en += f" (started on line {ctx.line + 1 + line_offset})"
        raise FrontMatterError(f"kein gültiges YAML{where_de}: {problem}",
                               f"not valid YAML{where_en}: {problem}",
                               "YAML-Syntax prüfen (Einrückung, Doppelpunkte, Anführungszeichen).",
                               line=line, problem=problem) from None
    except RecursionError:
        raise _too_big(max_nodes, MAX_DEPTH) from None


def block_end(lines: list[str]) -> int | None:
    """Index of the closing ``---``/``...`` line when ``lines`` start with ``---``; else None."""
    if not lines or lines[0].rstrip("\r\n").strip() != "---":
        return None
    return next((i for i in range(1, len(lines)) if lines[i].rstrip("\r\n").strip() in ("---", "...")), None)


def starts_with_front_matter(text: str) -> bool:
    return text.lstrip("\ufeff").split("\n", 1)[0].strip() == "---"


def split(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---``-delimited YAML front matter from a Markdown text: ``(front_matter, body)``.

    A text without front matter gives ``({}, text)``. Raises :class:`FrontMatterError` (with the
    1-based line number in the file) when the block is not closed, is not valid YAML, is too
    large, or is not a mapping.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if not starts_with_front_matter(text):
        return {}, text
    end = block_end(lines)
    if end is None:
        raise FrontMatterError(
            "Front Matter nicht abgeschlossen: die schließende Zeile '---' fehlt (Zeile 1 geöffnet)",
            "front matter not closed: the closing '---' line is missing (opened on line 1)",
            "Nach dem letzten Feld eine Zeile mit '---' einfügen.", line=1)
    try:
        data = load_yaml("".join(lines[1:end]), line_offset=1)
    except FrontMatterError as exc:
        raise FrontMatterError(f"Front Matter: {exc.de}", f"front matter: {exc.en}", exc.fix, line=exc.line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError(
            "Front Matter muss eine Zuordnung 'feld: wert' sein",
            "front matter must be a mapping 'field: value'",
            "Jedes Feld als 'name: wert' in eine eigene Zeile schreiben.", line=2)
    return data, "".join(lines[end + 1:])


# a front matter line: indented, comment, list item or "key:"; prose between two '---' rules is not
_YAML_LINE = re.compile(r"""\s|#|-(\s|$)|[\w"'][^:\n]{0,80}:(\s|$)""")


def strip_broken(text: str) -> str:
    """The text after a broken front matter block, so its raw YAML is not indexed as body text.
    Unchanged when the block is not closed or does not look like YAML (a document that merely
    starts with a '---' rule)."""
    lines = text.splitlines(keepends=True)
    end = block_end(lines)
    if end is None:
        return text
    block = [line for line in lines[1:end] if line.strip()]
    if sum(1 for line in block if _YAML_LINE.match(line)) < 0.8 * len(block):
        return text
    return "".join(lines[end + 1:])
