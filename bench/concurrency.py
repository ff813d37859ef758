"""N simulated users asking in parallel against one served instance.

    .venv/bin/python bench/concurrency.py [--users 10] [--model NAME|PATH] [--threads 1] [--max-tokens 64]
                                          [--timeout 900] [--direct] [--archive DIR]

Starts `pilot-assistant serve` on 127.0.0.1 (free port, temporary data dir holding one small
document per user, one login per user in an --auth-file), then each user logs in with its own
Gradio session (gradio_client, the chat tab's ``/respond`` endpoint) and asks a question only
its own document answers. Prints throughput, p50/p95 latency, and checks that nothing is lost
or mixed up: every user gets an answer, its chat holds exactly its own question, the top
source is its own document, and its list of conversations shows no other user's.
``--no-auth`` serves without logins (all sessions then share the history owner "lokal", so
the conversation check is skipped); ``--direct`` calls ``assistant.answer.chat.ask`` from threads.
``--archive DIR`` starts from a copy of an index ``bench/retrieval.py --data-dir`` kept (e.g.
``/tmp/bench/n100000``: 100,000 chunks of a generated council archive), so every question is
searched among them. Each run first asks one user alone, then all users at once on the same
server, and prints both latencies.
Bounded: at most 10 users, one question each, a wall-clock limit; loopback only.
Exit code 0 when every user got its own answer, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# (marker, document, question): the marker is a made-up project name only that document contains
TOPICS = [
    ("Falkenhorst", "Projekt Falkenhorst: Die Stadt richtet zwölf Ladepunkte für E-Autos am Bahnhof ein.",
     "Wie viele Ladepunkte entstehen im Projekt Falkenhorst?"),
    ("Mooswiese", "Projekt Mooswiese: Auf dem Schulhof werden 35 Bäume gepflanzt, finanziert vom Land.",
     "Wie viele Bäume pflanzt das Projekt Mooswiese?"),
    ("Kranichsteg", "Projekt Kranichsteg: Die neue Fußgängerbrücke über die Saale kostet 2,4 Millionen Euro.",
     "Was kostet die Brücke im Projekt Kranichsteg?"),
    ("Lerchengrund", "Projekt Lerchengrund: Das Bürgerbüro öffnet künftig auch samstags von 9 bis 13 Uhr.",
     "Wann öffnet das Bürgerbüro im Projekt Lerchengrund am Samstag?"),
    ("Biberbau", "Projekt Biberbau: Die Kläranlage erhält eine vierte Reinigungsstufe gegen Mikroplastik.",
     "Was erhält die Kläranlage im Projekt Biberbau?"),
    ("Sonnenwall", "Projekt Sonnenwall: 48 Dächer städtischer Gebäude bekommen Solaranlagen bis 2027.",
     "Wie viele Dächer bekommen im Projekt Sonnenwall Solaranlagen?"),
    ("Eulenruh", "Projekt Eulenruh: Der Stadtbus fährt nachts am Wochenende im Stundentakt.",
     "In welchem Takt fährt der Nachtbus im Projekt Eulenruh?"),
    ("Weidenbogen", "Projekt Weidenbogen: Die Musikschule bietet 60 kostenlose Kurse für Kinder an.",
     "Wie viele kostenlose Kurse bietet das Projekt Weidenbogen?"),
    ("Igelgrund", "Projekt Igelgrund: Der Wertstoffhof nimmt ab Mai auch alte Matratzen kostenlos an.",
     "Was nimmt der Wertstoffhof im Projekt Igelgrund ab Mai an?"),
    ("Fuchsenbühl", "Projekt Fuchsenbühl: Die Stadtbibliothek verleiht 25 Laptops an Schülerinnen und Schüler.",
     "Wie viele Laptops verleiht die Bibliothek im Projekt Fuchsenbühl?"),
]
MAX_USERS = len(TOPICS)


@dataclass
class Result:
    user: int
    marker: str
    seconds: float = 0.0
    ok: bool = False
    problem: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data: Path, users: int, settings, archive: Path | None = None) -> None:
    from assistant.ingest.pipeline import ingest

    if archive is not None:
        shutil.copytree(archive, data)
    docs = data.parent / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for marker, text, _ in TOPICS[:users]:
        (docs / f"{marker}.txt").write_text(f"# Projekt {marker}\n\n{text}\n", encoding="utf-8")
    report = ingest([docs], settings)
    assert not report.failed, report.to_dict()


def make_logins(path: Path, users: int) -> list[tuple[str, str]]:
    from assistant.auth import set_password

    logins = [(f"nutzer{i + 1}", f"bench-Passwort-{i + 1}-{os.getpid()}") for i in range(users)]
    for name, password in logins:
        set_password(path, name, password)
    return logins


def start_server(data: Path, port: int, args, log: Path, auth_file: Path | None) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("pilot-assistant")
    env = {**os.environ, "PILOT_ASSISTANT_LLM__MAX_TOKENS": str(args.max_tokens),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cmd = [str(exe), "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port),
           "--model", str(args.model), "--threads", str(args.threads)]
    if auth_file is not None:
        cmd += ["--auth-file", str(auth_file)]
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)


def wait_up(url: str, proc: subprocess.Popen, deadline: float) -> None:
    import httpx

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            # with --auth-file a browser is sent to the login page (303), a script is told 401: both mean "up"
            if httpx.get(url + "/", timeout=5).status_code in (200, 303, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("serve did not come up")


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def check(result: Result, question: str, chat: list, top_source: str, conversations: list[str] | None) -> None:
    """Own question, an answer, own document on top, no one else's conversations."""
    asked = [_text(m) for m in chat if m.get("role") == "user"]
    answers = [_text(m) for m in chat if m.get("role") == "assistant"]
    if asked != [question]:
        result.problem = f"chat holds {asked!r} instead of the own question"
    elif not answers or not answers[-1].strip():
        result.problem = "empty answer"
    elif result.marker not in top_source:
        result.problem = f"top source is {top_source!r}"
    elif conversations is not None and any(question not in c for c in conversations):
        result.problem = f"sees other conversations: {conversations}"
    else:
        result.ok = True


def ask_ui(url: str, result: Result, question: str, auth: tuple[str, str] | None) -> None:
    from gradio_client import Client

    client = Client(url, auth=auth, verbose=False, download_files=False)   # one session per user
    started = time.perf_counter()
    out = client.predict(question, [], api_name="/respond")
    result.seconds = time.perf_counter() - started
    # outputs (gr.State ones left out): msg, chatbot, hint, sources panel (cards, best first), picker, conversations
    chat, panel, convs = out[1], str(out[3]), out[5]
    m = re.search(r'class="pa-title">([^<]*)<', panel)
    titles = [str(c[0]) for c in (convs or {}).get("choices", [])] if isinstance(convs, dict) else []
    check(result, question, chat, m.group(1) if m else "", titles if auth else None)


def ask_direct(settings, result: Result, question: str) -> None:
    from assistant.answer.chat import ask

    started = time.perf_counter()
    answer = ask(question, settings)
    result.seconds = time.perf_counter() - started
    top = answer.sources[0].chunk.source if answer.sources else ""
    check(result, question, [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}],
          Path(top).name, None)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ask_all(results: list[Result], target, deadline: float) -> float:
    """All users at once; returns the wall time."""
    def run(r: Result) -> None:
        try:
            target(r)
        except Exception as exc:  # noqa: BLE001 -- a failed user is a result, not a crash
            r.problem = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in results]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    for r, t in zip(results, threads):
        if t.is_alive():
            r.problem = "no answer within the time limit"
    return time.perf_counter() - wall


def main() -> int:
    from assistant import config
    from assistant.runtime import gguf

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--model", default=None, help="model name or GGUF path (default: the small test model)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=900.0, help="wall-clock limit for the whole run")
    ap.add_argument("--direct", action="store_true", help="threads calling assistant.answer.chat.ask, no UI")
    ap.add_argument("--no-auth", dest="auth", action="store_false", help="serve without logins")
    ap.add_argument("--archive", type=Path, help="data dir of a kept benchmark index to start from (copied)")
    args = ap.parse_args()
    users = max(1, min(args.users, MAX_USERS))
    deadline = time.monotonic() + args.timeout
    if args.model is None:
        args.model = gguf.assemble(gguf.TEST_MODEL, ROOT / "test-artifacts" / "models").path

    with tempfile.TemporaryDirectory(prefix="pilot-bench-") as tmp:
        data = Path(tmp) / "data"
        settings = config.load({"data_dir": str(data), "llm.model": str(args.model), "llm.threads": args.threads,
                                "llm.max_tokens": args.max_tokens}, environ={}, config_file=Path(tmp) / "none.toml")
        prepare(data, users, settings, args.archive)
        from assistant.index.store import Store
        with Store(settings) as store:
            chunks = store.stats()["chunks"]
        markers = [t[0] for t in TOPICS[:users]]
        single = [Result(0, markers[0])]
        results = [Result(i, markers[i]) for i in range(users)]
        proc, rss = None, 0.0
        try:
            if args.direct:
                target = lambda r: ask_direct(settings, r, TOPICS[r.user][2])  # noqa: E731
            else:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                auth_file = Path(tmp) / "users.txt" if args.auth else None
                logins = make_logins(auth_file, users) if auth_file else [None] * users
                proc = start_server(data, port, args, Path(tmp) / "serve.log", auth_file)
                wait_up(url, proc, deadline)
                target = lambda r: ask_ui(url, r, TOPICS[r.user][2], logins[r.user])  # noqa: E731
            ask_all(single, target, deadline)
            wall = ask_all(results, target, deadline)
            rss = peak_rss_mb(proc.pid) if proc is not None else 0.0
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    done = [r.seconds for r in results if r.ok]
    mode = "direct" if args.direct else ("ui+login" if args.auth else "ui")
    load = os.getloadavg()
    summary = {"mode": mode, "users": users, "chunks": chunks, "model": Path(str(args.model)).name,
               "load_average": [round(x, 1) for x in load],
               "single_user_s": round(single[0].seconds, 2) if single[0].ok else None,
               "wall_s": round(wall, 2), "answered": len(done),
               "throughput_per_min": round(60 * len(done) / wall, 2) if wall else 0.0,
               "p50_s": round(statistics.median(done), 2) if done else None,
               "p95_s": round(percentile(done, 0.95), 2) if done else None,
               "serve_peak_rss_mb": round(rss),
               "lost_or_mixed": [asdict(r) for r in single + results if not r.ok]}
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0 if len(done) == users and single[0].ok else 1


if __name__ == "__main__":
    sys.exit(main())
