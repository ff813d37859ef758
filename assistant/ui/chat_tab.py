"""Tab "Chat": streamed answers with their sources, the page viewer and the user's conversations."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import gradio as gr

from ..access import ADMIN, Person
from ..answer import chat
from ..errors import UsageError, UserError
from ..ingest import uploads
from . import sources
from .context import UIContext
from .notice import notice
from .page_view import open_place
from .privacy import build_privacy

TITLE = "Chat"
log = logging.getLogger("assistant.ui")

SEARCHING = "_⏳ Suche passende Stellen in den Unterlagen …_"
WORKING = "_⏳ Der Assistent prüft die Quellen und formuliert die Antwort …_"
EMPTY_INDEX = UsageError("Es sind noch keine Dokumente indexiert, daher kann ich nichts nachschlagen.",
                         "No documents are indexed yet.",
                         "Im Tab „Dokumente“ Dateien hochladen (oder `pilot-assistant ingest ORDNER`)")


def conversation_choices(ctx: UIContext, user: str) -> list[tuple[str, str]]:
    return [(f"{c.title or 'Ohne Titel'} ({time.strftime('%d.%m.%Y %H:%M', time.localtime(c.updated_at))})", c.id)
            for c in ctx.history.conversations(user)]


def build(ctx: UIContext) -> None:
    conv_id = gr.State(None)
    views = gr.State([])
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=220):
            gr.Markdown("### Gespräche")
            conversations = gr.Dropdown(label="Frühere Gespräche", choices=[], value=None, interactive=True,
                                        elem_id="conversations")
            new_btn = gr.Button("Neues Gespräch", size="md", elem_id="new-conversation")
            delete_btn = gr.Button("Gespräch löschen", variant="stop", size="sm", elem_id="delete-conversation")
            wiped = build_privacy(ctx)
        with gr.Column(scale=3, min_width=360):
            chatbot = gr.Chatbot(label="Pilot-Assistent", elem_id="chat", height=540, feedback_options=None,
                                 buttons=["copy", "copy_all"],
                                 placeholder="Fragen Sie nach Inhalten Ihrer Unterlagen – die Antwort nennt "
                                             "ihre Quellen mit Seitenzahl.")
            msg = gr.Textbox(placeholder="Ihre Frage zu den Unterlagen …", show_label=False, elem_id="msg",
                             submit_btn="Fragen", lines=1, max_lines=6, autofocus=True)
            hint = gr.Markdown("", elem_id="chat-notice")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("### Quellen")
            # Markdown, not gr.HTML: gr.HTML evaluates templates with new Function(), which the CSP forbids
            panel = gr.Markdown(sources.PLACEHOLDER, elem_id="sources", sanitize_html=True)
            with gr.Accordion("Quelle im Volltext ansehen", open=False, elem_id="source-viewer"):
                pick = gr.Dropdown(label="Quelle", choices=[], value=None, elem_id="source-pick")
                page_link = gr.Markdown("", elem_id="page-link")
                page_image = gr.Image(label="Seite im Original", interactive=False, visible=False, type="pil",
                                      format="png", elem_id="page-image", buttons=["fullscreen"])
                page_text = gr.Textbox(label="Text der Seite", lines=10, max_lines=30, interactive=False,
                                       elem_id="page-text", buttons=["copy"])

    def pick_update(vs: list[dict]) -> Any:
        return gr.update(choices=[(sources.label(v), i) for i, v in enumerate(vs)], value=None)

    # --- asking ------------------------------------------------------------------------
    names = {"msg": msg, "chatbot": chatbot, "hint": hint, "panel": panel, "views": views, "pick": pick,
             "conversations": conversations, "conv_id": conv_id}

    def respond(message: str, shown: list, cid: str | None, request: gr.Request):
        try:
            person = ctx.person(request)
        except UserError as exc:
            yield {hint: notice(exc)}
            return
        for update in run_turn(ctx, message, shown, cid, person):
            if "views" in update:
                update["pick"] = pick_update(update["views"])
            if "conversations" in update:
                update["conversations"] = gr.update(choices=update["conversations"], value=update["conv_id"])
            yield {names[k]: v for k, v in update.items()}

    outputs = [msg, chatbot, hint, panel, views, pick, conversations, conv_id]
    msg.submit(respond, [msg, chatbot, conv_id], outputs, concurrency_id="chat",
               concurrency_limit=1 if ctx.settings.llm.backend == "llamacpp" else 4)

    # --- the page viewer ---------------------------------------------------------------
    def show_page(index: int | None, vs: list[dict], request: gr.Request):
        if index is None or not 0 <= int(index) < len(vs):
            return "", gr.update(value=None, visible=False), ""
        v = vs[int(index)]
        try:
            head, image, text = open_place(ctx, v, ctx.person(request))
        except UserError as exc:
            return notice(exc), gr.update(value=None, visible=False), ""
        return head, gr.update(value=image, visible=image is not None), text

    pick.input(show_page, [pick, views], [page_link, page_image, page_text], concurrency_id="render")

    # --- conversations -----------------------------------------------------------------
    def load_conversation(cid: str | None, request: gr.Request):
        user = ctx.user(request)
        if not cid:
            return new_conversation(request)
        try:
            conv = ctx.history.get(user, cid)
        except UserError as exc:
            return {hint: notice(exc), conversations: gr.update(choices=conversation_choices(ctx, user), value=None)}
        display = [{"role": m.role, "content": m.content if m.role == "user"
                    else sources.answer_markdown(m.content, m.citations)} for m in conv.messages]
        last = next((m.citations for m in reversed(conv.messages) if m.role == "assistant"), [])
        vs = sources.from_citations(last)
        return {chatbot: display, conv_id: cid, views: vs, pick: pick_update(vs), hint: "",
                panel: sources.render(vs, note="Zitierte Quellen der letzten Antwort") if vs else sources.PLACEHOLDER}

    def new_conversation(request: gr.Request):
        return {chatbot: [], conv_id: None, views: [], pick: pick_update([]), hint: "", panel: sources.PLACEHOLDER,
                conversations: gr.update(choices=conversation_choices(ctx, ctx.user(request)), value=None)}

    def delete_conversation(cid: str | None, request: gr.Request):
        if not cid:
            return {hint: "Kein Gespräch ausgewählt – nichts gelöscht."}
        try:
            ctx.history.delete(ctx.user(request), cid)
        except UserError as exc:
            return {hint: notice(exc)}
        return {**new_conversation(request), hint: "Gespräch gelöscht."}

    view_outputs = [chatbot, conv_id, views, pick, hint, panel, conversations]
    conversations.input(load_conversation, [conversations], view_outputs)
    new_btn.click(new_conversation, None, view_outputs)
    chatbot.clear(new_conversation, None, view_outputs)   # the bin icon means "start over", also for the history
    delete_btn.click(delete_conversation, [conv_id], view_outputs)
    wiped.then(new_conversation, None, view_outputs)

    def on_load(request: gr.Request):
        return gr.update(choices=conversation_choices(ctx, ctx.user(request)), value=None)

    ctx.on_load.append((on_load, [conversations]))


def run_turn(ctx: UIContext, message: str, shown: list | None, cid: str | None,
             person: Person | str) -> Iterator[dict]:
    """One question and its answer as a stream of UI updates, keyed by component name (no gradio
    here, so it is testable): sources first, then the growing answer, then the saved result.
    Retrieval sees only the collections ``person`` may read (a bare name: the local admin)."""
    if not isinstance(person, Person):
        person = Person(person, frozenset({ADMIN}))
    user = person.name
    try:
        question = chat.check_question(message)
        if ctx.document_count(person) == 0:
            raise EMPTY_INDEX
    except UserError as exc:   # the question stays in the box, so it can be fixed
        yield {"hint": notice(exc)}
        return
    display = list(shown or []) + [{"role": "user", "content": question}, {"role": "assistant", "content": SEARCHING}]
    yield {"msg": "", "chatbot": list(display), "hint": "", "panel": sources.render([], note="Suche passende Stellen …"),
           "views": []}
    try:
        prior = ctx.history.messages_for_prompt(user, cid)
    except UsageError:          # deleted in another tab: start afresh
        cid, prior = None, []
    text, quote, answer, shown_views = "", "", None, []
    try:
        with ctx.store() as store:   # retrieval reads the shared store; generation does not
            stream = chat.ask_stream(question, ctx.settings, history=prior, store=store,
                                     filters=ctx.filters(person))
            first = next(stream)
        uploaded: dict[str, str] = {}
        for event in _chain(first, stream):
            if event.kind == "sources":
                uploaded = {src: up.owner for src, up in
                            uploads.unconfirmed(ctx.settings, [h.chunk.source for h in event.sources]).items()}
                shown_views = sources.from_hits(event.sources, uploaded)
                yield {"panel": sources.render(shown_views), "views": shown_views}
            elif event.kind == "quote":   # the best evidence at once, while the model reads
                quote = event.text
                display[-1] = {"role": "assistant", "content": f"{quote}\n\n{WORKING}"}
                yield {"chatbot": list(display)}
            elif event.kind == "token":
                text += event.text
                display[-1] = {"role": "assistant", "content": f"{quote}\n\n{text}" if quote else text}
                yield {"chatbot": list(display)}   # a snapshot: the list keeps changing
            elif event.kind == "done":
                answer = event.answer
    except Exception as exc:
        if not isinstance(exc, UserError):   # never a traceback in the browser; the log has it
            log.exception("chat failed")
            exc = UserError("Unerwarteter Fehler bei der Antwort. Ihre Unterlagen und der Verlauf sind unverändert.",
                            "Unexpected error.", "Erneut fragen; bei Wiederholung die Server-Ausgabe an die IT geben")
        shown_text = f"{quote}\n\n{text}".strip() if quote else text
        display[-1] = {"role": "assistant", "content": (shown_text + "\n\n" if shown_text else "") + "_(Antwort abgebrochen)_"}
        _audit(ctx, user, "ask_failed", cid, [], None, "", question)
        yield {"chatbot": display, "hint": notice(exc)}
        return
    cites = [{**c.to_dict(), **({"uploaded_by": uploaded[c.source]} if c.source in uploaded else {})}
             for c in answer.citations]
    display[-1] = {"role": "assistant", "content": sources.answer_markdown(answer.answer, cites)}
    shown_views = sources.mark_cited(shown_views, answer)
    out = {"chatbot": display, "panel": sources.render(shown_views), "views": shown_views}
    try:
        if not cid:
            cid = ctx.history.create(user, question)
        ctx.history.add_message(user, cid, "user", question)
        ctx.history.add_message(user, cid, "assistant", answer.answer, cites)
        out["conversations"], out["conv_id"] = conversation_choices(ctx, user), cid
    except UserError as exc:
        out["hint"] = notice(exc)
    _audit(ctx, user, "ask", cid, cites, answer.refused, answer.model, question)
    yield out


def _chain(first, rest):
    yield first
    yield from rest


def _audit(ctx: UIContext, user: str, event: str, cid: str | None, cites: list[dict], refused: bool | None,
           model: str, question: str) -> None:
    try:
        ctx.history.audit(user, event, conversation_id=cid, cited=cites, refused=refused, model=model,
                          question=question)
    except UserError:   # a full disk must not cost the person the answer they already see
        log.warning("audit entry not written", exc_info=True)
