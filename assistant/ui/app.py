"""The Gradio app: a status line and one tab per module, served on loopback by default.

Each tab is a module in this package with ``TITLE`` and ``build(ctx)``, listed in
:data:`TABS` in the order shown. ``ctx`` (:class:`UIContext`) gives a tab the settings, the shared
store and history, ``ctx.person(request)`` (who is asking, with roles), ``ctx.filters(person)``
(the search filter every retrieval of that person uses), the status line (``ctx.status``, list it
as an output to refresh it), ``ctx.on_load`` for page-load handlers, ``ctx.tabs`` (tab ids are
the module names) and ``ctx.selected_programme`` (funding -> drafting hand-over). The tab
"Verwaltung" is shown to admins only.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from ..access.identity import Identity
from ..config import Settings
from ..history import History
from . import admin_tab, chat_tab, council_tab, documents_tab, draft_tab, eval_tab, funding_tab
from .context import UIContext

TABS = [chat_tab, documents_tab, council_tab, draft_tab, funding_tab, eval_tab, admin_tab]   # order of the tabs
ADMIN_TABS = {admin_tab}
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
.pa-upload { margin-left: 8px; font-size: 0.75em; padding: 1px 6px; border-radius: 6px;
             border: 1px dashed var(--body-text-color-subdued); font-weight: 400; }
.pa-snippet { font-size: 0.88em; margin-top: 4px; line-height: 1.35; }
.pa-meta { font-size: 0.78em; opacity: 0.7; margin-top: 4px; }
.pa-sources-empty, .pa-sources-note { opacity: 0.7; font-style: italic; margin-bottom: 6px; }
"""


def build_app(settings: Settings, *, history: History | None = None, backend_note: str = "",
              identity: Identity | None = None) -> gr.Blocks:
    ctx = UIContext(settings=settings, history=history or History(settings), backend_note=backend_note,
                    identity=identity)
    login = identity is not None and identity.mode == "password"
    admin_tabs = []
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
                hidden = module in ADMIN_TABS and identity is not None and identity.mode != "none"
                with gr.Tab(module.TITLE, id=name, elem_id=f"tab-{name.removesuffix('_tab')}",
                            visible=not hidden) as tab:
                    module.build(ctx)
                if hidden:
                    admin_tabs.append(tab)

        def refresh_status(request: gr.Request):
            text = ctx.status_text(request)
            try:
                is_admin = ctx.person(request).is_admin
            except Exception:   # an expired session: the status says nothing more
                is_admin = False
            return [text] + [gr.update(visible=is_admin) for _ in admin_tabs]

        demo.load(refresh_status, None, [ctx.status, *admin_tabs])
        for fn, outputs in ctx.on_load:
            demo.load(fn, None, outputs)
    demo.pilot_context = ctx   # lets tests and later tabs reach the same context
    return demo


def launch(settings: Settings, host: str | None = None, port: int | None = None, *,
           auth_file: str | Path | None = None, backend_note: str = "", block: bool = True):
    """Serve the app (see :mod:`assistant.ui.server`). Loopback unless told otherwise; a
    non-loopback address needs an identity source. Returns the running :class:`Served`."""
    from ..access import collections as colls
    from ..privacy import retention
    from . import server

    host = host or settings.serve.host
    port = settings.serve.port if port is None else port
    if auth_file:
        settings.serve.auth_file = str(auth_file)
    identity = Identity(settings)          # a broken auth file or proxy setting stops us here
    identity.check_bind(host)
    history = History(settings)
    retention.start(settings, history)
    settings.documents_dir.mkdir(parents=True, exist_ok=True)
    colls.access_store(settings)           # creates (or migrates) the access database now

    demo = build_app(settings, history=history, backend_note=backend_note, identity=identity)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX)
    served = server.start(demo, identity, host, port, max_upload_mb=settings.serve.max_upload_mb, css=CSS)
    if block:
        served.wait()
    return served
