"""The whole workflow as subprocesses of this script, for the zero-egress proof.

    python tests/egress_workflow.py --work DIR --model TEST.gguf [--no-strace] [--trace-browser]
                                    [--dns-log LOG] [--steps ingest,ask,...]

Steps, each a real `pilot-assistant` process on one data dir (DIR/data):
  control  a tiny process that tries 192.0.2.1:80, [2001:db8::1]:80 and a lookup of
           egress-canary.invalid: the audit must flag it, or the audit is blind
  ingest   a slice of the starter corpus (three council papers, two funding programmes)
  ask      one answerable and one unanswerable question
  draft    a short template to .md, then the same draft exported to .odt (--resume)
  webdav   `sync all` of a Nextcloud-style WebDAV folder on 127.0.0.1 (a [[sources]] entry in
           the pilot-assistant.toml every step runs with), then the draft saved into the
           folder with `draft --save-to` (the server runs in this script, untraced)
  eval     evals/suites/starter.yaml --limit 2 (answers), then --retrieval-only
  doctor   doctor --json (reports egress.isolated)
  ui       `serve` on 127.0.0.1, driven by Debian chromium through Playwright: load the
           page, ask, wait for the answer and a source; then the server is stopped (SIGINT)

Tracing: each product process runs under ``strace -f -yy -e trace=connect,sendto,sendmsg,sendmmsg``
(one trace file per step in DIR/traces) and any non-loopback destination fails the run.
Chromium is the user's client, not our product. By default it is launched from this
script, which is not traced; with --trace-browser it runs under the same strace and
exactly one documented attempt is allowed (BROWSER_ALLOWED below).

The child processes get the environment a user would have: the telemetry switches are
removed, so the product's own defaults (assistant/sovereign.py) are what is tested.

Prints a JSON summary on stdout; exit code 0 only if every step worked, no product
process attempted a non-loopback address, the browser did nothing beyond the allowed
probe, the control was flagged and (with --dns-log) no name other than the control's
canary was looked up.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isolation  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("pilot-assistant")
CHROMIUM = "/usr/bin/chromium"
# stack.md 2c/2d: no bare --disable-features (it would replace Playwright's own list);
# the resolver rule keeps chromium's background calls (component updater, autofill) from
# resolving anything
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"]
# The only non-loopback call the browser may make (stack.md 2d, measured with Chromium 156):
# at every launch Chromium connect()s a *UDP* socket to Google's public DNS address on
# port 443 to learn whether IPv6 is routable. connect() on a UDP socket only sets the
# default destination in the kernel; no packet is sent (and here it fails with
# ENETUNREACH). No flag removes it. TCP, another address, another port or a send would
# all fail the run.
BROWSER_ALLOWED = [{"call": "connect", "socket": "UDPv6", "address": "2001:4860:4860::8888", "port": 443}]

# the phone-home switches; removed from the children's environment (see module docstring)
TELEMETRY_VARS = ("GRADIO_ANALYTICS_ENABLED", "GRADIO_RUN_HISTORY", "ANONYMIZED_TELEMETRY", "LANGSMITH_TRACING",
                  "LANGCHAIN_TRACING_V2", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE",
                  "HF_DATASETS_OFFLINE", "DO_NOT_TRACK")
CANARY = "egress-canary.invalid"
CONTROL_CODE = f"""
import socket
for addr in (("192.0.2.1", 80), ("2001:db8::1", 80)):
    try:
        socket.create_connection(addr, timeout=2)
    except OSError as exc:
        print(addr[0], exc)
try:
    socket.getaddrinfo("{CANARY}", 80)
except OSError as exc:
    print("{CANARY}", exc)
"""
COUNCIL = ["0036-2026_beschlussvorlage-ki-assistent-musa.pdf", "0094-2026_niederschrift-adv-ki-assistent.pdf",
           "0263-2026_antwort-informationssicherheit-grundschutz.md"]
FUNDING = ["modellprojekte-smart-cities.md", "rp-kipki.md"]
QUESTION = "Wie viel Geld wurde für das Pilotprojekt MUSA bereitgestellt?"
UNANSWERABLE = "Wie hoch ist die Förderquote im Programm „Smart Region Thüringen“?"
# one generated section keeps the draft short; static and computed sections cost nothing
TEMPLATE = """\
name: egress-kurz
title: "Kurzvorlage (Egress-Test)"
version: 1
language: de
sections:
  - id: betreff
    heading: Betreff
    kind: static
    text: "{title}"
  - id: begruendung
    heading: Begründung
    purpose: Warum das Vorhaben jetzt ansteht.
    guidance: Zwei kurze Sätze mit Bezug auf die Beschlusslage des Rates.
    word_limit: 25
    queries: ["{idea}"]
    source_types: [council]
  - id: finanzen
    heading: Finanzielle Auswirkungen
    kind: computed
    compute: financing
    word_limit: 0
"""
ALL_STEPS = ("control", "ingest", "ask", "draft", "webdav", "eval", "doctor", "ui")
DAV_PASSWORD = "app-passwort-egress"
DAV_DOC = "0188-2026_mitteilung-opendesk-evaluation.pdf"   # not in the ingest step


class StepFailed(Exception):
    pass


class Workflow:
    def __init__(self, args: argparse.Namespace) -> None:
        self.work = Path(args.work).resolve()
        self.data = self.work / "data"
        self.traces = self.work / "traces"
        self.logs = self.work / "logs"
        for d in (self.data, self.traces, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.model = str(Path(args.model).resolve())
        self.strace = args.strace
        self.trace_browser = args.trace_browser and args.strace
        self.timeout = args.timeout
        self.steps: list[dict] = []
        self.result: dict = {}
        self.env = self._env()
        self.dav = self._webdav_source()

    def _webdav_source(self):
        """A WebDAV folder on loopback, configured for every step: [[sources]] and the save-to folder."""
        from webdav_server import NextcloudDav

        dav = NextcloudDav(self.work / "dav", {"pilot": DAV_PASSWORD}).start()
        folder = dav.folder("pilot") / "Ratsunterlagen"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "corpus" / "council" / DAV_DOC, folder / DAV_DOC)
        pw = self.work / "webdav.pw"
        pw.write_text(DAV_PASSWORD + "\n")
        (self.work / "pilot-assistant.toml").write_text(
            f'[webdav]\nsave_to = "{dav.url("pilot", "Entwürfe").replace("http://", "webdav+http://")}"\n'
            f'user = "pilot"\npassword_file = "{pw}"\ntimeout_s = 20\n\n'
            f'[[sources]]\nname = "rat"\nurl = "{dav.url("pilot", "Ratsunterlagen")}"\nuser = "pilot"\n'
            f'password_file = "{pw}"\ncollection = "rat"\ntype = "council"\n', encoding="utf-8")
        return dav

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in TELEMETRY_VARS and not k.startswith("PILOT_ASSISTANT_") and k != "OLLAMA_HOST"}
        env.update({
            "PILOT_ASSISTANT_LLM__THREADS": "1", "PILOT_ASSISTANT_LLM__MAX_TOKENS": "40",
            "PILOT_ASSISTANT_LLM__N_CTX": "2048", "PILOT_ASSISTANT_RETRIEVAL__K": "2",
            "PILOT_ASSISTANT_INGEST__WORKERS": "1",
            "MPLCONFIGDIR": str(self.work / "mpl"), "GRADIO_TEMP_DIR": str(self.work / "gradio"),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    # ------------------------------------------------------------------ running processes
    def _argv(self, name: str, argv: list[str], *, calls: str = "") -> tuple[list[str], Path | None]:
        if not self.strace:
            return argv, None
        trace = self.traces / f"{name}.trace"
        trace.unlink(missing_ok=True)
        extra = {"calls": f"{isolation.TRACE_CALLS},{calls},execve"} if calls else {}
        return isolation.trace_argv(argv, trace, **extra), trace

    def run(self, name: str, *cli: str, product: bool = True, argv: list[str] | None = None,
            expect_json: bool = True, timeout: float | None = None) -> dict:
        argv = argv or [str(EXE), *cli, "--data-dir", str(self.data), "--model", self.model, "--threads", "1"]
        full, trace = self._argv(name, argv)
        step = {"name": name, "argv": argv, "product": product, "trace": str(trace) if trace else None}
        self.steps.append(step)
        t0 = time.monotonic()
        try:
            r = subprocess.run(full, capture_output=True, text=True, env=self.env, cwd=self.work,
                               timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            step.update(rc=None, seconds=round(time.monotonic() - t0, 1), ok=False, error="timeout")
            raise StepFailed(f"{name}: timeout after {timeout or self.timeout} s")
        step.update(rc=r.returncode, seconds=round(time.monotonic() - t0, 1))
        (self.logs / f"{name}.out").write_text(r.stdout)
        (self.logs / f"{name}.err").write_text(r.stderr)
        step["findings"] = self._findings(trace)
        data = None
        if expect_json:
            try:
                data = json.loads(r.stdout)
            except ValueError:
                step.update(ok=False, error="no JSON on stdout: " + (r.stderr or r.stdout)[-800:])
                raise StepFailed(step["error"])
        step["ok"] = r.returncode == 0 or not product
        if not step["ok"]:
            step["error"] = (r.stderr or r.stdout)[-800:]
            raise StepFailed(f"{name}: exit {r.returncode}: {step['error']}")
        return data if expect_json else {"stdout": r.stdout}

    def _findings(self, trace: Path | None) -> list[dict]:
        if trace is None or not trace.exists():
            return []
        return [{k: v for k, v in f.items() if k != "line"} | {"line": f["line"][:300]}
                for f in isolation.audit(trace.read_text(errors="replace"))]

    # ------------------------------------------------------------------ the steps
    def control(self) -> None:
        if not _loopback_only():
            # outside a namespace the control would really send a SYN and a DNS query
            self.result["control"] = {"skipped": "not in a loopback-only namespace"}
            return
        self.run("control", product=False, argv=[sys.executable, "-c", CONTROL_CODE], expect_json=False)
        flagged = {f["address"] for f in self.steps[-1]["findings"]}
        self.result["control"] = {"flagged": sorted(a for a in flagged if a)}
        if self.strace and "192.0.2.1" not in flagged:
            raise StepFailed(f"control: the audit did not flag 192.0.2.1 (found {sorted(flagged)}): it is blind")

    def ingest(self) -> None:
        corpus = self.work / "corpus"
        for sub, names in (("council", COUNCIL), ("funding", FUNDING)):
            (corpus / sub).mkdir(parents=True, exist_ok=True)
            for n in names:
                for src in (ROOT / "corpus" / sub / n, ROOT / "corpus" / sub / f"{n}.meta.yaml"):
                    if src.exists():
                        shutil.copy2(src, corpus / sub / src.name)
        data = self.run("ingest", "ingest", str(corpus), "--json")
        self.result["ingest"] = {"counts": data.get("counts"), "chunks_added": data.get("chunks_added")}
        if not data.get("ok") or not data.get("chunks_added") and not data.get("counts", {}).get("unchanged"):
            raise StepFailed(f"ingest: nothing indexed: {data.get('counts')}")

    def ask(self) -> None:
        a = self.run("ask", "ask", QUESTION, "--json")
        if not a.get("answer"):
            raise StepFailed("ask: empty answer")
        b = self.run("ask-unanswerable", "ask", UNANSWERABLE, "--json")
        self.result["ask"] = {"answer": a["answer"][:200], "citations": len(a.get("citations") or []),
                              "unanswerable_refused": b.get("refused"), "unanswerable_citations":
                              len(b.get("citations") or [])}

    def draft(self) -> None:
        template = self.work / "egress-kurz.yaml"
        template.write_text(TEMPLATE, encoding="utf-8")
        md, odt = self.work / "entwurf.md", self.work / "entwurf.odt"
        d = self.run("draft", "draft", "--template", str(template), "--title", "KI-Assistent für das Bürgerbüro",
                     "--idea", "Ein KI-Assistent beantwortet Fragen im Bürgerbüro, aufbauend auf dem "
                               "Pilotprojekt MUSA.",
                     "--budget", "120000", "--duration", "12", "--out", str(md), "--json")
        if not md.is_file() or not md.read_text(encoding="utf-8").strip():
            raise StepFailed("draft: no Markdown written")
        e = self.run("draft-odt", "draft", "--resume", d["draft_id"], "--out", str(odt), "--json")
        with zipfile.ZipFile(odt) as z:
            if "content.xml" not in z.namelist():
                raise StepFailed("draft: the .odt has no content.xml")
        self.result["draft"] = {"draft_id": d["draft_id"], "complete": d.get("complete"),
                                "sections": [(s["id"], s["status"]) for s in d.get("sections", [])],
                                "outputs": [d.get("output"), e.get("output")]}

    def webdav(self) -> None:
        s = self.run("sync", "sync", "all", "--json")
        [row] = s["sources"]
        if not row.get("report") or row["report"]["files"]["new"] != 1:
            raise StepFailed(f"sync: the WebDAV folder was not indexed: {row}")
        draft_id = self.result.get("draft", {}).get("draft_id")
        saved = None
        if draft_id:
            d = self.run("draft-save", "draft", "--resume", draft_id, "--save-to", "--json")
            saved = d.get("saved")
            name = self.dav.folder("pilot") / "Entwürfe" / f"{draft_id}.odt"
            if not name.is_file():
                raise StepFailed("draft-save: the .odt is not in the WebDAV folder")
        self.result["webdav"] = {"sync": row["report"], "saved": saved,
                                 "server_requests": [f"{m} {p} {st}" for m, p, st in self.dav.log]}

    def eval(self) -> None:
        suite = str(ROOT / "evals" / "suites" / "starter.yaml")
        a = self.run("eval", "eval", suite, "--limit", "2", "--json")
        r = self.run("eval-retrieval", "eval", suite, "--limit", "2", "--retrieval-only", "--json")
        self.result["eval"] = {"answer": {"counts": a.get("counts"), "report": bool(a.get("report"))},
                               "retrieval": {"counts": r.get("counts"), "hit@5": r.get("aggregates", {}).get("hit@5")}}

    def doctor(self) -> None:
        d = self.run("doctor", "doctor", "--json")
        self.result["doctor"] = {"egress": d.get("egress"), "telemetry": d.get("telemetry"),
                                 "problems": d.get("problems")}

    def ui(self) -> None:
        port = _free_port()
        argv = [str(EXE), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(self.data),
                "--model", self.model, "--threads", "1"]
        # bind too: the listening socket shows that strace saw the server's sockets at all (the
        # server connects nowhere by itself, so its trace would otherwise hold no socket call)
        full, trace = self._argv("serve", argv, calls="bind")
        step = {"name": "serve", "argv": argv, "product": True, "trace": str(trace) if trace else None}
        self.steps.append(step)
        log = open(self.logs / "serve.out", "w")
        t0 = time.monotonic()
        # own session: the SIGINT at the end goes to the server (strace -I 4 ignores it and follows it out)
        proc = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.work,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_http(url, proc, timeout=self.timeout)
            step["ready_seconds"] = round(time.monotonic() - t0, 1)
            self.result["ui"] = self.browse(url)
        finally:
            stopped = _stop(proc)
            log.close()
            step.update(rc=proc.returncode, seconds=round(time.monotonic() - t0, 1), stopped_cleanly=stopped,
                        findings=self._findings(trace))
            step["ok"] = "ui" in self.result
        if not stopped:
            step["ok"] = False
            raise StepFailed("serve: did not stop on SIGINT within 60 s")

    def browse(self, url: str) -> dict:
        from playwright.sync_api import expect, sync_playwright

        exe = CHROMIUM
        trace = None
        if self.trace_browser:
            trace = self.traces / "chromium.trace"
            trace.unlink(missing_ok=True)
            exe = str(self.work / "chromium-traced.sh")
            Path(exe).write_text("#!/bin/sh\nexec " + " ".join(
                f"'{a}'" for a in isolation.trace_argv([CHROMIUM], trace)) + ' "$@"\n')
            os.chmod(exe, 0o755)
        step = {"name": "chromium", "product": False, "trace": str(trace) if trace else None,
                "allowed": BROWSER_ALLOWED}
        self.steps.append(step)
        t0 = time.monotonic()
        outside: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, timeout=120_000)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 860}, locale="de-DE")
                page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                    ("http://127.0.0.1", "data:", "blob:")) else None)
                page.goto(url, timeout=120_000)
                box = page.locator("#msg textarea")
                expect(box).to_be_visible(timeout=120_000)
                box.fill(QUESTION)
                box.press("Enter")
                bot = page.locator('#chat [data-testid="bot"]').last
                expect(bot).not_to_be_empty(timeout=240_000)
                expect(page.locator("#sources .pa-source").first).to_be_visible(timeout=240_000)
                page.wait_for_function(
                    """() => { const s = document.querySelector('#chat [data-testid="status-tracker"]');
                               return !s || s.classList.contains('hide'); }""", timeout=240_000)
                answer = bot.inner_text()
                sources = page.locator("#sources").inner_text()
                page.screenshot(path=str(self.work / "ui-egress.png"), full_page=True)
            except Exception:
                try:
                    page.screenshot(path=str(self.work / "ui-egress-failure.png"), full_page=True)
                except Exception:  # noqa: BLE001  (the first error is the one to report)
                    pass
                raise
            finally:
                browser.close()
        step.update(seconds=round(time.monotonic() - t0, 1), ok=True)
        findings = self._findings(trace)
        step["findings"] = findings
        step["disallowed"] = [f for f in findings if not _allowed(f)]
        if outside:
            raise StepFailed(f"ui: the page requested non-loopback URLs: {outside}")
        if not answer.strip() or not sources.strip():
            raise StepFailed("ui: no answer or no source shown")
        return {"answer": answer[:200], "sources": sources[:300], "page_requests_outside": outside}

    # ------------------------------------------------------------------ the whole run
    def main(self, steps: list[str], dns_log: Path | None) -> int:
        t0 = time.monotonic()
        error = None
        try:
            for name in steps:
                getattr(self, name)()
        except StepFailed as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001  (a crash is reported in the summary like any failure)
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"
        product = [f | {"step": s["name"]} for s in self.steps if s.get("product") for f in s.get("findings", [])]
        browser = [f | {"step": s["name"]} for s in self.steps if s["name"] == "chromium"
                   for f in s.get("disallowed", [])]
        queries = isolation.dns_queries(dns_log) if dns_log else None
        lookups = [q for q in queries or [] if q["name"].rstrip(".") != CANARY]
        summary = {
            "ok": False, "error": error, "seconds": round(time.monotonic() - t0, 1), "strace": self.strace,
            "trace_browser": self.trace_browser, "work": str(self.work),
            "audit": {"product_findings": product, "browser_disallowed": browser,
                      "dns_queries": queries, "dns_lookups_other_than_canary": lookups},
            "result": self.result,
            "steps": [{k: v for k, v in s.items() if k != "argv"} | {"argv": " ".join(s.get("argv", [])[:3])}
                      for s in self.steps],
        }
        problems = []
        if error:
            problems.append(error)
        if product:
            problems.append(f"{len(product)} non-loopback attempt(s) by our processes")
        if browser:
            problems.append(f"{len(browser)} browser attempt(s) beyond the allowed UDP probe")
        if dns_log and lookups:
            problems.append(f"hostname lookups: {sorted({q['name'] for q in lookups})}")
        control_ran = "flagged" in self.result.get("control", {})
        if dns_log and control_ran and not any(q["name"].rstrip(".") == CANARY for q in queries or []):
            problems.append("the DNS sink did not see the control's canary lookup: it is blind")
        summary["problems"] = problems
        summary["ok"] = not problems
        self.dav.stop()
        print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
        return 0 if summary["ok"] else 1


def _allowed(finding: dict) -> bool:
    return any(all(finding.get(k) == v for k, v in rule.items()) for rule in BROWSER_ALLOWED)


def _loopback_only() -> bool:
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepFailed(f"serve exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise StepFailed(f"serve did not answer on {url} within {timeout} s")


def _stop(proc: subprocess.Popen) -> bool:
    """SIGINT to the server's process group; True if everything exited by itself."""
    if proc.poll() is not None:
        return True
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="working directory (data dir, traces, logs, outputs)")
    ap.add_argument("--model", required=True, help="GGUF file (the small test model)")
    ap.add_argument("--no-strace", dest="strace", action="store_false", help="run without tracing")
    ap.add_argument("--trace-browser", action="store_true", help="trace chromium too (allow only the UDP probe)")
    ap.add_argument("--dns-log", type=Path, help="log of the DNS sink (isolation.run_isolated) to check at the end")
    ap.add_argument("--steps", default=",".join(ALL_STEPS), help=f"comma-separated subset of {','.join(ALL_STEPS)}")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per step")
    args = ap.parse_args(argv)
    if args.strace and not shutil.which("strace"):
        ap.error("strace missing (or pass --no-strace)")
    steps = [s for s in args.steps.split(",") if s]
    if unknown := [s for s in steps if s not in ALL_STEPS]:
        ap.error(f"unknown steps: {unknown}")
    return Workflow(args).main(steps, args.dns_log)


if __name__ == "__main__":
    sys.exit(main())
