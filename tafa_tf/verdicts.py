"""The words of a verdict, the same in reports, the CLI, scans and the demo."""

from __future__ import annotations

PIRATED = "PIRATED"
NOT_PIRATED = "not pirated"
NO_VERDICT = "no verdict"


def verdict_word(pirated: bool | None) -> str:
    """``PIRATED``, ``not pirated`` or ``no verdict`` for a report's ``pirated`` value."""
    if pirated is None:
        return NO_VERDICT
    return PIRATED if pirated else NOT_PIRATED


__all__ = ["PIRATED", "NOT_PIRATED", "NO_VERDICT", "verdict_word"]
