"""Run a command with loopback only (``unshare -n``) and record every connect() it attempts.

Python-level guards (pytest-socket) miss native code (llama.cpp, Chroma's Rust core,
Chromium), so the proof of zero egress is a network namespace plus strace.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')


def available() -> str | None:
    """Why isolation cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "unshare -n needs root (CI runs as root)"
    for tool in ("unshare", "ip", "strace"):
        if not shutil.which(tool):
            return f"{tool} missing (scripts/system-deps.sh installs it)"
    return None


def require() -> None:
    if (why := available()):
        pytest.skip(why)


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


def run_isolated(argv: list[str], *, trace: Path, env: dict | None = None, timeout: float = 900,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run argv in a fresh network namespace (lo up only) under strace -f -e trace=connect."""
    inner = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv]
    script = 'ip link set lo up && exec "$@"'
    return subprocess.run(["unshare", "-n", "sh", "-c", script, "sh", *inner], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd)
