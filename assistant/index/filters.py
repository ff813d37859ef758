"""Search filters as people give them (collection, type, dates, municipality, source) and their
resolution to the plain values both retrievers filter on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError
from .lexical import Conditions, date_int

if TYPE_CHECKING:
    from .store import Store


@dataclass
class Filters:
    """Restrict a search; every field left None matches everything, an empty list nothing
    (a person who may read no collection finds nothing, not everything).

    Dates are ISO strings or prefixes ("2024", "2024-05"); a chunk without a date never
    matches a date range. ``source`` names a file or a folder (all files below it)."""

    collection: str | list[str] | None = None
    type: str | list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None
    municipality: str | list[str] | None = None
    source: str | None = None

    def resolve(self, store: "Store | None" = None) -> Conditions:
        values: dict[str, list[str]] = {}
        for name in ("collection", "type", "municipality"):
            value = getattr(self, name)
            if value is None or value == "":
                continue
            values[name] = [value] if isinstance(value, str) else list(value)
        if self.source:
            values["source"] = store.resolve_sources(self.source) if store else [self.source]
        cond = Conditions(values=values)
        for name, upper in (("date_from", False), ("date_to", True)):
            raw = getattr(self, name)
            if raw:
                parsed = date_int(raw, upper=upper)
                if not parsed:
                    raise UsageError(f"Ungültiges Datum für {name}: {raw!r}",
                                     f"Invalid date for {name}: {raw!r}", "Format JJJJ-MM-TT, z. B. 2024-05-31")
                setattr(cond, "date_max" if upper else "date_min", parsed)
        return cond
