"""Tab "Dokumente": upload and index files, see what is indexed per collection, delete a document,
confirm uploads and new versions (editors).

A person sees the collections they may read and uploads into those they may write; deleting
and replacing need the editor role in that collection (or the upload being one's own and
unconfirmed). The browser never sees a server path: documents are picked by an opaque key.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import gradio as gr

from ..access import collections as colls
from ..errors import UserError
from ..ingest import uploads
from .context import UIContext
from .notice import notice, scrub_paths

TITLE = "Dokumente"
log = logging.getLogger("assistant.ui")

TYPES = [("automatisch erkennen", "auto"), ("Ratsvorlage / Drucksache", "council"), ("Förderprogramm", "funding"),
         ("Bericht", "report"), ("Sonstiges", "other")]
TYPE_DE = {v: k for k, v in TYPES}
STATUS_DE = {"indexed": "indexiert", "failed": "Fehler", "duplicate": "Duplikat"}
RESULT_HEADERS = ["Datei", "Ergebnis", "Seiten", "Abschnitte", "Hinweis"]
DOC_HEADERS = ["Sammlung", "Titel", "Datei", "Typ", "Abschnitte", "Status", "Herkunft", "Fehler", "Indexiert am"]


def doc_key(source: str) -> str:
    """What the browser gets instead of a path."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]


def origin_de(upload) -> str:
    if upload is None:
        return "Verwaltung"
    return f"Upload von {upload.owner or 'Skript'}" + ("" if upload.confirmed else " (ungeprüft)")


def build(ctx: UIContext) -> None:
    allowed = uploads.allowed_extensions()
    limit = ctx.settings.serve.max_upload_mb
    gr.Markdown(f"Laden Sie Unterlagen hoch ({', '.join(e.lstrip('.').upper() for e in allowed)}; "
                f"höchstens {limit} MB je Datei). Sie werden lokal gespeichert, in Abschnitte zerlegt und "
                "durchsuchbar gemacht – nichts verlässt diesen Server. Hochgeladene Dokumente erscheinen in "
                "Quellenangaben als „Nutzer-Upload“, bis die Redaktion ihre Angaben bestätigt.")
    with gr.Row():
        collection = gr.Dropdown(label="Sammlung", choices=["default"], value="default", allow_custom_value=True,
                                 info="Sammlungen, in die Sie hochladen dürfen", elem_id="collection")
        doc_type = gr.Dropdown(label="Dokumenttyp", choices=TYPES, value="auto", elem_id="doc-type")
    # no file_types=: Gradio would refuse other types with an English toast; our check answers in German
    files = gr.File(label="Dateien", file_count="multiple", elem_id="upload")
    upload_btn = gr.Button("Hochladen und indexieren", variant="primary", elem_id="upload-button")
    upload_note = gr.Markdown("", elem_id="upload-note")
    result = gr.Dataframe(headers=RESULT_HEADERS, value=[], label="Ergebnis je Datei", interactive=False,
                          wrap=True, visible=False, column_widths=["22%", "14%", "8%", "10%", "46%"],
                          elem_id="upload-result")

    gr.Markdown("### Indexierte Dokumente")
    summary = gr.Markdown("", elem_id="collections-summary")
    table = gr.Dataframe(headers=DOC_HEADERS, value=[], interactive=False, wrap=True, max_height=420,
                         show_search="search", elem_id="documents",
                         column_widths=["9%", "18%", "13%", "9%", "8%", "8%", "13%", "13%", "9%"])
    with gr.Row():
        to_delete = gr.Dropdown(label="Dokument", choices=[], value=None, scale=4, elem_id="delete-doc")
        delete_btn = gr.Button("Löschen", variant="stop", scale=1, elem_id="delete-doc-button")
        confirm_btn = gr.Button("Angaben bestätigen", scale=1, elem_id="confirm-doc-button")
        refresh_btn = gr.Button("Aktualisieren", scale=1, elem_id="refresh-documents")
    delete_note = gr.Markdown("", elem_id="delete-note")
    with gr.Accordion("Neue Fassungen, die auf Bestätigung warten", open=False, elem_id="pending"):
        pending_text = gr.Markdown("", elem_id="pending-list")
        with gr.Row():
            pending_pick = gr.Dropdown(label="Neue Fassung", choices=[], value=None, scale=4, elem_id="pending-pick")
            accept_btn = gr.Button("Ersetzen bestätigen", scale=1, elem_id="pending-accept")
            reject_btn = gr.Button("Verwerfen", variant="stop", scale=1, elem_id="pending-reject")
        pending_note = gr.Markdown("", elem_id="pending-note")

    def readable_records(person):
        allowed = set(ctx.readable(person))
        with ctx.store() as store:
            records = [r for r in store.documents(status=None) if (r.collection or "default") in allowed]
        return records

    def listing(request: gr.Request):
        try:
            person = ctx.person(request)
        except UserError as exc:
            return {summary: notice(exc)}
        records = readable_records(person)
        access = colls.access_store(ctx.settings)
        ups = {u.source: u for u in access.uploads(sources=[r.source for r in records])}
        rows, choices, stats = [], [], {}
        for r in sorted(records, key=lambda r: (r.collection or "", (r.title or Path(r.source).name).lower())):
            name = Path(r.source).name
            up = ups.get(r.source)
            rows.append([r.collection, r.title or name, name, TYPE_DE.get(r.type, r.type), r.n_chunks,
                         STATUS_DE.get(r.status, r.status), origin_de(up), scrub_paths(r.error or ""),
                         (r.ingested_at or "")[:16].replace("T", " ")])
            choices.append((f"{r.collection} / {r.title or name} ({name})", doc_key(r.source)))
            if r.status == "indexed":
                per = stats.setdefault(r.collection, {}).setdefault(r.type, {"documents": 0, "chunks": 0})
                per["documents"] += 1
                per["chunks"] += r.n_chunks
        lines = [f"**{coll}:** " + ", ".join(f"{TYPE_DE.get(t, t)}: {v['documents']} Dokumente, {v['chunks']} Abschnitte"
                                            for t, v in types.items())
                 for coll, types in sorted(stats.items())]
        failed = sum(1 for r in records if r.status == "failed")
        if failed:
            lines.append(f"⚠️ {failed} Datei(en) konnten nicht gelesen werden – siehe Spalte „Fehler“.")
        text = "  \n".join(lines) or "Noch keine Dokumente indexiert (oder keine in Ihren Sammlungen)."
        waiting = uploads.pending_for(person, ctx.settings)
        ptext = "\n".join(f"- **{p.collection} / {p.name}** – von {p.owner or 'Skript'}" for p in waiting) \
            or "Keine neuen Fassungen offen."
        writable = colls.writable(ctx.settings, person)
        return {summary: text, table: rows, to_delete: gr.update(choices=choices, value=None),
                collection: gr.update(choices=writable or ["default"]),
                pending_text: ptext,
                pending_pick: gr.update(choices=[(f"{p.collection} / {p.name} (von {p.owner})", p.id) for p in waiting],
                                        value=None),
                ctx.status: ctx.status_text(request)}

    listing_outputs = [summary, table, to_delete, collection, pending_text, pending_pick, ctx.status]

    def upload(paths: list[str] | None, coll: str, typ: str, request: gr.Request, progress=gr.Progress()):
        if not paths:
            return {upload_note: notice("Bitte zuerst Dateien auswählen.")}
        try:
            person = ctx.person(request)
            coll = uploads.check_collection(coll)
            if not person.is_admin:   # refuse before anything is stored; admins may create a collection
                colls.require_write(ctx.settings, person, coll)
        except UserError as exc:   # nothing happened yet: the chosen files stay, only the name needs fixing
            return {upload_note: notice(exc)}
        progress(0, desc="Indexiere …")

        def on_event(event: dict) -> None:
            if event.get("event") == "file":
                progress((event["done"], max(event["total"], event["done"])), desc=Path(event["source"]).name)

        try:
            results = uploads.add_files([(p, Path(p).name) for p in paths], ctx.settings, collection=coll,
                                        type=None if typ == "auto" else typ, progress=on_event, person=person)
        except UserError as exc:   # e.g. a full disk: the index keeps what it had
            return {upload_note: notice(exc), files: None, **listing(request)}
        finally:
            for p in paths:   # the upload is stored (or refused); Gradio's temp copy must not linger
                Path(p).unlink(missing_ok=True)
        rows = [[r.name, r.status_de, r.pages or "", r.chunks or "", scrub_paths(r.reason or "; ".join(r.warnings))]
                for r in results]
        ctx.audit(person, "upload", collection=coll, documents=[[r.name, r.status] for r in results])
        ok = sum(r.status not in ("failed", "pending") for r in results)
        bad = sum(r.status == "failed" for r in results)
        waiting = sum(r.status == "pending" for r in results)
        note = f"{ok} von {len(results)} Datei(en) verarbeitet." + (f" ⚠️ {bad} mit Fehler – siehe Tabelle." if bad else "")
        if waiting:
            note += f" {waiting} neue Fassung(en) warten auf Bestätigung durch die Redaktion."
        return {upload_note: note, result: gr.update(value=rows, visible=True), files: None, **listing(request)}

    upload_btn.click(upload, [files, collection, doc_type], [upload_note, result, files, *listing_outputs],
                     concurrency_id="ingest", concurrency_limit=1)

    def pick_source(person, key: str | None) -> str:
        """The chosen document's source, among those ``person`` may read; raises when it is gone."""
        source = next((r.source for r in readable_records(person) if doc_key(r.source) == key), None) if key else None
        if source is None:
            raise UserError("Dieses Dokument ist nicht (mehr) im Index.", "Not indexed (any more).",
                            "Liste aktualisieren")
        return source

    def delete(key: str | None, request: gr.Request):
        if not key:
            return {delete_note: "Bitte zuerst ein Dokument auswählen."}
        try:
            person = ctx.person(request)
            source = pick_source(person, key)
            with ctx.store() as store:
                done = uploads.remove_document(source, ctx.settings, store=store, person=person)
        except UserError as exc:
            return {delete_note: notice(exc), **listing(request)}
        ctx.audit(person, "document_delete", document=Path(source).name)
        extra = " Die gespeicherte Datei wurde ebenfalls gelöscht." if done["file"] else ""
        return {delete_note: f"„{Path(source).name}“ aus dem Index entfernt.{extra}", **listing(request)}

    delete_btn.click(delete, [to_delete], [delete_note, *listing_outputs], concurrency_id="ingest")

    def confirm(key: str | None, request: gr.Request):
        if not key:
            return {delete_note: "Bitte zuerst ein Dokument auswählen."}
        try:
            person = ctx.person(request)
            source = pick_source(person, key)
            uploads.confirm_metadata(source, ctx.settings, person)
        except UserError as exc:
            return {delete_note: notice(exc), **listing(request)}
        ctx.audit(person, "document_confirm", document=Path(source).name)
        return {delete_note: f"Angaben zu „{Path(source).name}“ bestätigt.", **listing(request)}

    confirm_btn.click(confirm, [to_delete], [delete_note, *listing_outputs])

    def decide(pid: str | None, accept: bool, request: gr.Request):
        if not pid:
            return {pending_note: "Bitte zuerst eine neue Fassung auswählen."}
        try:
            person = ctx.person(request)
            if accept:
                r = uploads.confirm_replacement(pid, ctx.settings, person)
                text = f"„{r.name}“: {r.status_de}." + (f" {r.reason}" if r.reason else "")
                ctx.audit(person, "replacement_confirm", document=r.name)
            else:
                p = uploads.discard_replacement(pid, ctx.settings, person)
                text = f"Neue Fassung von „{p.name}“ verworfen; die bisherige bleibt."
                ctx.audit(person, "replacement_discard", document=p.name)
        except UserError as exc:
            return {pending_note: notice(exc), **listing(request)}
        return {pending_note: text, **listing(request)}

    def accept(pid, request: gr.Request):
        return decide(pid, True, request)

    def reject(pid, request: gr.Request):
        return decide(pid, False, request)

    accept_btn.click(accept, [pending_pick], [pending_note, *listing_outputs], concurrency_id="ingest")
    reject_btn.click(reject, [pending_pick], [pending_note, *listing_outputs], concurrency_id="ingest")
    refresh_btn.click(listing, None, listing_outputs)
    ctx.on_load.append((listing, listing_outputs))
