"""`pilot-assistant user add|remove|list`: accounts for the optional web login."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from ..errors import UsageError
from . import add_common, emit


def register(sub) -> None:
    p = sub.add_parser("user", help="Benutzer für die Anmeldung an der Weboberfläche verwalten")
    p.add_argument("action", choices=("add", "remove", "list"), help="add: anlegen/Passwort ändern")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--auth-file", dest="auth_file", help="Passwortdatei (Standard: serve.auth_file)")
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


def run(args, settings) -> int:
    from .. import auth

    path = args.auth_file or settings.serve.auth_file
    if not path:
        raise UsageError("Keine Passwortdatei angegeben.", "No auth file given.",
                         "--auth-file DATEI (und dieselbe Datei bei `pilot-assistant serve --auth-file`)")
    path = Path(path)
    if args.action == "list":
        names = sorted(auth.load_users(path)) if path.exists() else []
        emit({"auth_file": str(path), "users": names}, args.json, "\n".join(names) or "(keine Benutzer)")
        return 0
    if not args.name:
        raise UsageError("Benutzername fehlt.", "User name missing.", f"pilot-assistant user {args.action} NAME")
    auth.check_username(args.name)
    if args.action == "remove":
        removed = auth.remove_user(path, args.name)
        emit({"user": args.name, "removed": removed}, args.json,
             f"Benutzer {args.name} entfernt." if removed else f"Benutzer {args.name} war nicht eingetragen.")
        return 0 if removed else 1
    new = auth.set_password(path, args.name, _read_password())
    emit({"user": args.name, "created": new, "auth_file": str(path)}, args.json,
         f"Benutzer {args.name} {'angelegt' if new else 'aktualisiert'} in {path}.")
    return 0
