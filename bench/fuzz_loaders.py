"""Fuzz the document loaders with mutated seed files (hypothesis-driven), for a given time.

    .venv/bin/python bench/fuzz_loaders.py [--minutes 1] [--out DIR] [--timeout 10] [--formats pdf,docx,...]

Seeds are valid files made by ``tests/filemakers.py`` (and ``tests/hostile.py``'s plain PDF
writer, whose uncompressed objects are worth mutating): PDF, DOCX, ODT, HTML, Markdown, TXT.
Hypothesis picks a seed and a list of mutations (bit flips, byte sets, truncations, insertions of
random bytes or format tokens, deletions, repeated slices); for DOCX/ODT it mutates one XML
part *inside* the archive and re-zips it, so the XML parsers are reached instead of the CRC
check. ``hypothesis.target`` steers generation towards inputs that take long to parse (hang
candidates).

Every input is parsed twice:

* ``loaders.load`` directly in a forked child with a wall-clock timeout and an address-space
  limit -- outcome ``ok``, ``load_error`` (the loader refused it: fine), ``exception:<Type>``
  (anything else escaped the loader: a bug), ``memory``, ``timeout`` or ``signal:<n>``;
* ``sandbox.parse_file`` -- what ingest does; outcome ``ok``, ``rejected``, or ``timeout``,
  ``crash``, ``parser_error`` (the sandbox caught something the loader let through), ``memory``.

Findings (anything but ok / load_error / rejected) are de-duplicated by signature (category,
exception type, innermost frame) and the reproducer of each is saved under ``--out`` with a
JSON line holding the traceback. Prints counts per format and outcome; exit code 1 when there
were findings. OCR is off (``--ocr`` turns it on): mutated PDFs often lose their text layer and
Tesseract would eat the time budget.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKENS = {
    "pdf": [b"obj", b"endobj", b"stream\n", b"endstream", b"/Length 999999999", b"/Count 2147483647",
            b" 0 R", b"[", b"]", b"<<", b">>", b"/Filter /FlateDecode", b"/Filter /LZWDecode",
            b"/Filter /RunLengthDecode", b"/Filter /ASCIIHexDecode", b"/Prev 9", b"xref\n0 1\n", b"trailer",
            b"%%EOF", b"startxref\n0\n", b"/Kids [2 0 R 2 0 R]", b"/Parent 3 0 R", b"/Encrypt 1 0 R",
            b"BI /W 99999 /H 99999 /F /DCT ID ", b"Tf 1e30 ", b"/Type /Font /Subtype /Type0", b"(", b")",
            b"\\", b"%", b"-0.0000000001", b"99999999999999999999"],
    "xml": [b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;", b"<!ENTITY a 'aaaa'>",
            b"<w:p><w:r><w:t>", b"</w:t></w:r></w:p>", b"<text:p>", b"</text:p>", b"<text:span>" * 50,
            b"<w:tbl>", b"<w:tr>", b"<w:tc>", b'w:val="99999"', b'text:outline-level="999999"',
            b"<![CDATA[", b"]]>", b"&#0;", b"&#x110000;", b"<?xml version='1.0' encoding='utf-16'?>",
            b'w:gridSpan="65535"', b'table:number-columns-repeated="1000000"', b"\xff\xfe"],
    "html": [b"<script>", b"</script>", b"<embed>", b"<!--", b"-->", b"<![CDATA[", b"&#99999999;",
             b"&#x110000;", b"<h1>", b"</h1>", b"<li>", b"<td>", b"<head>", b"<body>", b"<svg><title>",
             b'<meta charset="utf-32">', b'<meta charset="no-such-codec">', b"<" * 100, b"\x00"],
    "text": [b"---\n", b"&a [", b"*a", b"!!python/object/apply:os.system ['true']", b"? ", b": ", b"- ",
             b"\x00", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\r", "\u2028".encode("utf-8"), b"#" * 200, b"\xad", b"\x1b[31m"],
}
EXT_TOKENS = {".pdf": "pdf", ".docx": "xml", ".odt": "xml", ".html": "html", ".md": "text", ".txt": "text"}
FINE_DIRECT = {"ok", "load_error"}
FINE_SANDBOX = {"ok", "rejected"}


# --- seeds -------------------------------------------------------------------------------------

def make_seeds(folder: Path) -> dict[str, bytes]:
    from tests import filemakers as fm
    from tests import hostile

    folder.mkdir(parents=True, exist_ok=True)
    text = "Der Rat beschließt die Haushaltssatzung. Die Förderquote beträgt 70 Prozent."
    made = {
        "fpdf.pdf": fm.make_pdf(folder / "s.pdf", [text, "Seite zwei: Radwege."], title="Haushalt"),
        "docx.docx": fm.make_docx(folder / "s.docx", [("h1", "Titel"), ("p", text), ("bullet", "Punkt"),
                                                      ("table", [["A", "B"], ["1", "2"]])], title="T"),
        "odt.odt": fm.make_odt(folder / "s.odt", [("h1", "Titel"), ("p", text), ("bullet", "Punkt"),
                                                  ("table", [["A", "B"], ["1", "2"]])], title="T"),
        "html.html": fm.make_html(folder / "s.html", f"<h1>Titel</h1><p>{text}</p><ul><li>a</li></ul>"
                                  "<table><tr><td>1</td><td>2</td></tr></table>"),
        "md.md": fm.make_markdown(folder / "s.md", f"# Titel\n\n{text}\n\n- a\n- b\n",
                                  {"title": "T", "date": "2024-05-02", "tags": ["a", "b"]}),
        "txt.txt": fm.make_text(folder / "s.txt", text * 3, encoding="cp1252"),
    }
    seeds = {name: Path(p).read_bytes() for name, p in made.items()}
    # plain PDFs: readable objects, one with a Flate stream, one with an xref stream-free outline
    seeds["plain.pdf"] = hostile._simple_pdf("Plain text page for the fuzzer.")
    import zlib
    ops = hostile._text_ops("Compressed content stream.")
    seeds["flate.pdf"] = hostile.pdf_bytes([
        b"<< /Type /Catalog /Pages 2 0 R /Outlines 5 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        hostile._page(), hostile._stream(zlib.compress(ops), b"/Filter /FlateDecode "),
        b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
        b"<< /Title (Kapitel) /Parent 5 0 R /Dest [3 0 R /Fit] >>"], trailer=b"/Info << /Title (Fuzz) >> ")
    return seeds


def ext_of(seed_name: str) -> str:
    return Path(seed_name).suffix


# --- mutations -----------------------------------------------------------------------------------

def mutate(data: bytes, ops: list[tuple], tokens: list[bytes]) -> bytes:
    buf = bytearray(data)
    for op in ops:
        kind, where = op[0], op[1]
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if kind == "flip" and buf:
            buf[pos] ^= 1 << op[2]
        elif kind == "byte" and buf:
            buf[pos] = op[2]
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            ins = op[2] if isinstance(op[2], bytes) else tokens[op[2] % len(tokens)]
            buf[pos:pos] = ins
        elif kind == "delete":
            del buf[pos:pos + op[2]]
        elif kind == "repeat":
            piece = bytes(buf[pos:pos + op[2]])
            buf[pos:pos] = piece * op[3]
        elif kind == "digits" and buf:      # grow a number: offsets, lengths, counts, nesting
            end = pos
            while end < len(buf) and 48 <= buf[end] <= 57:
                end += 1
            buf[pos:end] = str(10 ** op[2] - 1).encode()
    return bytes(buf)


def mutate_zip(data: bytes, member_pick: int, ops: list[tuple], tokens: list[bytes]) -> bytes:
    """Mutate one XML part inside the archive and re-zip (valid CRCs, so the parser sees it)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    infos = src.infolist()
    xml = [i for i in infos if i.filename.endswith(".xml")] or infos
    target = xml[member_pick % len(xml)].filename
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in infos:
            part = src.read(info.filename)
            if info.filename == target:
                part = mutate(part, ops, tokens)
            dst.writestr(info, part)
    return out.getvalue()


def strategies(seed_names: list[str]):
    from hypothesis import strategies as st

    where = st.floats(0, 1, allow_nan=False)
    op = st.one_of(
        st.tuples(st.just("flip"), where, st.integers(0, 7)),
        st.tuples(st.just("byte"), where, st.integers(0, 255)),
        st.tuples(st.just("truncate"), where),
        st.tuples(st.just("insert"), where, st.one_of(st.integers(0, 1000), st.binary(min_size=1, max_size=64))),
        st.tuples(st.just("delete"), where, st.integers(1, 512)),
        st.tuples(st.just("repeat"), where, st.integers(1, 256), st.integers(2, 2000)),
        st.tuples(st.just("digits"), where, st.integers(1, 19)),
    )
    return st.fixed_dictionaries({
        "seed": st.sampled_from(seed_names),
        "inner": st.booleans(),               # DOCX/ODT: mutate inside the archive (else raw bytes)
        "member": st.integers(0, 50),
        "ops": st.lists(op, min_size=1, max_size=6),
    })


# --- running one input ---------------------------------------------------------------------------

def _direct_child(conn, path: str, memory_mb: int, quiet: bool) -> None:
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ["OMP_THREAD_LIMIT"] = "1"
    if quiet:
        sys.stdout = sys.stderr = open(os.devnull, "w")     # odfpy print()s whole XML parts
    import logging
    import warnings
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    from assistant.config import IngestSettings
    from assistant.ingest.loaders import LoadError, load
    try:
        load(Path(path), settings=IngestSettings(ocr=False, memory_mb=memory_mb))
        conn.send(("ok", "", ""))
    except LoadError as exc:
        conn.send(("load_error", "", str(exc)[:300]))
    except MemoryError:
        conn.send(("memory", "MemoryError", traceback.format_exc()[-3000:]))
    except BaseException as exc:  # noqa: BLE001 -- this is what we are looking for
        conn.send((f"exception:{type(exc).__name__}", _where(exc), traceback.format_exc()[-3000:]))


def _where(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if "site-packages" in f.filename or "/assistant/" in f.filename] or tb
    f = frames[-1] if frames else None
    return f"{Path(f.filename).name}:{f.lineno}:{f.name}" if f else ""


def run_direct(path: Path, timeout: float, memory_mb: int, quiet: bool = True) -> tuple[str, str, str, float]:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    started = time.monotonic()
    proc = ctx.Process(target=_direct_child, args=(child, str(path), memory_mb, quiet), daemon=True)
    proc.start()
    child.close()
    kind: str | None
    where = detail = ""
    try:
        if parent.poll(timeout):
            try:
                kind, where, detail = parent.recv()
            except EOFError:                      # died before it could answer
                kind = None
        else:
            kind, detail = "timeout", f"no result after {timeout:g} s"
            proc.kill()
    finally:
        elapsed = time.monotonic() - started
        proc.join(5)
        parent.close()
    if kind is None:
        code = proc.exitcode
        kind = f"signal:{-code}" if code is not None and code < 0 else f"exit:{code}"
        detail = "child died without a result"
    return kind, where, detail, elapsed


def run_sandbox(path: Path, settings) -> tuple[str, str]:
    from assistant.ingest import sandbox
    from assistant.ingest.loaders import LoadError

    try:
        sandbox.parse_file(path, settings)
        return "ok", ""
    except LoadError as exc:
        msg = str(exc)
        for needle, kind in (("Zeitlimit", "timeout"), ("Parser abgestürzt", "crash"),
                             ("Parser unerwartet beendet", "crash"), ("Parser-Fehler", "parser_error"),
                             ("zu tief verschachtelt", "parser_error"), ("Speicherlimit", "memory")):
            if needle in msg:
                return kind, msg[:300]
        return "rejected", ""


# --- the campaign -------------------------------------------------------------------------------

class Campaign:
    def __init__(self, args, seeds: dict[str, bytes], work: Path) -> None:
        from assistant.config import IngestSettings

        self.args, self.seeds, self.work = args, seeds, work
        self.deadline = time.monotonic() + args.minutes * 60
        self.sandbox_settings = IngestSettings(timeout_s=args.timeout, memory_mb=args.memory_mb, ocr=args.ocr,
                                               workers=1)
        self.direct = Counter()
        self.sandboxed = Counter()
        self.per_format: dict[str, Counter] = defaultdict(Counter)
        self.findings: dict[str, dict] = {}
        self.executions = 0
        self.slowest = (0.0, "")

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def one(self, plan: dict) -> float:
        name = plan["seed"]
        ext = ext_of(name)
        tokens = TOKENS[EXT_TOKENS[ext]]
        data = self.seeds[name]
        try:
            if ext in (".docx", ".odt") and plan["inner"]:
                blob = mutate_zip(data, plan["member"], plan["ops"], tokens)
            else:
                blob = mutate(data, plan["ops"], tokens)
        except Exception:  # noqa: BLE001 -- a mutation that cannot be applied is skipped
            return 0.0
        path = self.work / f"input{ext}"
        path.write_bytes(blob)
        kind, where, detail, elapsed = run_direct(path, self.args.timeout, self.args.memory_mb,
                                                 not self.args.show_parser_output)
        skind, sdetail = run_sandbox(path, self.sandbox_settings) if self.args.sandbox else ("skipped", "")
        self.executions += 1
        self.direct[kind] += 1
        self.sandboxed[skind] += 1
        self.per_format[ext][kind if kind in FINE_DIRECT else "finding"] += 1
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, f"{name} {len(blob)} bytes")
        if kind not in FINE_DIRECT:
            self.record(kind, where, detail, blob, ext, "direct", plan)
        if skind not in FINE_SANDBOX | {"skipped"}:
            self.record(f"sandbox-{skind}", where if skind == "parser_error" else "", sdetail, blob, ext,
                        "sandbox", plan)
        return elapsed

    def record(self, kind: str, where: str, detail: str, blob: bytes, ext: str, via: str, plan: dict) -> None:
        signature = f"{kind}|{where}|{ext}"
        entry = self.findings.get(signature)
        if entry is not None:
            entry["count"] += 1
            if len(blob) < entry["size"]:         # keep the smallest reproducer
                self._save(entry, blob, ext)
            return
        entry = {"signature": signature, "kind": kind, "where": where, "via": via, "format": ext,
                 "seed": plan["seed"], "count": 1, "detail": detail, "size": len(blob)}
        self._save(entry, blob, ext)
        self.findings[signature] = entry
        print(f"  FINDING {kind} {where} ({ext}, via {via}) -> {entry['reproducer']}", flush=True)

    def _save(self, entry: dict, blob: bytes, ext: str) -> None:
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(blob).hexdigest()[:12]
        kind = entry["kind"].replace(":", "-")
        path = out / f"{kind}-{digest}{ext}"
        path.write_bytes(blob)
        entry["reproducer"], entry["size"] = str(path), len(blob)

    def run(self) -> None:
        from hypothesis import HealthCheck, Phase, given, settings, target

        plans = strategies(sorted(self.seeds))

        @settings(max_examples=self.args.batch, deadline=None, database=None, derandomize=False,
                  phases=[Phase.generate, Phase.target], suppress_health_check=list(HealthCheck),
                  print_blob=False)
        @given(plans)
        def batch(plan: dict) -> None:
            if self.time_left() <= 0:
                return
            elapsed = self.one(plan)
            target(elapsed, label="parse seconds")       # steer towards slow inputs (hang candidates)

        rounds = 0
        while self.time_left() > 0:
            batch()
            rounds += 1
            print(f"  [{self.args.minutes * 60 - max(self.time_left(), 0):5.0f} s] {self.executions} inputs, "
                  f"{len(self.findings)} findings", flush=True)

    def summary(self) -> dict:
        return {"executions": self.executions, "direct": dict(self.direct), "sandbox": dict(self.sandboxed),
                "per_format": {k: dict(v) for k, v in sorted(self.per_format.items())},
                "slowest_s": round(self.slowest[0], 2), "slowest_input": self.slowest[1],
                "findings": sorted(self.findings.values(), key=lambda f: f["signature"])}


def _quiet_children() -> None:
    """Children (direct forks, the sandbox's forkserver and workers) inherit fds 1 and 2: point
    those at /dev/null and keep this process's own output on duplicates of them."""
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stdout = os.fdopen(out, "w", buffering=1)
    sys.stderr = os.fdopen(err, "w", buffering=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="how long to fuzz (default 1)")
    p.add_argument("--out", default=str(ROOT / "test-artifacts" / "fuzz-loaders"),
                   help="folder for reproducers and findings.json")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per input and parser (default 10)")
    p.add_argument("--memory-mb", type=int, default=1024, help="address-space limit per parse (default 1024)")
    p.add_argument("--batch", type=int, default=40, help="hypothesis examples per round")
    p.add_argument("--formats", default="", help="only these seed formats, e.g. pdf,docx")
    p.add_argument("--ocr", action="store_true", help="let PDFs without text go to Tesseract")
    p.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                   help="only the direct child (twice the inputs per minute)")
    p.add_argument("--show-parser-output", action="store_true",
                   help="let parsers write to the terminal (odfpy prints whole XML parts on errors)")
    args = p.parse_args(argv)
    if not args.show_parser_output:
        _quiet_children()

    import logging
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="fuzz-loaders-") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds")
        if args.formats:
            wanted = {"." + f.strip().lstrip(".") for f in args.formats.split(",")}
            seeds = {k: v for k, v in seeds.items() if ext_of(k) in wanted}
            if not seeds:
                p.error(f"no seeds for --formats {args.formats}")
        print(f"fuzzing loaders for {args.minutes:g} min: {len(seeds)} seeds ({', '.join(sorted(seeds))}), "
              f"timeout {args.timeout:g} s, memory {args.memory_mb} MB, sandbox {'on' if args.sandbox else 'off'}",
              flush=True)
        campaign = Campaign(args, seeds, Path(tmp))
        campaign.run()
    result = campaign.summary()
    out = Path(args.out)
    if result["findings"]:
        out.mkdir(parents=True, exist_ok=True)
        (out / "findings.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("\n== summary ==")
    print(f"inputs: {result['executions']}  (slowest {result['slowest_s']} s: {result['slowest_input']})")
    print("direct loaders.load: " + ", ".join(f"{k} {v}" for k, v in sorted(result["direct"].items())))
    print("sandbox.parse_file:  " + ", ".join(f"{k} {v}" for k, v in sorted(result["sandbox"].items())))
    for ext, counts in result["per_format"].items():
        print(f"  {ext:6} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not result["findings"]:
        print("no crashes, hangs or unexpected exceptions")
        return 0
    print(f"{len(result['findings'])} finding(s) (reproducers and tracebacks in {out}/findings.json):")
    for f in result["findings"]:
        print(f"  {f['kind']:28} {f['where'] or '-':45} {f['format']:6} x{f['count']}  {f['reproducer']}")
        if f["detail"]:
            print("      " + f["detail"].strip().splitlines()[-1][:200])
    return 1


if __name__ == "__main__":
    sys.exit(main())
