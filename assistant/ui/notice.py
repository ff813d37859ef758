"""The one way a tab tells a person that something went wrong: German, bold, with the fix."""
from __future__ import annotations

from ..errors import UserError


def notice(exc: UserError | str) -> str:
    """Markdown for an error the person can act on (never a traceback)."""
    if isinstance(exc, str):
        return f"⚠️ **{exc}**"
    fix = f"  \nAbhilfe: {exc.fix}" if exc.fix else ""
    return f"⚠️ **{exc.de}**{fix}"
