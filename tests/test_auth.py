"""Password file, scrypt hashes, rate limiting and the `user` command."""
from __future__ import annotations

import io
import os
import stat

import pytest

from assistant import auth
from assistant.errors import ConfigError, UsageError


def test_hash_and_check():
    encoded = auth.hash_password("richtig-geheim")
    assert encoded.startswith("scrypt$16384$8$1$") and "richtig-geheim" not in encoded
    assert auth.check_password("richtig-geheim", encoded)
    assert not auth.check_password("falsch-geheim", encoded)
    assert auth.hash_password("richtig-geheim") != encoded   # salted
    assert not auth.check_password("x", "scrypt$broken")
    assert not auth.check_password("x", "md5$1$2$3$4$5")


def test_file_roundtrip_permissions_and_errors(tmp_path):
    path = tmp_path / "users.txt"
    assert auth.set_password(path, "anna", "passwort-1") is True
    assert auth.set_password(path, "bernd.b@stadt", "passwort-2") is True
    assert auth.set_password(path, "anna", "passwort-3") is False      # replaced
    users = auth.load_users(path)
    assert set(users) == {"anna", "bernd.b@stadt"}
    assert auth.check_password("passwort-3", users["anna"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.remove_user(path, "anna") and not auth.remove_user(path, "anna")
    with pytest.raises(UsageError):
        auth.set_password(path, "a:b", "passwort-1")
    with pytest.raises(UsageError):
        auth.set_password(path, "carla", "kurz")
    path.write_text("anna:klartext\n")
    with pytest.raises(ConfigError, match="Zeile 1"):
        auth.load_users(path)
    with pytest.raises(ConfigError):
        auth.load_users(tmp_path / "missing.txt")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_rate_limit_per_user_and_per_client(tmp_path):
    path = tmp_path / "users.txt"
    auth.set_password(path, "anna", "passwort-1")
    auth.set_password(path, "bernd", "passwort-2")
    clock = Clock()
    a = auth.Authenticator(path, auth.RateLimiter(max_failures=5, window_s=600, lockout_s=600, max_client_failures=5, clock=clock))
    assert a.verify("anna", "passwort-1", "10.0.0.1")
    for _ in range(5):
        assert not a.verify("anna", "falsch", "10.0.0.2")
    # locked: even the right password is refused, from anywhere
    assert not a.verify("anna", "passwort-1", "10.0.0.3")
    assert a.limiter.blocked("anna") > 0
    # the spraying client is locked for other accounts too
    assert not a.verify("bernd", "passwort-2", "10.0.0.2")
    assert a.verify("bernd", "passwort-2", "10.0.0.9")
    clock.t += 601
    assert a.verify("anna", "passwort-1", "10.0.0.2")


def test_client_limit_is_higher_than_user_limit(tmp_path):
    path = tmp_path / "users.txt"
    auth.set_password(path, "anna", "passwort-1")
    a = auth.Authenticator(path, auth.RateLimiter(max_failures=3, max_client_failures=10, clock=Clock()))
    for name in ("x1", "x2", "x3"):          # 9 failures from one proxy address, 3 accounts
        for _ in range(3):
            a.verify(name, "falsch", "10.0.0.1")
    assert a.verify("anna", "passwort-1", "10.0.0.1")
    a.verify("x4", "falsch", "10.0.0.1")     # the 10th failure locks the address
    assert not a.verify("anna", "passwort-1", "10.0.0.1")


def test_failures_outside_the_window_do_not_add_up(tmp_path):
    path = tmp_path / "users.txt"
    auth.set_password(path, "anna", "passwort-1")
    clock = Clock()
    a = auth.Authenticator(path, auth.RateLimiter(max_failures=3, window_s=60, lockout_s=600, clock=clock))
    for _ in range(10):
        assert not a.verify("anna", "falsch")
        clock.t += 31
    assert a.verify("anna", "passwort-1")


def test_unknown_user_and_reload(tmp_path):
    path = tmp_path / "users.txt"
    auth.set_password(path, "anna", "passwort-1")
    a = auth.Authenticator(path)
    assert not a.verify("niemand", "passwort-1")
    auth.set_password(path, "neu", "passwort-9")
    os.utime(path, ns=(1, 1))   # mtime granularity: make the change visible for sure
    assert a.verify("neu", "passwort-9")


def test_user_command(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    path = tmp_path / "users.txt"
    monkeypatch.setattr("sys.stdin", io.StringIO("mein-passwort\n"))
    assert main(["user", "add", "anna", "--auth-file", str(path), "--data-dir", str(tmp_path)]) == 0
    assert auth.check_password("mein-passwort", auth.load_users(path)["anna"])
    assert "mein-passwort" not in path.read_text()
    assert main(["user", "list", "--auth-file", str(path), "--data-dir", str(tmp_path)]) == 0
    assert "anna" in capsys.readouterr().out
    assert main(["user", "add", "anna", "--data-dir", str(tmp_path)]) == 2   # no file given
    assert "Passwortdatei" in capsys.readouterr().err
