"""The "Beschlusslage" a new decision paper builds on: what the council decided on the papers
it cites, written out with one citation per step, for the drafting of a Beschlussvorlage."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import UserError
from ..types import Chunk, Hit
from .references import find_refs
from .trace import Step, Trace, step_chunk, trace


@dataclass
class Beschlusslage:
    text: str                                               # sentences with [1], [2] …
    sources: list[Hit] = field(default_factory=list)        # [n] is sources[n - 1]
    references: list[str] = field(default_factory=list)     # the procedures written out
    missing: list[str] = field(default_factory=list)        # cited numbers the model does not know

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "references": self.references, "missing": self.missing,
                "sources": [h.to_dict() for h in self.sources]}


def _de(day: str) -> str:
    try:
        return dt.date.fromisoformat(day).strftime("%d.%m.%Y")
    except ValueError:
        return day


def _outcome(result: str) -> str:
    """"mehrheitlich beschlossen (38 Ja-Stimmen, …)" -> "mehrheitlich beschlossen"."""
    return re.sub(r"\s*\(.*\)\s*$", "", result or "").strip() or "beraten"


def _by(organization: str) -> str:
    """"vom Stadtrat", "von der Bezirksvertretung"."""
    if not organization:
        return "vom zuständigen Gremium"
    first = organization.split()[0].lower()
    feminine = re.search(r"(?:vertretung|versammlung|konferenz|kommission|runde)$", first)
    return f"{'von der' if feminine else 'vom'} {organization}"


def _sentences(tr: Trace, cite) -> list[str]:
    """One sentence per paper of the procedure, with the decisions taken on it."""
    out = []
    decisions: dict[str, list[Step]] = {}
    for s in tr.steps:
        if s.category == "decision":
            decisions.setdefault(s.reference, []).append(s)
    for s in tr.steps:
        if s.category != "paper":
            continue
        origin = f" ({s.organization})" if s.organization and s.kind.lower().startswith("antrag") else ""
        head = f"{s.kind} {s.reference}{origin} vom {_de(s.date)} {cite(s)}"
        done = [f"am {_de(d.date)} {_by(d.organization)} {_outcome(d.result)} {cite(d)}"
                for d in decisions.get(s.reference, [])]
        out.append(f"{head} wurde " + " und ".join(done) + "." if done else f"{head}.")
    return out


def beschlusslage(refs: list[str] | str, settings: Settings, *, store=None,
                  today: dt.date | None = None) -> Beschlusslage:
    """The procedures of the cited papers (numbers, or a text citing them) as cited sentences;
    a procedure cited twice is written once. Unknown numbers are listed under ``missing``."""
    from ..index.store import open_store

    if isinstance(refs, str):
        refs = [r.number for r in find_refs(refs)]
    refs = list(dict.fromkeys(refs))
    result = Beschlusslage("")
    seen: set[str] = set()
    lines: list[str] = []
    with open_store(settings, store) as st:
        def cite(step: Step) -> str:
            chunk = step_chunk(st, step) or Chunk(chunk_id=f"step:{len(result.sources) + 1}", doc_id="",
                                                  text=step.quote or step.title, source=step.source,
                                                  title=step.title, page=step.page, type="council")
            result.sources.append(Hit(chunk=chunk, score=1.0, rank=len(result.sources) + 1))
            return f"[{len(result.sources)}]"

        for ref in refs:
            try:
                tr = trace(ref, settings, store=st, today=today)
            except UserError:
                result.missing.append(ref)
                continue
            if tr.ambiguous or tr.reference in seen:
                if tr.ambiguous:
                    result.missing.append(ref)
                continue
            seen.update(tr.papers)
            seen.add(tr.reference)
            result.references.append(tr.reference)
            lines += _sentences(tr, cite)
    result.text = " ".join(lines)
    return result
