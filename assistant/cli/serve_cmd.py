"""`pilot-assistant serve`: the web UI for staff (German), on 127.0.0.1 unless told otherwise."""
from __future__ import annotations

import os
import signal
import stat
import sys
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
    from ..ui.server import STOP_DEADLINE_S

    Identity(settings).check_bind(settings.serve.host)
    _warn_readable(settings)
    stopper = _Stopper(STOP_DEADLINE_S)

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

    if stopper.stopping.is_set():   # stopped while the model loaded
        sys.stdout.flush()
        os._exit(0)
    served = launch(settings, backend_note=note, block=False)
    stopper.attach(served)
    _warm_up(served)
    host = settings.serve.host
    shown = f"[{host}]" if ":" in host else host
    print(f"Pilot-Assistent läuft auf http://{shown}:{served.server_port}/  (Beenden mit Strg+C)", flush=True)
    mode = served.identity.mode
    print({"none": "Anmeldung: keine (nur dieser Rechner)", "password": "Anmeldung: Passwortdatei",
           "proxy": f"Anmeldung: Anmelde-Proxy ({settings.serve.trusted_proxies})"}[mode], flush=True)
    if mode == "password" and host not in ("127.0.0.1", "localhost", "::1"):
        print("Hinweis: Passwörter und Sitzungen gehören über https – TLS an einem Reverse-Proxy beenden und dessen "
              "Adresse als --trusted-proxy angeben (dann erhält das Cookie das Secure-Attribut).", flush=True)
    served.wait()
    if stopper.stopping.is_set():
        print("Beendet.", flush=True)
    # no interpreter shutdown: collecting a heap of models and native clients can take minutes, and
    # nothing is left to save (SQLite commits per write, Chroma per call, workers die with us)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Stopper:
    """SIGINT/SIGTERM: stop accepting, give open streams a moment, and end the process at the
    latest ``deadline_s`` after the signal, whatever still runs (a model loading, a busy thread).

    Python runs signal handlers in the main thread only, and only between bytecodes: while it
    loads a model in native code a handler would wait for seconds. So the C-level handler writes
    the signal to a pipe (``signal.set_wakeup_fd``) and a thread of ours acts on it at once."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.stopping = threading.Event()
        self.served = None
        read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: None)   # the watcher below does the work
        threading.Thread(target=self._watch, args=(read,), daemon=True, name="signals").start()

    def attach(self, served) -> None:
        self.served = served
        if self.stopping.is_set():
            served.server.should_exit = True

    def _watch(self, read: int) -> None:
        while True:
            data = os.read(read, 64)
            if not data:
                return
            if any(b in (signal.SIGINT, signal.SIGTERM) for b in data):
                self._stop()

    def _stop(self) -> None:
        if self.stopping.is_set():    # a second Ctrl+C: now
            os._exit(130)
        self.stopping.set()
        if self.served is not None:
            self.served.server.should_exit = True
        timer = threading.Timer(self.deadline_s, os._exit, args=(0,))
        timer.daemon = True
        timer.start()


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
