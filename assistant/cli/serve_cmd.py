"""`pilot-assistant serve`: the web UI for staff (German), on 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

from . import add_common


def register(sub) -> None:
    p = sub.add_parser("serve", help="Weboberfläche starten (Chat mit Quellen, Dokumente)")
    p.add_argument("--host", help="Adresse (Standard 127.0.0.1 = nur dieser Rechner; jede andere Adresse "
                                  "braucht eine Anmeldung: --auth-file oder --identity proxy)")
    p.add_argument("--port", type=int, help="Port (Standard 7860)")
    p.add_argument("--auth-file", dest="auth_file",
                   help="Passwortdatei für die Anmeldung (pilot-assistant user add NAME --auth-file DATEI)")
    p.add_argument("--identity", choices=("none", "password", "proxy"),
                   help="Wer fragt: none (nur 127.0.0.1), password (--auth-file), proxy (Kopfzeilen eines "
                        "Anmelde-Proxys, nur von --trusted-proxy)")
    p.add_argument("--trusted-proxy", dest="trusted_proxy", action="append", metavar="ADRESSE",
                   help="IP-Adresse oder Netz des Reverse-Proxys (mehrfach möglich)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, settings) -> int:
    from ..errors import UserError
    from ..runtime import llm

    for name in ("host", "port", "auth_file", "identity"):
        if getattr(args, name, None) is not None:
            setattr(settings.serve, name, getattr(args, name))
            settings.sources[f"serve.{name}"] = "cli"
    if getattr(args, "trusted_proxy", None):
        settings.serve.trusted_proxies = ",".join(args.trusted_proxy)
        settings.sources["serve.trusted_proxies"] = "cli"
    # uploads and rendered pages stay in the data dir, not in a /tmp shared with other accounts
    os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / ".gradio").resolve()))

    # refuse a bad identity setup before the model loads (seconds to minutes)
    from ..access.identity import Identity

    Identity(settings).check_bind(settings.serve.host)
    _warn_readable(settings)

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
    from ..ui.server import STOP_DEADLINE_S

    served = launch(settings, backend_note=note, block=False)
    stopping = _stop_on_signals(served, STOP_DEADLINE_S)
    _warm_up(served)
    host = settings.serve.host
    shown = f"[{host}]" if ":" in host else host
    print(f"Pilot-Assistent läuft auf http://{shown}:{served.server_port}/  (Beenden mit Strg+C)", flush=True)
    mode = served.identity.mode
    print({"none": "Anmeldung: keine (nur dieser Rechner)", "password": "Anmeldung: Passwortdatei",
           "proxy": f"Anmeldung: Anmelde-Proxy ({settings.serve.trusted_proxies})"}[mode], flush=True)
    served.wait()
    if stopping.is_set():
        print("Beendet.", flush=True)
    return 0


def _stop_on_signals(served, deadline_s: float) -> threading.Event:
    """SIGINT/SIGTERM: stop accepting, give open streams a moment, and end the process at the
    latest ``deadline_s`` later whatever still runs (a busy model thread, a stuck worker)."""
    stopping = threading.Event()

    def handler(signum, frame) -> None:
        if stopping.is_set():    # a second Ctrl+C: now
            os._exit(130)
        stopping.set()
        served.server.should_exit = True
        timer = threading.Timer(deadline_s, os._exit, args=(0,))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stopping


def _warn_readable(settings) -> None:
    """The config (store.token) and the password file are for the service account only."""
    files = [Path(settings.serve.auth_file)] if settings.serve.auth_file else []
    files += [Path(v) for k, v in settings.sources.items() if v not in ("cli", "env") and k][:1]
    for path in dict.fromkeys(files):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IROTH:
            print(f"Warnung: {path} ist für alle Konten dieses Rechners lesbar – chmod o-r {path} "
                  "(nur Dienstkonto und -gruppe)", flush=True)


def _warm_up(served) -> None:
    """Load the query embedder and open the vector store now, not during the first question."""
    from ..errors import UserError
    from ..index.embeddings import embed_query

    try:
        embed_query("Aufwärmen")
        with served.pilot_context.store() as store:
            store.collection   # noqa: B018  (opening Chroma is the point)
    except UserError as exc:   # an unreadable index shows up again, with its fix, at the first question
        print(f"Warnung: {exc}", flush=True)
