"""Identity and access: who a request comes from and what that person may read and change.

The small API other packages use (the UI and CLI only call these):

- :class:`~assistant.access.person.Person` (``name``, ``roles``, ``groups``; ``is_admin``,
  ``is_editor``) and ``local_person()`` for a loopback install without login;
- :mod:`~assistant.access.identity`: ``Identity(settings).resolve(request) -> Person | None``,
  ``check_bind(host)``, password ``login``/``logout`` with expiring sessions;
- :mod:`~assistant.access.collections`: ``create``, ``list_collections``, ``grant``,
  ``revoke``, ``delete``, ``readable``, ``writable``, ``scope`` (the search filter of a person),
  ``can_read``/``can_write``/``can_edit`` and the ``require_*`` checks raising ``Forbidden``;
- :mod:`~assistant.access.roles`: ``set_grants``, ``grants_of``, ``person_for``.

For a four-eyes review: ``person.is_editor`` and ``collections.can_edit(person, c)``.
"""
from .person import ADMIN, EDITOR, EVERYONE, READER, ROLES, Person, local_person

__all__ = ["ADMIN", "EDITOR", "EVERYONE", "READER", "ROLES", "Person", "local_person"]
