"""Tab "Dokumente": upload and index files, see what is indexed per collection, delete a document."""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from ..errors import UserError
from ..ingest import uploads
from .context import UIContext
from .notice import notice

TITLE = "Dokumente"
log = logging.getLogger("assistant.ui")

TYPES = [("automatisch erkennen", "auto"), ("Ratsvorlage / Drucksache", "council"), ("Förderprogramm", "funding"),
         ("Bericht", "report"), ("Sonstiges", "other")]
TYPE_DE = {v: k for k, v in TYPES}
STATUS_DE = {"indexed": "indexiert", "failed": "Fehler", "duplicate": "Duplikat"}
RESULT_HEADERS = ["Datei", "Ergebnis", "Seiten", "Abschnitte", "Hinweis"]
DOC_HEADERS = ["Sammlung", "Titel", "Datei", "Typ", "Abschnitte", "Status", "Fehler", "Indexiert am"]


def build(ctx: UIContext) -> None:
    allowed = uploads.allowed_extensions()
    limit = ctx.settings.serve.max_upload_mb
    gr.Markdown(f"Laden Sie Unterlagen hoch ({', '.join(e.lstrip('.').upper() for e in allowed)}; "
                f"höchstens {limit} MB je Datei). Sie werden lokal gespeichert, in Abschnitte zerlegt und "
                "durchsuchbar gemacht – nichts verlässt diesen Server.")
    with gr.Row():
        collection = gr.Dropdown(label="Sammlung", choices=["default"], value="default", allow_custom_value=True,
                                 info="Vorhandene wählen oder einen neuen Namen eintippen", elem_id="collection")
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
                         column_widths=["10%", "20%", "15%", "10%", "9%", "9%", "17%", "10%"])
    with gr.Row():
        to_delete = gr.Dropdown(label="Dokument löschen", choices=[], value=None, scale=4, elem_id="delete-doc")
        delete_btn = gr.Button("Löschen", variant="stop", scale=1, elem_id="delete-doc-button")
        refresh_btn = gr.Button("Aktualisieren", scale=1, elem_id="refresh-documents")
    delete_note = gr.Markdown("", elem_id="delete-note")

    def listing(request: gr.Request):
        with ctx.store() as store:
            records = store.documents(status=None)
            stats = store.stats()
        rows, choices, names = [], [], {"default"}
        for r in sorted(records, key=lambda r: (r.collection or "", (r.title or Path(r.source).name).lower())):
            name = Path(r.source).name
            names.add(r.collection or "default")
            rows.append([r.collection, r.title or name, name, TYPE_DE.get(r.type, r.type), r.n_chunks,
                         STATUS_DE.get(r.status, r.status), r.error or "", (r.ingested_at or "")[:16].replace("T", " ")])
            choices.append((f"{r.collection} / {r.title or name} ({name})", r.source))
        lines = [f"**{coll}:** " + ", ".join(f"{TYPE_DE.get(t, t)}: {v['documents']} Dokumente, {v['chunks']} Abschnitte"
                                            for t, v in types.items())
                 for coll, types in sorted(stats["collections"].items())]
        if stats["failed"]:
            lines.append(f"⚠️ {stats['failed']} Datei(en) konnten nicht gelesen werden – siehe Spalte „Fehler“.")
        text = "  \n".join(lines) or "Noch keine Dokumente indexiert."
        return {summary: text, table: rows, to_delete: gr.update(choices=choices, value=None),
                collection: gr.update(choices=sorted(names)), ctx.status: ctx.status_text(request)}

    listing_outputs = [summary, table, to_delete, collection, ctx.status]

    def upload(paths: list[str] | None, coll: str, typ: str, request: gr.Request, progress=gr.Progress()):
        if not paths:
            return {upload_note: notice("Bitte zuerst Dateien auswählen.")}
        try:
            coll = uploads.check_collection(coll)
        except UserError as exc:   # nothing happened yet: the chosen files stay, only the name needs fixing
            return {upload_note: notice(exc)}
        progress(0, desc="Indexiere …")

        def on_event(event: dict) -> None:
            if event.get("event") == "file":
                progress((event["done"], max(event["total"], event["done"])), desc=Path(event["source"]).name)

        try:
            results = uploads.add_files([(p, Path(p).name) for p in paths], ctx.settings, collection=coll,
                                        type=None if typ == "auto" else typ, progress=on_event)
        except UserError as exc:   # e.g. a full disk: the index keeps what it had
            return {upload_note: notice(exc),
                    files: None, **listing(request)}
        finally:
            for p in paths:   # the upload is stored (or refused); Gradio's temp copy must not linger
                Path(p).unlink(missing_ok=True)
        rows = [[r.name, r.status_de, r.pages or "", r.chunks or "", r.reason or "; ".join(r.warnings)]
                for r in results]
        ok = sum(r.status != "failed" for r in results)
        bad = len(results) - ok
        note = f"{ok} von {len(results)} Datei(en) verarbeitet." + (f" ⚠️ {bad} mit Fehler – siehe Tabelle." if bad else "")
        return {upload_note: note, result: gr.update(value=rows, visible=True), files: None,
                **listing(request)}

    upload_btn.click(upload, [files, collection, doc_type], [upload_note, result, files, *listing_outputs],
                     concurrency_id="ingest", concurrency_limit=1)

    def delete(source: str | None, request: gr.Request):
        if not source:
            return {delete_note: "Bitte zuerst ein Dokument auswählen."}
        try:
            with ctx.store() as store:
                done = uploads.remove_document(source, ctx.settings, store=store)
        except UserError as exc:
            return {delete_note: notice(exc), **listing(request)}
        extra = " Die gespeicherte Datei wurde ebenfalls gelöscht." if done["file"] else ""
        return {delete_note: f"„{Path(source).name}“ aus dem Index entfernt.{extra}", **listing(request)}

    delete_btn.click(delete, [to_delete], [delete_note, *listing_outputs], concurrency_id="ingest")
    refresh_btn.click(listing, None, listing_outputs)
    ctx.on_load.append((listing, listing_outputs))
