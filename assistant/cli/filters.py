"""Retrieval filter flags shared by `search`, `ask` and `eval`."""
from __future__ import annotations


def add_filter_flags(p) -> None:
    g = p.add_argument_group("Filter")
    g.add_argument("--collection", help="nur diese Sammlung")
    g.add_argument("--type", choices=["council", "funding", "report", "other"], help="nur dieser Dokumenttyp")
    g.add_argument("--date-from", dest="date_from", help="ab Datum (JJJJ-MM-TT)")
    g.add_argument("--date-to", dest="date_to", help="bis Datum (JJJJ-MM-TT)")
    g.add_argument("--municipality", help="nur diese Kommune")
    g.add_argument("--source", help="nur diese Quelle (Pfad oder URL)")


def filters_from(args):
    from ..index.filters import Filters

    f = Filters(collection=args.collection, type=args.type, date_from=args.date_from, date_to=args.date_to,
                municipality=args.municipality, source=args.source)
    return f if any(vars(f).values()) else None
