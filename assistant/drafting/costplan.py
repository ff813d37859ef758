"""The AZA cost plan (Ausgabenplan of a federal grant application) as an XLSX workbook with
formulas, so the finance department can change an amount and every sum, the grant and the
own share follow. Written with openpyxl; the values come from the profile and finance.py.

Rows are the profile's cost types under the AZA position they usually belong to; columns
are the budget years (the total spread by project months, as in the Haushaltsauswirkungen).
The position numbers follow the AZA form and must be checked against easy-Online before
submission: the workbook says so in its notes.
"""
from __future__ import annotations

from pathlib import Path

from ..funding import finance
from . import forms
from .profile import COST_LABELS
from .record import COST_TYPES, Draft

# cost type -> (AZA position, label)
POSITIONS = {
    "staff": ("0812/0817", "Personalausgaben (Beschäftigte nach Entgeltgruppen)"),
    "services": ("0843", "Sonstige allgemeine Verwaltungsausgaben (Sach- und Dienstleistungen)"),
    "contracts": ("0835", "Vergabe von Aufträgen"),
    "investment": ("0850", "Gegenstände und Investitionen (über 800 € je Gegenstand)"),
}
NOTE = ("Positionsnummern nach dem AZA-Vordruck; vor der Einreichung mit dem Formular in easy-Online abgleichen. "
        "Beträge in Euro; Jahresbeträge anteilig nach Projektmonaten (änderbar).")


def _years(draft: Draft) -> list[int]:
    spread = forms.by_year(draft.idea)
    return [y for y, _ in spread] or [0]


def amounts(draft: Draft) -> dict[str, list[float]]:
    """Cost type -> amount per budget year (the profile's split, spread like the total)."""
    idea = draft.idea
    spread = forms.by_year(idea)
    shares = [v / idea.budget for _, v in spread] if spread and idea.budget else [1.0]
    costs = dict(idea.costs)
    if not costs and idea.budget is not None:
        costs = {"services": idea.budget}   # no split in the profile: one line the finance office splits
    out: dict[str, list[float]] = {}
    for k in COST_TYPES:
        if k not in costs:
            continue
        row = [round(costs[k] * s, 2) for s in shares[:-1]]
        row.append(round(costs[k] - sum(row), 2))
        out[k] = row
    rest = (idea.budget or 0) - sum(costs.values())
    if rest > 0.005:   # cost types given that do not add up to the total: the remainder stays visible
        row = [round(rest * s, 2) for s in shares[:-1]]
        out["rest"] = row + [round(rest - sum(row), 2)]
    return out


def write_costplan(draft: Draft, path: str | Path) -> Path:
    """Write the cost plan; returns the path. Sums, grant (capped) and own share are formulas
    over the amounts; rate and cap are the programme's, as stored with the draft."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    idea = draft.idea
    years = _years(draft)
    wb = Workbook()
    ws = wb.active
    ws.title = "Kostenplan"
    bold = Font(bold=True)
    ws["A1"] = f"Ausgabenplan (AZA): {idea.title}"
    ws["A1"].font = Font(bold=True, size=13)
    ws["A2"] = " · ".join(x for x in (idea.department and f"Federführung: {idea.department}",
                                      idea.duration_months and f"Laufzeit: {idea.duration_months} Monate",
                                      idea.start and f"Beginn: {idea.start}") if x)
    header = ["Position", "Ausgabenart", *[(str(y) if y else "Gesamt") for y in years], "Summe"]
    ws.append([])
    ws.append(header)
    for c in range(1, len(header) + 1):
        ws.cell(row=4, column=c).font = bold
    first = 5
    labels = COST_LABELS["de"]
    rows = amounts(draft)
    for key, values in rows.items():
        pos, label = POSITIONS.get(key, ("", "nicht aufgeteilt"))
        r = ws.max_row + 1
        ws.cell(row=r, column=1, value=pos)
        ws.cell(row=r, column=2, value=f"{label} – {labels[key]}" if key in labels else label)
        for i, v in enumerate(values):
            ws.cell(row=r, column=3 + i, value=v)
        last_year = get_column_letter(2 + len(values))
        ws.cell(row=r, column=3 + len(values), value=f"=SUM(C{r}:{last_year}{r})")
    last = ws.max_row
    total_row = last + 1
    ws.cell(row=total_row, column=2, value="Gesamtausgaben").font = bold
    for c in range(3, len(header) + 1):
        col = get_column_letter(c)
        ws.cell(row=total_row, column=c, value=f"=SUM({col}{first}:{col}{last})").font = bold
    total = f"{get_column_letter(len(header))}{total_row}"
    r = total_row + 2
    fin = draft.financing or {}
    rate = fin.get("funding_rate") if draft.programme_id else None
    cap = fin.get("max_amount") if draft.programme_id else None
    ws.cell(row=r, column=2, value="Förderquote")
    ws.cell(row=r, column=3, value=rate if rate is not None else None)
    ws.cell(row=r, column=3).number_format = "0%"
    ws.cell(row=r + 1, column=2, value="Höchstbetrag der Förderung")
    ws.cell(row=r + 1, column=3, value=cap)
    ws.cell(row=r + 2, column=2, value="Beantragte Zuwendung").font = bold
    grant = f"=ROUND(MIN({total}*C{r},C{r + 1}),2)" if cap is not None else f"=ROUND({total}*C{r},2)"
    ws.cell(row=r + 2, column=3, value=grant if rate is not None else None).font = bold
    ws.cell(row=r + 3, column=2, value="Eigenanteil der Kommune").font = bold
    ws.cell(row=r + 3, column=3, value=f"={total}-C{r + 2}" if rate is not None else f"={total}").font = bold
    ws.cell(row=r + 4, column=2, value="Förderprogramm")
    ws.cell(row=r + 4, column=3, value=draft.programme_name or "kein Förderprogramm gewählt")
    ws.cell(row=r + 6, column=1, value="Hinweis")
    ws.cell(row=r + 6, column=2, value=NOTE).alignment = Alignment(wrap_text=True)
    for row in ws.iter_rows(min_row=first, max_row=r + 3, min_col=3, max_col=len(header)):
        for cell in row:
            if cell.number_format != "0%":
                cell.number_format = "#,##0.00 €"
    ws.column_dimensions["A"].width = 11
    ws.column_dimensions["B"].width = 62
    for c in range(3, len(header) + 1):
        ws.column_dimensions[get_column_letter(c)].width = 15
    ws.cell(row=r + 7, column=1, value="Berechnet")
    ws.cell(row=r + 7, column=2, value=f"Beim Erstellen: Gesamtausgaben {finance.euro(idea.budget)}, Zuwendung "
                                       f"{finance.euro(fin.get('grant'))}, Eigenanteil {finance.euro(fin.get('own_share'))}")
    target = Path(path)
    wb.save(str(target))
    return target
