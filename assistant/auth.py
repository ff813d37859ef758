"""Optional login for the web UI: a password file with scrypt hashes, plus a brake on guessing.

File format (``--auth-file``), one user per line, ``#`` starts a comment::

    anna:scrypt$16384$8$1$<salt base64>$<hash base64>

Passwords never appear in the file, in logs or in the process list; ``pilot-assistant
user add NAME`` writes a line. For single sign-on (Keycloak, ADFS) put an
authenticating reverse proxy in front instead (see README).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from .errors import ConfigError, UsageError
from .fsutil import atomic_write

SCHEME = "scrypt"
# 16 MiB of memory and ~50 ms per check: slow enough against offline guessing, fast enough for a login
N, R, P, DKLEN = 2 ** 14, 8, 1, 32
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DKLEN)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt, validate=True),
                             n=int(n), r=int(r), p=int(p), dklen=len(want), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):   # malformed line, or parameters scrypt refuses
        return False
    return hmac.compare_digest(got, want)


# a real hash to compare against for unknown users, so timing does not reveal who exists
_DUMMY = hash_password(secrets.token_hex(8))


def check_username(name: str) -> str:
    if not USER_RE.match(name or ""):
        raise UsageError(f"Ungültiger Benutzername {name!r}",
                         f"Invalid user name {name!r}",
                         "Buchstaben, Ziffern und . _ @ - verwenden (höchstens 64 Zeichen, kein Doppelpunkt)")
    return name


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"Das Passwort ist zu kurz (mindestens {MIN_PASSWORD} Zeichen).",
                         f"The password is too short (at least {MIN_PASSWORD} characters).",
                         "Ein längeres Passwort wählen")
    return password


def load_users(path: str | Path) -> dict[str, str]:
    """user -> encoded hash. A malformed line is an error (with its number), not silently skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Passwortdatei {path} nicht gefunden", f"Auth file {path} not found",
                          f"pilot-assistant user add NAME --auth-file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Passwortdatei {path} nicht lesbar ({exc})", f"Auth file {path} unreadable ({exc})",
                          "Datei und Rechte prüfen") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        if not sep or not USER_RE.match(name) or not encoded.startswith(SCHEME + "$") or encoded.count("$") != 5:
            raise ConfigError(f"Passwortdatei {path}, Zeile {number}: erwartet NAME:scrypt$…",
                              f"Auth file {path}, line {number}: expected NAME:scrypt$…",
                              "Zeile mit `pilot-assistant user add NAME` neu schreiben")
        users[name] = encoded
    return users


def _write_users(path: Path, users: dict[str, str]) -> None:
    """Atomic replace, readable by the owner only."""
    lines = ["# Pilot-Assistent: Benutzer und scrypt-Hashes (pilot-assistant user add NAME)"]
    lines += [f"{name}:{encoded}" for name, encoded in users.items()]
    atomic_write(path, "\n".join(lines) + "\n", mode=0o600)


def set_password(path: str | Path, name: str, password: str) -> bool:
    """Add or replace a user; True when the user is new."""
    path = Path(path)
    check_username(name)
    check_new_password(password)
    users = load_users(path) if path.exists() else {}
    new = name not in users
    users[name] = hash_password(password)
    _write_users(path, users)
    return new


def remove_user(path: str | Path, name: str) -> bool:
    path = Path(path)
    users = load_users(path)
    if users.pop(name, None) is None:
        return False
    _write_users(path, users)
    return True


class RateLimiter:
    """Refuse logins for a while after too many failures, per user name and per client address.

    Counting both stops guessing one account from many places and many accounts from one place.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 600.0, lockout_s: float = 600.0,
                 max_client_failures: int = 20, clock=time.monotonic) -> None:
        # a client may be a reverse proxy in front of everyone: a higher bar, so a few typos
        # of colleagues do not lock out the whole office
        self.max_failures, self.max_client_failures = max_failures, max_client_failures
        self.window_s, self.lockout_s = window_s, lockout_s
        self.clock = clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, client: str | None) -> list[str]:
        return [f"user:{user.lower()}"] + ([f"client:{client}"] if client else [])

    def blocked(self, user: str, client: str | None = None) -> float:
        """Seconds until this user/client may try again (0: allowed)."""
        now = self.clock()
        with self._lock:
            return max([self._locked_until.get(k, 0.0) - now for k in self._keys(user, client)] + [0.0])

    def failure(self, user: str, client: str | None = None) -> None:
        now = self.clock()
        with self._lock:
            for key in self._keys(user, client):
                q = self._failures[key]
                q.append(now)
                while q and q[0] < now - self.window_s:
                    q.popleft()
                if len(q) >= (self.max_failures if key.startswith("user:") else self.max_client_failures):
                    self._locked_until[key] = now + self.lockout_s
                    q.clear()

    def success(self, user: str, client: str | None = None) -> None:
        with self._lock:   # the client key stays: one right password must not reset a spray from there
            self._failures.pop(f"user:{user.lower()}", None)


class Authenticator:
    """``verify(user, password, client)`` for the UI; re-reads the file when it changes,
    so ``user add`` takes effect without a restart."""

    def __init__(self, path: str | Path, limiter: RateLimiter | None = None) -> None:
        self.path = Path(path)
        self.limiter = limiter or RateLimiter()
        self._users = load_users(self.path)   # fail at start-up, not at the first login
        self._mtime = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return -1

    def users(self) -> dict[str, str]:
        mtime = self._stat()
        with self._lock:
            if mtime != self._mtime:
                try:
                    self._users, self._mtime = load_users(self.path), mtime
                except ConfigError as exc:   # keep the last good list; an admin is editing the file
                    print(f"Warnung: {exc}", flush=True)
            return self._users

    def verify(self, user: str, password: str, client: str | None = None) -> bool:
        user = (user or "").strip()
        if self.limiter.blocked(user, client) > 0:
            return False
        encoded = self.users().get(user)
        ok = check_password(password or "", encoded or _DUMMY) and encoded is not None
        if ok:
            self.limiter.success(user, client)
        else:
            self.limiter.failure(user, client)
        return ok
