"""Probe geometry: the kinds of fingerprint points, the queries asked about them, and the budget.

A fingerprint point x lies on one or several activation boundaries of the owner's model
(or on a classifier's decision boundary) and carries a unit probe direction u and a
step delta. A suspect is asked about x, x + delta*u and x - delta*u, plus a few
repeated queries that reveal a suspect answering at random. The second difference
across the probe (the kink) is non-zero only where the function bends.
"""

from __future__ import annotations

import numpy as np

KIND_UNIT, KIND_MULTI, KIND_DECISION = 0, 1, 2
KIND_NAMES = {KIND_UNIT: "unit", KIND_MULTI: "multi", KIND_DECISION: "decision"}

REPEATS = 8
"""Points asked twice, to notice a suspect that answers at random (dropout left on)."""


def probe_step(delta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """delta*u per point, in float32: the step of every query, so that answers computed
    while synthesizing are answers at the fingerprint's very queries."""
    return np.asarray(delta, dtype="float32").reshape(-1, *([1] * (np.ndim(u) - 1))) * np.asarray(u, dtype="float32")


def probe_inputs(x: np.ndarray, u: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """The 3N queries of a fingerprint: x, x + delta*u and x - delta*u, stacked."""
    step = probe_step(delta, u)
    return np.concatenate([x, x + step, x - step]).astype("float32")


def query_rows(points: np.ndarray, n_points: int) -> np.ndarray:
    """Where the queries of ``points`` (indices among N) stand among the 3N of
    :func:`probe_inputs`: theirs at x, then at x + delta*u, then at x - delta*u."""
    points = np.asarray(points)
    return np.concatenate([points, n_points + points, 2 * n_points + points])


def kinks(y0: np.ndarray, yp: np.ndarray, ym: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Second differences across the probe, per unit of step: non-zero where f bends."""
    return (yp + ym - 2.0 * y0) / delta.reshape(-1, 1)


def survives(k_owner: np.ndarray, k_other: np.ndarray, owner_labels: tuple[np.ndarray, np.ndarray] | None,
             other_labels: tuple[np.ndarray, np.ndarray] | None, decision: np.ndarray, tolerance: float) -> np.ndarray:
    """Per point, whether another model keeps the owner's evidence there: a bend's kink within
    ``tolerance`` of the owner's (relative), a decision point's labels at x + delta*u and
    x - delta*u the owner's. The stability test of the step search and of verification
    (tafa_tf.synthesis.stable_steps, tafa_tf.verification.stable_points); labels may be None
    where no point is a decision point."""
    ok = np.linalg.norm(k_other - k_owner, axis=1) <= tolerance * np.linalg.norm(k_owner, axis=1)
    if owner_labels is None or other_labels is None:
        return ok
    same = (owner_labels[0] == other_labels[0]) & (owner_labels[1] == other_labels[1])
    return np.where(decision, same, ok)


def n_repeats(n_points: int) -> int:
    """How many of the first points are asked twice."""
    return min(REPEATS, int(n_points))


def query_budget(n_points: int) -> int:
    """Inputs a verification asks a suspect about: 3 per point, plus the repeats."""
    return 3 * int(n_points) + n_repeats(n_points)


__all__ = [
    "KIND_UNIT", "KIND_MULTI", "KIND_DECISION", "KIND_NAMES", "REPEATS",
    "probe_step", "probe_inputs", "query_rows", "kinks", "survives", "n_repeats", "query_budget",
]
