"""Tab "Antrag entwerfen": idea in, a cited draft out, section by section.

A thin layer over runner.py: the form makes an Idea, generation streams section by
section (the progress list and the growing preview update while the model writes), and
each section can be edited, regenerated or approved. Downloads are written by export.py.
``ctx.selected_programme`` (set by "Förderprogramme") preselects the programme.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import gradio as gr

from ..drafting import export, publish, runner, templates
from ..drafting.record import Draft
from ..errors import UserError
from ..history import LOCAL_USER
from ..privacy import exports
from .notice import notice

TITLE = "Antrag entwerfen"
FORMATS = [("ODT (LibreOffice)", ".odt"), ("DOCX (Word)", ".docx"), ("PDF", ".pdf"), ("Markdown", ".md")]
STATUS_ICON = {"pending": "○", "drafted": "✓", "edited": "✎", "approved": "🔒", "failed": "✗"}
STATUS_DE = {"pending": "offen", "drafted": "entworfen", "edited": "bearbeitet", "approved": "freigegeben",
             "failed": "fehlgeschlagen"}
REFRESH_S = 0.4     # streamed previews: often enough to look live, rarely enough not to flood the browser
log = logging.getLogger("assistant.ui")


# --------------------------------------------------------------------------- views (pure)


def progress_markdown(d: Draft | None, running: str | None = None) -> str:
    if d is None:
        return "Noch kein Entwurf."
    lines = [f"**{d.template_title}** · Entwurf `{d.id}`"]
    lines += [f"> {w}" for w in d.warnings]
    for s in d.sections:
        if s.kind == "static" and not s.text:
            continue
        icon = "⏳" if s.id == running else STATUS_ICON.get(s.status, "?")
        state = "wird geschrieben …" if s.id == running else STATUS_DE.get(s.status, s.status)
        extra = f" · {s.words} Wörter · {len(s.cited)} Quellen · {s.seconds:.0f} s" if s.seconds else ""
        lines.append(f"- {icon} {'  ' * (s.level - 1)}{s.heading} – {state}{extra}")
    missing = [r.text for r in d.requirements if not r.covered]
    if d.requirements:
        lines.append(f"\n**Anforderungen des Programms:** {len(d.requirements) - len(missing)} von "
                     f"{len(d.requirements)} abgedeckt" + ("; fehlt: " + "; ".join(missing) if missing else ""))
    return "\n".join(lines)


def preview_markdown(d: Draft | None, running: str | None = None, partial: str = "") -> str:
    if d is None:
        return ""
    if running and partial:   # show the section being written with its streamed text
        sec = d.section(running)
        saved = sec.text
        sec.text = partial + " ▌"
        try:
            return export.to_markdown(export.blocks(d))
        finally:
            sec.text = saved
    return export.to_markdown(export.blocks(d))


def section_details(d: Draft | None, section_id: str | None) -> tuple[str, str]:
    """(text for the editor, notes: status, sources, warnings)."""
    if d is None or not section_id:
        return "", ""
    s = d.section(section_id)
    notes = [f"**Status:** {STATUS_DE.get(s.status, s.status)} · {s.words} Wörter (Grenze {s.word_limit or '–'})"]
    notes += [f"- [{r.n}] {r.title}" + (f" (Drucksache {r.paper_number})" if r.paper_number else "")
              + (f", S. {r.page}" if r.page else "") for r in s.cited]
    notes += [f"- ⚠️ {w}" for w in s.warnings] + ([f"- ✗ {s.error}"] if s.error else [])
    return s.text, "\n".join(notes)


def section_choices(d: Draft | None) -> list[tuple[str, str]]:
    return [(s.heading, s.id) for s in d.sections if s.kind != "static" or s.text] if d else []   # not bare headings


def programme_choices(ctx, collections: list[str] | None = None) -> list[tuple[str, str]]:
    """Programmes from the shipped and configured folders, and those indexed in ``collections``
    (the person's readable ones; ``[]`` at build time, before anyone is known)."""
    from ..funding.finder import load_all

    try:
        programmes, _ = load_all(ctx.settings, collections=[] if collections is None else collections)
    except UserError:
        programmes = []
    return [("(kein Programm)", "")] + [(f"{p.name} ({p.id})", p.id) for p in programmes]


def template_choices(ctx) -> list[tuple[str, str]]:
    found, _ = templates.list_templates(ctx.settings)
    return [(t.title, t.name) for t in found]


# --------------------------------------------------------------------------- the tab


def build(ctx: Any) -> None:
    draft_id = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            title = gr.Textbox(label="Titel des Vorhabens", elem_id="draft-title",
                               placeholder="z. B. KI-Assistent für Bürgeranfragen")
            idea = gr.Textbox(label="Projektidee (einige Sätze)", lines=5, elem_id="draft-idea")
            with gr.Row():
                city = gr.Textbox(label="Kommune", elem_id="draft-city")
                department = gr.Textbox(label="Federführung", elem_id="draft-department")
            with gr.Row():
                budget = gr.Textbox(label="Budget (EUR)", placeholder="250.000", elem_id="draft-budget")
                duration = gr.Number(label="Laufzeit (Monate)", value=None, precision=0, elem_id="draft-duration")
            template = gr.Dropdown(label="Vorlage", choices=template_choices(ctx), value="beschlussvorlage",
                                   elem_id="draft-template")
            programme = gr.Dropdown(label="Förderprogramm", choices=programme_choices(ctx), value="",
                                    elem_id="draft-programme")
            start_btn = gr.Button("Entwurf erstellen", variant="primary", elem_id="draft-start")
            with gr.Accordion("Frühere Entwürfe", open=False):
                previous = gr.Dropdown(label="Entwurf", choices=[], value=None, elem_id="draft-previous")
                with gr.Row():
                    open_btn = gr.Button("Öffnen", size="sm", elem_id="draft-open")
                    resume_btn = gr.Button("Fortsetzen", size="sm", elem_id="draft-resume")
                    all_btn = gr.Button("Alle nicht freigegebenen neu", size="sm", elem_id="draft-regenerate-all")
            hint = gr.Markdown("", elem_id="draft-notice")
            progress = gr.Markdown("Noch kein Entwurf.", elem_id="draft-progress")
        with gr.Column(scale=3, min_width=420):
            preview = gr.Markdown("", elem_id="draft-preview", sanitize_html=True, height=620)
            with gr.Accordion("Abschnitt bearbeiten", open=False, elem_id="draft-edit"):
                section = gr.Dropdown(label="Abschnitt", choices=[], value=None, elem_id="draft-section")
                editor = gr.Textbox(label="Text", lines=8, max_lines=30, elem_id="draft-editor")
                details = gr.Markdown("", elem_id="draft-section-notes")
                with gr.Row():
                    save_btn = gr.Button("Änderung speichern", size="sm", elem_id="draft-save")
                    regen_btn = gr.Button("Neu erzeugen", size="sm", elem_id="draft-regenerate")
                    approve_btn = gr.Button("Freigeben", size="sm", elem_id="draft-approve")
            with gr.Row():
                fmt = gr.Radio(label="Format", choices=FORMATS, value=".odt", elem_id="draft-format")
                export_btn = gr.Button("Datei erzeugen", elem_id="draft-export")
                # only where a folder is configured ([webdav] save_to)
                opendesk_btn = gr.Button("In openDesk speichern", elem_id="draft-opendesk",
                                         visible=bool(ctx.settings.webdav.save_to))
            download = gr.File(label="Download", interactive=False, elem_id="draft-download")

    def mine(owner: str, request: gr.Request) -> bool:
        """Without login everything is the local user's, drafts made on the command line too."""
        user = ctx.user(request)
        return owner == user or (owner == "" and user == LOCAL_USER)

    def own(d_id: str | None, request: gr.Request) -> Draft | None:
        """The draft if it belongs to this user (ids are guessable only in theory; still check)."""
        if not d_id:
            return None
        d = runner.load_draft(d_id, ctx.settings)
        if not mine(d.owner, request):
            raise UserError("Dieser Entwurf gehört einer anderen Person.", "this draft belongs to someone else.")
        return d

    def previous_update(request: gr.Request, value: str | None = None):
        rows = [r for r in runner.list_drafts(ctx.settings) if mine(r["owner"], request)]
        return gr.update(choices=[(f"{r['title']} ({r['done']}/{r['sections']}, {r['updated'][:16]})", r["id"])
                                  for r in rows], value=value)

    def views(d: Draft | None, running: str | None = None, partial: str = "") -> dict:
        return {progress: progress_markdown(d, running), preview: preview_markdown(d, running, partial)}

    def stream(d: Draft, events: Iterator, request: gr.Request) -> Iterator[dict]:
        """Turn drafting events into UI updates; a failure keeps what is done and says how to go on."""
        last, partial = 0.0, ""
        try:
            for event in events:
                if event.kind == "section_start":
                    partial = ""
                    yield {**views(d, event.section_id), hint: f"Abschnitt {event.index} von {event.total} …"}
                elif event.kind == "token":
                    partial += event.text
                    if time.monotonic() - last > REFRESH_S:
                        last = time.monotonic()
                        yield views(d, event.section_id, partial)
                elif event.kind == "section_done":
                    yield views(d)
        except UserError as exc:
            yield {**views(d), hint: notice(exc)}
            return
        yield {**views(d), hint: "Fertig." if d.complete else "Teilweise fertig.",
               section: gr.update(choices=section_choices(d), value=None), editor: "", details: "",
               previous: previous_update(request, None)}

    outputs = [draft_id, hint, progress, preview, section, editor, details, previous]

    def start(t, i, c, dep, b, dur, tpl, prog, request: gr.Request):
        idea_obj = runner.Idea(title=t or "", description=i or "", city=c or "", department=dep or "",
                                 budget=b or None, duration_months=int(dur) if dur else None)
        try:
            d = runner.start_draft(idea_obj, tpl or "beschlussvorlage", ctx.settings, programme_id=prog or None,
                                     owner=ctx.user(request))
        except UserError as exc:
            yield {hint: notice(exc)}
            return
        yield {draft_id: d.id, **views(d), hint: "Entwurf angelegt, schreibe Abschnitte …",
               section: gr.update(choices=section_choices(d), value=None)}
        yield from stream(d, runner.run_sections(d, ctx.settings, collections=readable(request)), request)

    def readable(request: gr.Request) -> list[str]:
        return ctx.readable(ctx.person(request))

    limit = 1 if ctx.settings.llm.backend == "llamacpp" else 2
    start_btn.click(start, [title, idea, city, department, budget, duration, template, programme], outputs,
                    concurrency_id="draft", concurrency_limit=limit)

    def rerun(d_id, which: str, sid: str | None, request: gr.Request):
        try:
            d = own(d_id, request)
            if d is None:
                raise UserError("Bitte zuerst einen Entwurf erstellen oder öffnen.", "create or open a draft first.")
            if which == "one" and not sid:
                raise UserError("Bitte zuerst einen Abschnitt wählen.", "choose a section first.")
        except UserError as exc:
            yield {hint: notice(exc)}
            return
        ids = {"one": [sid], "all": [s.id for s in d.sections if s.status != "approved"], "resume": None}[which]
        yield from stream(d, runner.run_sections(d, ctx.settings, section_ids=ids, collections=readable(request)),
                          request)

    def resume(d_id, request: gr.Request):
        yield from rerun(d_id, "resume", None, request)

    def regenerate_all(d_id, request: gr.Request):
        yield from rerun(d_id, "all", None, request)

    def regenerate_one(d_id, sid, request: gr.Request):
        yield from rerun(d_id, "one", sid, request)

    resume_btn.click(resume, [draft_id], outputs, concurrency_id="draft", concurrency_limit=limit)
    all_btn.click(regenerate_all, [draft_id], outputs, concurrency_id="draft", concurrency_limit=limit)
    regen_btn.click(regenerate_one, [draft_id, section], outputs, concurrency_id="draft", concurrency_limit=limit)

    def open_draft(d_id, request: gr.Request):
        try:
            d = own(d_id, request)
        except UserError as exc:
            return {hint: notice(exc)}
        if d is None:
            return {hint: "Bitte einen Entwurf auswählen."}
        return {draft_id: d.id, **views(d), hint: "" if d.complete else "Entwurf unvollständig: „Fortsetzen“ "
                "schreibt die offenen Abschnitte.", section: gr.update(choices=section_choices(d), value=None),
                editor: "", details: ""}

    open_btn.click(open_draft, [previous], outputs)

    def show_section(d_id, sid, request: gr.Request):
        try:
            text, notes = section_details(own(d_id, request), sid)
        except UserError as exc:
            return "", notice(exc)
        return text, notes

    section.input(show_section, [draft_id, section], [editor, details])

    def change(d_id, sid, text, what: str, request: gr.Request):
        try:
            if own(d_id, request) is None or not sid:
                raise UserError("Bitte zuerst einen Abschnitt wählen.", "choose a section first.")
            d = (runner.edit_section(d_id, sid, text, ctx.settings) if what == "edit"
                 else runner.approve_section(d_id, sid, ctx.settings))
        except UserError as exc:
            return {hint: notice(exc)}
        text, notes = section_details(d, sid)
        return {**views(d), editor: text, details: notes,
                hint: "Gespeichert." if what == "edit" else "Abschnitt freigegeben: bleibt bei „Alle neu“ erhalten."}

    def save(d_id, sid, text, request: gr.Request):
        return change(d_id, sid, text, "edit", request)

    def approve(d_id, sid, text, request: gr.Request):
        return change(d_id, sid, text, "approve", request)

    save_btn.click(save, [draft_id, section, editor], outputs)
    approve_btn.click(approve, [draft_id, section, editor], outputs)

    def make_file(d_id, ext, request: gr.Request):
        try:
            d = own(d_id, request)
            if d is None:
                raise UserError("Bitte zuerst einen Entwurf erstellen oder öffnen.", "create or open a draft first.")
            # the person's export folder: their erasure and the retention find it there
            path = export.export(d, exports.new_path(ctx.settings, ctx.user(request), f"{d.id}{ext or '.odt'}",
                                                     unique=False))
        except UserError as exc:
            return {hint: notice(exc), download: None}
        return {download: str(path), hint: f"{path.name} erzeugt."}

    export_btn.click(make_file, [draft_id, fmt], [hint, download], concurrency_id="export")

    def save_opendesk(d_id, request: gr.Request):
        try:
            d = own(d_id, request)
            if d is None:
                raise UserError("Bitte zuerst einen Entwurf erstellen oder öffnen.", "create or open a draft first.")
            return f"✓ {publish.save_to_folder(d, ctx.settings).message()}"
        except UserError as exc:   # a conflict too: reported, nothing overwritten
            return notice(exc)

    opendesk_btn.click(save_opendesk, [draft_id], [hint], concurrency_id="export")

    selected = getattr(ctx, "selected_programme", None)
    if selected is not None:   # "Förderprogramme" hands a programme over
        selected.change(lambda pid: gr.update(value=pid or ""), [selected], [programme])

    def on_load(request: gr.Request):
        try:
            choices = programme_choices(ctx, readable(request))
        except UserError:
            choices = programme_choices(ctx)
        return previous_update(request), gr.update(choices=choices)

    if hasattr(ctx, "on_load"):
        ctx.on_load.append((on_load, [previous, programme]))
