"""`pilot-assistant serve` in a subprocess and the Debian chromium that drives it: one home for
what every browser test needs (a free port, waiting until the server answers, a clean stop)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
# no bare --disable-features (it would replace Playwright's own list); the resolver rule keeps
# chromium's background calls from resolving anything
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen


@contextmanager
def serve(base: Path, data: Path, model: Path, *, log_name: str, extra: list[str] | tuple[str, ...] = (),
          env: dict[str, str] | None = None, max_tokens: int = 60, wait_s: float = 240) -> Iterator[Served]:
    """A real server on a free loopback port; ready once any page answers below 500 (the model
    loads lazily, so this does not wait for it). Stopped with SIGINT, as a person would."""
    port = free_port()
    full_env = {**os.environ, "GRADIO_TEMP_DIR": str(base / "gradio"), "MPLCONFIGDIR": str(base / "mpl"),
                "PILOT_ASSISTANT_LLM__MAX_TOKENS": str(max_tokens), "PILOT_ASSISTANT_INGEST__WORKERS": "1",
                **(env or {})}
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    exe = Path(sys.executable).with_name("pilot-assistant")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(data), "--model", str(model), "--threads", "1",
                             "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT, env=full_env,
                            cwd=base, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + wait_s
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}; see {ARTIFACTS / log_name}")
            try:
                if http_status(url, timeout=2) < 500:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"serve did not answer on {url}; see {ARTIFACTS / log_name}")
        yield Served(url, port, proc)
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium through Playwright; Playwright's own browser download is never used."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} fehlt (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
