"""PDF -> text per page: pypdf's text layer, Tesseract OCR for pages without one; running heads
and feet (the lines repeated on every page) removed (``running_lines``).

Text a reader cannot see is left out while pypdf reads the page (see :class:`_InvisibleText`):
white text that is not drawn over a filled shape or an image, and text below 2 pt. OCR text
layers (rendering mode 3, "invisible") are kept: that is how searchable scans carry their text.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...config import IngestSettings
from ...types import Page, ParsedDoc
from ..running_lines import strip_running_lines
from .base import LoadError, corrupt, junk_title

OCR_DPI = 300
OCR_MAX_PIXELS = 40_000_000     # a 2 m wide "page" must not become a 10 GB bitmap
WHITE = 0.97                    # a fill colour this close to white counts as white
MIN_FONT_PT = 2.0               # smaller text is not meant to be read
MAX_BACKGROUNDS = 2_000         # filled shapes remembered per page (white text over them is kept)


def _pdf_limits(settings: IngestSettings) -> dict[str, int]:
    # pypdf's defaults (75 MB per stream) are fine for 1.5 GB workers; scale down with smaller ones
    cap = max(8, min(75, settings.memory_mb // 16)) * 1_000_000
    return {name: cap for name in (
        "zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
        "jbig2_maximum_output_length", "brotli_maximum_output_length", "image_maximum_buffer_size",
        "array_based_stream_maximum_output_length", "maximum_declared_stream_length")}


def load_pdf(path: Path, settings: IngestSettings) -> ParsedDoc:
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
            raise corrupt("PDF", exc) from None
        if n_pages > settings.max_pages:
            raise LoadError(f"PDF hat zu viele Seiten ({n_pages} > {settings.max_pages})",
                            f"PDF has too many pages ({n_pages} > {settings.max_pages})",
                            "ingest.max_pages erhöhen oder Datei teilen")
        try:
            info = reader.metadata
            title = str(info.title or "") if info else ""
        except Exception:  # noqa: BLE001 -- broken info dicts are common and harmless
            title = ""
        doc.title = "" if junk_title(title) else title.strip()
        ocr = _Ocr(path, settings) if settings.ocr and shutil.which("tesseract") else None
        invisible: list[int] = []
        try:
            for i in range(n_pages):
                doc.pages.append(_pdf_page(reader.pages[i], i + 1, ocr, doc.warnings, invisible))
        finally:
            if ocr is not None and ocr.pdf is not None:
                ocr.pdf.close()
    for page, text in zip(doc.pages, strip_running_lines([p.text for p in doc.pages])):
        page.text = text
    if invisible:
        pages = ", ".join(map(str, invisible[:10])) + (" …" if len(invisible) > 10 else "")
        doc.warnings.append(f"Unsichtbarer Text ausgelassen (weiß oder < {MIN_FONT_PT:g} pt) auf Seite "
                            f"{pages} (invisible text dropped)")
    return doc


def _pdf_page(page: Any, number: int, ocr: _Ocr | None, warnings: list[str], invisible: list[int]) -> Page:
    from pypdf.errors import LimitReachedError

    try:
        hide = _InvisibleText(page)
        text = page.extract_text(visitor_operand_before=hide.before, visitor_operand_after=hide.after) or ""
        if hide.dropped:
            invisible.append(number)
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


def _mult(m: list[float], n: list[float]) -> list[float]:
    return [m[0] * n[0] + m[1] * n[2], m[0] * n[1] + m[1] * n[3], m[2] * n[0] + m[3] * n[2],
            m[2] * n[1] + m[3] * n[3], m[4] * n[0] + m[5] * n[2] + n[4], m[4] * n[1] + m[5] * n[3] + n[5]]


class _InvisibleText:
    """Operator visitors for ``page.extract_text`` that blank the strings of text-showing operators
    nobody can read, before pypdf decodes them.

    Tracks, with q/Q: the fill colour (white = gray 1, RGB 1 1 1, CMYK 0 0 0 0, also through
    ICC-based colour spaces; other spaces count as not white), the text rendering mode, the font
    size, and the shapes and images painted so far. Text is dropped when it is filled white and
    its origin lies on no painted shape, image or shading (white table headers on a dark cell
    stay), or when its size on the page is below MIN_FONT_PT (not checked inside form XObjects,
    whose matrix pypdf does not pass on, nor for Type 3 fonts with their own font matrix).
    """

    SHOW = {b"Tj", b"TJ", b"'", b'"'}
    PATH = {b"m": 2, b"l": 2, b"c": 6, b"v": 4, b"y": 4}
    FILL = {b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"}

    def __init__(self, page: Any) -> None:
        self.resources = _resources(page)
        self.white, self.space, self.mode, self.size, self.type3 = False, "/DeviceGray", 0, 12.0, False
        self.stack: list[tuple[bool, str, int, float, bool]] = []
        self.path: list[tuple[float, float]] = []
        self.painted: list[tuple[float, float, float, float]] = []
        self.everywhere = False          # a shading fills the clip area: we don't know where
        self.forms = 0
        self.dropped = 0
        self.components: dict[str, int | None] = {"/DeviceGray": 1, "/G": 1, "/CalGray": 1, "/DeviceRGB": 3,
                                                  "/RGB": 3, "/CalRGB": 3, "/DeviceCMYK": 4, "/CMYK": 4}

    def before(self, op: bytes, operands: list, cm: list[float], tm: list[float]) -> None:
        try:
            self._before(op, operands, cm, tm)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 -- malformed operands or resources: judge nothing, like pypdf
            pass

    def after(self, op: bytes, operands: list, cm: list[float], tm: list[float]) -> None:
        if op == b"Do":                  # a form XObject runs inside an implicit q/Q
            self.forms = max(0, self.forms - 1)
            if self.stack:
                self.white, self.space, self.mode, self.size, self.type3 = self.stack.pop()

    def _before(self, op: bytes, operands: list, cm: list[float], tm: list[float]) -> None:
        if op in self.SHOW:
            if self._invisible(cm, tm):
                self.dropped += 1
                self._blank(op, operands)
        elif op in (b"q", b"Do"):
            self.stack.append((self.white, self.space, self.mode, self.size, self.type3))
            if op == b"Do":
                self.forms += 1
                if self._subtype("/XObject", operands[0]) == "/Image":
                    self._paint(cm, [(0, 0), (1, 0), (0, 1), (1, 1)])
        elif op == b"Q":
            if self.stack:
                self.white, self.space, self.mode, self.size, self.type3 = self.stack.pop()
        elif op == b"Tf":
            self.size = float(operands[1])
            self.type3 = self._subtype("/Font", operands[0]) == "/Type3"
        elif op == b"Tr":
            self.mode = int(operands[0])
        elif op in (b"g", b"rg", b"k"):
            self.space = {b"g": "/DeviceGray", b"rg": "/DeviceRGB", b"k": "/DeviceCMYK"}[op]
            self.white = self._is_white(self.space, operands)
        elif op == b"cs":
            self.space, self.white = str(operands[0]), False      # every space starts black
        elif op in (b"sc", b"scn"):
            self.white = self._is_white(self.space, operands)
        elif op in self.PATH:
            n = self.PATH[op]
            xs = [float(v) for v in operands[:n]]
            self.path += [_point(cm, xs[i], xs[i + 1]) for i in range(0, n, 2)]
        elif op == b"re":
            x, y, w, h = (float(v) for v in operands[:4])
            self.path += [_point(cm, x + dx, y + dy) for dx in (0, w) for dy in (0, h)]
        elif op in self.FILL:
            if not self.white:
                self._paint(None, self.path)
            self.path = []
        elif op in (b"S", b"s", b"n"):
            self.path = []
        elif op == b"sh":
            self.everywhere = True
        elif op == b"INLINE IMAGE":
            self._paint(cm, [(0, 0), (1, 0), (0, 1), (1, 1)])
        if len(self.path) > 1_000:       # only the bounding box matters: keep its corners
            xs, ys = [p[0] for p in self.path], [p[1] for p in self.path]
            self.path = [(min(xs), min(ys)), (max(xs), max(ys))]

    def _invisible(self, cm: list[float], tm: list[float]) -> bool:
        m = _mult(tm, cm)
        if not self.forms and not self.type3 and abs(self.size) * math.hypot(m[2], m[3]) < MIN_FONT_PT:
            return True
        if not self.white or self.mode not in (0, 4) or self.everywhere:   # 0 fill, 4 fill + clip
            return False
        x, y = m[4], m[5]
        return not any(x0 - 1 <= x <= x1 + 1 and y0 - 1 <= y <= y1 + 1 for x0, y0, x1, y1 in self.painted)

    def _is_white(self, space: str, operands: list) -> bool:
        n = self.components.get(space, 0) if space in self.components else self._resolve(space)
        values = [float(v) for v in operands if isinstance(v, (int, float))]
        if not n or len(values) != n:
            return False                 # pattern, separation, indexed, ...: not judged
        return all(v <= 1 - WHITE for v in values) if n == 4 else all(v >= WHITE for v in values)

    def _resolve(self, name: str) -> int | None:
        """Components of a named colour space from the page resources, if ICC-based or calibrated."""
        n = None
        try:
            cs = self.resources["/ColorSpace"][name].get_object()
            family = str(cs[0]) if isinstance(cs, list) else str(cs)
            if family == "/ICCBased":
                n = int(cs[1].get_object()["/N"])
            elif family in self.components:
                n = self.components[family]
        except Exception:  # noqa: BLE001 -- broken resources: the space is not judged
            pass
        self.components[name] = n
        return n

    def _subtype(self, kind: str, name: Any) -> str:
        if self.forms:
            return ""                    # names inside a form refer to the form's own resources
        try:
            return str(self.resources[kind][name].get_object().get("/Subtype", ""))
        except Exception:  # noqa: BLE001 -- broken resources: treat as unknown
            return ""

    def _paint(self, cm: list[float] | None, points: list[tuple[float, float]]) -> None:
        if cm is not None:
            points = [_point(cm, x, y) for x, y in points]
        if points and len(self.painted) < MAX_BACKGROUNDS:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            self.painted.append((min(xs), min(ys), max(xs), max(ys)))

    @staticmethod
    def _blank(op: bytes, operands: list) -> None:
        from pypdf.generic import ByteStringObject, NameObject, TextStringObject

        def empty(value: Any) -> Any:
            if isinstance(value, bytes):
                return ByteStringObject(b"")
            text = isinstance(value, str) and not isinstance(value, NameObject)
            return TextStringObject("") if text else value
        if op == b"TJ" and operands and isinstance(operands[0], list):
            operands[0][:] = [empty(v) for v in operands[0]]
        elif operands:
            operands[-1] = empty(operands[-1])


def _point(cm: list[float], x: float, y: float) -> tuple[float, float]:
    return x * cm[0] + y * cm[2] + cm[4], x * cm[1] + y * cm[3] + cm[5]


def _resources(page: Any) -> Any:
    try:
        return page["/Resources"].get_object()
    except Exception:  # noqa: BLE001
        return {}


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
            # OMP_THREAD_LIMIT=1: tesseract's OpenMP oversubscribes 2 cores 5-10x beside the embedder
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
