"""`pilot-assistant user add|set|remove|list`: accounts for the web login, and roles and groups.

Passwords live in the password file (``--auth-file``); roles and groups in the data dir's
access database, so they also work for people who sign in through a proxy (``user set``).
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from ..errors import UsageError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("user", help="Benutzer, Rollen und Gruppen für die Weboberfläche verwalten")
    p.add_argument("action", choices=("add", "set", "remove", "list"),
                   help="add: anlegen/Passwort ändern; set: nur Rollen/Gruppen; remove: Konto löschen "
                        "(beendet seine Sitzungen); list: alle")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--auth-file", dest="auth_file", help="Passwortdatei (Standard: serve.auth_file)")
    p.add_argument("--role", action="append", choices=("admin", "editor", "reader"),
                   help="Rolle (mehrfach möglich; ohne Angabe bleibt sie, neu: reader)")
    p.add_argument("--group", action="append", metavar="GRUPPE",
                   help="Gruppe für Sammlungsrechte (mehrfach möglich; ersetzt die bisherigen)")
    add_common(p)
    p.set_defaults(run=run)


def _read_password() -> str:
    """Interactive: asked twice without echo. Piped: the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass("Passwort: ")
        if first != getpass.getpass("Passwort wiederholen: "):
            raise UsageError("Die Passwörter stimmen nicht überein.", "The passwords do not match.",
                             "Noch einmal versuchen")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _auth_path(args, settings, needed: bool) -> Path | None:
    path = args.auth_file or settings.serve.auth_file
    if not path and needed:
        raise UsageError("Keine Passwortdatei angegeben.", "No auth file given.",
                         "--auth-file DATEI (und dieselbe Datei bei `pilot-assistant serve --auth-file`)")
    return Path(path) if path else None


def run(args, settings) -> int:
    from .. import auth
    from ..access import roles

    if args.action == "list":
        path = _auth_path(args, settings, needed=False)
        names = sorted(auth.load_users(path)) if path and path.exists() else []
        grants = {g.name: g for g in roles.all_grants(settings)}
        accounts = [{"name": n, "password": n in names, "roles": list(grants[n].roles) if n in grants else ["reader"],
                     "groups": list(grants[n].groups) if n in grants else []} for n in sorted(set(names) | set(grants))]
        text = "\n".join(f"{a['name']}: {', '.join(a['roles'])}" + (f" · Gruppen {', '.join(a['groups'])}"
                                                                   if a["groups"] else "")
                         + ("" if a["password"] else " (ohne Passwort: Anmelde-Proxy)") for a in accounts)
        emit({"auth_file": str(path) if path else "", "users": names, "accounts": accounts}, args.json,
             text or "(keine Benutzer)")
        return 0
    if not args.name:
        raise UsageError("Benutzername fehlt.", "User name missing.", f"pilot-assistant user {args.action} NAME")
    auth.check_username(args.name)
    if args.action == "remove":
        path = _auth_path(args, settings, needed=False)
        removed = auth.remove_user(path, args.name) if path and path.exists() else False
        forgot = roles.forget(settings, args.name)
        emit({"user": args.name, "removed": removed, "roles_removed": forgot}, args.json,
             f"Benutzer {args.name} entfernt (laufende Sitzungen enden beim nächsten Klick)." if removed or forgot
             else f"Benutzer {args.name} war nicht eingetragen.")
        return 0 if removed or forgot else 1
    if args.action == "set":
        if args.role is None and args.group is None:
            raise UsageError("Nichts zu ändern.", "Nothing to change.", "--role ROLLE und/oder --group GRUPPE angeben")
        g = roles.set_grants(settings, args.name, roles=args.role, groups=args.group)
        emit({"user": args.name, "roles": list(g.roles), "groups": list(g.groups)}, args.json,
             f"{args.name}: Rollen {', '.join(g.roles) or 'reader'}, Gruppen {', '.join(g.groups) or '–'}.")
        return 0
    path = _auth_path(args, settings, needed=True)
    new = auth.set_password(path, args.name, _read_password())
    g = roles.set_grants(settings, args.name, roles=args.role or (None if not new else ["reader"]), groups=args.group)
    emit({"user": args.name, "created": new, "auth_file": str(path), "roles": list(g.roles), "groups": list(g.groups)},
         args.json, f"Benutzer {args.name} {'angelegt' if new else 'aktualisiert'} in {path} "
                    f"(Rollen {', '.join(g.roles) or 'reader'}).")
    return 0
