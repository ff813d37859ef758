"""`pilot-assistant collection list|create|grant|revoke|delete`: collections and who may read
and write them (groups; ``*`` = everyone signed in). A thin layer over
:mod:`assistant.access.collections`."""
from __future__ import annotations

from ..errors import UsageError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("collection", help="Sammlungen und ihre Lese-/Schreibrechte verwalten")
    p.add_argument("action", choices=("list", "create", "grant", "revoke", "delete"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--read", action="append", default=[], metavar="GRUPPE",
                   help="Gruppe, die lesen darf (mehrfach; * = alle Angemeldeten)")
    p.add_argument("--write", action="append", default=[], metavar="GRUPPE",
                   help="Gruppe, die hochladen darf (mehrfach)")
    p.add_argument("--description", default="", help="Beschreibung (create)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..access import collections as colls
    from ..index.store import Store

    if args.action == "list":
        found = colls.list_collections(settings)
        counts: dict[str, int] = {}
        if (settings.index_dir / "manifest.sqlite3").is_file():
            with Store(settings) as store:
                counts = {c: sum(v["documents"] for v in t.values()) for c, t in store.stats()["collections"].items()}
        data = [{**c.to_dict(), "documents": counts.get(c.name, 0)} for c in found]
        text = "\n".join(f"{d['name']}: lesen {', '.join(d['read']) or '(nur Verwaltung)'} · schreiben "
                         f"{', '.join(d['write']) or '(nur Verwaltung)'} · {d['documents']} Dokumente" for d in data)
        emit({"collections": data}, args.json, text or "(keine Sammlungen)")
        return 0
    if not args.name:
        raise UsageError("Name der Sammlung fehlt.", "Collection name missing.",
                         f"pilot-assistant collection {args.action} NAME")
    if args.action == "create":
        c = colls.create(settings, args.name, read=args.read, write=args.write, description=args.description)
        verb = "angelegt"
    elif args.action == "grant":
        c = colls.grant(settings, args.name, read=args.read, write=args.write)
        verb = "erweitert"
    elif args.action == "revoke":
        c = colls.revoke(settings, args.name, read=args.read, write=args.write)
        verb = "eingeschränkt"
    else:
        colls.delete(settings, args.name)
        emit({"collection": args.name, "deleted": True}, args.json, f"Sammlung {args.name} gelöscht.")
        return 0
    emit(c.to_dict(), args.json, f"Sammlung {c.name} {verb}: lesen {', '.join(c.read) or '(nur Verwaltung)'} · "
                                  f"schreiben {', '.join(c.write) or '(nur Verwaltung)'}")
    return 0
