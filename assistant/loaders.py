"""Turn a file into a :class:`ParsedDoc`: text per page plus metadata.

The loaders run on untrusted files. They never fetch anything (no URLs, no external
entities, no linked images) and they cap what a file may make them allocate: pypdf's
decompression limits are set per call and DOCX/ODT archives are checked before they
are opened. Wall-clock and address-space limits come from :mod:`assistant.sandbox`.
"""
from __future__ import annotations

import codecs
import datetime as _dt
import io
import math
import os
import re
import shutil
import subprocess
import time
import zipfile
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

from .config import IngestSettings
from .errors import UserError
from .programmes import split_front_matter
from .types import Page, ParsedDoc

SUPPORTED_EXTENSIONS = (".pdf", ".docx", ".odt", ".html", ".htm", ".md", ".markdown", ".txt")
SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml")

# German keys people write into sidecars, mapped to the names the index filters on
META_ALIASES = {"titel": "title", "datum": "date", "typ": "type", "gemeinde": "municipality",
                "kommune": "municipality", "stadt": "municipality", "gremium": "committee",
                "drucksache": "paper_number", "vorlage": "paper_number"}

ZIP_MAX_ENTRIES = 5_000
ZIP_MAX_TOTAL_MB = 200          # lxml needs several times this in RAM
ZIP_MAX_RATIO = 100             # real DOCX/ODT parts compress 5-20x; bombs 1000x
OCR_DPI = 300
OCR_MAX_PIXELS = 40_000_000     # a 2 m wide "page" must not become a 10 GB bitmap


class LoadError(UserError):
    """A file could not be read; the ingest run lists it and goes on."""


def is_sidecar(path: Path) -> bool:
    """``X.pdf.meta.yaml`` belongs to ``X.pdf``; the ingest walker must not load it itself."""
    return path.name.lower().endswith(SIDECAR_SUFFIXES)


def load(path: Path, *, settings: IngestSettings) -> ParsedDoc:
    """Parse one file in this process (see :func:`assistant.sandbox.parse_file` for untrusted input)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _LOADERS:
        raise LoadError(f"Dateityp nicht unterstützt: {ext or '(ohne Endung)'}",
                        f"File type not supported: {ext or '(no extension)'}",
                        "Unterstützt: " + ", ".join(SUPPORTED_EXTENSIONS))
    check_size(path, settings)
    doc = _LOADERS[ext](path, settings)
    _merge_sidecar(path, doc)
    for page in doc.pages:
        page.text = _clean(page.text)
    if not any(p.text.strip() for p in doc.pages):
        detail = "; ".join(doc.warnings[:3])
        raise LoadError(f"Kein Text gefunden{': ' + detail if detail else ''}",
                        f"No text found{': ' + detail if detail else ''}",
                        "Gescannte PDFs: tesseract-ocr und tesseract-ocr-deu installieren")
    doc.title = str(doc.meta.get("title") or doc.title or path.stem.replace("_", " ")).strip()
    return doc


def check_size(path: Path, settings: IngestSettings) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"Datei nicht lesbar: {exc.strerror}", f"Cannot read file: {exc.strerror}",
                        "Pfad und Leserechte prüfen") from None
    if size == 0:
        raise LoadError("Datei ist leer (0 Bytes)", "File is empty (0 bytes)", "Datei neu exportieren")
    if size > settings.max_file_mb * 1024 * 1024:
        mb = size / 1024 / 1024
        raise LoadError(f"Datei zu groß ({mb:.0f} MB > {settings.max_file_mb} MB)",
                        f"File too large ({mb:.0f} MB > {settings.max_file_mb} MB)",
                        "ingest.max_file_mb erhöhen oder Datei teilen")


def check_archive(path: Path) -> None:
    """Refuse zip bombs before python-docx/odfpy inflate them (sizes from the central directory;
    zipfile stops at the declared size, so a lying header yields a CRC error, not a bomb)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoadError(f"Datei beschädigt (kein gültiges ZIP-Archiv): {exc}",
                        f"File corrupt (not a valid ZIP archive): {exc}", "Datei neu speichern") from None
    total = sum(i.file_size for i in infos)
    bomb = any(i.file_size > 10 * 2**20 and i.file_size > ZIP_MAX_RATIO * max(i.compress_size, 1)
               for i in infos)
    if len(infos) > ZIP_MAX_ENTRIES or total > ZIP_MAX_TOTAL_MB * 2**20 or bomb:
        raise LoadError(f"Archiv abgelehnt (mögliche ZIP-Bombe: {len(infos)} Einträge, "
                        f"{total / 2**20:.0f} MB entpackt)",
                        f"Archive refused (possible zip bomb: {len(infos)} entries, "
                        f"{total / 2**20:.0f} MB uncompressed)", "Datei prüfen oder neu speichern")


# --- PDF ---------------------------------------------------------------------------------

def _pdf_limits(settings: IngestSettings) -> dict[str, int]:
    # pypdf's defaults (75 MB per stream) are fine for 1.5 GB workers; scale down with smaller ones
    cap = max(8, min(75, settings.memory_mb // 16)) * 1_000_000
    return {name: cap for name in (
        "zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
        "jbig2_maximum_output_length", "brotli_maximum_output_length", "image_maximum_buffer_size",
        "array_based_stream_maximum_output_length", "maximum_declared_stream_length")}


def _load_pdf(path: Path, settings: IngestSettings) -> ParsedDoc:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    doc = ParsedDoc(source=str(path), title="", pages=[])
    with pypdf.apply_configuration(**_pdf_limits(settings)), open(path, "rb") as fh:
        try:
            reader = pypdf.PdfReader(fh)
            if reader.is_encrypted and not reader.decrypt(""):
                raise LoadError("PDF ist passwortgeschützt", "PDF is password-protected",
                                "Ungeschützte Fassung der Datei ablegen")
            n_pages = len(reader.pages)
        except (DependencyError, FileNotDecryptedError) as exc:   # AES without 'cryptography'
            raise LoadError(f"PDF-Verschlüsselung nicht lesbar: {exc}", f"Cannot decrypt PDF: {exc}",
                            "Ungeschützte Fassung ablegen oder Paket 'cryptography' installieren") from None
        except (LoadError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 -- pypdf raises many types on broken files
            raise _corrupt("PDF", exc) from None
        if n_pages > settings.max_pages:
            raise LoadError(f"PDF hat zu viele Seiten ({n_pages} > {settings.max_pages})",
                            f"PDF has too many pages ({n_pages} > {settings.max_pages})",
                            "ingest.max_pages erhöhen oder Datei teilen")
        try:
            info = reader.metadata
            title = str(info.title or "") if info else ""
        except Exception:  # noqa: BLE001 -- broken info dicts are common and harmless
            title = ""
        doc.title = "" if _junk_title(title) else title.strip()
        ocr = _Ocr(path, settings) if settings.ocr and shutil.which("tesseract") else None
        try:
            for i in range(n_pages):
                doc.pages.append(_pdf_page(reader.pages[i], i + 1, ocr, doc.warnings))
        finally:
            if ocr is not None and ocr.pdf is not None:
                ocr.pdf.close()
    return doc


def _pdf_page(page: Any, number: int, ocr: _Ocr | None, warnings: list[str]) -> Page:
    from pypdf.errors import LimitReachedError

    try:
        text = page.extract_text() or ""
        if not text.strip():   # extract_text swallows decompression limits; a bomb must not reach OCR
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()
    except LimitReachedError as exc:
        raise LoadError(f"Seite {number}: Grenzwert überschritten, mögliche Dekomprimierungsbombe ({exc})",
                        f"Page {number}: limit reached, possible decompression bomb ({exc})",
                        "Datei prüfen; ggf. neu als PDF/A exportieren") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 -- one bad page must not lose the others
        warnings.append(f"Seite {number}: Text nicht lesbar ({type(exc).__name__})")
        text = ""
    if text.strip():
        return Page(number, text)
    if ocr is None:
        warnings.append(f"Seite {number}: keine Textebene (no text layer)")
        return Page(number, "")
    return Page(number, ocr.page(number - 1, warnings), ocr=True)


def _corrupt(kind: str, exc: BaseException) -> LoadError:
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    return LoadError(f"{kind} beschädigt oder unlesbar ({what})", f"{kind} corrupt or unreadable ({what})",
                     "Datei neu exportieren bzw. im Originalprogramm neu speichern")


def _junk_title(title: str) -> bool:
    t = title.strip().lower()
    return (not t or t in {"untitled", "unbenannt", "title", "titel", "dokument1", "document1"}
            or t.startswith("microsoft word - ") or bool(re.search(r"\.(docx?|odt|pdf|rtf)$", t)))


@lru_cache(maxsize=1)
def _ocr_lang() -> str:
    try:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "eng"
    return "deu" if "deu" in out.split() else "eng"


class _Ocr:
    """Render a page with PDFium and read it with Tesseract (one page at a time, one thread)."""

    def __init__(self, path: Path, settings: IngestSettings) -> None:
        self.path, self.pdf = path, None
        # OCR takes 0.3-2 s a page here: a long scan keeps the pages read so far instead of
        # losing the whole file to the sandbox's wall clock
        self.deadline = time.monotonic() + settings.timeout_s * 0.8

    def page(self, index: int, warnings: list[str]) -> str:
        number = index + 1
        budget = self.deadline - time.monotonic()
        if budget <= 0:
            warnings.append(f"Seite {number}: keine Textebene, OCR übersprungen: Zeitlimit "
                            "(ingest.timeout_s erhöhen)")
            return ""
        try:
            import pypdfium2 as pdfium
            if self.pdf is None:
                self.pdf = pdfium.PdfDocument(str(self.path))
            page = self.pdf[index]
            width, height = page.get_size()
            scale = OCR_DPI / 72
            if width * height * scale * scale > OCR_MAX_PIXELS:
                scale = math.sqrt(OCR_MAX_PIXELS / max(width * height, 1))
            image = page.render(scale=scale, grayscale=True).to_pil().convert("L")
            buf = io.BytesIO()
            image.save(buf, format="PPM")   # uncompressed: no PNG encoding cost per page
            # OMP_THREAD_LIMIT=1: libgomp oversubscribes 2 cores 5-10x (research/stack.md 2f)
            run = subprocess.run(["tesseract", "stdin", "stdout", "-l", _ocr_lang()],
                                 input=buf.getvalue(), capture_output=True, check=True,
                                 timeout=budget, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
            text = run.stdout.decode("utf-8", "replace")
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 -- PDFium or Tesseract failed on this page only
            warnings.append(f"Seite {number}: keine Textebene, OCR fehlgeschlagen ({type(exc).__name__})")
            return ""
        if not text.strip():
            warnings.append(f"Seite {number}: keine Textebene, OCR ohne Ergebnis (no text recognised)")
        return text


# --- office formats ----------------------------------------------------------------------

def _heading(level: int, text: str) -> str:
    return f"{'#' * max(1, min(level, 6))} {text.strip()}"


def _load_docx(path: Path, settings: IngestSettings) -> ParsedDoc:
    check_archive(path)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks = list(document.iter_inner_content())
        title = document.core_properties.title or ""
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 -- python-docx raises many types on broken packages
        raise _corrupt("DOCX", exc) from None
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            lines.extend(_table_lines([[c.text for c in row.cells] for row in block.rows]))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        m = re.match(r"(?i)(heading|überschrift)\s*(\d)", style)
        if m or style.lower() in ("title", "titel"):
            lines += ["", _heading(int(m.group(2)) if m else 1, text), ""]
        elif "list" in style.lower() or (block._p.pPr is not None and block._p.pPr.numPr is not None):
            lines.append(f"- {text}")
        else:
            lines += [text, ""]
    return ParsedDoc(source=str(path), title=title.strip(), pages=[Page(None, "\n".join(lines))])


def _table_lines(rows: list[list[str]]) -> list[str]:
    out = []
    for cells in rows:
        seen: list[str] = []
        for cell in cells:          # merged cells repeat their text in every grid column
            cell = " ".join(cell.split())
            if cell and (not seen or seen[-1] != cell):
                seen.append(cell)
        if seen:
            out.append(" | ".join(seen))
    return ["", *out, ""] if out else out


def _load_odt(path: Path, settings: IngestSettings) -> ParsedDoc:
    check_archive(path)
    from odf import teletype
    from odf.namespaces import DCNS, TABLENS, TEXTNS
    from odf.opendocument import load as odf_load
    from odf.table import TableCell, TableRow

    try:
        document = odf_load(str(path))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _corrupt("ODT", exc) from None
    lines: list[str] = []

    def walk(node: Any, depth: int = 0, in_list: bool = False) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (TEXTNS, "h"):
                level = int(child.getAttribute("outlinelevel") or 1)
                lines.extend(["", _heading(level, teletype.extractText(child)), ""])
            elif qname == (TEXTNS, "p"):
                text = teletype.extractText(child).strip()
                if text:
                    lines.extend([f"- {text}"] if in_list else [text, ""])
            elif qname == (TEXTNS, "list"):
                walk(child, depth + 1, True)
                lines.append("")
            elif qname == (TABLENS, "table"):
                lines.extend(_table_lines([[teletype.extractText(c) for c in r.getElementsByType(TableCell)]
                                           for r in child.getElementsByType(TableRow)]))
            elif qname is not None and depth < 50 and qname[1] not in ("tracked-changes", "sequence-decls"):
                walk(child, depth + 1, in_list)

    walk(document.text)
    title = ""
    for node in document.meta.childNodes:
        if getattr(node, "qname", None) == (DCNS, "title"):
            title = teletype.extractText(node)
    return ParsedDoc(source=str(path), title=title.strip(), pages=[Page(None, "\n".join(lines))])


# --- text formats ------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Bytes -> str: BOM, then a declared charset, then UTF-8, cp1252, latin-1; refuse binaries."""
    if b"\x00" in data[:65536] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoadError("Binärdatei, keine Textdatei", "Binary file, not text",
                        "Richtige Dateiendung verwenden")
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            text = data[len(bom):].decode(enc, "replace")
            break
    else:
        for enc in [e for e in (declared, "utf-8", "cp1252") if e] + ["latin-1"]:
            try:
                text = data.decode(enc)
                break
            except (UnicodeDecodeError, LookupError):
                continue
    bad = len(_CONTROL.findall(text))
    if text and bad / len(text) > 0.01:
        raise LoadError("Datei enthält keinen lesbaren Text (Binärdaten oder falsche Kodierung)",
                        "File contains no readable text (binary data or wrong encoding)",
                        "Als UTF-8-Text speichern")
    return text


def _load_txt(path: Path, settings: IngestSettings) -> ParsedDoc:
    return ParsedDoc(source=str(path), title="", pages=[Page(None, decode_text(path.read_bytes()))])


def _load_markdown(path: Path, settings: IngestSettings) -> ParsedDoc:
    text = decode_text(path.read_bytes())
    doc = ParsedDoc(source=str(path), title="", pages=[])
    try:
        meta, body = split_front_matter(text)
    except Exception as exc:  # noqa: BLE001 -- bad front matter must not lose the document
        why = exc.de if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        doc.warnings.append(f"Front Matter ignoriert (ignored): {why}")
        meta, body = {}, text
    doc.meta.update(_normalise_meta(meta))
    m = re.search(r"^#\s+(.+)$", body, re.M)
    doc.title = str(doc.meta.get("title") or (m.group(1) if m else ""))
    doc.pages.append(Page(None, body))
    return doc


class _HTMLText(HTMLParser):
    DROP = {"script", "style", "nav", "aside", "noscript", "template", "svg", "iframe", "object",
            "embed", "button", "select", "head"}
    CHROME = {"header", "footer"}        # page chrome, unless inside the article itself
    BLOCK = {"p", "div", "section", "article", "main", "ul", "ol", "table", "tr", "blockquote",
             "pre", "dl", "dt", "dd", "figure", "figcaption", "address", "br", "hr", "li"}
    VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip: list[str] = []
        self.content_depth = 0
        self.heading: list[str] | None = None
        self.level = 0
        self.title = ""
        self.in_title = False
        self.first_h1 = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title" and not self.title:    # not an <svg><title>
            self.in_title = True
        if tag == "body":
            self.skip.clear()      # an unclosed <head> must not swallow the page
        if self.skip:
            if tag not in self.VOID and (tag in self.DROP or tag in self.CHROME):
                self.skip.append(tag)
            return
        if tag in self.DROP or (tag in self.CHROME and not self.content_depth):
            if tag not in self.VOID:
                self.skip.append(tag)
            return
        if tag in ("article", "main"):
            self.content_depth += 1
        if re.fullmatch(r"h[1-6]", tag):
            self.heading, self.level = [], int(tag[1])
        elif tag == "li":
            self.newlines(1)
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag in self.BLOCK and not (self.out and self.out[-1] == "- "):
            self.newlines(2 if tag == "p" else 1)

    def newlines(self, n: int) -> None:
        """Block boundaries nest (</li></ul></div>): ask for n line breaks, don't add them up."""
        if not self.out:
            return
        tail = "".join(self.out[-4:])
        have = tail[len(tail.rstrip(" \n")):].count("\n")
        if have < n:
            self.out.append("\n" * (n - have))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag in self.skip:   # also closes dropped tags left open inside it
                del self.skip[len(self.skip) - 1 - self.skip[::-1].index(tag):]
            return
        if tag in ("article", "main") and self.content_depth:
            self.content_depth -= 1
        if self.heading is not None and re.fullmatch(r"h[1-6]", tag):
            text = " ".join("".join(self.heading).split())
            if text:
                self.newlines(2)
                self.out.append(_heading(self.level, text))
                self.newlines(2)
                if self.level == 1 and not self.first_h1:
                    self.first_h1 = text
            self.heading = None
        elif tag in self.BLOCK:
            self.newlines(2 if tag == "p" else 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif self.skip:
            return
        elif self.heading is not None:
            self.heading.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))


def _load_html(path: Path, settings: IngestSettings) -> ParsedDoc:
    data = path.read_bytes()
    m = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", data[:4096], re.I)
    parser = _HTMLText()
    parser.feed(decode_text(data, m.group(1).decode("ascii") if m else None))
    parser.close()
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", "".join(parser.out))
    text = re.sub(r"(?m)^\| ", "", text)
    title = " ".join(parser.title.split()) or parser.first_h1
    return ParsedDoc(source=str(path), title=title, pages=[Page(None, text)])


# --- shared ------------------------------------------------------------------------------

def _normalise_meta(meta: dict[Any, Any]) -> dict[str, Any]:
    """Lower-case keys, German aliases mapped, YAML dates as ISO strings (JSON- and pickle-safe)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value
    keys = (str(k).strip().lower() for k in meta)
    return {META_ALIASES.get(k, k): plain(v) for k, v in zip(keys, meta.values())}


def _merge_sidecar(path: Path, doc: ParsedDoc) -> None:
    for suffix in SIDECAR_SUFFIXES:
        sidecar = path.with_name(path.name + suffix)
        if not sidecar.is_file():
            continue
        try:
            meta = yaml.safe_load(decode_text(sidecar.read_bytes())) or {}
            if not isinstance(meta, dict):
                raise ValueError("not a mapping")
        except (yaml.YAMLError, ValueError, LoadError, OSError) as exc:
            doc.warnings.append(f"{sidecar.name} fehlerhaft, ignoriert ({exc})")
            continue
        doc.meta.update(_normalise_meta(meta))


def _clean(text: str) -> str:
    """One text form for every format: \\n line ends, no trailing blanks, at most one empty line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xad", "").replace("\x00", "")
    text = re.sub(r"[ \t\u00a0]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


_LOADERS = {".pdf": _load_pdf, ".docx": _load_docx, ".odt": _load_odt, ".html": _load_html,
            ".htm": _load_html, ".md": _load_markdown, ".markdown": _load_markdown, ".txt": _load_txt}
