"""Run a command with loopback only (``unshare -n``) and record every connect() it attempts.

Python-level guards (pytest-socket) miss native code (llama.cpp, Chroma's Rust core,
Chromium), so the proof of zero egress is a network namespace plus strace:

* ``run_isolated`` runs a command in a fresh network namespace with only ``lo`` up,
  optionally under ``strace -f`` and optionally with a DNS sink: a private mount
  namespace bind-mounts a resolv.conf saying ``nameserver 127.0.0.1`` over
  /etc/resolv.conf (visible only inside), and ``dns_sink`` on 127.0.0.1:53 logs every
  name asked for and answers NXDOMAIN. Without the sink, a lookup shows up in the trace
  as a connect() to the host's resolver; with it, in the sink's log.
* ``audit`` reads a trace of connect/sendto/sendmsg/sendmmsg and returns every attempt
  to reach a non-loopback address, plus AF_UNIX connects to name-service daemons (nscd,
  systemd-resolved), which would resolve names outside the namespace.

Also a script: ``python tests/isolation.py dns-sink LOG`` runs the sink (used inside the
namespace by ``run_isolated``).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')
CALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(?:<\.\.\. )?(connect|sendto|sendmsg|sendmmsg)\b")
FAMILY = re.compile(r"sa_family=(AF_\w+)")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
SOCK = re.compile(r"^\s*\w+\(\d+<([A-Za-z0-9-]+):")          # strace -yy: connect(23<UDPv6:[…]>, …)
UNIX_PATH = re.compile(r'sun_path=(@?"[^"]*")')
RESULT = re.compile(r"\)\s+=\s+(-?\d+(?:\s+\w+)?)")
# AF_UNIX sockets through which a lookup would be answered by a daemon outside the namespace
RESOLVER_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve",
                    "/run/systemd/resolve/", "/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
# the syscalls that can carry a destination address
TRACE_CALLS = "connect,sendto,sendmsg,sendmmsg"


def available() -> str | None:
    """Why isolation cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "unshare -n needs root (CI runs as root)"
    for tool in ("unshare", "ip", "strace", "mount"):
        if not shutil.which(tool):
            return f"{tool} missing (scripts/system-deps.sh installs it)"
    return None


def require() -> None:
    import pytest

    if (why := available()):
        pytest.skip(why)


def _is_local(addr: str) -> bool:
    """Loopback, or the unspecified address (which Linux routes to this host, never out)."""
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_loopback or ip.is_unspecified


def non_loopback(trace_text: str) -> list[str]:
    """Addresses of non-loopback connect() calls in an strace -e trace=connect log."""
    bad = []
    for line in trace_text.splitlines():
        if "connect(" not in line or "AF_UNIX" in line:
            continue
        for m in ADDRESS.finditer(line):
            addr = m.group(1) or m.group(2)
            if not (addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")):
                bad.append(addr)
    return bad


def audit(trace_text: str) -> list[dict]:
    """Every attempt in a trace (``strace -f -yy -e trace=TRACE_CALLS``) to reach beyond loopback.

    Each finding: pid, call, socket (``TCP``, ``UDPv6`` … when traced with -yy), family,
    address, port, result and the raw line. Counted: any AF_INET/AF_INET6 destination
    that is not loopback (whether the call succeeded or not: in the namespace it fails
    with ENETUNREACH, on a normal host it would have gone out), any other address family
    that can carry packets (AF_PACKET …), and AF_UNIX connects to name-service daemons.
    Not counted: AF_UNIX (other paths), AF_NETLINK (the kernel), AF_UNSPEC (a UDP
    disconnect) and calls on connected sockets (no address: their connect() is audited).
    """
    found = []
    for line in _joined(trace_text):
        call = CALL.match(line)
        if not call:
            continue
        pid, name = call.groups()
        sock = (SOCK.search(line[call.start(2):]) or [None, None])[1] if "<" in line else None
        families = FAMILY.findall(line)
        result = (RESULT.search(line) or [None, None])[1]
        base = {"pid": int(pid), "call": name, "socket": sock, "result": result, "line": line.strip()}
        for family in families:
            if family in ("AF_INET", "AF_INET6"):
                continue   # judged by address below
            if family == "AF_UNIX":
                path = (UNIX_PATH.search(line) or [None, ""])[1].strip('"')
                # a failed connect (ENOENT: no such daemon here) resolves nothing; glibc tries nscd
                # first for every passwd/hosts lookup, so only a successful one counts
                if any(path.startswith(p) for p in RESOLVER_SOCKETS) and not (result or "").startswith("-1"):
                    found.append({**base, "family": family, "address": path, "port": None})
            elif family not in ("AF_NETLINK", "AF_UNSPEC"):
                found.append({**base, "family": family, "address": None, "port": None})
        ports = PORT.findall(line)
        for i, m in enumerate(ADDRESS.finditer(line)):
            addr = m.group(1) or m.group(2)
            if not _is_local(addr):
                found.append({**base, "family": "AF_INET" if m.group(1) else "AF_INET6", "address": addr,
                              "port": int(ports[i]) if i < len(ports) else None})
    return found


def _joined(trace_text: str) -> list[str]:
    """Trace lines with each ``<unfinished ...>`` call joined to its ``<... resumed>`` rest (strace -f)."""
    pending: dict[str, str] = {}
    out = []
    for line in trace_text.splitlines():
        pid = line.split(" ", 1)[0]
        if line.rstrip().endswith("<unfinished ...>"):
            pending[pid] = line.rstrip()[: -len("<unfinished ...>")].rstrip()
            continue
        if "resumed>" in line and pid in pending:
            line = pending.pop(pid) + " " + line.split("resumed>", 1)[1].lstrip()
        out.append(line)
    return out + list(pending.values())


def trace_argv(argv: list[str], trace: Path, *, calls: str = TRACE_CALLS + ",execve") -> list[str]:
    """argv under strace: all threads and children, socket types (-yy), no data (-s 0).

    ``execve`` is traced too (``audit`` ignores it): every trace then starts with the
    program it followed, so an empty audit is not an empty trace.

    ``-I 4``: strace itself ignores SIGINT/SIGTERM, so a signal to the process group stops
    the traced program and strace follows it out, with the whole trace written.
    ``--seccomp-bpf`` stops the tracee only at the traced calls (cheap on a loaded machine).
    """
    return ["strace", "-f", "-qq", "-yy", "-s", "0", "-I", "4", "--seccomp-bpf", "-e", "signal=none",
            "-e", f"trace={calls}", "-o", str(trace), *argv]


# wrapper run by `sh -c` inside the new namespaces; argv follows as "$@"
_NS_SCRIPT = r'''
ip link set lo up || { echo "isolation: ip link set lo up failed" >&2; exit 96; }
sink=
if [ -n "$PA_DNS_LOG" ]; then
  mount --bind "$PA_RESOLV" /etc/resolv.conf || { echo "isolation: bind mount of resolv.conf failed" >&2; exit 97; }
  "$PA_PYTHON" "$PA_ISOLATION" dns-sink "$PA_DNS_LOG" &
  sink=$!
  i=0
  while [ ! -e "$PA_DNS_LOG.ready" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "isolation: DNS sink did not start" >&2; exit 98; }
    sleep 0.1
  done
fi
"$@"
rc=$?
[ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null
exit $rc
'''


def run_isolated(argv: list[str], *, trace: Path | None = None, env: dict | None = None, timeout: float = 900,
                 cwd: Path | None = None, dns_log: Path | None = None) -> subprocess.CompletedProcess:
    """Run argv in a fresh network namespace (lo up only).

    ``trace``: under strace -f -e trace=connect (the whole command). ``dns_log``: also a
    private mount namespace whose /etc/resolv.conf points at a DNS sink on 127.0.0.1:53
    that writes one JSON line per query to ``dns_log``.
    """
    inner = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv] if trace else list(argv)
    extra = {"PA_DNS_LOG": ""}
    unshare = ["unshare", "-n"]
    if dns_log is not None:
        dns_log = Path(dns_log).resolve()
        dns_log.unlink(missing_ok=True)
        Path(f"{dns_log}.ready").unlink(missing_ok=True)
        resolv = dns_log.with_name(dns_log.name + ".resolv.conf")
        resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        extra = {"PA_DNS_LOG": str(dns_log), "PA_RESOLV": str(resolv), "PA_PYTHON": sys.executable,
                 "PA_ISOLATION": str(Path(__file__).resolve())}
        unshare = ["unshare", "-n", "-m", "--propagation", "private"]
    return subprocess.run([*unshare, "sh", "-c", _NS_SCRIPT, "sh", *inner], capture_output=True, text=True,
                          env={**os.environ, **(env or {}), **extra}, timeout=timeout, cwd=cwd)


def dns_queries(dns_log: Path) -> list[dict]:
    """The queries the sink saw: [{"name", "type", "proto"}, …]."""
    if not Path(dns_log).exists():
        return []
    return [json.loads(line) for line in Path(dns_log).read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- DNS sink

QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
          64: "SVCB", 65: "HTTPS", 255: "ANY"}


def _question(packet: bytes) -> tuple[str, str, int]:
    """(name, type, end of the question section) of a DNS query."""
    labels, i = [], 12
    while i < len(packet) and packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    i += 1
    qtype = struct.unpack(">H", packet[i:i + 2])[0] if i + 2 <= len(packet) else 0
    return ".".join(labels), QTYPES.get(qtype, str(qtype)), i + 4


def _nxdomain(packet: bytes, end: int) -> bytes:
    flags = 0x8000 | (struct.unpack(">H", packet[2:4])[0] & 0x0100) | 0x0080 | 3   # QR, RD copied, RA, NXDOMAIN
    return packet[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + packet[12:end]


def dns_sink(log: Path, host: str = "127.0.0.1", port: int = 53) -> None:
    """Answer every query with NXDOMAIN and log it (UDP and TCP); write ``LOG.ready`` once bound."""
    lock = threading.Lock()
    out = open(log, "a", buffering=1)

    def record(packet: bytes, proto: str) -> bytes | None:
        if len(packet) < 17:
            return None
        name, qtype, end = _question(packet)
        with lock:
            out.write(json.dumps({"name": name, "type": qtype, "proto": proto}) + "\n")
        return _nxdomain(packet, end)

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port))
    tcp.listen(16)

    def serve_tcp() -> None:
        while True:
            conn, _ = tcp.accept()
            with conn:
                try:
                    size = struct.unpack(">H", conn.recv(2))[0]
                    packet = b""
                    while len(packet) < size:
                        chunk = conn.recv(size - len(packet))
                        if not chunk:
                            break
                        packet += chunk
                    if (reply := record(packet, "tcp")):
                        conn.sendall(struct.pack(">H", len(reply)) + reply)
                except (OSError, struct.error):
                    pass

    threading.Thread(target=serve_tcp, daemon=True).start()
    Path(f"{log}.ready").write_text(str(os.getpid()))
    while True:
        packet, peer = udp.recvfrom(4096)
        if (reply := record(packet, "udp")):
            udp.sendto(reply, peer)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dns-sink":
        dns_sink(Path(sys.argv[2]))
    else:
        sys.exit("usage: python tests/isolation.py dns-sink LOG")
