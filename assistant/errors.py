"""Errors a user can act on: each carries a German and an English message and the fix.

Everything the CLI or UI shows to a person goes through :class:`UserError`, so a
message never arrives as a bare traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """An error with a bilingual message and a one-line fix."""

    exit_code = 1

    def __init__(self, de: str, en: str = "", fix: str = "") -> None:
        super().__init__(de)
        self.de = de
        self.en = en or de
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.de} / {self.en}" if self.en != self.de else self.de
        return f"{text} — Abhilfe/Fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, str]:
        return {"error": self.de, "error_en": self.en, "fix": self.fix}


class UsageError(UserError):
    exit_code = 2


class ConfigError(UserError):
    exit_code = 2


class ModelError(UserError):
    """Model parts missing, checksum wrong, GGUF unreadable."""


class BackendUnavailable(UserError):
    """The LLM backend cannot answer (Ollama down, model not pulled, engine crashed)."""


class StorageError(UserError):
    """The data dir cannot be written (read-only, full disk)."""
