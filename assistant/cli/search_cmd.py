"""`pilot-assistant search "QUERY"`: the best passages, without an LLM."""
from __future__ import annotations

from . import add_common, emit
from .filters import add_filter_flags, filters_from


def register(sub) -> None:
    p = sub.add_parser("search", help="Passagen suchen (hybrid: Bedeutung + Stichwörter)")
    p.add_argument("query", metavar="ANFRAGE")
    p.add_argument("-k", type=int, default=None, help="Anzahl Treffer (Standard: retrieval.k)")
    add_filter_flags(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..index.retrieval import search

    hits = search(args.query, settings, k=args.k, filters=filters_from(args))
    lines = []
    for h in hits:
        c = h.chunk
        where = f", S. {c.page}" if c.page else ""
        section = f" – {c.section}" if c.section else ""
        snippet = " ".join(c.text.split())
        lines.append(f"{h.rank}. [{h.score:.4f}] {c.title}{where}{section}\n   {c.source}\n   "
                     f"{snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    emit([h.to_dict() for h in hits], args.json, "\n".join(lines) or "Keine Treffer / no hits")
    return 0
