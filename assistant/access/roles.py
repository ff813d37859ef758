"""Roles and groups per person name, kept in the access database.

A person's rights are the union of what the access database grants their name
(``pilot-assistant user set anna --role editor --group bauamt``) and what the identity
source says: the groups in the proxy's groups header, and the roles those groups map to
(``serve.admin_groups``, ``serve.editor_groups``). Everyone signed in is at least ``reader``.
The database is read per request, so a changed role counts from the next click on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..auth import check_username
from .collections import access_store, forbidden
from .person import ADMIN, EDITOR, READER, Person, check_group, check_role
from .store import Grants

if TYPE_CHECKING:
    from ..config import Settings


def grants_of(settings: "Settings", name: str) -> Grants | None:
    return access_store(settings).grants(name)


def all_grants(settings: "Settings") -> list[Grants]:
    return access_store(settings).all_grants()


def set_grants(settings: "Settings", name: str, *, roles: Iterable[str] | None = None,
               groups: Iterable[str] | None = None, by: Person | None = None) -> Grants:
    """Replace the roles and/or groups given to ``name`` (None keeps what is there)."""
    if by is not None and not by.is_admin:
        raise forbidden("Rollen vergeben", "assign roles")
    check_username(name)
    old = grants_of(settings, name) or Grants(name)
    new = Grants(name, tuple(sorted({check_role(r) for r in roles})) if roles is not None else old.roles,
                 tuple(sorted({check_group(g) for g in groups})) if groups is not None else old.groups)
    if by is not None and by.name == name and ADMIN in old.roles and ADMIN not in new.roles:
        raise forbidden("sich selbst die Verwaltungsrolle nehmen", "remove one's own admin role",
                        "Eine andere Person mit Verwaltungsrolle fragen")
    access_store(settings).put_grants(new)
    return new


def forget(settings: "Settings", name: str) -> bool:
    return access_store(settings).drop_grants(name)


def person_for(settings: "Settings", name: str, *, source: str, groups: Iterable[str] = ()) -> Person:
    """The :class:`Person` behind a verified name, with roles from the database and group mapping."""
    grants = grants_of(settings, name)
    all_groups = {g for g in (*(grants.groups if grants else ()), *groups) if g}
    roles = set(grants.roles if grants else ()) | {READER}
    serve = settings.serve
    if all_groups & set(_split(serve.admin_groups)):
        roles.add(ADMIN)
    if all_groups & set(_split(serve.editor_groups)):
        roles.add(EDITOR)
    return Person(name, frozenset(roles), frozenset(all_groups), source)


def _split(value: str) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]
