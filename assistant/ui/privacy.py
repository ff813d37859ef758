"""Export and erasure of one's own data (Datenschutz), shown in the chat tab's sidebar."""
from __future__ import annotations

import json
import os
from pathlib import Path

import gradio as gr

from ..errors import UserError
from ..privacy import erasure, exports
from .context import UIContext
from .notice import notice


def gradio_cache_dirs() -> list[Path]:
    """Where Gradio keeps copies of files it served (exports end up there too)."""
    from gradio.utils import get_upload_folder

    dirs = {Path(get_upload_folder())}
    if os.environ.get("GRADIO_TEMP_DIR"):
        dirs.add(Path(os.environ["GRADIO_TEMP_DIR"]))
    return sorted(dirs)


def build_privacy(ctx: UIContext):
    """The accordion; returns the erase event so the chat tab can clear its view after it."""
    days = ctx.settings.serve.history_retention_days
    keep = f"{days} Tage nach der letzten Nachricht automatisch gelöscht" if days > 0 else "nicht automatisch gelöscht"
    with gr.Accordion("Export und Datenschutz", open=False, elem_id="privacy"):
        gr.Markdown(f"Ihre Gespräche und Entwürfe sind nur für Sie sichtbar und werden {keep}. "
                    "Das Protokoll vermerkt, wer wann welche Dokumente zitiert bekam "
                    + ("(mit Fragetext)" if ctx.settings.serve.audit_log_text else "(ohne Fragetext)")
                    + "; es bleibt bis zum Ablauf der Aufbewahrungsfrist, auch nach dem Löschen.")
        with gr.Row():
            as_json = gr.Button("Export (JSON)", size="sm", elem_id="export-json")
            as_md = gr.Button("Export (Markdown)", size="sm", elem_id="export-md")
        exported = gr.File(label="Ihr Export", interactive=False, visible=False, elem_id="export-file")
        confirm = gr.Checkbox(label="Ja, alle meine Gespräche, Entwürfe, Exporte und hochgeladenen Dokumente "
                                    "endgültig löschen", value=False, elem_id="wipe-confirm")
        wipe = gr.Button("Alle meine Daten löschen", variant="stop", size="sm", elem_id="wipe")
        result = gr.Markdown("", elem_id="privacy-result")

    def export(kind: str, request: gr.Request):
        try:
            user = ctx.user(request)
            if kind == "json":
                body = json.dumps(ctx.history.export(user), ensure_ascii=False, indent=2)
            else:
                body = ctx.history.export_markdown(user)
            target = exports.new_path(ctx.settings, user, f"pilot-assistent-verlauf.{'json' if kind == 'json' else 'md'}")
            target.write_text(body, encoding="utf-8")
        except UserError as exc:
            return gr.update(visible=False), notice(exc)
        except OSError as exc:
            return gr.update(visible=False), notice(f"Export nicht möglich ({exc.strerror or exc}).")
        return gr.update(value=str(target), visible=True), ""

    as_json.click(_bind(export, "json"), None, [exported, result])
    as_md.click(_bind(export, "md"), None, [exported, result])

    def erase(sure: bool, request: gr.Request):
        if not sure:
            return "Bitte zuerst das Kästchen ankreuzen – es wird nichts gelöscht.", False, gr.update()
        try:
            user = ctx.user(request)
            with ctx.store() as store:
                counts = erasure.erase_person(ctx.settings, user, ctx.history, store=store,
                                              cache_dirs=gradio_cache_dirs())
        except UserError as exc:
            return notice(exc), False, gr.update()
        text = (f"Gelöscht: {counts['conversations']} Gespräche, {counts['messages']} Nachrichten, "
                f"{counts['drafts']} Entwürfe, {counts['exports']} Exportdateien, "
                f"{counts['uploads']} hochgeladene Dokumente. Die Löschung ist im Protokoll vermerkt.")
        if counts.get("failed"):
            text += "  \n⚠️ Nicht gelöscht: " + "; ".join(counts["failed"])
        return text, False, gr.update(value=None, visible=False)

    return wipe.click(erase, [confirm], [result, confirm, exported])


def _bind(fn, kind: str):
    """A handler with ``kind`` fixed; Gradio injects ``request`` by the parameter's annotation."""
    def handler(request: gr.Request):
        return fn(kind, request)
    return handler
