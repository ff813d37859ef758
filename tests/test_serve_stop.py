"""`serve` ends on SIGINT and SIGTERM while requests hang and the CPUs are busy.

The product's promise is "within 10 s" (a hard deadline in serve_cmd, measured by
bench/serve_stop.py); this test only checks that it ends at all under those conditions
(generous 60 s backstop, no timing assertion) and records the time it took."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _up(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail("serve did not come up")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_ends_on_a_signal_with_hanging_requests_and_busy_cpus(sig, tmp_path):
    port = _free_port()
    log = open(ARTIFACTS / f"serve-stop-{sig.name}.log", "w")
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    exe = Path(sys.executable).with_name("pilot-assistant")
    # no model (the UI starts without one): this is about stopping, not answering
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port),
                             "--model", str(tmp_path / "kein-modell.gguf")], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    hogs = [multiprocessing.Process(target=_spin, args=(40,)) for _ in range(2)]
    hanging: list[socket.socket] = []
    try:
        _up(port, proc)
        for h in hogs:
            h.start()
        for _ in range(3):   # uploads that never finish sending their body
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=x\r\nContent-Length: 100000000\r\n\r\n--x\r\n")
            hanging.append(s)
        time.sleep(1)
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"serve did not end within 60 s of {sig.name}")
        took = round(time.monotonic() - started, 2)
    finally:
        for s in hanging:
            s.close()
        for h in hogs:
            if h.is_alive():
                h.terminate()
            h.join(5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    (ARTIFACTS / f"serve-stop-{sig.name}.json").write_text(json.dumps({"signal": sig.name, "seconds": took, "rc": rc}))
    assert rc == 0
    # the process group is gone too: no parser worker or forkserver lingers
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
