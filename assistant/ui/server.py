"""The web server: our own small app (login, document route) with Gradio mounted on it,
wrapped in :class:`~assistant.ui.security.Guard`, run by uvicorn.

Why not ``Blocks.launch``: the guard has to see every request before Gradio does (Gradio
adds its own CORS middleware outside anything passed to ``launch``), the identity comes from
us (Gradio's ``auth_dependency`` only reads it), and stopping must be quick and certain:
:meth:`Served.stop` gives open streams ``GRACE_S`` seconds, ``pilot-assistant serve`` ends the
process at the latest ``STOP_DEADLINE_S`` after SIGINT/SIGTERM.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr
from fastapi import FastAPI

from ..access.identity import Identity
from ..errors import UsageError
from . import files, login
from .security import Guard

GRACE_S = 3.0            # open answer streams get this long to finish when the server stops
STOP_DEADLINE_S = 7.0    # then the process ends, whatever still runs (within 10 s of the signal)
STARTUP_TIMEOUT_S = 120.0
log = logging.getLogger("assistant.ui")


@dataclass
class Served:
    """A running server: ``demo`` (the Blocks), its port, ``stop()`` and ``wait()``."""

    demo: gr.Blocks
    server: Any            # uvicorn.Server
    thread: threading.Thread
    server_port: int
    identity: Identity

    @property
    def pilot_context(self):
        return self.demo.pilot_context

    def stop(self, timeout: float = GRACE_S + 5) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    close = stop

    def wait(self) -> None:
        while self.thread.is_alive():
            self.thread.join(0.5)

    block_thread = wait


def build_asgi(demo: gr.Blocks, identity: Identity, *, max_upload_mb: int, css: str) -> Guard:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    login.register(app, identity)
    files.register(app, demo.pilot_context)

    def user_of(request) -> str | None:
        person = request.scope.get("state", {}).get("pilot_person")
        return person.name if person is not None else None

    gr.mount_gradio_app(
        app, demo, path="/", footer_links=[], run_history=False, mcp_server=False, ssr_mode=False, pwa=False,
        enable_monitoring=False, show_error=False, allowed_paths=[], max_file_size=f"{max_upload_mb}mb", css=css,
        auth_dependency=user_of if identity.mode != "none" else None,
        app_kwargs={"docs_url": None, "redoc_url": None, "openapi_url": None})
    return Guard(app, identity)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"Adresse {host}:{port} nicht nutzbar ({exc.strerror or exc})",
                         f"Cannot bind {host}:{port} ({exc.strerror or exc})",
                         "Anderen Port wählen (--port) oder den laufenden Dienst beenden") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start(demo: gr.Blocks, identity: Identity, host: str, port: int, *, max_upload_mb: int, css: str) -> Served:
    import uvicorn

    sock = _bind(host, port)
    config = uvicorn.Config(build_asgi(demo, identity, max_upload_mb=max_upload_mb, css=css), log_level="warning",
                            access_log=False, proxy_headers=False, server_header=False, lifespan="on",
                            timeout_graceful_shutdown=GRACE_S, timeout_keep_alive=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise UsageError("Der Webserver ist nicht gestartet (siehe Meldungen oben)",
                             "The web server did not start (see the messages above)", "Protokoll prüfen")
        time.sleep(0.05)
    return Served(demo, server, thread, sock.getsockname()[1], identity)
