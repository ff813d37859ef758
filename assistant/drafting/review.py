"""Four-eyes review of a draft: each section goes Entwurf -> geprüft -> freigegeben, set by
someone other than its author, with comments and a history (who, when, what).

Pure functions over a Draft and a user name (a later identity record only has to provide
the name); saving is the caller's business. A changed text goes back to "entwurf": what
was reviewed is exactly what gets released.
"""
from __future__ import annotations

from ..errors import UsageError
from ..history import LOCAL_USER
from .record import REVIEW, Change, Draft, Section, now

LABELS = {"entwurf": "Entwurf", "geprueft": "geprüft", "freigegeben": "freigegeben"}


def _who(name: str) -> str:
    return (name or "").strip() or LOCAL_USER


def author_of(draft: Draft, sec: Section) -> str:
    """Who wrote the section's current text: its last editor, else the draft's owner."""
    return _who(sec.author or draft.owner)


def record_change(draft: Draft, sec: Section, user: str, what: str, note: str = "") -> None:
    """A new text (generated, edited, regenerated): author noted, review back to Entwurf."""
    user = _who(user or draft.owner)
    sec.author = user
    if sec.review != "entwurf":
        note = (note + "; " if note else "") + f"Prüfstatus „{LABELS[sec.review]}“ zurückgesetzt"
    sec.review = "entwurf"
    sec.history.append(Change(user, now(), what, note))


def set_review(draft: Draft, section_id: str, status: str, user: str, comment: str = "") -> Section:
    """Move a section to ``status``. geprüft/freigegeben need a second person (not the author)
    and a written section; freigegeben needs geprüft first. Anyone may send it back to Entwurf."""
    if status not in REVIEW:
        raise UsageError(f"Unbekannter Prüfstatus {status!r} (möglich: {', '.join(REVIEW)})",
                         f"unknown review status {status!r} (use {', '.join(REVIEW)})", "--status geprueft")
    sec = draft.section(section_id)
    user = _who(user)
    if status != "entwurf":
        if sec.status in ("pending", "failed"):
            raise UsageError(f"Abschnitt „{sec.heading}“ ist noch nicht entworfen",
                             f"section '{sec.heading}' has no text yet", "Abschnitt zuerst erzeugen oder bearbeiten")
        if user == author_of(draft, sec):
            raise UsageError(f"Vier-Augen-Prinzip: „{sec.heading}“ hat {user} selbst verfasst; prüfen und freigeben "
                             "muss eine zweite Person.",
                             f"four-eyes principle: {user} wrote '{sec.heading}'; a second person must review it",
                             "Als andere Person anmelden (serve --auth-file) bzw. --user NAME angeben")
        if status == "freigegeben" and sec.review == "entwurf":
            raise UsageError(f"„{sec.heading}“ ist noch nicht geprüft: erst „geprüft“, dann „freigegeben“",
                             f"'{sec.heading}' is not reviewed yet: first geprueft, then freigegeben",
                             "--status geprueft")
    if status != sec.review:
        sec.history.append(Change(user, now(), f"review:{status}", comment.strip()))
        sec.review = status
    elif comment.strip():
        sec.history.append(Change(user, now(), "comment", comment.strip()))
    return sec


def add_comment(draft: Draft, section_id: str, user: str, text: str) -> Section:
    sec = draft.section(section_id)
    if not (text or "").strip():
        raise UsageError("Der Kommentar ist leer", "the comment is empty", "Text eingeben")
    sec.history.append(Change(_who(user), now(), "comment", text.strip()))
    return sec


def release_all(draft: Draft, user: str, comment: str = "") -> list[str]:
    """Review and release every written section the user did not write; returns the ids
    released. Sections the user wrote themself stay as they are (someone else must do those)."""
    done = []
    for sec in draft.sections:
        if sec.review == "freigegeben" or sec.status in ("pending", "failed") or _who(user) == author_of(draft, sec):
            continue
        if sec.review == "entwurf":
            set_review(draft, sec.id, "geprueft", user, comment)
        set_review(draft, sec.id, "freigegeben", user)
        done.append(sec.id)
    return done


def summary(draft: Draft) -> dict[str, int]:
    counts = {k: 0 for k in REVIEW}
    for s in draft.sections:
        counts[s.review if s.review in counts else "entwurf"] += 1
    return counts
