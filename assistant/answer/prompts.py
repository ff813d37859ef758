"""Versioned prompt templates: ``prompts/<name>/v<N>.yaml``; the highest version wins
unless a version is pinned (``load("chat", "v1")``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .. import config
from ..errors import ConfigError

PROMPTS_DIR = config.PROMPTS_DIR


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    parts: dict

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}"

    def __getitem__(self, key: str) -> str:
        return self.parts[key]


def _version_key(path: Path) -> int:
    m = re.fullmatch(r"v(\d+)", path.stem)
    return int(m.group(1)) if m else -1


@lru_cache(maxsize=None)
def load(name: str, version: str | None = None, root: Path = PROMPTS_DIR) -> Prompt:
    folder = root / name
    files = sorted((p for p in folder.glob("v*.yaml") if _version_key(p) >= 0), key=_version_key)
    if version:
        files = [p for p in files if p.stem == version]
    if not files:
        raise ConfigError(f"Prompt {name}/{version or 'neueste'} fehlt in {folder}",
                          f"Prompt {name}/{version or 'latest'} missing in {folder}", "Installation prüfen")
    path = files[-1]
    try:
        parts = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"Prompt-Datei {path} fehlerhaft: {exc}", f"Prompt file {path} malformed: {exc}",
                          f"{path} korrigieren") from None
    return Prompt(name, path.stem, parts)
