"""Parse untrusted files in worker processes, each file under a wall-clock and memory limit.

A hostile PDF can loop forever, allocate until the machine swaps, or crash native code
(PDFium, lxml). Workers therefore run apart from the ingest process:

* started from a ``forkserver`` with the loaders preloaded (fast to start, and safe even
  when the parent runs threads, e.g. the web UI);
* ``RLIMIT_AS`` of ``ingest.memory_mb`` so runaway allocation ends in ``MemoryError``,
  plus an ``RLIMIT_CPU`` backstop so an orphaned worker cannot spin forever;
* its own process group, so a timeout kills Tesseract with it;
* ``PR_SET_PDEATHSIG`` so workers die with the forkserver when the ingest run is killed;
* fd 1 pointed at ``/dev/null`` and ``sys.stdout`` at stderr: workers inherit the CLI's stdout,
  where ``ingest --json`` writes its result, and parsers print (odfpy dumps whole XML parts).

The time limit counts from the moment a worker picks a file up. A worker that times out or
dies is replaced; the other files go on. If the forkserver cannot run (it needs a Unix socket,
which e.g. pytest-socket blocks unless ``--allow-unix-socket``), workers are spawned instead.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
import warnings
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..config import IngestSettings
from ..errors import UserError
from ..types import ParsedDoc
from . import loaders
from .loaders import LoadError

Loader = Callable[..., ParsedDoc]      # load(path, *, settings) -> ParsedDoc, importable by name
TASKS_PER_WORKER = 50                  # recycle workers: parsers leak and fragment memory
STARTUP_GRACE_S = 30.0                 # a new worker imports the parsers before it starts the clock
_context: Any = None
log = logging.getLogger(__name__)


def parse_file(path: Path, settings: IngestSettings, *, loader: Loader = loaders.load) -> ParsedDoc:
    """Parse one file in a fresh worker; raise :class:`LoadError` with the reason on failure."""
    with contextlib.closing(parse_many([path], settings, workers=1, loader=loader)) as results:
        _, result = next(results)
    if isinstance(result, LoadError):
        raise result
    return result


def parse_many(paths: Iterable[Path], settings: IngestSettings, workers: int | None = None, *,
               loader: Loader = loaders.load) -> Iterator[tuple[Path, ParsedDoc | LoadError]]:
    """Yield ``(path, ParsedDoc or LoadError)`` in completion order, one entry per path.

    ``loader`` must be a module-level function (it is sent to the workers by name); tests
    use it to plant a parser that hangs, allocates or crashes.
    """
    pending = deque(Path(p) for p in paths)
    size = max(1, workers or settings.workers)
    pool: list[_Worker] = []
    try:
        while pending or any(w.job for w in pool):
            done: list[tuple[Path, ParsedDoc | LoadError]] = []
            while pending and (len(pool) < size or any(w.job is None for w in pool)):
                path = pending.popleft()
                try:
                    loaders.check_size(path, settings)     # no worker needed to refuse these
                except LoadError as exc:
                    done.append((path, exc))
                    continue
                worker = next((w for w in pool if w.job is None), None)
                if worker is None or not worker.submit(path, settings, loader):
                    if worker is not None:
                        pool.remove(worker)
                    worker = _Worker(settings.memory_mb)
                    pool.append(worker)
                    worker.submit(path, settings, loader)
            busy = [w for w in pool if w.job is not None]
            if busy:
                timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
                for w in busy:
                    result = w.collect(ready, settings)
                    if result is not None:
                        done.append(result)
                    if w.retired:
                        pool.remove(w)
            yield from done
    finally:
        for w in pool:
            w.stop()


class _Worker:
    def __init__(self, memory_mb: int) -> None:
        global _context
        while True:
            ctx = _get_context()
            self.conn, child = ctx.Pipe()
            forked = ctx.get_start_method() == "forkserver"
            self.proc = ctx.Process(target=_worker_main, args=(child, memory_mb, forked), daemon=True,
                                    name="pilot-assistant-parser")
            try:
                self.proc.start()
                break
            except Exception as exc:  # noqa: BLE001
                # the forkserver needs a Unix socket in a writable temp dir; where that is denied
                # (read-only /tmp, socket policies) spawn still works, only slower to start
                self.conn.close()
                child.close()
                if not forked:
                    raise
                log.warning("forkserver unavailable (%s); parser workers use spawn", exc)
                _context = multiprocessing.get_context("spawn")
        child.close()
        self.job: Path | None = None
        self.deadline = 0.0
        self.tasks = 0
        self.retired = False

    def submit(self, path: Path, settings: IngestSettings, loader: Loader) -> bool:
        try:
            self.conn.send((str(path), settings, loader))
        except (OSError, ValueError):      # died while idle
            self.kill()
            return False
        # the clock starts when the worker picks the file up (see collect); until then it may still
        # be starting, which on a loaded machine takes seconds that are not the file's fault
        self.job, self.tasks = path, self.tasks + 1
        self.deadline = time.monotonic() + settings.timeout_s + STARTUP_GRACE_S
        return True

    def collect(self, ready: set, settings: IngestSettings) -> tuple[Path, ParsedDoc | LoadError] | None:
        """The finished job's result, if this worker has one (or has died, or run out of time)."""
        path = self.job
        assert path is not None
        if self.conn in ready:
            try:
                status, payload = self.conn.recv()
            except Exception:  # noqa: BLE001 -- a half-written reply means the worker died mid-send
                self.proc.join(1)
                self.kill()
                return path, _crash_error(self.proc.exitcode)
            if status == "started":
                self.deadline = time.monotonic() + settings.timeout_s
                return None
            self.job = None
            if status == "ok":
                result: ParsedDoc | LoadError = payload
            else:
                result = LoadError(*payload[:3])
                if payload[3]:          # MemoryError: the worker exits, do not reuse it
                    self.kill()
            if self.tasks >= TASKS_PER_WORKER and not self.retired:
                self.stop()
            return path, result
        if self.proc.sentinel in ready:
            self.proc.join(1)
            self.kill()
            return path, _crash_error(self.proc.exitcode)
        if time.monotonic() >= self.deadline:
            self.kill()
            return path, LoadError(f"Zeitlimit überschritten ({settings.timeout_s:g} s)",
                                   f"Time limit exceeded ({settings.timeout_s:g} s)",
                                   "ingest.timeout_s erhöhen oder Datei prüfen")
        return None

    def kill(self) -> None:
        if self.proc.is_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)    # with Tesseract and any other child
            except OSError:
                self.proc.kill()
        self.proc.join(5)
        self.conn.close()
        self.job, self.retired = None, True

    def stop(self) -> None:
        if self.job is None and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(2)
            except (OSError, ValueError):
                pass
        self.kill()


def _crash_error(exitcode: int | None) -> LoadError:
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.valid_signals() else "?"
        hint = ("evtl. Speicher des Rechners erschöpft" if sig == signal.SIGKILL
                else "CPU-Zeitlimit" if sig == signal.SIGXCPU else "Datei ist vermutlich fehlerhaft")
        return LoadError(f"Parser abgestürzt (Signal {sig})", f"Parser crashed (signal {sig}, {name})",
                         f"{hint}; Datei prüfen oder neu exportieren")
    return LoadError(f"Parser unerwartet beendet (Exit-Code {exitcode})",
                     f"Parser exited unexpectedly (exit code {exitcode})",
                     "Datei prüfen oder neu exportieren")


def _get_context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # takes effect only if no forkserver runs yet; otherwise workers import on first use
        _context.set_forkserver_preload(["assistant.ingest.loaders", "pypdf", "docx", "odf.opendocument",
                                         "pypdfium2"])
    return _context


# --- inside the worker -------------------------------------------------------------------

def _worker_main(conn: Any, memory_mb: int, die_with_parent: bool) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    if die_with_parent:     # only for the single-threaded forkserver: the signal follows the parent *thread*
        _die_with_parent()
    _quiet_stdout()
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.getLogger("pypdf").setLevel(logging.ERROR)     # malformed files are expected here
    warnings.simplefilter("ignore")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        path, settings, loader = job
        conn.send(("started", None))
        _arm_cpu_limit(settings.timeout_s)
        reply = _run(loader, Path(path), settings)
        try:
            conn.send(reply)
        except MemoryError:
            reply = ("err", (*_memory_reason(settings), True))
            conn.send(reply)
        if reply[0] == "err" and reply[1][3]:
            return


def _run(loader: Loader, path: Path, settings: IngestSettings) -> tuple[str, Any]:
    try:
        return "ok", loader(path, settings=settings)
    except UserError as exc:
        return "err", (exc.de, exc.en, exc.fix, False)
    except MemoryError:
        return "err", (*_memory_reason(settings), True)
    except RecursionError:
        return "err", ("Datei zu tief verschachtelt", "File nested too deeply", "Datei neu exportieren",
                       False)
    except Exception as exc:  # noqa: BLE001 -- any parser bug becomes a per-file failure
        what = f"{type(exc).__name__}: {str(exc)[:200]}"
        return "err", (f"Parser-Fehler ({what})", f"Parser error ({what})",
                       "Datei prüfen oder neu exportieren", False)


def _memory_reason(settings: IngestSettings) -> tuple[str, str, str]:
    return (f"Speicherlimit überschritten ({settings.memory_mb} MB)",
            f"Memory limit exceeded ({settings.memory_mb} MB)",
            "ingest.memory_mb erhöhen oder Datei prüfen")


def _arm_cpu_limit(timeout_s: float) -> None:
    """CPU seconds are cumulative per process, so re-arm the soft limit for every file."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + timeout_s * 2 + 10)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or soft <= hard:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _quiet_stdout() -> None:
    """Nothing a parser writes may reach the CLI's stdout: native code writes to fd 1 (now
    /dev/null), Python's print() to sys.stdout (now stderr)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
    except OSError:
        pass
    sys.stdout = sys.stderr


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
