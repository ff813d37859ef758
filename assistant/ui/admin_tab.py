"""Tab "Verwaltung" (admins only): collections with their read and write groups, and the roles
and groups given to people. A thin layer over :mod:`assistant.access`; every handler checks the
role again, the hidden tab is only a convenience."""
from __future__ import annotations

import gradio as gr

from ..access import ROLES
from ..access import collections as colls
from ..access import roles as roles_mod
from ..access.person import ROLE_DE, split_list
from ..auth import load_users
from ..errors import UserError
from .context import UIContext
from .notice import notice

TITLE = "Verwaltung"
COLL_HEADERS = ["Sammlung", "Lesen (Gruppen)", "Schreiben (Gruppen)", "Dokumente", "Beschreibung"]
PEOPLE_HEADERS = ["Name", "Rollen", "Gruppen", "Konto"]


def build(ctx: UIContext) -> None:
    gr.Markdown("Sammlungen und Rechte. Gruppen kommen vom Anmelde-Proxy (Kopfzeile mit den Gruppen) oder werden "
                "hier Personen zugeordnet; `*` heißt: alle Angemeldeten. **Lesen** bestimmt, was Suche, Chat, "
                "Entwürfe und Förderprogramme einer Person zu sehen bekommen; **Schreiben**, wohin sie hochladen "
                "darf. Löschen, Ersetzen und Bestätigen braucht zusätzlich die Rolle Redaktion (editor).")
    colls_table = gr.Dataframe(headers=COLL_HEADERS, value=[], interactive=False, wrap=True, elem_id="admin-collections")
    with gr.Row():
        name = gr.Dropdown(label="Sammlung", choices=[], value=None, allow_custom_value=True, scale=2,
                           elem_id="admin-collection", info="Vorhandene wählen oder neuen Namen eintippen")
        read = gr.Textbox(label="Lesen (Gruppen, kommagetrennt)", scale=2, elem_id="admin-read")
        write = gr.Textbox(label="Schreiben (Gruppen, kommagetrennt)", scale=2, elem_id="admin-write")
    with gr.Row():
        save_coll = gr.Button("Sammlung anlegen oder Rechte speichern", variant="primary", elem_id="admin-save-collection")
        drop_coll = gr.Button("Leere Sammlung löschen", variant="stop", elem_id="admin-delete-collection")
    coll_note = gr.Markdown("", elem_id="admin-collection-note")

    gr.Markdown("### Personen")
    people = gr.Dataframe(headers=PEOPLE_HEADERS, value=[], interactive=False, wrap=True, elem_id="admin-people")
    with gr.Row():
        who = gr.Textbox(label="Name (Anmeldename)", scale=2, elem_id="admin-person")
        roles = gr.CheckboxGroup(label="Rollen", choices=[(f"{ROLE_DE[r]} ({r})", r) for r in ROLES], value=[],
                                 scale=2, elem_id="admin-roles")
        groups = gr.Textbox(label="Gruppen (kommagetrennt)", scale=2, elem_id="admin-groups")
    save_person = gr.Button("Rollen und Gruppen speichern", elem_id="admin-save-person")
    person_note = gr.Markdown("", elem_id="admin-person-note")

    def admin(request):
        person = ctx.person(request)
        if not person.is_admin:
            raise colls.forbidden("die Verwaltung öffnen", "open the admin view")
        return person

    def tables(request: gr.Request):
        try:
            admin(request)
        except UserError:   # the tab is hidden for everyone else; it shows them nothing
            return {colls_table: [], people: [], coll_note: ""}
        with ctx.store() as store:
            counts = {c: sum(v["documents"] for v in types.values())
                      for c, types in store.stats()["collections"].items()}
        found = colls.list_collections(ctx.settings)
        rows = [[c.name, ", ".join(c.read) or "(nur Verwaltung)", ", ".join(c.write) or "(nur Verwaltung)",
                 counts.get(c.name, 0), c.description] for c in found]
        grants = {g.name: g for g in roles_mod.all_grants(ctx.settings)}
        accounts: set[str] = set()
        if ctx.identity is not None and ctx.identity.mode == "password":
            try:
                accounts = set(load_users(ctx.settings.serve.auth_file))
            except UserError:
                accounts = set()
        people_rows = []
        for n in sorted(set(grants) | accounts):
            g = grants.get(n)
            people_rows.append([n, ", ".join(g.roles) if g and g.roles else "reader",
                                ", ".join(g.groups) if g else "", "Passwort" if n in accounts else "Proxy/Name"])
        return {colls_table: rows, name: gr.update(choices=[c.name for c in found]), people: people_rows}

    table_outputs = [colls_table, name, people, coll_note]

    def picked(coll: str | None):
        c = next((x for x in colls.list_collections(ctx.settings) if x.name == coll), None)
        return ("", "") if c is None else (", ".join(c.read), ", ".join(c.write))

    name.input(picked, [name], [read, write])

    def save(coll: str | None, r: str, w: str, request: gr.Request):
        try:
            person = admin(request)
            coll = colls.check_name(coll or "")
            if any(c.name == coll for c in colls.list_collections(ctx.settings)):
                c = colls.set_rights(ctx.settings, coll, read=split_list(r), write=split_list(w), by=person)
                text = f"Rechte der Sammlung „{coll}“ gespeichert."
            else:
                c = colls.create(ctx.settings, coll, read=split_list(r), write=split_list(w), by=person)
                text = f"Sammlung „{coll}“ angelegt."
        except UserError as exc:
            return {coll_note: notice(exc)}
        ctx.audit(person, "collection_rights", **c.to_dict())
        return {**tables(request), coll_note: text}

    save_coll.click(save, [name, read, write], table_outputs)

    def drop(coll: str | None, request: gr.Request):
        try:
            person = admin(request)
            colls.delete(ctx.settings, coll or "", by=person)
        except UserError as exc:
            return {coll_note: notice(exc)}
        ctx.audit(person, "collection_delete", name=coll)
        return {**tables(request), coll_note: f"Sammlung „{coll}“ gelöscht."}

    drop_coll.click(drop, [name], table_outputs)

    def save_grants(n: str, rs: list[str], gs: str, request: gr.Request):
        try:
            person = admin(request)
            g = roles_mod.set_grants(ctx.settings, (n or "").strip(), roles=rs or [], groups=split_list(gs), by=person)
        except UserError as exc:
            return {person_note: notice(exc)}
        ctx.audit(person, "roles_set", name=g.name, roles=list(g.roles), groups=list(g.groups))
        return {**tables(request), person_note: f"{g.name}: Rollen {', '.join(g.roles) or 'reader'}, "
                                                f"Gruppen {', '.join(g.groups) or '–'}."}

    save_person.click(save_grants, [who, roles, groups], [*table_outputs, person_note])
    ctx.on_load.append((tables, table_outputs))
