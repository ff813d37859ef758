"""Tab "Förderprogramme": project idea in, ranked programmes out, hand one over to drafting.

Shared state: ``ctx.selected_programme`` (a ``gr.State`` holding a programme id) is what
"Antrag entwerfen" writes; the drafting tab listens to its ``change`` event. The app should
create it before building the tabs; if it has not, this tab creates it. When the app also
puts its ``gr.Tabs`` on ``ctx.tabs``, the button switches to the tab ``ctx.draft_tab_id``
(default ``"draft_tab"``, the id app.py gives the module's tab).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr

from ..errors import UserError
from ..funding.finance import euro, percent
from ..funding.finder import STATES, FundingResult, ProgrammeMatch, load_all, match_funding
from ..funding.ics import write_ics
from ..funding.programmes import APPLICANTS
from ..text import md_escape
from .notice import notice, scrub_paths

TITLE = "Förderprogramme"
HEADERS = ["Programm", "Passung", "Quote", "Zuschuss", "Eigenanteil", "Frist"]
log = logging.getLogger("assistant.ui")

STATE_NAMES = {"BW": "Baden-Württemberg", "BY": "Bayern", "BE": "Berlin", "BB": "Brandenburg", "HB": "Bremen",
               "HH": "Hamburg", "HE": "Hessen", "MV": "Mecklenburg-Vorpommern", "NI": "Niedersachsen",
               "NW": "Nordrhein-Westfalen", "RP": "Rheinland-Pfalz", "SL": "Saarland", "SN": "Sachsen",
               "ST": "Sachsen-Anhalt", "SH": "Schleswig-Holstein", "TH": "Thüringen"}
APPLICANT_NAMES = {"kommune": "Kommune (Stadt, Gemeinde)", "landkreis": "Landkreis", "zweckverband": "Zweckverband",
                   "kommunales_unternehmen": "Kommunales Unternehmen", "hochschule": "Hochschule",
                   "forschungseinrichtung": "Forschungseinrichtung", "unternehmen": "Unternehmen",
                   "verein": "Verein", "land": "Land"}


# --------------------------------------------------------------------------- views (pure)


def table_rows(result: FundingResult) -> list[list[Any]]:
    rows = []
    for m in result.results:
        p, f = m.programme, m.financing
        grant = euro(f.grant) if f.grant is not None else "–"
        if p.instrument == "loan" and f.grant is not None:
            grant = f"Darlehen {grant}"
        rows.append([p.name, f"{m.fit:.2f}", percent(p.funding_rate), grant,
                     euro(f.own_share) if f.own_share is not None else "–", m.deadline.message])
    return rows


def _link(url: str) -> str:
    """A programme's source URL as a link that cannot break out of Markdown."""
    safe = quote(url.strip(), safe=":/?#@!$&'*+,;=%~-._")
    return f"[{md_escape(url)}]({safe})" if safe.lower().startswith(("http://", "https://")) else md_escape(url)


def details_markdown(m: ProgrammeMatch) -> str:
    """Every value from a programme file is escaped: an uploaded programme is plain text here."""
    p, f, e_ = m.programme, m.financing, md_escape
    out = [f"### {m.rank}. {e_(p.name)}", f"*{e_(p.funder)}* · Passung {m.fit:.2f} · {e_(p.id)}", "",
           "**Geld**",
           f"- Förderquote {percent(p.funding_rate)}, Höchstbetrag {euro(p.max_amount)}"
           + (f", Eigenanteil mindestens {percent(p.own_share)}" if p.own_share else "")]
    if f.grant is not None:
        kind = "Darlehen" if p.instrument == "loan" else "Zuschuss"
        out.append(f"- Bei {euro(f.budget)} Budget: {kind} {euro(f.grant)}, Eigenanteil {euro(f.own_share)}")
    out += [f"- {e_(n)}" for n in f.notes]
    out += ["", f"**Frist:** {e_(m.deadline.message)}  ", f"**Rhythmus:** {e_(p.call_rhythm)}  ",
            f"**Verfahren:** {e_(m.procedure)}", "", "**Warum es passt**"]
    for e in m.why:
        where = f"{e_(Path(e.source).name)}, Abschnitt „{e_(e.section)}“" + (f", Zeile {e.line}" if e.line else "")
        out.append(f"> „{e_(e.quote)}“  \n> — {where}")
        out.append("")
    if m.matched_topics:
        out.append(f"Passende Themen: {e_(', '.join(m.matched_topics))}")
    for title, items in (("Erforderliche Unterlagen", p.required_documents), ("Kriterien", p.criteria),
                         ("Unsicher", m.uncertainties)):
        out += ["", f"**{title}**"] + ([f"- {e_(i)}" for i in items] or ["- keine Angaben"])
    out += ["", "**Quellen** (Stand " + e_(p.last_checked) + ")"] + [f"- {_link(s)}" for s in p.sources]
    return "\n".join(out)


def excluded_markdown(result: FundingResult) -> str:
    lines = [f"- **{md_escape(e.name)}**: {md_escape(e.reason)}" for e in result.excluded]
    lines += [f"- ⚠️ Datei **{md_escape(e.name)}** nicht lesbar: {md_escape(scrub_paths('; '.join(e.problems)))}"
              for e in result.errors]
    return "\n".join(lines) or "Keine."


_ics_dir: Path | None = None


def ics_file(settings, today: dt.date | None = None, collections: list[str] | None = None) -> str:
    """All upcoming deadlines (of the programmes in ``collections``, see ``load_all``) as a file in
    the temp dir (Gradio serves files from there); one folder per process, one file per set of
    collections, so page loads do not litter the temp dir and nobody gets another's programmes."""
    global _ics_dir
    if _ics_dir is None or not _ics_dir.is_dir():
        _ics_dir = Path(tempfile.mkdtemp(prefix="pilot-ics-"))
    programmes, _ = load_all(settings, collections=collections)
    today = today or dt.date.today()
    scope = hashlib.sha256("\0".join(sorted(collections or [])).encode()).hexdigest()[:8] if collections is not None \
        else "alle"
    folder = _ics_dir / scope
    folder.mkdir(exist_ok=True)
    return str(write_ics(folder / f"foerderfristen-{today.isoformat()}.ics", programmes, today=today))


# --------------------------------------------------------------------------- the tab


def build(ctx: Any) -> None:
    selected = getattr(ctx, "selected_programme", None)
    if selected is None:
        selected = gr.State(None)
        ctx.selected_programme = selected
    shown = gr.State({})            # programme id -> details markdown of the last search
    gr.Markdown("Beschreiben Sie Ihr Vorhaben. Programme, für die Sie nicht antragsberechtigt sind oder deren "
                "Frist abgelaufen ist, werden aussortiert (mit Grund); die übrigen sind nach Passung sortiert. "
                "Beträge sind berechnet, nicht geschätzt – unsichere Angaben sind gekennzeichnet.")
    with gr.Row(equal_height=False):
        idea = gr.Textbox(label="Projektidee", lines=5, scale=3, elem_id="funding-idea",
                          placeholder="z. B. Pilot eines KI-Assistenten für Bürgeranfragen in der Verwaltung")
        with gr.Column(scale=2, min_width=260):
            applicant = gr.Dropdown(label="Antragsteller", value="kommune", elem_id="funding-applicant",
                                    choices=[(APPLICANT_NAMES.get(a, a), a) for a in APPLICANTS])
            state = gr.Dropdown(label="Bundesland", value="", elem_id="funding-state",
                                choices=[("alle / nicht angegeben", "")]
                                + [(f"{STATE_NAMES.get(s, s)} ({s})", s) for s in STATES])
            budget = gr.Textbox(label="Budget (EUR)", placeholder="z. B. 200.000", elem_id="funding-budget")
            search_btn = gr.Button("Programme finden", variant="primary", elem_id="funding-search")
    notice_box = gr.Markdown("", elem_id="funding-notice")
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, elem_id="funding-table")
    with gr.Row():
        pick = gr.Dropdown(label="Programm", choices=[], value=None, scale=4, elem_id="funding-pick")
        draft_btn = gr.Button("Antrag entwerfen", scale=1, elem_id="funding-draft")
        ics_btn = gr.DownloadButton("Fristen als Kalender (.ics)", value=None, scale=1, elem_id="funding-ics")
    handed = gr.Markdown("", elem_id="funding-handed")
    details = gr.Markdown("", elem_id="funding-details")
    with gr.Accordion("Ausgeschlossene Programme", open=False):
        excluded = gr.Markdown("", elem_id="funding-excluded")

    def readable(request) -> list[str] | None:
        person_of = getattr(ctx, "person", None)
        return ctx.readable(person_of(request)) if person_of else None

    def find(text: str, who: str, land: str, money: str, request: gr.Request):
        try:
            result = match_funding(text or "", ctx.settings, applicant=who, state=land or None,
                                   budget=(money or "").strip() or None, collections=readable(request))
        except UserError as exc:
            return {notice_box: notice(exc)}
        by_id = {m.programme.id: details_markdown(m) for m in result.results}
        first = result.results[0].programme.id if result.results else None
        note = (f"{len(result.results)} passende(s) Programm(e), {len(result.excluded)} ausgeschlossen."
                if result.results else
                "Kein offenes Programm passt zu diesen Angaben – siehe „Ausgeschlossene Programme“.")
        if result.errors:
            note += (f"  \n⚠️ {len(result.errors)} Programmdatei(en) fehlerhaft: "
                     + ", ".join(e.name for e in result.errors))
        return {notice_box: note, table: table_rows(result), shown: by_id, excluded: excluded_markdown(result),
                pick: gr.update(choices=[(m.programme.name, m.programme.id) for m in result.results], value=first),
                details: by_id.get(first, ""), handed: ""}

    outputs = [notice_box, table, shown, excluded, pick, details, handed]
    search_btn.click(find, [idea, applicant, state, budget], outputs, concurrency_id="funding")
    idea.submit(find, [idea, applicant, state, budget], outputs, concurrency_id="funding")
    pick.change(lambda pid, by_id: (by_id or {}).get(pid, ""), [pick, shown], [details])

    def row_picked(by_id: dict, evt: gr.SelectData):
        ids = list(by_id or {})
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return gr.update(value=ids[row]) if isinstance(row, int) and 0 <= row < len(ids) else gr.update()

    table.select(row_picked, [shown], [pick])

    tabs = getattr(ctx, "tabs", None)

    def hand_over(pid: str | None):
        if not pid:
            return (None, "Bitte zuerst ein Programm auswählen.") + ((gr.update(),) if tabs else ())
        note = f"Programm `{pid}` an „Antrag entwerfen“ übergeben."
        switch = (gr.Tabs(selected=getattr(ctx, "draft_tab_id", "draft_tab")),) if tabs else ()
        return (pid, note) + switch

    draft_btn.click(hand_over, [pick], [selected, handed] + ([tabs] if tabs else []))

    def fresh_ics(request: gr.Request):
        try:
            return gr.update(value=ics_file(ctx.settings, collections=readable(request)))
        except (OSError, UserError) as exc:   # a calendar file is a convenience; never break the tab
            log.warning("ics export failed: %s", exc)
            return gr.update(value=None)

    search_btn.click(fresh_ics, None, [ics_btn])
    if hasattr(ctx, "on_load"):
        ctx.on_load.append((fresh_ics, [ics_btn]))
