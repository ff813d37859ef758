"""`pilot-assistant serve`: the web UI for staff (German), on 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import os
import time

from . import add_common


def register(sub) -> None:
    p = sub.add_parser("serve", help="Weboberfläche starten (Chat mit Quellen, Dokumente)")
    p.add_argument("--host", help="Adresse (Standard 127.0.0.1 = nur dieser Rechner; "
                                  "für das Netz einen Reverse-Proxy mit Anmeldung davorsetzen)")
    p.add_argument("--port", type=int, help="Port (Standard 7860)")
    p.add_argument("--auth-file", dest="auth_file",
                   help="Passwortdatei für die Anmeldung (pilot-assistant user add NAME --auth-file DATEI)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..errors import UserError
    from ..runtime import llm

    for name in ("host", "port", "auth_file"):
        if getattr(args, name, None) is not None:
            setattr(settings.serve, name, getattr(args, name))
            settings.sources[f"serve.{name}"] = "cli"
    # uploads and rendered pages stay in the data dir, not in a /tmp shared with other accounts
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / ".gradio").resolve()))

    # load the model now: the first question should not wait for it
    started = time.perf_counter()
    note = "bereit"
    try:
        from ..answer.chat import warm_up

        warm_up(settings, llm.get_chat_model(settings))
        print(f"Modell {llm.model_label(settings)} geladen ({time.perf_counter() - started:.1f} s).", flush=True)
    except UserError as exc:   # the UI still starts: documents can be managed, the status line says why
        note = "nicht verfügbar"
        print(f"Warnung: {exc}", flush=True)

    from ..ui.app import launch

    demo = launch(settings, backend_note=note, block=False)
    _warm_up(demo)
    host = settings.serve.host
    shown = f"[{host}]" if ":" in host else host
    port = getattr(demo, "server_port", None) or settings.serve.port
    print(f"Pilot-Assistent läuft auf http://{shown}:{port}/  (Beenden mit Strg+C)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Achtung: an {host} gebunden – nur hinter einem Reverse-Proxy mit Anmeldung oder mit --auth-file "
              "betreiben.", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


def _warm_up(demo) -> None:
    """Load the query embedder and open the vector store now, not during the first question."""
    from ..errors import UserError
    from ..index.embeddings import embed_query

    try:
        embed_query("Aufwärmen")
        with demo.pilot_context.store() as store:
            store.collection   # noqa: B018  (opening Chroma is the point)
    except UserError as exc:   # an unreadable index shows up again, with its fix, at the first question
        print(f"Warnung: {exc}", flush=True)
