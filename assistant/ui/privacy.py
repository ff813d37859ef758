"""Export and erasure of one's own history (Datenschutz), shown in the chat tab's sidebar."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import gradio as gr

from ..errors import UserError
from .context import UIContext
from .notice import notice

EXPORT_TTL_S = 600


def _export_dir() -> Path:
    # inside Gradio's upload folder: Gradio may serve files from there, and nowhere else is needed
    from gradio.utils import get_upload_folder

    path = Path(get_upload_folder()) / "pilot-exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sweep(folder: Path) -> None:
    """Exports hold personal data: remove our copies after a few minutes (Gradio's own copies
    go with the Blocks' delete_cache)."""
    cutoff = time.time() - EXPORT_TTL_S
    for old in folder.glob("*/*"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
                old.parent.rmdir()
        except OSError:
            pass


def build_privacy(ctx: UIContext):
    """The accordion; returns the erase event so the chat tab can clear its view after it."""
    days = ctx.settings.serve.history_retention_days
    keep = f"{days} Tage nach der letzten Nachricht automatisch gelöscht" if days > 0 else "nicht automatisch gelöscht"
    with gr.Accordion("Export und Datenschutz", open=False, elem_id="privacy"):
        gr.Markdown(f"Ihre Gespräche sind nur für Sie sichtbar und werden {keep}. "
                    "Das Protokoll vermerkt, wer wann welche Dokumente zitiert bekam "
                    + ("(mit Fragetext)." if ctx.settings.serve.audit_log_text else "(ohne Fragetext)."))
        with gr.Row():
            as_json = gr.Button("Export (JSON)", size="sm", elem_id="export-json")
            as_md = gr.Button("Export (Markdown)", size="sm", elem_id="export-md")
        exported = gr.File(label="Ihr Export", interactive=False, visible=False, elem_id="export-file")
        confirm = gr.Checkbox(label="Ja, alle meine Gespräche und Protokolleinträge endgültig löschen",
                              value=False, elem_id="wipe-confirm")
        wipe = gr.Button("Alle meine Daten löschen", variant="stop", size="sm", elem_id="wipe")
        result = gr.Markdown("", elem_id="privacy-result")

    def export(kind: str, request: gr.Request):
        user = ctx.user(request)
        try:
            if kind == "json":
                body = json.dumps(ctx.history.export(user), ensure_ascii=False, indent=2)
            else:
                body = ctx.history.export_markdown(user)
        except UserError as exc:
            return gr.update(visible=False), notice(exc)
        folder = _export_dir()
        _sweep(folder)
        target = folder / secrets.token_hex(16) / f"pilot-assistent-verlauf.{'json' if kind == 'json' else 'md'}"
        target.parent.mkdir()
        target.write_text(body, encoding="utf-8")
        return gr.update(value=str(target), visible=True), ""

    as_json.click(_bind(export, "json"), None, [exported, result])
    as_md.click(_bind(export, "md"), None, [exported, result])

    def erase(sure: bool, request: gr.Request):
        if not sure:
            return "Bitte zuerst das Kästchen ankreuzen – es wird nichts gelöscht.", False
        try:
            counts = ctx.history.delete_user(ctx.user(request))
        except UserError as exc:
            return notice(exc), False
        return (f"Gelöscht: {counts['conversations']} Gespräche, {counts['messages']} Nachrichten, "
                f"{counts['audit']} Protokolleinträge."), False

    return wipe.click(erase, [confirm], [result, confirm])


def _bind(fn, kind: str):
    """A handler with ``kind`` fixed; Gradio injects ``request`` by the parameter's annotation."""
    def handler(request: gr.Request):
        return fn(kind, request)
    return handler
