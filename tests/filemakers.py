"""Write real test documents (PDF, DOCX, ODT, HTML, MD, TXT) and hostile ones into a folder.

Shared by the loader, chunking, sandbox and ingest tests and the hostile-file corpus.
Every function writes one file and returns its path. ``blocks`` for DOCX/ODT is a list of
``(kind, content)``: kind ``h1``..``h6``, ``p``, ``bullet`` (content: str) or ``table``
(content: list of rows, each a list of cell strings).
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import matplotlib
import yaml

DEJAVU = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"

COUNCIL_PAPER = """\
Beschlussvorlage Nr. 2024/117
Digitalisierung der Bürgerdienste

Beschlussvorschlag:
Der Ausschuss für Digitalisierung empfiehlt dem Rat, die Verwaltung mit der Einführung eines
Online-Terminsystems für das Bürgerbüro zu beauftragen.

Sachverhalt:
1. Ausgangslage
Das Bürgerbüro der Stadt Musterhausen verzeichnet lange Wartezeiten. Im Jahr 2023 warteten
Bürgerinnen und Bürger im Mittel 47 Minuten. Eine Befragung ergab, dass 68 Prozent einen
Online-Termin bevorzugen würden.

2. Kosten
Die Kosten betragen einmalig 45.000 EUR und jährlich 6.000 EUR. Die Mittel stehen im
Produktkonto 11.10.01 zur Verfügung.

Finanzielle Auswirkungen:
- einmalig 45.000 EUR (Haushalt 2025)
- laufend 6.000 EUR pro Jahr
- Förderung aus dem Programm Digitale Kommune: 50 Prozent
"""


def make_pdf(path: Path, pages: list[str], *, title: str | None = None, scanned: Iterable[int] = (),
             user_password: str | None = None, owner_password: str | None = None) -> Path:
    """One page per string. Pages listed in ``scanned`` (1-based) become images without a text layer."""
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    scanned = set(scanned)
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    for number, text in enumerate(pages, 1):
        pdf.add_page()
        if number in scanned:
            pdf.image(text_image(text), x=0, y=0, w=210, h=297)
        else:
            pdf.set_font("DejaVu", size=11)
            pdf.set_xy(20, 20)
            pdf.multi_cell(170, 6, text)
    if user_password is not None or owner_password is not None:
        pdf.set_encryption(owner_password=owner_password or user_password or "owner",
                           user_password=user_password or "", encryption_method=EncryptionMethod.RC4)
    pdf.output(str(path))
    return Path(path)


def text_image(text: str, *, dpi: int = 200):
    """An A4 page image with ``text`` in black on white, like a scan."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    size = dpi // 6
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(DEJAVU), size)
    y = dpi
    for line in text.splitlines():
        draw.text((dpi, y), line, font=font, fill=0)
        y += int(size * 1.6)
    return image


def make_docx(path: Path, blocks: list[tuple[str, Any]], *, title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for kind, content in blocks:
        if kind.startswith("h"):
            document.add_heading(content, level=int(kind[1:]))
        elif kind == "bullet":
            document.add_paragraph(content, style="List Bullet")
        elif kind == "table":
            table = document.add_table(rows=len(content), cols=len(content[0]))
            for r, row in enumerate(content):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        else:
            document.add_paragraph(content)
    document.save(path if hasattr(path, "write") else str(path))
    return path


def make_odt(path: Path, blocks: list[tuple[str, Any]], *, title: str | None = None) -> Path:
    from odf import dc
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    if title:
        document.meta.addElement(dc.Title(text=title))
    current_list = None
    for kind, content in blocks:
        if kind != "bullet":
            current_list = None
        if kind.startswith("h"):
            document.text.addElement(H(outlinelevel=int(kind[1:]), text=content))
        elif kind == "bullet":
            if current_list is None:
                current_list = List()
                document.text.addElement(current_list)
            item = ListItem()
            item.addElement(P(text=content))
            current_list.addElement(item)
        elif kind == "table":
            table = Table(name=f"Tabelle{id(content)}")
            table.addElement(TableColumn(numbercolumnsrepeated=len(content[0])))
            for row in content:
                tr = TableRow()
                for cell in row:
                    tc = TableCell()
                    tc.addElement(P(text=cell))
                    tr.addElement(tc)
                table.addElement(tr)
            document.text.addElement(table)
        else:
            document.text.addElement(P(text=content))
    document.save(str(path))
    return Path(path)


def make_html(path: Path, body: str, *, title: str = "Ratsinformation", chrome: bool = True,
              encoding: str = "utf-8") -> Path:
    """``body`` is HTML; ``chrome`` wraps it in the navigation, scripts and footer of a CMS page."""
    head = (f'<head><meta charset="{encoding}"><title>{title}</title>'
            "<style>body { font-family: sans-serif }</style>"
            '<script>var tracking = "NAVSCRIPT"; fetch("https://example.org/t");</script></head>')
    top = ('<header><a href="/">Stadt Musterhausen</a> KOPFZEILE</header>'
           '<nav><ul><li><a href="/rat">Rat</a></li><li>MENUEPUNKT</li></ul></nav>') if chrome else ""
    bottom = ('<aside>SEITENLEISTE Veranstaltungen</aside>'
              "<footer>Impressum FUSSZEILE</footer><noscript>NOSCRIPTTEXT</noscript>") if chrome else ""
    html = f"<!DOCTYPE html><html lang=\"de\">{head}<body>{top}<main>{body}</main>{bottom}</body></html>"
    Path(path).write_bytes(html.encode(encoding))
    return Path(path)


def make_markdown(path: Path, body: str, front_matter: dict[str, Any] | None = None) -> Path:
    text = body
    if front_matter is not None:
        text = "---\n" + yaml.safe_dump(front_matter, allow_unicode=True, sort_keys=False) + "---\n" + body
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def make_text(path: Path, text: str, *, encoding: str = "utf-8", bom: bool = False) -> Path:
    data = text.encode(encoding)
    Path(path).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return Path(path)


def make_sidecar(path: Path, meta: dict[str, Any]) -> Path:
    """Write ``<path>.meta.yaml`` with ``meta`` (the file it describes need not exist yet)."""
    sidecar = Path(str(path) + ".meta.yaml")
    sidecar.write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    return sidecar


# --- hostile files -----------------------------------------------------------------------

def make_zip_bomb_docx(path: Path, *, inflated_mb: int = 300) -> Path:
    """A real DOCX plus one extra part of ``inflated_mb`` zeros (deflates ~1000:1)."""
    buf = io.BytesIO()
    make_docx(buf, [("p", "Harmloser Text")])  # type: ignore[arg-type]
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open("word/media/bomb.bin", "w", force_zip64=True) as entry:
        block = bytes(2**20)
        for _ in range(inflated_mb):
            entry.write(block)
    Path(path).write_bytes(buf.getvalue())
    return Path(path)


def make_zip_many_entries(path: Path, *, entries: int = 20_000) -> Path:
    """A DOCX-named archive with a huge number of tiny entries (central-directory bomb)."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(entries):
            zf.writestr(f"word/x{i}.xml", b"")
    return Path(path)


def make_pdf_bomb(path: Path, *, inflated_mb: int = 200) -> Path:
    """A one-page PDF whose content stream inflates from a few hundred KB to ``inflated_mb`` MB."""
    comp = zlib.compressobj(9)
    stream = b"".join(comp.compress(b" " * 2**20) for _ in range(inflated_mb)) + comp.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    try:   # one writer of raw PDF objects for all test files
        from tests.hostile import pdf_bytes
    except ImportError:   # pragma: no cover (run as a script from tests/)
        from hostile import pdf_bytes  # type: ignore[no-redef]

    Path(path).write_bytes(pdf_bytes(objects))
    return Path(path)


def make_external_entity(path: Path, target: Path) -> Path:
    """A DOCX or ODT (by suffix) whose main XML declares an external entity on ``target``
    (XXE: a parser that resolves it would copy a local file into the index)."""
    path = Path(path)
    part = "word/document.xml" if path.suffix == ".docx" else "content.xml"
    plain = io.BytesIO()
    if path.suffix == ".docx":
        make_docx(plain, [("p", "Offen")])  # type: ignore[arg-type]
    else:
        make_odt(path, [("p", "Offen")])
        plain = io.BytesIO(path.read_bytes())
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == part:
                xml = data.decode("utf-8")
                cut = xml.index("?>") + 2
                root = xml[cut:].lstrip().split()[0][1:]
                doctype = f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "file://{Path(target).resolve()}">]>'
                data = (xml[:cut] + doctype + xml[cut:]).replace("Offen", "Offen &x;").encode("utf-8")
            zout.writestr(info, data)
    path.write_bytes(out.getvalue())
    return path


def make_truncated(path: Path, source: Path, *, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``source`` (an interrupted download)."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def make_slow_render_pdf(path: Path, text: str, *, ops: int = 60_000) -> Path:
    """A one-page PDF whose text reads instantly but whose page takes minutes to render: a
    function-based shading with a PostScript function of ``ops`` operators, evaluated by PDFium
    for every pixel (about 18 s per 1,000 operators at 1,400 px on one core)."""
    def obj_stream(data: bytes, extra: bytes = b"") -> bytes:
        packed = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"

    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 "
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> /Shading << /Sh0 5 0 R >> >> >>",
        obj_stream(b"/Sh0 sh\nBT /F1 12 Tf 72 720 Td (" + safe + b") Tj ET\n"),
        b"<< /ShadingType 1 /ColorSpace /DeviceRGB /Domain [0 1 0 1] /Matrix [595 0 0 842 0 0] /Function 6 0 R >>",
        obj_stream(b"{ " + b"0.5 mul 0.5 add " * ops + b"dup dup }",
                   b"/FunctionType 4 /Domain [0 1 0 1] /Range [0 1 0 1 0 1] "),
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path
