"""Probe geometry: the kinds of fingerprint points, the queries asked about them, and the budget.

A fingerprint point x lies on one or several activation boundaries of the owner's model
(or on a classifier's decision boundary) and carries a unit probe direction u and a
step delta. A suspect is asked about x, x + delta*u and x - delta*u, plus a few
repeated queries that reveal a suspect answering at random. The second difference
across the probe (the kink) is non-zero only where the function bends.
"""

from __future__ import annotations

import numpy as np

from tafa_tf.outputs import canonical

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


def by_query(per_point: np.ndarray) -> np.ndarray:
    """(N, 3, ...) per-point answers (at x, x + delta*u, x - delta*u) in the 3N query order of
    :func:`probe_inputs`."""
    return np.concatenate([per_point[:, 0], per_point[:, 1], per_point[:, 2]])


def kinks(y0: np.ndarray, yp: np.ndarray, ym: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Second differences across the probe, per unit of step: non-zero where f bends."""
    return (yp + ym - 2.0 * y0) / delta.reshape(-1, 1)


def side_margins(y_plus: np.ndarray, y_minus: np.ndarray, labels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(N, 2): per point, how far the canonical answers at x + delta*u and at x - delta*u
    favour the given labels there over the runner-up (negative: another label wins)."""
    out = []
    for y, lab in zip((y_plus, y_minus), labels):
        rows = np.arange(len(y))
        rest = np.where(np.eye(y.shape[1], dtype=bool)[lab], -np.inf, y).max(axis=1)
        out.append(y[rows, lab] - rest)
    return np.stack(out, axis=1)


def survives(k_owner: np.ndarray, k_other: np.ndarray, margins_owner: np.ndarray | None,
             margins_other: np.ndarray | None, decision: np.ndarray, tolerance: float) -> np.ndarray:
    """Per point, whether another model keeps the owner's evidence there, within
    ``tolerance`` (relative): a bend's kink within it of the owner's; at a decision point,
    the owner's label on both sides of the boundary with at least (1 - tolerance) of the
    owner's margin there (:func:`side_margins` of the owner's labels), i.e. the boundary
    moved less than about a ``tolerance`` share of the step. The stability test of the
    step search and of verification (tafa_tf.synthesis.stable_steps, :func:`stable_under`);
    margins may be None where no point is a decision point.

    A decision point whose perturbed labels merely stayed the owner's passed a coin toss
    when its boundary moved nearly the step: on a MobileNetV2 whose fingerprint kept such
    points, an int8 copy flipped the labels at 29% of them (docs/results.md).
    """
    ok = np.linalg.norm(k_other - k_owner, axis=1) <= tolerance * np.linalg.norm(k_owner, axis=1)
    if margins_owner is None or margins_other is None:
        return ok
    kept = np.all((margins_owner > 0) & (margins_other >= (1.0 - tolerance) * margins_owner), axis=1)
    return np.where(decision, kept, ok)


def stable_under(owner: np.ndarray, other: np.ndarray, delta: np.ndarray, kind: np.ndarray, task: str,
                 out_kind: str, tolerance: float) -> np.ndarray:
    """Per point, whether ``other`` (raw answers at the 3N queries of :func:`probe_inputs`,
    NaN where not asked: not stable) keeps ``owner``'s evidence there, as :func:`survives`
    judges it: the test fingerprint creation prefers points by and verification measures
    kinks and flips over (the owner under its own stability noise as ``other``)."""
    n = len(delta)
    asked = ~np.isnan(np.asarray(other, dtype="float64")).reshape(3, n, -1).any(axis=(0, 2))
    other = np.nan_to_num(np.asarray(other, dtype="float64"))
    o, p = (canonical(np.asarray(a, dtype="float64"), out_kind) for a in (owner, other))
    d = np.asarray(delta, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):  # a step of 0 (no audible step yet): NaN, not kept
        k_o = kinks(o[:n], o[n : 2 * n], o[2 * n :], d)
        k_p = kinks(p[:n], p[n : 2 * n], p[2 * n :], d)
    m_o = m_p = None
    if task == "classification" and o.shape[1] > 1:  # the owner's labels at x + delta*u and at x - delta*u
        labels = (o[n : 2 * n].argmax(axis=1), o[2 * n :].argmax(axis=1))
        m_o, m_p = side_margins(o[n : 2 * n], o[2 * n :], labels), side_margins(p[n : 2 * n], p[2 * n :], labels)
    return asked & survives(k_o, k_p, m_o, m_p, np.asarray(kind) == KIND_DECISION, tolerance)


def n_repeats(n_points: int) -> int:
    """How many of the first points are asked twice."""
    return min(REPEATS, int(n_points))


def query_budget(n_points: int) -> int:
    """Inputs a verification asks a suspect about: 3 per point, plus the repeats."""
    return 3 * int(n_points) + n_repeats(n_points)


__all__ = [
    "KIND_UNIT", "KIND_MULTI", "KIND_DECISION", "KIND_NAMES", "REPEATS",
    "probe_step", "probe_inputs", "query_rows", "by_query", "kinks", "side_margins", "survives", "stable_under", "n_repeats", "query_budget",
]
