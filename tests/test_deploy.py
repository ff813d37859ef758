"""deploy/ is documentation that must stay runnable: syntax and safety checks of every file."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from assistant import config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def _published(service: dict) -> list[str]:
    return [str(p.get("published", p) if isinstance(p, dict) else p) for p in service.get("ports", [])]


def test_compose_has_the_services_with_pinned_images(compose):
    services = compose["services"]
    assert {"app", "chroma", "ollama", "oauth2-proxy", "nginx"} <= set(services)
    for name, svc in services.items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} not pinned by tag"
    assert compose["networks"]["backend"]["internal"] is True


def test_only_nginx_publishes_ports_and_chroma_is_never_exposed(compose):
    services = compose["services"]
    assert {n for n, s in services.items() if s.get("ports")} == {"nginx"}
    chroma = services["chroma"]
    assert not chroma.get("ports") and chroma["networks"] == ["backend"]
    assert "0.0.0.0" not in " ".join(chroma.get("command", [])) + str(chroma.get("environment", {}))
    assert services["app"]["networks"] == ["backend"] and services["ollama"]["networks"] == ["backend"]
    assert services["app"]["environment"]["PILOT_ASSISTANT_STORE_URL"] == "http://chroma:8000"
    for port in _published(services["nginx"]):
        assert port.split(":")[-1] in ("80", "443")
    # the app reaches the browser only through oauth2-proxy
    proxy = services["oauth2-proxy"]["environment"]
    assert proxy["OAUTH2_PROXY_UPSTREAMS"] == "http://app:7860/" and proxy["OAUTH2_PROXY_COOKIE_SECURE"] == "true"


def test_compose_hardening_and_the_app_trusts_only_oauth2_proxy(compose):
    services = compose["services"]
    for name, svc in services.items():
        assert svc.get("cap_drop") == ["ALL"], name
        assert svc.get("mem_limit") and svc.get("pids_limit"), name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
    assert set(services["nginx"].get("cap_add", [])) <= {"NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID"}
    command = services["app"]["command"]
    assert command[command.index("--identity") + 1] == "proxy"
    trusted = command[command.index("--trusted-proxy") + 1]
    assert services["oauth2-proxy"]["networks"]["backend"]["ipv4_address"] == trusted
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    import ipaddress

    assert ipaddress.ip_address(trusted) in ipaddress.ip_network(subnet)
    assert services["oauth2-proxy"]["environment"]["OAUTH2_PROXY_PASS_USER_HEADERS"] == "true"


def test_nginx_conf_terminates_tls_and_sets_security_headers(tmp_path):
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert text.count("{") == text.count("}")
    for needle in ("listen 443 ssl", "ssl_certificate ", "return 301 https://", "Strict-Transport-Security",
                   "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "proxy_buffering off",
                   "server_tokens off", "oauth2-proxy:4180"):
        assert needle in text, needle
    assert "TLSv1 " not in text and "TLSv1.1" not in text
    for header in ("X-Forwarded-User", "X-Forwarded-Groups", "X-Auth-Request-User", "X-Auth-Request-Groups"):
        assert f'proxy_set_header {header} "";' in text, header   # a browser cannot pass itself off
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx not installed: structural checks only (apt-get install nginx-light for `nginx -t`)")
    (tmp_path / "tls").mkdir()
    (tmp_path / "logs").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
                    "-keyout", str(tmp_path / "tls" / "privkey.pem"), "-out", str(tmp_path / "tls" / "fullchain.pem")],
                   check=True, capture_output=True, timeout=60)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("/etc/nginx/tls/", f"{tmp_path}/tls/")
                    .replace("/var/run/nginx.pid", f"{tmp_path}/nginx.pid"), encoding="utf-8")
    res = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf),
                          "-e", str(tmp_path / "logs" / "error.log")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_systemd_unit_parses_and_binds_loopback():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / "pilot-assistant.service", encoding="utf-8")
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["ExecStart"].startswith("/") and "--host 127.0.0.1" in service["ExecStart"]
    assert "--identity proxy" in service["ExecStart"] and "--trusted-proxy 127.0.0.1" in service["ExecStart"]
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""
    assert service["IPAddressDeny"] == "any" and "localhost" in service["IPAddressAllow"]
    assert service["MemoryMax"] and service["SystemCallFilter"] and service["SystemCallArchitectures"] == "native"
    text = (DEPLOY / "pilot-assistant.service").read_text(encoding="utf-8")
    assert "SystemCallFilter=@system-service" in text and "~@privileged" in text
    assert service["User"] != "root" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and "/var/lib/pilot-assistant" in service["ReadWritePaths"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze:   # best effort: verify needs the ExecStart binary, so only unknown keys are checked
        res = subprocess.run([analyze, "verify", str(DEPLOY / "pilot-assistant.service")], capture_output=True,
                             text=True, timeout=60)
        assert "Unknown key" not in res.stderr and "Unknown section" not in res.stderr, res.stderr


def test_toml_example_loads_through_the_config(tmp_path):
    path = DEPLOY / "pilot-assistant.toml.example"
    tomllib.loads(path.read_text(encoding="utf-8"))
    settings = config.load(config_file=path, environ={})
    assert settings.llm.backend == "ollama" and settings.llm.ollama_host.startswith("http://")
    assert settings.store.url == "http://127.0.0.1:8000" and settings.serve.host == "127.0.0.1"
    assert str(settings.data_dir) == "/var/lib/pilot-assistant"
    from assistant.access.identity import Identity

    ident = Identity(settings)
    assert ident.mode == "proxy" and ident.trusted_peer("127.0.0.1") and not ident.trusted_peer("10.0.0.1")
    # OLLAMA_HOST in the environment still wins, as the README says
    assert config.load(config_file=path, environ={"OLLAMA_HOST": "gpu02:11434"}).llm.ollama_host == "http://gpu02:11434"


def test_readme_covers_the_setup():
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for topic in ("Ollama", "Chroma", "Keycloak", "oauth2-proxy", "TLS", "Datensicherung", "Aktualisierung",
                  "127.0.0.1", "OParl", "--trusted-proxy", "admin_groups", "editor", "reader", "collection grant",
                  "0640", "openDesk", "sync all"):
        assert topic in text, topic
    for name in ("docker-compose.yml", "nginx.conf", "pilot-assistant.service", "pilot-assistant.toml.example",
                 "Dockerfile", ".env.example"):
        assert (DEPLOY / name).is_file(), name
