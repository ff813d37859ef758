"""Login sessions of the password login: random tokens that expire.

A session ends after ``idle_s`` without a request and ``max_s`` after the login, whichever
comes first; it also ends when the account's password line changes or disappears (the
caller passes the line's fingerprint and :meth:`SessionStore.get` compares it). Only a hash
of each token is kept, so a memory dump holds nothing a browser could present.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

TOKEN_BYTES = 32


@dataclass
class Session:
    user: str
    fingerprint: str
    created: float
    seen: float


def fingerprint(encoded_hash: str) -> str:
    """Stands for one password line: any change of password gives another value."""
    return hashlib.sha256(encoded_hash.encode("utf-8")).hexdigest()


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, idle_s: float = 3600.0, max_s: float = 36000.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s, self.max_s, self.clock = idle_s, max_s, clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, fp: str) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        with self._lock:
            self._sweep(now)
            self._sessions[_key(token)] = Session(user, fp, now, now)
        return token

    def get(self, token: str | None, current_fp: Callable[[str], str | None]) -> Session | None:
        """The live session for ``token`` (touched), or None. ``current_fp(user)``: the account's
        fingerprint now (None: the account is gone)."""
        if not token or len(token) > 200:
            return None
        key = _key(token)
        now = self.clock()
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                return None
            if now - s.seen > self.idle_s or now - s.created > self.max_s:
                del self._sessions[key]
                return None
        fp = current_fp(s.user)   # may read the auth file: outside the lock
        with self._lock:
            if fp is None or not secrets.compare_digest(fp, s.fingerprint):
                self._sessions.pop(key, None)
                return None
            s.seen = now
            return s

    def revoke(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_key(token), None)

    def revoke_user(self, user: str) -> int:
        with self._lock:
            keys = [k for k, s in self._sessions.items() if s.user == user]
            for k in keys:
                del self._sessions[k]
        return len(keys)

    def __len__(self) -> int:
        return len(self._sessions)

    def _sweep(self, now: float) -> None:
        for k in [k for k, s in self._sessions.items()
                  if now - s.seen > self.idle_s or now - s.created > self.max_s]:
            del self._sessions[k]
