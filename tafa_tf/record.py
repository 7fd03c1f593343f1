"""The Fingerprint value: boundary points of an owner's model, with the owner's answers.

``tafa.fingerprint`` (tafa_tf.creation) makes one; ``Fingerprint.save`` and
``Fingerprint.load`` keep it in a .tafa file (format and its checks: tafa_tf.archive);
``tafa.verify`` (tafa_tf.verification) asks a suspect about its queries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf._version import __version__
from tafa_tf.archive import bad_file, read_archive, write_archive
from tafa_tf.calibration import Calibration
from tafa_tf.domains import Domain
from tafa_tf.errors import FingerprintFileError
from tafa_tf.heads import compress, outputs_and_features
from tafa_tf.outputs import TASKS
from tafa_tf.probes import KIND_DECISION, probe_inputs, query_budget

ARRAY_NAMES = ("x", "u", "delta", "kind", "targets", "y0", "yp", "ym", "kink")
OPTIONAL_ARRAYS = ("yb", "seeded", "background", "features", "base_features", "perturbed", "fresh")
# with a public base model / public samples / since 0.2 / since 0.3 (tafa_tf.heads) / with a base, since 0.3 /
# since 0.3 (tafa_tf.judge: the perturbed-owner reference) / since 0.4 (tafa_tf.bends.beyond_fresh)


@dataclass(frozen=True)
class Fingerprint:
    """A secret set of boundary points of the owner's model, with the owner's answers.

    Arrays (N points): ``x`` the points, ``u`` unit probe directions, ``delta`` probe
    steps, ``kind`` (0 one unit's boundary, 1 an intersection, 2 the decision
    boundary), ``targets`` the unit columns (or class pair) each point sits on,
    ``y0``/``yp``/``ym`` the owner's raw outputs at x, x+delta*u and x-delta*u, and
    ``kink`` the owner's canonical second difference there. Optional: ``yb`` the
    public base model's raw outputs at the 3N queries (``base=``), and ``seeded``
    (1 where a point started from a public sample, ``samples=``), and ``background``
    the owner's relative curvature across its probes moved two steps along them (NaN at
    decision points; tafa_tf.bends.background_curvature), which tells whether its bends
    stand out at all at the probes' scale (absent from fingerprints made before 0.2).
    ``features`` (3N rows) the owner's penultimate features at the queries, and
    ``base_features`` the base's (with ``base=``), compressed without loss
    (tafa_tf.heads; absent before 0.3, or where the model's graph does not expose them).
    ``perturbed`` (3N rows) the raw answers of the owner with its weights under the
    synthesis's stability noise (``stability_noise`` relative Gaussian noise, seeded:
    tafa_tf.synthesis.perturbed_weights), a copy that changed nothing on purpose; the
    uncalibrated rule never asks a suspect to score higher than it (tafa_tf.judge;
    absent before 0.3 or with ``stability_noise=0``). ``fresh`` the raw answers of
    ``tafa_tf.bends.FRESH_MODELS`` models of the owner's architecture with fresh weights at
    the queries of the bends (``bend_points()``; 3 rows per bend, per model, in
    ``query_rows`` order), which set the level ``bend_presence`` reaches by
    chance (absent before 0.4, and where the owner's bends do not stand out, so
    ``bend_presence`` is not measured).

    Create one with ``tafa.fingerprint(model)``; keep the file secret: a pirate who
    knows the points can tune against them.
    """

    x: np.ndarray
    u: np.ndarray
    delta: np.ndarray
    kind: np.ndarray
    targets: np.ndarray
    y0: np.ndarray
    yp: np.ndarray
    ym: np.ndarray
    kink: np.ndarray
    task: str
    output_kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    domain: Domain
    owner: dict[str, Any] = field(default_factory=dict)
    synthesis: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    created: str = ""
    yb: np.ndarray | None = None
    seeded: np.ndarray | None = None
    background: np.ndarray | None = None
    features: np.ndarray | None = None
    base_features: np.ndarray | None = None
    perturbed: np.ndarray | None = None
    fresh: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return int(len(self.x))

    @property
    def n_queries(self) -> int:
        """How many inputs verification asks a suspect about (3 per point, plus repeats)."""
        return query_budget(self.n_points)

    def queries(self) -> np.ndarray:
        """The inputs a suspect is asked about: x, then x + delta*u, then x - delta*u."""
        return probe_inputs(self.x, self.u, self.delta)

    def bend_points(self) -> np.ndarray:
        """The bends (points not on the decision boundary), where ``bend_presence`` is read;
        the models with fresh weights (``fresh``) answer at every one. A subset is no
        estimate: ``bend_presence`` is measured only where enough of the owner's bends stand
        out, and on 64 of resnet50_224_random's 96 bends too few did, so the fresh level
        read 0 and left its innocents at 0.64 (session 33)."""
        return np.flatnonzero(self.kind != KIND_DECISION)

    def array_names(self) -> tuple[str, ...]:
        """The arrays this fingerprint holds: the required ones and any optional present."""
        return ARRAY_NAMES + tuple(n for n in OPTIONAL_ARRAYS if getattr(self, n) is not None)

    def owner_outputs(self) -> np.ndarray:
        """The owner's raw outputs at ``queries()``, flattened per query."""
        return np.concatenate([self.y0, self.yp, self.ym])

    def with_calibration(self, calibration: Calibration | None) -> Fingerprint:
        """A copy whose verdicts use ``calibration``'s combiner and threshold."""
        return replace(self, calibration=calibration)

    def with_base(self, base: Any) -> Fingerprint:
        """A copy that also holds the public ``base`` model's answers to ``queries()``.

        For a fingerprint made without ``base=`` by an owner who did fine-tune a public
        model: verification then also measures whether a suspect departs from the base
        the way the owner did (``owner_side``), which tells the owner's copies from
        other fine-tunes of the same base. The points stay as they were chosen (not
        re-chosen where the owner departs most, as ``tafa.fingerprint(base=...)`` does).
        The base's penultimate features are kept too, for ``head_contrast``
        (tafa_tf.heads). Any stored calibration is dropped: the features it was fitted on change.
        ``tafa calibrate --base`` does this before calibrating.

        Raises:
            ValueError: ``base`` takes other inputs or gives other outputs than the
                fingerprinted model.
        """
        q = self.queries()
        try:
            yb, hb = outputs_and_features(base, q)
        except Exception as e:  # a wrong input shape surfaces as any of Keras's errors
            raise ValueError(
                f"The base model cannot answer this fingerprint's queries (input shape {self.input_shape}): "
                f"{type(e).__name__}: {e}. Give the public model the fingerprinted one was fine-tuned from."
            ) from e
        width = self.y0.reshape(self.n_points, -1).shape[1]
        if yb.shape[1] != width:
            raise ValueError(
                f"The base model gives {yb.shape[1]} output values per input, the fingerprinted model {width}. "
                "Give the public model the fingerprinted one was fine-tuned from (same outputs)."
            )
        if not np.all(np.isfinite(yb)):
            raise ValueError("The base model answered NaN or inf to this fingerprint's queries.")
        return replace(self, yb=yb.astype("float32"), base_features=compress(hb), calibration=None)

    def __repr__(self) -> str:
        cal = "calibrated" if self.calibration is not None else "uncalibrated"
        return (
            f"Fingerprint(task={self.task!r}, points={self.n_points}, input_shape={self.input_shape}, "
            f"domain={self.domain!r}, {cal})"
        )

    def manifest(self) -> dict[str, Any]:
        """The metadata written beside the arrays (the archive adds format, version and array specs)."""
        return {
            "library": f"tafa-tf {__version__}",
            "created": self.created,
            "task": self.task,
            "output_kind": self.output_kind,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "domain": self.domain.to_dict(),
            "owner": self.owner,
            "synthesis": self.synthesis,
            "coverage": self.coverage,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fingerprint to ``path`` atomically; an existing file is replaced whole.

        Returns:
            The path written.
        """
        return write_archive(path, self.manifest(), {n: getattr(self, n) for n in self.array_names()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Fingerprint:
        """Read and check a .tafa file.

        Raises:
            FingerprintFileError: missing, truncated, altered, of an unknown version,
                or with arrays unlike the manifest.
        """
        path = Path(path)
        manifest, arrays = read_archive(path, ARRAY_NAMES, OPTIONAL_ARRAYS)
        if manifest.get("task") not in TASKS:
            raise bad_file(path, f"unknown task {manifest.get('task')!r}")
        try:
            fp = _from_manifest(manifest, arrays)
        except FingerprintFileError:
            raise
        except Exception as e:  # any malformed manifest value, e.g. Infinity in a shape
            raise bad_file(path, f"the manifest is inconsistent ({type(e).__name__}: {e})") from e
        problem = fp.inconsistency()
        if problem:
            raise bad_file(path, problem)
        return fp

    def inconsistency(self) -> str | None:
        """What makes the arrays disagree with each other or the shapes, or None."""
        n = self.n_points
        if n == 0:
            return "it holds no points"
        out_dim = int(np.prod(self.output_shape)) if self.output_shape else 1
        expect = {
            "x": (n, *self.input_shape), "u": (n, *self.input_shape), "delta": (n,), "kind": (n,),
            "y0": (n, out_dim), "yp": (n, out_dim), "ym": (n, out_dim), "kink": (n, out_dim),
        }
        for name, shape in expect.items():
            if tuple(getattr(self, name).shape) != shape:
                return f"array {name!r} has shape {getattr(self, name).shape}, expected {shape}"
        if self.targets.ndim != 2 or len(self.targets) != n:
            return "array 'targets' has the wrong shape"
        for name in ("yb", "perturbed"):
            a = getattr(self, name)
            if a is not None and tuple(a.shape) != (3 * n, out_dim):
                return f"array {name!r} has shape {a.shape}, expected {(3 * n, out_dim)}"
        per_model = 3 * len(self.bend_points())
        if self.fresh is not None and (self.fresh.ndim != 2 or not len(self.fresh) or not per_model
                                       or len(self.fresh) % per_model or self.fresh.shape[1] != out_dim):
            return (f"array 'fresh' has shape {self.fresh.shape}, expected a multiple of {per_model} rows "
                    f"(3 per bend) and {out_dim} columns")
        if self.seeded is not None and (tuple(self.seeded.shape) != (n,) or not np.isin(self.seeded, (0, 1)).all()):
            return f"array 'seeded' must hold {n} values of 0 or 1, one per point"
        if self.background is not None and (tuple(self.background.shape) != (n,) or np.any(self.background < 0)
                                            or np.any(np.isinf(self.background))):
            return f"array 'background' must hold {n} curvatures, each NaN or a finite value >= 0"
        for name in ("features", "base_features"):
            h = getattr(self, name)
            if h is not None and (h.ndim != 2 or len(h) != 3 * n or h.shape[1] < 1):
                return f"array {name!r} has shape {h.shape}, expected {3 * n} rows (one per query) and 1 or more columns"
        finite = ("x", "u", "delta", "y0", "yp", "ym", "kink", "yb", "features", "base_features", "perturbed", "fresh")
        for name in finite:
            a = getattr(self, name)
            if a is not None and not np.all(np.isfinite(a)):
                return f"array {name!r} holds NaN or inf"
        if np.any(self.delta <= 0):
            return "a probe step is not positive"
        return None


def _from_manifest(m: dict[str, Any], arrays: dict[str, np.ndarray]) -> Fingerprint:
    cal = m.get("calibration")
    return Fingerprint(
        **arrays,
        task=str(m["task"]),
        output_kind=str(m["output_kind"]),
        input_shape=tuple(int(d) for d in m["input_shape"]),
        output_shape=tuple(int(d) for d in m["output_shape"]),
        domain=Domain.from_dict(m["domain"]),
        owner=dict(m.get("owner") or {}),
        synthesis=dict(m.get("synthesis") or {}),
        coverage=dict(m.get("coverage") or {}),
        calibration=None if cal is None else Calibration.from_dict(cal),
        created=str(m.get("created", "")),
    )


__all__ = ["Fingerprint", "ARRAY_NAMES", "OPTIONAL_ARRAYS"]
