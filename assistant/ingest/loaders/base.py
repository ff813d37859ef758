"""What every format loader shares: limits, the load error, text decoding, sidecar metadata.

The loaders run on untrusted files. They never fetch anything (no URLs, no external
entities, no linked images) and they cap what a file may make them allocate: pypdf's
decompression limits are set per call, DOCX/ODT archives are checked before they are
opened and YAML metadata is bounded while it is walked. Wall-clock and address-space
limits come from :mod:`assistant.ingest.sandbox`. Text a reader cannot see (hidden HTML elements,
hidden DOCX runs, white or tiny PDF text) is not indexed: a cheap layer against prompt
injection.
"""
from __future__ import annotations

import codecs
import datetime as _dt
import re
import zipfile
from pathlib import Path
from typing import Any

from ... import frontmatter
from ...config import IngestSettings
from ...errors import UserError
from ...types import ParsedDoc

SUPPORTED_EXTENSIONS = (".pdf", ".docx", ".odt", ".html", ".htm", ".md", ".markdown", ".txt")
SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml")

# German keys people write into sidecars, mapped to the names the index filters on
META_ALIASES = {"titel": "title", "datum": "date", "typ": "type", "gemeinde": "municipality",
                "kommune": "municipality", "stadt": "municipality", "gremium": "committee",
                "drucksache": "paper_number", "vorlage": "paper_number"}

META_MAX_ITEMS = 10_000         # YAML aliases share objects: 1 KB can expand to 9^10 items
META_MAX_DEPTH = 32             # ...or refer to themselves (`a: &a [*a]`)
ZIP_MAX_ENTRIES = 5_000
ZIP_MAX_TOTAL_MB = 200          # lxml needs several times this in RAM
ZIP_MAX_RATIO = 100             # real DOCX/ODT parts compress 5-20x; bombs 1000x


class LoadError(UserError):
    """A file could not be read; the ingest run lists it and goes on."""


def is_sidecar(path: Path) -> bool:
    """``X.pdf.meta.yaml`` belongs to ``X.pdf``; the ingest walker must not load it itself."""
    return path.name.lower().endswith(SIDECAR_SUFFIXES)


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


def corrupt(kind: str, exc: BaseException) -> LoadError:
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    return LoadError(f"{kind} beschädigt oder unlesbar ({what})", f"{kind} corrupt or unreadable ({what})",
                     "Datei neu exportieren bzw. im Originalprogramm neu speichern")


def junk_title(title: str) -> bool:
    t = title.strip().lower()
    return (not t or t in {"untitled", "unbenannt", "title", "titel", "dokument1", "document1"}
            or t.startswith("microsoft word - ") or bool(re.search(r"\.(docx?|odt|pdf|rtf)$", t)))


def heading(level: int, text: str) -> str:
    return f"{'#' * max(1, min(level, 6))} {text.strip()}"



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


# --- shared ------------------------------------------------------------------------------

def normalise_meta(meta: dict[Any, Any]) -> dict[str, Any]:
    """Lower-case keys, German aliases mapped, YAML dates as ISO strings (JSON- and pickle-safe).

    Raises ValueError when YAML aliases expand the data beyond :data:`META_MAX_ITEMS` items or
    :data:`META_MAX_DEPTH` levels (billion laughs, self-references); callers ignore it then."""
    count = 0

    def plain(value: Any, depth: int) -> Any:
        nonlocal count
        count += 1
        if count > META_MAX_ITEMS or depth > META_MAX_DEPTH:
            raise ValueError(f"Metadaten zu groß (> {META_MAX_ITEMS} Einträge oder {META_MAX_DEPTH} "
                             "Ebenen, YAML-Aliase?) / metadata too large (YAML aliases?)")
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if isinstance(value, dict):
            return {str(k): plain(v, depth + 1) for k, v in value.items()}
        return [plain(v, depth + 1) for v in value] if isinstance(value, (list, tuple)) else value
    keys = [str(k).strip().lower() for k in meta]
    return {META_ALIASES.get(k, k): plain(v, 1) for k, v in zip(keys, meta.values())}


def merge_sidecar(path: Path, doc: ParsedDoc) -> None:
    for suffix in SIDECAR_SUFFIXES:
        sidecar = path.with_name(path.name + suffix)
        if not sidecar.is_file():
            continue
        if sidecar.is_symlink():   # a link could pull any readable file (the config) into the metadata
            doc.warnings.append(f"{sidecar.name} ist eine Verknüpfung (Symlink) und wird ignoriert")
            continue
        try:
            meta = frontmatter.load_yaml(decode_text(sidecar.read_bytes())) or {}
            if not isinstance(meta, dict):
                raise ValueError("not a mapping")
            meta = normalise_meta(meta)
        except (frontmatter.FrontMatterError, LoadError) as exc:
            doc.warnings.append(f"{sidecar.name} fehlerhaft, ignoriert ({exc.de})")
            continue
        except (ValueError, OSError) as exc:
            doc.warnings.append(f"{sidecar.name} fehlerhaft, ignoriert ({exc})")
            continue
        doc.meta.update(meta)


def clean(text: str) -> str:
    """One text form for every format: \\n line ends, no trailing blanks, at most one empty line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xad", "").replace("\x00", "")
    text = re.sub(r"[ \t\u00a0]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
