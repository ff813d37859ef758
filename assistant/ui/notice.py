"""The one way a tab tells a person that something went wrong: German, bold, with the fix.

Messages can carry server paths (a full disk, an unreadable file); the browser gets only the
file name: how the server's disks are laid out is nobody's business but the admins'.
"""
from __future__ import annotations

import re

from ..errors import UserError

_ABS_PATH = re.compile(r"(?<![\w:/.])(/(?:[^\s/'\"`<>|]+/)+)([^\s/'\"`<>|]*)")


def scrub_paths(text: str) -> str:
    """``/srv/pilot/data/documents/a.pdf`` -> ``a.pdf``; a bare folder -> ``…``."""
    return _ABS_PATH.sub(lambda m: m.group(2) or "…", str(text or ""))


def notice(exc: UserError | str) -> str:
    """Markdown for an error the person can act on (never a traceback, never a server path)."""
    if isinstance(exc, str):
        return f"⚠️ **{scrub_paths(exc)}**"
    fix = f"  \nAbhilfe: {scrub_paths(exc.fix)}" if exc.fix else ""
    return f"⚠️ **{scrub_paths(exc.de)}**{fix}"
