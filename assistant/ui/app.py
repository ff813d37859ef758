"""The Gradio app: a status line and one tab per module, served on loopback by default.

Each tab is a module in this package with ``TITLE`` and ``build(ctx)``, listed in
:data:`TABS` in the order shown. ``ctx`` (:class:`UIContext`) gives a tab the settings, the shared
store and history, ``ctx.user(request)``, the status line (``ctx.status``, list it as an
output to refresh it), ``ctx.on_load`` for page-load handlers, ``ctx.tabs`` (tab ids are
the module names) and ``ctx.selected_programme`` (funding -> drafting hand-over).
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from ..config import Settings
from ..history import History, start_retention
from . import chat_tab, council_tab, documents_tab, draft_tab, eval_tab, funding_tab
from .context import UIContext

TABS = [chat_tab, documents_tab, council_tab, draft_tab, funding_tab, eval_tab]   # order of the tabs
QUEUE_CONCURRENCY = 2          # events at once besides the chat (which follows the model's slots)
QUEUE_MAX = 64                 # waiting events; more get a "busy" answer instead of piling up
CACHE_CLEANUP = (3600, 3600)   # rendered pages and exports leave Gradio's cache after an hour

log = logging.getLogger("assistant.ui")

CSS = """
#status { font-size: 0.9em; opacity: 0.85; }
#chat-notice:empty { display: none; }
.pa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
             margin-bottom: 8px; background: var(--background-fill-secondary); }
.pa-source.pa-cited { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent); }
.pa-source-head { font-weight: 600; }
.pa-n { color: var(--color-accent); }
.pa-where { font-weight: 400; margin-left: 6px; white-space: nowrap; }
.pa-badge { margin-left: 8px; font-size: 0.75em; padding: 1px 6px; border-radius: 6px;
            background: var(--color-accent); color: white; font-weight: 600; }
.pa-snippet { font-size: 0.88em; margin-top: 4px; line-height: 1.35; }
.pa-meta { font-size: 0.78em; opacity: 0.7; margin-top: 4px; }
.pa-sources-empty, .pa-sources-note { opacity: 0.7; font-style: italic; margin-bottom: 6px; }
"""

AUTH_MESSAGE = ("Pilot-Assistent – bitte mit Ihrem Benutzerkonto anmelden. "
                "Nach fünf Fehlversuchen ist die Anmeldung für zehn Minuten gesperrt.")


def build_app(settings: Settings, *, history: History | None = None, backend_note: str = "",
              login: bool = False) -> gr.Blocks:
    ctx = UIContext(settings=settings, history=history or History(settings), backend_note=backend_note)
    with gr.Blocks(title="Pilot-Assistent", delete_cache=CACHE_CLEANUP) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("## Pilot-Assistent", elem_id="title")
            if login:
                gr.Markdown("[Abmelden](logout)", elem_id="logout")
        ctx.status = gr.Markdown(ctx.status_text(), elem_id="status")
        ctx.selected_programme = gr.State(None)
        with gr.Tabs(elem_id="tabs") as ctx.tabs:
            for module in TABS:
                name = module.__name__.rsplit(".", 1)[-1]
                with gr.Tab(module.TITLE, id=name, elem_id=f"tab-{name.removesuffix('_tab')}"):
                    module.build(ctx)

        def refresh_status(request: gr.Request) -> str:
            return ctx.status_text(request)

        demo.load(refresh_status, None, ctx.status)
        for fn, outputs in ctx.on_load:
            demo.load(fn, None, outputs)
    demo.pilot_context = ctx   # lets tests and later tabs reach the same context
    return demo


def launch(settings: Settings, host: str | None = None, port: int | None = None, *,
           auth_file: str | Path | None = None, backend_note: str = "", block: bool = True) -> gr.Blocks:
    """Serve the app. Loopback unless told otherwise; never a public share link."""
    from starlette.middleware import Middleware

    from ..auth import Authenticator
    from .security import SecurityMiddleware, gradio_auth

    host = host or settings.serve.host
    port = port or settings.serve.port
    auth_file = auth_file or settings.serve.auth_file or None
    authenticator = Authenticator(auth_file) if auth_file else None   # a broken file stops us here
    history = History(settings)
    start_retention(history)
    settings.documents_dir.mkdir(parents=True, exist_ok=True)

    demo = build_app(settings, history=history, backend_note=backend_note, login=authenticator is not None)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX)
    demo.launch(
        server_name=host, server_port=port, share=False, inbrowser=False,
        auth=gradio_auth(authenticator) if authenticator else None,
        auth_message=AUTH_MESSAGE if authenticator else None,
        allowed_paths=[str(settings.documents_dir.resolve())],
        max_file_size=f"{settings.serve.max_upload_mb}mb",
        footer_links=[], run_history=False, mcp_server=False, ssr_mode=False, pwa=False,
        enable_monitoring=False, show_error=False, quiet=True, prevent_thread_lock=True,
        strict_cors=True, css=CSS,
        app_kwargs={"middleware": [Middleware(SecurityMiddleware)],
                    "docs_url": None, "redoc_url": None, "openapi_url": None},
    )
    if block:
        demo.block_thread()
    return demo
