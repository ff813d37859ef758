"""Tab "Ratsvorgänge": a procedure by number or topic as a timeline, the cited page of each
step, and the tasks the council gave the administration that are still open."""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from ..answer import procedures
from ..council.trace import Trace, trace
from ..council.watch import OpenTask, open_tasks, write_ics
from ..errors import UserError
from . import sources
from .context import UIContext
from .notice import notice
from .page_view import open_place

TITLE = "Ratsvorgänge"
TIMELINE = ["Datum", "Schritt", "Gremium / Urheber", "Drucksache", "Ergebnis", "Fundstelle"]
OPEN = ["Fällig", "Drucksache", "Auftrag", "Beschluss", "Fundstelle"]
log = logging.getLogger("assistant.ui")


# --------------------------------------------------------------------------- views (pure)

def de(day: str) -> str:
    try:
        return dt.date.fromisoformat(day).strftime("%d.%m.%Y")
    except ValueError:
        return day or "–"


def where(source: str, page: int | None) -> str:
    return (Path(source).name + (f", S. {page}" if page else "")) if source else "–"


def step_views(tr: Trace) -> list[dict[str, Any]]:
    """One viewer record per step (the page viewer's and the table's rows)."""
    out = []
    for n, s in enumerate(tr.steps, 1):
        kind = s.kind + (f" ({s.agenda_item})" if s.agenda_item else "")
        out.append({"n": n, "doc_id": s.doc_id, "source": s.source, "title": f"{de(s.date)} {kind}",
                    "page": s.page, "paper_number": s.reference, "snippet": s.quote,
                    "row": [de(s.date), kind, s.organization, s.reference, s.result or "–", where(s.source, s.page)]})
    return out


def task_views(tasks: list[OpenTask], today: dt.date) -> list[dict[str, Any]]:
    out = []
    for n, t in enumerate(tasks, 1):
        due = de(t.due) + (" (überfällig)" if t.due < today.isoformat() else "")
        if t.recurring:
            due += f", {t.recurring}"
        decided = " ".join(x for x in (de(t.resolved_on), t.organization) if x)
        out.append({"n": n, "doc_id": t.doc_id, "source": t.source, "title": f"Auftrag zu {t.reference}",
                    "page": t.page, "paper_number": t.reference, "snippet": t.task,
                    "row": [due, t.reference, t.task, decided, where(t.source, t.page)]})
    return out


def related_markdown(tr: Trace) -> str:
    if not tr.related:
        return ""
    lines = ["**Verwandte Drucksachen** (nicht Teil des Vorgangs):"]
    lines += [f"- {sources.plain(r.reference)} {('– ' + sources.plain(r.title)) if r.title else ''} "
              f"({sources.plain(r.relation)})" for r in tr.related]
    return "\n".join(lines)


_ics_dir: Path | None = None


def ics_file(tasks: list[OpenTask], today: dt.date) -> str:
    """The open tasks as a calendar in a temp folder Gradio may serve (one folder per process)."""
    global _ics_dir
    if _ics_dir is None or not _ics_dir.is_dir():
        _ics_dir = Path(tempfile.mkdtemp(prefix="pilot-council-ics-"))
    return str(write_ics(_ics_dir / f"ratsauftraege-{today.isoformat()}.ics", tasks))


# --------------------------------------------------------------------------- the tab

def build(ctx: UIContext) -> None:
    shown = gr.State([])       # viewer records of the timeline
    waiting = gr.State([])     # viewer records of the open tasks
    gr.Markdown("Ein Ratsvorgang verbindet Antrag, Stellungnahme, Beschlussvorlage, Beratungen, Beschluss und "
                "Bericht der Verwaltung. Suchen Sie nach einer Drucksachen-Nummer (z. B. 0087/2025) oder einem "
                "Thema; jeder Schritt nennt Datei und Seite.")
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Drucksache oder Thema", placeholder="0087/2025 oder Innovationsstrategie",
                           scale=4, elem_id="council-query")
        go = gr.Button("Vorgang anzeigen", variant="primary", scale=1, elem_id="council-search")
    note = gr.Markdown("", elem_id="council-notice", sanitize_html=True)
    candidates = gr.Radio(label="Mehrere Vorgänge passen – bitte einen wählen", choices=[], visible=False,
                          elem_id="council-candidates")
    timeline = gr.Dataframe(headers=TIMELINE, value=[], interactive=False, wrap=True, elem_id="council-timeline",
                            column_widths=["9%", "14%", "22%", "9%", "24%", "22%"])
    related = gr.Markdown("", elem_id="council-related", sanitize_html=True)
    with gr.Accordion("Fundstelle ansehen", open=True, elem_id="council-viewer"):
        pick = gr.Dropdown(label="Schritt", choices=[], value=None, elem_id="council-pick")
        page_link = gr.Markdown("", elem_id="council-page-link")
        page_image = gr.Image(label="Seite im Original", interactive=False, visible=False, type="pil", format="png",
                              elem_id="council-page-image", buttons=["fullscreen"])
        page_text = gr.Textbox(label="Text der Seite", lines=10, max_lines=30, interactive=False,
                               elem_id="council-page-text", buttons=["copy"])
    gr.Markdown("### Offene Aufträge an die Verwaltung\nAus Beschlüssen: Berichte und Vorlagen mit Frist, zu denen "
                "noch keine spätere Drucksache vorliegt. Zeile anklicken zeigt die Fundstelle.")
    tasks_table = gr.Dataframe(headers=OPEN, value=[], interactive=False, wrap=True, elem_id="council-open",
                               column_widths=["13%", "9%", "42%", "16%", "20%"])
    with gr.Row():
        refresh = gr.Button("Aktualisieren", size="sm", elem_id="council-open-refresh")
        ics = gr.DownloadButton("Fälligkeiten als Kalender (.ics)", value=None, size="sm", elem_id="council-ics")

    def show(text: str, request: gr.Request):
        empty = {timeline: [], related: "", shown: [], pick: gr.update(choices=[], value=None),
                 candidates: gr.update(choices=[], value=None, visible=False)}
        try:
            with ctx.store() as store:   # steps in collections the person may not read are left out
                ok = procedures.readable(store, ctx.filters(ctx.person(request)))
                tr = procedures.only_readable(trace(text or "", ctx.settings, store=store), ok)
        except UserError as exc:   # the message repeats the query: inert text
            return {**empty, note: f"⚠️ **{sources.plain(exc.de)}**" + (f"  \nAbhilfe: {sources.plain(exc.fix)}"
                                                                        if exc.fix else "")}
        if tr.ambiguous:
            choices = [(f"{c.reference} – {c.kind}: {c.title} ({de(c.date)})", c.reference) for c in tr.candidates]
            return {**empty, note: f"Mehrere Vorgänge passen zu „{sources.plain(text)}“ – bitte einen wählen.",
                    candidates: gr.update(choices=choices, value=None, visible=True)}
        views = step_views(tr)
        return {note: f"**Ratsvorgang {sources.plain(tr.reference)}:** {sources.plain(tr.title)} – {len(views)} Schritte",
                timeline: [v["row"] for v in views], related: related_markdown(tr), shown: views,
                pick: gr.update(choices=[(f"{v['row'][0]} {v['row'][1]} – {v['row'][5]}", i)
                                         for i, v in enumerate(views)], value=None),
                candidates: gr.update(choices=[], value=None, visible=False)}

    outputs = [note, timeline, related, shown, pick, candidates]
    go.click(show, [query], outputs, concurrency_id="council")
    query.submit(show, [query], outputs, concurrency_id="council")

    def choose(ref: str | None, request: gr.Request):
        return {query: ref, **show(ref, request)} if ref else {query: gr.update()}

    candidates.input(choose, [candidates], [query, *outputs], concurrency_id="council")

    def open_view(index: int | None, views: list[dict], request: gr.Request):
        if index is None or not 0 <= int(index) < len(views or []):
            return "", gr.update(value=None, visible=False), ""
        try:
            head, image, text = open_place(ctx, views[int(index)], ctx.person(request))
        except UserError as exc:
            return notice(exc), gr.update(value=None, visible=False), ""
        return head, gr.update(value=image, visible=image is not None), text

    viewer = [page_link, page_image, page_text]
    pick.input(open_view, [pick, shown], viewer, concurrency_id="render")

    def row_of(evt: gr.SelectData) -> int | None:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return row if isinstance(row, int) else None

    def timeline_row(views: list[dict], evt: gr.SelectData, request: gr.Request):
        index = row_of(evt)
        return (gr.update(value=index), *open_view(index, views, request))

    def task_row(views: list[dict], evt: gr.SelectData, request: gr.Request):
        return open_view(row_of(evt), views, request)

    timeline.select(timeline_row, [shown], [pick, *viewer])
    tasks_table.select(task_row, [waiting], viewer)

    def load_tasks(request: gr.Request):
        today = dt.date.today()
        try:
            with ctx.store() as store:
                ok = procedures.readable(store, ctx.filters(ctx.person(request)))
                tasks = [t for t in open_tasks(ctx.settings, today=today, store=store) if ok(t.doc_id)]
        except UserError as exc:
            log.warning("open tasks: %s", exc)
            return [], [], gr.update(value=None)
        views = task_views(tasks, today)
        try:
            calendar = ics_file(tasks, today) if tasks else None
        except OSError as exc:   # a calendar file is a convenience; never break the tab
            log.warning("ics export failed: %s", exc)
            calendar = None
        return [v["row"] for v in views], views, gr.update(value=calendar)

    refresh.click(load_tasks, None, [tasks_table, waiting, ics], concurrency_id="council")
    ctx.on_load.append((load_tasks, [tasks_table, waiting, ics]))
