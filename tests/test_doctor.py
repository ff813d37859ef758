"""`doctor` contract, bad-input messages, and doctor + generation with loopback only."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import isolation
from tests.conftest import run_cli


def test_doctor_json_contract(tmp_path, test_model_path):
    r = run_cli("doctor", "--json", "--data-dir", str(tmp_path / "d"), "--model", str(test_model_path))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for field in ("backend", "model", "model_sha256", "telemetry", "engine", "threads", "embedding_model",
                  "store", "egress", "problems"):
        assert field in report
    assert report["backend"] == "llamacpp" and len(report["model_sha256"]) == 64
    assert report["telemetry"]["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert report["telemetry"]["HF_HUB_OFFLINE"] == "1"


def test_doctor_reports_missing_model_with_fix(tmp_path):
    r = run_cli("doctor", "--json", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert any("setup" in p["fix"] for p in report["problems"])


def test_doctor_ollama_down(tmp_path):
    r = run_cli("doctor", "--json", "--data-dir", str(tmp_path), "--backend", "ollama",
                env={"OLLAMA_HOST": "127.0.0.1:9"})
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["ollama"]["reachable"] is False and "ollama serve" in report["problems"][0]["fix"]


def test_unknown_backend_is_usage_error(tmp_path):
    r = run_cli("doctor", "--backend", "gpt4", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "llamacpp" in r.stderr


def test_read_only_data_dir_keeps_content(tmp_path):
    """A read-only data dir (bind-mounted ro) gives one clear message and loses nothing."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("bleibt")
    if os.geteuid() != 0:
        pytest.skip("needs root for a read-only bind mount")
    exe = Path(sys.executable).with_name("pilot-assistant")
    script = f'mount --bind "{data}" "{data}" && mount -o remount,ro,bind "{data}" && exec "{exe}" setup --data-dir "{data}"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "nicht beschreibbar" in r.stderr and "Abhilfe" in r.stderr
    assert "Traceback" not in r.stderr
    assert (data / "keep.txt").read_text() == "bleibt"


@pytest.mark.slow
@pytest.mark.netns
def test_doctor_and_generation_with_loopback_only(tmp_path, test_model_path):
    isolation.require()
    exe = Path(sys.executable).with_name("pilot-assistant")
    trace = tmp_path / "connect.trace"
    r = isolation.run_isolated([str(exe), "doctor", "--json", "--generate", "--threads", "1",
                                "--data-dir", str(tmp_path / "d"), "--model", str(test_model_path)], trace=trace)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["egress"]["isolated"] is True
    assert report["generation"]["ok"] is True and report["generation"]["text"]
    assert isolation.non_loopback(trace.read_text()) == []


def test_connect_audit_parser_catches_outside_addresses():
    log = ('123 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.184.216.34")}, 16) = -1\n'
           '124 connect(4, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
           '125 connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
           'inet_pton(AF_INET6, "2001:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = -1\n'
           '126 connect(6, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0\n')
    assert isolation.non_loopback(log) == ["93.184.216.34", "2001:4860::8888"]


def test_socket_guard_blocks_outside_addresses():
    import socket

    from pytest_socket import SocketConnectBlockedError

    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=2)
