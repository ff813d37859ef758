"""Zero egress, proven: the whole workflow with loopback only, and a record of every connect().

One run of tests/egress_workflow.py (ingest, ask, draft to .md and .odt, a WebDAV folder
on loopback synced and the draft saved into it, eval, doctor, the served UI driven by chromium) inside ``unshare -n -m`` with only ``lo`` up and a DNS
sink on 127.0.0.1:53 (stack.md 2d). Our processes run under strace; the tests below read
the traces and the sink's log:

(a) the workflow passes inside the namespace;
(b) no traced product process attempted a non-loopback address (IPv4, IPv6, DNS to a
    resolver), no hostname was looked up at all, and the browser did nothing but its
    documented UDP IPv6 probe;
(c) the negative control (create_connection to 192.0.2.1:80 under the same tracing) and
    its canary lookup *are* caught, so (b) is not passing because the audit is blind;
(d) ``doctor --json`` inside the namespace reports ``egress.isolated == true``.

The parser tests at the end need neither root nor a model.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from tests import isolation
from tests.conftest import ARTIFACTS, ROOT

DRIVER = ROOT / "tests" / "egress_workflow.py"
EXE = Path(sys.executable).with_name("pilot-assistant")
CHROMIUM = "/usr/bin/chromium"
CANARY = "egress-canary.invalid"
# the one attempt chromium may make (see BROWSER_ALLOWED in egress_workflow.py)
BROWSER_PROBE = ("connect", "UDPv6", "2001:4860:4860::8888", 443)
PRODUCT_STEPS = {"ingest", "ask", "ask-unanswerable", "draft", "draft-odt", "sync", "draft-save", "eval",
                 "eval-retrieval", "doctor", "serve"}


@pytest.fixture(scope="module")
def egress_run(tmp_path_factory, test_model_path):
    isolation.require()
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    base = tmp_path_factory.mktemp("egress")
    work, dns_log = base / "work", base / "dns.log"
    r = isolation.run_isolated([sys.executable, str(DRIVER), "--work", str(work), "--model", str(test_model_path),
                                "--trace-browser", "--dns-log", str(dns_log), "--timeout", "600"],
                               dns_log=dns_log, timeout=2400, cwd=ROOT)
    out = ARTIFACTS / "egress"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "summary.json").write_text(r.stdout)
    (out / "stderr.txt").write_text(r.stderr)
    for sub in ("traces", "logs"):
        if (work / sub).is_dir():
            shutil.copytree(work / sub, out / sub)
    if dns_log.exists():
        shutil.copy2(dns_log, out / "dns.log")
    try:
        summary = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"the driver printed no summary (exit {r.returncode}): {r.stderr[-3000:]}")
    return {"rc": r.returncode, "summary": summary, "work": work, "dns_log": dns_log,
            "steps": {s["name"]: s for s in summary["steps"]}}


def _brief(findings: list[dict]) -> list[tuple]:
    return [(f.get("step"), f["call"], f["socket"], f["address"], f["port"]) for f in findings]


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.timeout(2700)   # the whole workflow runs in the first test's setup; a loaded 2-core machine is slow
def test_workflow_passes_with_loopback_only(egress_run):
    s = egress_run["summary"]
    assert s["error"] is None, s["error"]
    assert egress_run["rc"] == 0 and s["ok"], s["problems"]
    steps = egress_run["steps"]
    assert PRODUCT_STEPS <= set(steps), sorted(steps)
    assert all(steps[n]["rc"] == 0 for n in PRODUCT_STEPS), {n: steps[n]["rc"] for n in PRODUCT_STEPS}
    res = s["result"]
    assert res["ingest"]["counts"]["failed"] == 0 and res["ingest"]["chunks_added"] > 0
    assert res["ask"]["answer"] and res["ask"]["unanswerable_citations"] == 0
    work = egress_run["work"]
    assert (work / "entwurf.md").read_text(encoding="utf-8").strip()
    with zipfile.ZipFile(work / "entwurf.odt") as z:
        assert "content.xml" in z.namelist()
    # a WebDAV source configured on loopback (every step ran with it): synced, and the draft saved into it
    assert res["webdav"]["sync"]["files"]["new"] == 1 and res["webdav"]["sync"]["collection"] == "rat"
    assert res["webdav"]["sync"]["chunks_added"] > 0
    assert res["webdav"]["saved"]["files"][0]["status"] == "created"
    assert res["eval"]["answer"]["counts"]["items"] == 2 and res["eval"]["retrieval"]["counts"]["items"] == 2
    assert res["ui"]["answer"].strip() and res["ui"]["sources"].strip()
    assert res["ui"]["page_requests_outside"] == []
    assert steps["serve"]["stopped_cleanly"]


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.timeout(2700)   # the whole workflow runs in the first test's setup; a loaded 2-core machine is slow
def test_connect_audit_finds_no_outside_address(egress_run):
    steps = egress_run["steps"]
    # every product process was traced, and the trace is read again here (not taken from the driver)
    for name in PRODUCT_STEPS:
        trace = Path(steps[name]["trace"])
        assert 'execve("' + str(EXE) + '"' in trace.read_text(errors="replace"), f"{name}: strace did not follow it"
        assert isolation.audit(trace.read_text(errors="replace")) == [], f"{name}: {trace}"
    # and strace did see sockets: the server's listening socket on loopback is in its trace
    assert re.search(r'bind\(\d+<TCP:.*inet_addr\("127\.0\.0\.1"\)', Path(steps["serve"]["trace"]).read_text())

    # no name was looked up by anyone but the control: not even through a loopback resolver
    names = [q["name"].rstrip(".") for q in isolation.dns_queries(egress_run["dns_log"])]
    assert [n for n in names if n != CANARY] == []

    # chromium (the user's client, traced too) made only its UDP IPv6 reachability probe: a
    # connect() on a UDP socket sets a default destination and sends nothing
    browser_trace = Path(steps["chromium"]["trace"]).read_text(errors="replace")
    assert 'execve("/usr/lib/chromium/chromium"' in browser_trace   # the browser itself was traced
    browser = isolation.audit(browser_trace)
    assert {(f["call"], f["socket"], f["address"], f["port"]) for f in browser} <= {BROWSER_PROBE}, _brief(browser)
    assert all(f["result"] is None or f["result"].startswith("-1") for f in browser)   # and it failed anyway


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.timeout(2700)   # the whole workflow runs in the first test's setup; a loaded 2-core machine is slow
def test_audit_flags_the_negative_control(egress_run):
    control = egress_run["steps"]["control"]
    found = isolation.audit(Path(control["trace"]).read_text())
    assert ("connect", "TCP", "192.0.2.1", 80) in {(f["call"], f["socket"], f["address"], f["port"]) for f in found}
    assert "2001:db8::1" in {f["address"] for f in found}
    # the sink saw the control's lookup, so an empty log elsewhere means no lookups happened
    assert CANARY in {q["name"].rstrip(".") for q in isolation.dns_queries(egress_run["dns_log"])}


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.timeout(2700)   # the whole workflow runs in the first test's setup; a loaded 2-core machine is slow
def test_doctor_reports_isolated_in_the_namespace(egress_run):
    doctor = egress_run["summary"]["result"]["doctor"]
    assert doctor["egress"]["isolated"] is True
    assert doctor["egress"]["non_loopback_interfaces"] == [] and doctor["egress"]["default_route"] is False
    # the children ran without the switches in their environment: these are the product's own defaults
    assert doctor["egress"]["telemetry_off"] is True
    assert doctor["telemetry"]["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert doctor["telemetry"]["HF_HUB_DISABLE_TELEMETRY"] == "1"


# --- the audit itself (no root, no model) --------------------------------------------------

TRACE = """\
100 connect(3<UDP:[1]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16 <unfinished ...>
101 connect(4<UNIX-STREAM:[2]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file)
100 <... connect resumed>) = -1 ENETUNREACH (Network is unreachable)
102 connect(5<TCP:[3]>, {sa_family=AF_INET, sin_port=htons(7860), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
103 sendto(6<UDP:[4]>, ""..., 1, 0, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("192.0.2.7")}, 16) = -1 ENETUNREACH (x)
104 sendmsg(7<UDPv6:[5]>, {msg_name={sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::ffff:8.8.8.8", &sin6_addr), sin6_scope_id=0}, msg_namelen=28, msg_iov=[...]}, 0) = 10
105 connect(8<UDPv6:[6]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
106 connect(9<UDP:[7]>, {sa_family=AF_UNSPEC, sa_data=""}, 16) = 0
107 sendto(10<NETLINK:[ROUTE:1]>, ..., 20, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20
108 connect(11<UNIX-STREAM:[8]>, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 42) = 0
109 sendto(12<TCP:[127.0.0.1:1->127.0.0.1:2]>, ""..., 5, 0, NULL, 0) = 5
"""


def test_audit_reads_every_call_that_carries_an_address():
    found = [(f["pid"], f["call"], f["socket"], f["address"], f["port"], f["result"]) for f in isolation.audit(TRACE)]
    assert found == [
        (100, "connect", "UDP", "10.255.255.53", 53, "-1 ENETUNREACH"),   # DNS to the host's resolver, joined line
        (103, "sendto", "UDP", "192.0.2.7", 9, "-1 ENETUNREACH"),
        (104, "sendmsg", "UDPv6", "::ffff:8.8.8.8", 53, "10"),              # IPv4-mapped is still outside
        (108, "connect", "UNIX-STREAM", "/run/systemd/resolve/io.systemd.Resolve", None, "0"),   # resolved outside
    ]


def test_browser_allow_list_is_exactly_the_udp_probe():
    sys.path.insert(0, str(ROOT / "tests"))
    from egress_workflow import _allowed

    probe = {"call": "connect", "socket": "UDPv6", "address": "2001:4860:4860::8888", "port": 443}
    assert _allowed(probe)
    for change in ({"socket": "TCPv6"}, {"port": 53}, {"call": "sendto"}, {"address": "2001:4860:4860::8844"}):
        assert not _allowed(probe | change), change


def test_dns_sink_logs_and_refuses(tmp_path):
    """The sink itself, on a free loopback port (no root needed)."""
    import socket
    import struct
    import threading
    import time

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "dns.log"
    threading.Thread(target=isolation.dns_sink, args=(log, "127.0.0.1", port), daemon=True).start()
    for _ in range(100):
        if Path(f"{log}.ready").exists():
            break
        time.sleep(0.05)
    header = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    query = header + b"\x06egress\x07invalid\x00" + struct.pack(">HH", 28, 1)   # AAAA egress.invalid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.sendto(query, ("127.0.0.1", port))
        reply = c.recv(512)
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 3   # same id, NXDOMAIN
    assert isolation.dns_queries(log) == [{"name": "egress.invalid", "type": "AAAA", "proto": "udp"}]
