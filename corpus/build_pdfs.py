"""Render the fictional Musterstadt council papers from Markdown to PDF, reproducibly.

Sources: ``corpus/council/src/*.md`` (YAML front matter + a small Markdown subset).
Output (default ``corpus/council/``):

* ``NAME.pdf`` – A4, DejaVu Sans (umlauts, €), header and footer that mark the paper as a
  fictional example, PDF metadata Title/Subject/Author/Keywords, a fixed creation date
  (the paper's date), so the same sources and fpdf2 version give byte-identical files;
* ``NAME.pdf.meta.yaml`` – the sidecar the ingest reads as document metadata;
* ``NAME.md`` – a byte copy of the source for the papers in ``MARKDOWN_ONLY``, so the
  starter corpus exercises both the PDF and the Markdown path.

Markdown subset: ``#``/``##``/``###`` headings, paragraphs (two trailing spaces = line
break), ``-`` and ``1.`` lists, ``>`` quotes (shaded box), pipe tables, ``**bold**`` and the
line ``<!-- pagebreak -->`` for a hard page break, which pins facts to specific pages.

Usage::

    .venv/bin/python corpus/build_pdfs.py            # write into corpus/council/
    .venv/bin/python corpus/build_pdfs.py --out DIR  # write elsewhere (tests compare bytes)
    .venv/bin/python corpus/build_pdfs.py --check    # exit 1 if committed files are stale
"""
from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import re
import sys
import tempfile
from pathlib import Path

import yaml
from fpdf import FPDF

from assistant import frontmatter

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "council" / "src"
OUT_DIR = HERE / "council"

# papers shipped as plain Markdown in corpus/council/ instead of as PDF
MARKDOWN_ONLY = (
    "0263-2026_antwort-informationssicherheit-grundschutz",
)
META_FIELDS = ("title", "type", "paper_number", "paper_type", "date", "committee", "municipality")
PAGEBREAK = "<!-- pagebreak -->"

FICTION_HEADER = "Musterstadt (fiktives Beispiel)"
FICTION_FOOTER = "Fiktives Beispieldokument des Projekts Pilot Assistant – keine echte Ratsvorlage"


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def split_front_matter(text: str) -> tuple[dict, str]:
    """Front matter and body of a council source; a source without front matter is an error."""
    meta, body = frontmatter.split(text)
    if not meta:
        raise ValueError("Quelle ohne Front Matter / source without front matter")
    return meta, body


# --------------------------------------------------------------------------- Markdown blocks


def parse_blocks(body: str) -> list[tuple[str, object]]:
    """Split the Markdown body into (kind, payload) blocks."""
    blocks: list[tuple[str, object]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped == PAGEBREAK:
            blocks.append(("pagebreak", None))
            i += 1
        elif m := re.match(r"^(#{1,3}) (.*)$", line):
            blocks.append((f"h{len(m.group(1))}", m.group(2).strip()))
            i += 1
        elif stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            blocks.append(("table", rows))
        elif stripped.startswith(">"):
            quote = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quote.append(lines[i].strip()[1:].strip())
                i += 1
            blocks.append(("quote", _join(quote)))
        elif re.match(r"^(- |\d+\. )", line):
            items: list[tuple[str, str]] = []
            while i < len(lines) and lines[i].strip():
                m = re.match(r"^(- |(\d+)\. )(.*)$", lines[i])
                if m:
                    marker = "•" if m.group(1) == "- " else f"{m.group(2)}."
                    items.append((marker, m.group(3).strip()))
                else:                                   # continuation line
                    marker, text = items[-1]
                    items[-1] = (marker, text + " " + lines[i].strip())
                i += 1
            blocks.append(("list", items))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                para.append(lines[i])
                i += 1
            blocks.append(("para", _join(para)))
    return blocks


def _starts_block(line: str) -> bool:
    s = line.strip()
    return (s == PAGEBREAK or s.startswith(("|", ">")) or bool(re.match(r"^(#{1,3} |- |\d+\. )", line)))


def _join(lines: list[str]) -> str:
    """Join source lines; a line ending in two spaces keeps its line break."""
    out = ""
    for line in lines:
        hard = line.endswith("  ")
        out += line.strip() + ("\n" if hard else " ")
    return out.strip()


# --------------------------------------------------------------------------- PDF


class CouncilPDF(FPDF):
    def __init__(self, meta: dict) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.meta = meta
        fonts = font_dir()
        self.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.add_font("DejaVu", "I", str(fonts / "DejaVuSans-Oblique.ttf"))
        self.add_font("DejaVu", "BI", str(fonts / "DejaVuSans-BoldOblique.ttf"))
        self.set_margins(22, 24, 20)
        self.set_auto_page_break(True, margin=22)

    def header(self) -> None:
        self.set_font("DejaVu", "", 8)
        self.set_text_color(110, 110, 110)
        left = f"{FICTION_HEADER} · {self.meta['paper_type']} · Drucksache {self.meta['paper_number']}"
        self.set_xy(self.l_margin, 10)
        self.cell(0, 5, left, align="L")
        self.set_xy(self.l_margin, 10)
        self.cell(0, 5, _de_date(self.meta["date"]), align="R")
        self.set_draw_color(170, 170, 170)
        self.line(self.l_margin, 16, self.w - self.r_margin, 16)
        self.set_text_color(0, 0, 0)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("DejaVu", "", 7.5)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4, FICTION_FOOTER, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 4, f"Seite {self.page_no()} von {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _de_date(value) -> str:
    d = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return d.strftime("%d.%m.%Y")


def _col_widths(rows: list[list[str]]) -> tuple[float, ...]:
    ncols = max(len(r) for r in rows)
    def cell(r: list[str], c: int) -> str:
        return r[c].replace("**", "") if c < len(r) else ""

    lengths = [max(len(cell(r, c)) for r in rows) for c in range(ncols)]
    words = [max((len(w) for r in rows for w in cell(r, c).split()), default=0) for c in range(ncols)]
    weights = [max(min(n, 55), int(w * 1.25) + 3, 6) for n, w in zip(lengths, words)]
    return tuple(float(w) for w in weights)


def render(meta: dict, body: str) -> bytes:
    pdf = CouncilPDF(meta)
    pdf.set_title(str(meta["title"]))
    pdf.set_subject(f"{meta['paper_type']} {meta['paper_number']} – {meta['committee']} – {meta['municipality']}")
    pdf.set_author("Stadt Musterstadt (fiktives Beispiel, Projekt Pilot Assistant)")
    pdf.set_keywords(f"Musterstadt fiktiv {meta['paper_type']} {meta['paper_number']}")
    pdf.set_creator("Pilot Assistant corpus/build_pdfs.py")
    pdf.set_lang("de-DE")
    day = meta["date"] if isinstance(meta["date"], dt.date) else dt.date.fromisoformat(str(meta["date"]))
    pdf.set_creation_date(dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=dt.timezone.utc))
    pdf.alias_nb_pages("{nb}")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    for kind, payload in parse_blocks(body):
        if kind == "pagebreak":
            pdf.add_page()
        elif kind in ("h1", "h2", "h3"):
            size = {"h1": 14, "h2": 12, "h3": 10.5}[kind]
            pdf.ln({"h1": 1, "h2": 3, "h3": 2}[kind])
            pdf.set_font("DejaVu", "B", size)
            pdf.multi_cell(0, size * 0.5, str(payload), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif kind == "para":
            pdf.set_font("DejaVu", "", 10)
            pdf.multi_cell(0, 5, str(payload), markdown=True, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
        elif kind == "quote":
            pdf.set_font("DejaVu", "", 9)
            pdf.set_fill_color(238, 238, 238)
            pdf.multi_cell(0, 4.6, str(payload), markdown=True, align="L", fill=True, padding=2.5,
                           new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif kind == "list":
            pdf.set_font("DejaVu", "", 10)
            for marker, text in payload:                       # type: ignore[union-attr]
                y = pdf.get_y()
                if y > pdf.h - pdf.b_margin - 10:
                    pdf.add_page()
                    y = pdf.get_y()
                pdf.set_xy(pdf.l_margin + 1, y)
                pdf.cell(6, 5, marker)
                pdf.set_xy(pdf.l_margin + 7, y)
                pdf.multi_cell(width - 7, 5, text, markdown=True, align="L", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            pdf.ln(1.5)
        elif kind == "table":
            rows = payload                                      # type: ignore[assignment]
            pdf.set_font("DejaVu", "", 9)
            pdf.set_draw_color(150, 150, 150)
            with pdf.table(col_widths=_col_widths(rows), width=width, markdown=True, text_align="LEFT",
                           line_height=4.8, padding=1.2, first_row_as_headings=True,
                           headings_style=_heading_style()) as table:
                for cells in rows:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
            pdf.ln(3)
    return bytes(pdf.output())


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(225, 225, 225))


# --------------------------------------------------------------------------- build


def sidecar(meta: dict) -> str:
    data = {key: meta[key] for key in META_FIELDS}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def sources(src_dir: Path = SRC_DIR) -> list[Path]:
    return sorted(src_dir.glob("*.md"))


def pdf_names(src_dir: Path = SRC_DIR) -> list[str]:
    """File names of the PDFs the build writes."""
    return [f"{p.stem}.pdf" for p in sources(src_dir) if p.stem not in MARKDOWN_ONLY]


def build(out_dir: Path = OUT_DIR, src_dir: Path = SRC_DIR) -> list[Path]:
    """Render every source into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for src in sources(src_dir):
        raw = src.read_bytes()
        meta, body = split_front_matter(raw.decode("utf-8"))
        missing = [k for k in META_FIELDS if not meta.get(k)]
        if missing:
            raise ValueError(f"{src.name}: Felder fehlen / missing fields: {', '.join(missing)}")
        if src.stem in MARKDOWN_ONLY:
            target = out_dir / src.name
            target.write_bytes(raw)
            written.append(target)
            continue
        pdf_path = out_dir / f"{src.stem}.pdf"
        pdf_path.write_bytes(render(meta, body))
        meta_path = out_dir / f"{src.stem}.pdf.meta.yaml"
        meta_path.write_text(sidecar(meta), encoding="utf-8")
        written += [pdf_path, meta_path]
    return written


def check(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of committed files that differ from a fresh build (empty = up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp))
        return [f.name for f in fresh
                if not (out_dir / f.name).exists() or not filecmp.cmp(f, out_dir / f.name, shallow=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="Zielordner / output folder")
    parser.add_argument("--check", action="store_true", help="nur prüfen / only check committed files")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.out)
        for name in stale:
            print(f"veraltet / stale: {name}")
        return 1 if stale else 0
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
