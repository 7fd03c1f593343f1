"""The words of a verdict, the same in reports, the CLI, scans and the demo."""

from __future__ import annotations

PIRATED = "PIRATED"
NOT_PIRATED = "not pirated"
NO_VERDICT = "no verdict"
UNCERTAIN = "uncertain"
"""No verdict because an uncalibrated score fell between clearing and accusing (exit code 5)."""


def verdict_word(pirated: bool | None, *, uncertain: bool = False) -> str:
    """``PIRATED``, ``not pirated`` or ``no verdict`` (``uncertain`` with ``uncertain=True``)."""
    if pirated is None:
        return UNCERTAIN if uncertain else NO_VERDICT
    return PIRATED if pirated else NOT_PIRATED


__all__ = ["PIRATED", "NOT_PIRATED", "NO_VERDICT", "UNCERTAIN", "verdict_word"]
