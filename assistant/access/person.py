"""Who is acting: a :class:`Person` with roles and groups, resolved per request.

Roles, strongest first:

- ``admin``: everything, including collections, roles and every document;
- ``editor``: delete and replace documents and confirm their metadata in the collections
  they may write;
- ``reader``: ask, draft, search and upload into collections they may write.

Groups come from the identity source (the proxy's groups header) or from the roles store
(``pilot-assistant user set NAME --group G``); collections grant read and write access to
groups, never to single names. The group ``*`` stands for every signed-in person.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UsageError

ADMIN, EDITOR, READER = "admin", "editor", "reader"
ROLES = (ADMIN, EDITOR, READER)
EVERYONE = "*"
LOCAL_USER = "lokal"     # the one person of a loopback install without login
# Keycloak sends group paths ("/bauamt") and client roles ("role:pilot-assistant:admin"); the comma separates
GROUP_RE = re.compile(r"^[\w/][\w.@ :/-]{0,127}$")
ROLE_DE = {ADMIN: "Verwaltung", EDITOR: "Redaktion", READER: "Lesen"}


@dataclass(frozen=True)
class Person:
    """One signed-in person. ``source``: how we know them (local, password, proxy)."""

    name: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({READER}))
    groups: frozenset[str] = frozenset()
    source: str = "local"

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_editor(self) -> bool:
        return ADMIN in self.roles or EDITOR in self.roles

    @property
    def role(self) -> str:
        """The strongest role, for display."""
        return next((r for r in ROLES if r in self.roles), READER)

    def label(self) -> str:
        return f"{self.name} ({ROLE_DE.get(self.role, self.role)})"


def local_person() -> Person:
    """Without any identity source only loopback is served: whoever sits at the machine runs it."""
    return Person(LOCAL_USER, frozenset({ADMIN}), frozenset(), "local")


def check_role(role: str) -> str:
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise UsageError(f"Unbekannte Rolle {role!r}; möglich: {', '.join(ROLES)}",
                         f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}", "--role reader|editor|admin")
    return role


def check_group(group: str) -> str:
    group = (group or "").strip()
    if group != EVERYONE and not GROUP_RE.match(group):
        raise UsageError(f"Ungültiger Gruppenname {group!r}", f"Invalid group name {group!r}",
                         "Buchstaben, Ziffern, Leerzeichen und . _ @ - : / verwenden (kein Komma, höchstens "
                         "128 Zeichen), oder * für alle Angemeldeten")
    return group


def split_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (config values, header values)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [i.strip() for i in items if i and i.strip()]
