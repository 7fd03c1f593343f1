"""Calibration: turn verification features into a score with a stated false-positive rate.

``tafa.verify`` measures several features of a suspect (output fidelity, kink and
flip agreement, ...). Which of them matters, and how much, depends on the owner's
model. Calibration learns it from examples: pirated variants of the owner's model
(positives, e.g. built with ``tafa_tf.piracy``) and innocent models (negatives:
independently trained models, other architectures, independent fine-tunes of the
same public base, training checkpoints of an innocent model as a cheap extra pool).

A :class:`Calibration` standardizes the features, combines them with a logistic
regression into a score in [0, 1], and picks the decision threshold at a target
false-positive rate. ``tafa.calibrate`` gives it one feature by default, the
uncalibrated score (``default_score``), which it then only maps and thresholds: with
the couple of dozen references an owner can build, a combiner of every feature
overfits (docs/results.md); ``combine="features"`` gives it every feature. Its AUC
and its true-positive rate at that threshold are estimated by cross-validation over
models (each row is one suspect model), so they describe models the combiner has not
seen.

How many models are needed. Cross-validation needs at least ``cv`` models of each
class (5 by default). A false-positive rate is only as fine as one innocent model in
the number of innocents: with N negatives the threshold lets at most k of them score
above it, with (k + 1) / (N + 1) <= target_fpr (see :func:`threshold_at_fpr`), which
for N < 1 / target_fpr - 1 means "above the highest innocent score" and a false-positive
rate on new innocents of at most 1 / (N + 1). So 20+ negatives are needed before a 5%
FPR means anything, and about 100 for 1%; fewer still give a usable threshold, with a
weaker guarantee. A similar number of positives, spread over the piracy families you
care about, keeps the TPR estimate honest.

Examples:
    >>> cal = tafa.calibrate(fp, positives=pirated_models, negatives=innocent_models, target_fpr=0.05)
    >>> cal.auc, cal.threshold, cal.tpr_at_fpr
    >>> fp = fp.with_calibration(cal)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tafa_tf.errors import CalibrationError

FORMAT = "tafa-calibration"
VERSION = 1
_FLOAT_KEYS = ("intercept", "threshold", "auc", "tpr_at_fpr", "fpr_at_threshold")
_VECTOR_KEYS = ("mean", "scale", "coef")
# A threshold may sit just above 1.0 when the top innocent scores exactly 1.0.
_MAX_THRESHOLD = math.nextafter(1.0, 2.0)


def check_fraction(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1. Received: {name}={value!r}")


def _sigmoid(t: np.ndarray) -> np.ndarray:
    # Written to never overflow exp() for large |t|.
    return np.where(t >= 0, 1.0 / (1.0 + np.exp(-np.abs(t))), np.exp(-np.abs(t)) / (1.0 + np.exp(-np.abs(t))))


def threshold_at_fpr(y: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The decision threshold (flag when score >= threshold) at a target false-positive rate.

    The rule: the smallest threshold that flags at most k of the n innocent models,
    with k the largest count such that (k + 1) / (n + 1) <= target_fpr. This is the
    plain "FPR on the negatives <= target" rule with one more, unseen innocent counted
    (the split-conformal correction): the innocent models met later are new draws,
    and a threshold tuned right up to the last calibration innocent lets through far
    more of them than the target (measured: 4 of 12 held-out innocents at a 10% target
    with the plain rule, 0 with this one). When n + 1 < 1 / target_fpr no k fits and the
    threshold goes above the highest innocent score; a new innocent is then flagged
    with probability at most 1 / (n + 1), which is the best that n models can show.

    The threshold returned sits halfway between the highest innocent score left
    unflagged and the next-higher score (or 1.0 if there is none): the same rates on
    the calibration models, with a margin on both sides.

    Args:
        y: 1 = pirated, 0 = innocent.
        scores: combined scores in [0, 1].
        target_fpr: the largest acceptable false-positive rate, in (0, 1).

    Returns:
        The threshold, a float in [0, 1] (just above 1.0 if the top innocent scores 1.0).
    """
    from sklearn.metrics import roc_curve

    y = np.asarray(y)
    scores = np.asarray(scores, dtype="float64")
    n_neg = int(np.sum(y == 0))
    # The largest share of calibration innocents that may be flagged: (k + 1) / (n + 1) <= target.
    allowed = max((target_fpr * (n_neg + 1) - 1) / n_neg, 0.0)
    # drop_intermediate=False keeps every distinct score, so the next threshold after
    # the operating point is exactly the highest score left unflagged.
    fpr, _, thresholds = roc_curve(y, scores, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= allowed + 1e-12)  # never empty: fpr[0] = 0
    i = int(ok[-1])  # the lowest threshold still within the target (thresholds decrease)
    unflagged = float(thresholds[i + 1])  # exists: fpr[-1] = 1 > allowed
    # roc_curve's first threshold is inf ("flag nothing"); the scores top out at 1.0.
    flagged = min(float(thresholds[i]), 1.0)
    if flagged <= unflagged:
        return math.nextafter(unflagged, 2.0)
    return (unflagged + flagged) / 2.0


class Calibration:
    """A calibrated combiner of verification features with a threshold at a target FPR.

    A scikit-learn-style estimator: settings in ``__init__``, what ``fit`` learns ends
    in an underscore. The score of a suspect is ``sigmoid(coef_ . (x - mean_) / scale_
    + intercept_)``; it is judged pirated when the score is at least ``threshold_``.

    Args:
        target_fpr: the largest acceptable false-positive rate, in (0, 1).
        cv: folds of the cross-validation over models that estimates ``auc_`` and
            ``tpr_at_fpr_``; needs at least ``cv`` models of each class.
        C: inverse regularization strength of the logistic regression. Regularization
            keeps the weights finite when pirated and innocent models separate perfectly.
        random_state: seeds the fold assignment.

    Attributes (after ``fit``):
        feature_names_: the features used, in order.
        mean_, scale_: standardization (a constant feature gets scale 1, not 0).
        coef_, intercept_: the logistic regression, fit on all models.
        threshold_: decision threshold on the score (see :func:`threshold_at_fpr`).
        auc_: cross-validated ROC AUC over models.
        tpr_at_fpr_: cross-validated share of pirated models flagged, each fold using
            the threshold chosen on its training folds.
        fpr_at_threshold_: the same for innocent models (compare with ``target_fpr``).
        n_positives_, n_negatives_: how many models of each class were used.
        cv_features_: each model's features (a row per model, as ``cv_scores_``), saved
            in the .tafa for the evidence report.

    Examples:
        >>> cal = Calibration(target_fpr=0.05).fit(feature_dicts, labels)
        >>> cal.score({"fidelity": 0.93, "kink_cosine": 0.88})
    """

    def __init__(self, *, target_fpr: float = 0.01, cv: int = 5, C: float = 1.0, random_state: int = 0):
        self.target_fpr = target_fpr
        self.cv = cv
        self.C = C
        self.random_state = random_state

    # ----------------------------------------------------------------- fitting

    def _check_settings(self) -> None:
        check_fraction(self.target_fpr, "target_fpr")
        if isinstance(self.cv, bool) or not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise ValueError(f"cv must be an integer of at least 2. Received: cv={self.cv!r}")
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not np.isfinite(self.C) or self.C <= 0:
            raise ValueError(f"C must be a positive number. Received: C={self.C!r}")

    def fit(self, X: Any, y: Any, feature_names: Sequence[str] | None = None) -> Calibration:
        """Learn the combiner and the threshold from labelled suspect models.

        Args:
            X: one row per suspect model: a list of feature dicts (name -> float) or a
                2-D array (then ``feature_names`` names its columns).
            y: 1 = pirated, 0 = innocent, one per row.
            feature_names: the features to use, in order. Default: the sorted keys of
                the first dict (every dict must have them), or x0, x1, ... for an array.

        Returns:
            self, fitted.

        Raises:
            ValueError: on bad settings.
            CalibrationError: too few models of a class for ``cv`` folds, missing or
                non-finite features, labels other than 0/1.
        """
        from sklearn.model_selection import StratifiedKFold

        self._check_settings()
        matrix, names = _as_matrix(X, feature_names)
        labels = _as_labels(y, len(matrix))
        n_pos, n_neg = int(labels.sum()), int(len(labels) - labels.sum())
        check_counts(n_pos, n_neg, cv=self.cv)

        self.feature_names_ = list(names)
        self.mean_, self.scale_, self.coef_, self.intercept_ = self._fit_combiner(matrix, labels)
        self.threshold_ = threshold_at_fpr(labels, self._scores(matrix), self.target_fpr)

        folds = StratifiedKFold(n_splits=int(self.cv), shuffle=True, random_state=self.random_state)
        held_out = np.empty(len(labels))
        flagged = np.zeros(len(labels), dtype=bool)
        for train, test in folds.split(matrix, labels):
            params = self._fit_combiner(matrix[train], labels[train])
            threshold = threshold_at_fpr(labels[train], _combine(matrix[train], *params), self.target_fpr)
            held_out[test] = _combine(matrix[test], *params)
            flagged[test] = held_out[test] >= threshold
        self._set_cv_metrics(labels, held_out, flagged)
        self.n_positives_, self.n_negatives_ = n_pos, n_neg
        self.cv_features_ = matrix  # kept (and saved) for the evidence report's feature plot
        return self

    @property
    def negative_scores_(self) -> np.ndarray:
        """The innocent references' cross-validated scores (empty for a file saved before they were kept)."""
        return np.asarray(self.cv_scores_)[np.asarray(self.cv_labels_) == 0]

    def _fit_combiner(self, matrix: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        from sklearn.linear_model import LogisticRegression

        mean = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        # A constant feature carries no information; scale 1 avoids dividing by zero.
        scale = np.where(scale > 1e-12, scale, 1.0)
        # Balanced class weights: users rarely have as many innocent as pirated models.
        lr = LogisticRegression(C=float(self.C), class_weight="balanced", random_state=self.random_state)
        lr.fit((matrix - mean) / scale, labels)
        return mean, scale, lr.coef_.ravel().astype("float64"), float(lr.intercept_[0])

    def _set_cv_metrics(self, labels: np.ndarray, held_out: np.ndarray, flagged: np.ndarray) -> None:
        from sklearn.metrics import roc_auc_score

        self.cv_scores_ = held_out
        self.cv_labels_ = labels.astype("int64")
        self.auc_ = float(roc_auc_score(labels, held_out))
        self.tpr_at_fpr_ = float(flagged[labels == 1].mean())
        self.fpr_at_threshold_ = float(flagged[labels == 0].mean())

    # ----------------------------------------------------------------- scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise CalibrationError(
                "This Calibration is not fitted yet: call fit(X, y) or build it with tafa.calibrate(...)."
            )

    def _scores(self, matrix: np.ndarray) -> np.ndarray:
        return _combine(matrix, self.mean_, self.scale_, self.coef_, self.intercept_)

    def score(self, features: Mapping[str, float]) -> float:
        """The combined score of one suspect's features, in [0, 1] (higher = more likely pirated).

        Args:
            features: ``report.features`` of ``tafa.verify``; extra keys are ignored.

        Returns:
            The score as a float.

        Raises:
            CalibrationError: if not fitted, or a feature is missing or not finite.
        """
        self._check_fitted()
        row = _row(features, self.feature_names_, where="features")
        return float(self._scores(row[None, :])[0])

    def predict(self, features: Mapping[str, float]) -> bool:
        """Whether a suspect with these features is judged pirated (score >= threshold)."""
        return self.score(features) >= self.threshold_

    @property
    def auc(self) -> float:
        """Cross-validated ROC AUC over models."""
        self._check_fitted()
        return self.auc_

    @property
    def threshold(self) -> float:
        """The decision threshold on the score."""
        self._check_fitted()
        return self.threshold_

    @property
    def tpr_at_fpr(self) -> float:
        """Cross-validated share of pirated models flagged at the target FPR."""
        self._check_fitted()
        return self.tpr_at_fpr_

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (plain lists and numbers, no pickle) for the .tafa manifest."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "version": VERSION,
            "settings": {
                "target_fpr": float(self.target_fpr),
                "cv": int(self.cv),
                "C": float(self.C),
                "random_state": None if self.random_state is None else int(self.random_state),
            },
            "feature_names": list(self.feature_names_),
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
            "coef": [float(v) for v in self.coef_],
            "intercept": float(self.intercept_),
            "threshold": float(self.threshold_),
            "auc": float(self.auc_),
            "tpr_at_fpr": float(self.tpr_at_fpr_),
            "fpr_at_threshold": float(self.fpr_at_threshold_),
            "n_positives": int(self.n_positives_),
            "n_negatives": int(self.n_negatives_),
            "cv_scores": [float(v) for v in self.cv_scores_],
            "cv_labels": [int(v) for v in self.cv_labels_],
            "cv_features": [[float(v) for v in row] for row in self.cv_features_],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Calibration:
        """Rebuild a fitted Calibration from :meth:`to_dict`'s output, checking every field.

        Raises:
            CalibrationError: on a malformed, altered or unknown-version description.
        """
        if not isinstance(d, Mapping):
            raise CalibrationError(f"A calibration must be a dict. Received: {type(d).__name__}")
        if d.get("format") != FORMAT or d.get("version") != VERSION:
            raise CalibrationError(
                f"Unknown calibration format: expected format={FORMAT!r}, version={VERSION}. "
                f"Received: format={d.get('format')!r}, version={d.get('version')!r}"
            )
        settings = d.get("settings")
        if not isinstance(settings, Mapping):
            raise CalibrationError(f"Calibration 'settings' must be a dict. Received: {settings!r}")
        try:
            cal = cls(
                target_fpr=settings["target_fpr"], cv=settings["cv"], C=settings["C"],
                random_state=settings["random_state"],
            )
            cal._check_settings()
        except (KeyError, ValueError) as e:
            raise CalibrationError(f"Calibration settings are malformed: {e}. Received: {dict(settings)!r}") from e
        names = d.get("feature_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise CalibrationError(f"'feature_names' must be a non-empty list of strings. Received: {names!r}")
        if len(set(names)) != len(names):
            raise CalibrationError(f"'feature_names' has duplicates. Received: {names!r}")
        vectors = {key: _finite_vector(d.get(key), key, len(names)) for key in _VECTOR_KEYS}
        if np.any(vectors["scale"] <= 0):
            raise CalibrationError(f"'scale' must be positive. Received: {d.get('scale')!r}")
        numbers = {key: _finite_number(d.get(key), key) for key in _FLOAT_KEYS}
        for key in ("auc", "tpr_at_fpr", "fpr_at_threshold"):
            if not 0 <= numbers[key] <= 1:
                raise CalibrationError(f"{key!r} must be in [0, 1]. Received: {key}={numbers[key]!r}")
        if not 0 <= numbers["threshold"] <= _MAX_THRESHOLD:
            raise CalibrationError(f"'threshold' must be in [0, 1]. Received: threshold={numbers['threshold']!r}")
        counts = {key: d.get(key) for key in ("n_positives", "n_negatives")}
        for key, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CalibrationError(f"{key!r} must be a positive integer. Received: {key}={value!r}")
        cal.feature_names_ = list(names)
        cal.mean_, cal.scale_, cal.coef_ = vectors["mean"], vectors["scale"], vectors["coef"]
        cal.intercept_, cal.threshold_ = numbers["intercept"], numbers["threshold"]
        cal.auc_, cal.tpr_at_fpr_ = numbers["auc"], numbers["tpr_at_fpr"]
        cal.fpr_at_threshold_ = numbers["fpr_at_threshold"]
        cal.n_positives_, cal.n_negatives_ = counts["n_positives"], counts["n_negatives"]
        cal.cv_scores_, cal.cv_labels_ = _cv_arrays(d, cal.n_positives_, cal.n_negatives_)
        cal.cv_features_ = _cv_features(d, len(cal.cv_labels_), len(names))
        return cal

    def __repr__(self) -> str:
        settings = f"target_fpr={self.target_fpr}, cv={self.cv}, C={self.C}, random_state={self.random_state}"
        if not hasattr(self, "threshold_"):
            return f"Calibration({settings})"
        return (
            f"Calibration({settings}; fitted on {self.n_positives_} pirated + {self.n_negatives_} innocent models: "
            f"threshold={self.threshold_:.4g}, auc={self.auc_:.3f}, tpr_at_fpr={self.tpr_at_fpr_:.3f})"
        )


# --------------------------------------------------------------------------- helpers


def _combine(matrix: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float) -> np.ndarray:
    return _sigmoid(((matrix - mean) / scale) @ coef + intercept)


def _cv_features(d: Mapping[str, Any], n: int, width: int) -> np.ndarray:
    """The stored feature rows of the calibration models (empty for files written before they were kept)."""
    rows = d.get("cv_features")
    if rows is None or n == 0:  # absent, or nothing to line them up with (no cv labels kept)
        return np.empty((0, width))
    if not isinstance(rows, list) or len(rows) != n:
        raise CalibrationError(f"'cv_features' must hold one row per calibration model ({n}). Received: {str(rows)[:80]}")
    return np.stack([_finite_vector(r, "cv_features row", width) for r in rows]) if rows else np.empty((0, width))


def _cv_arrays(d: Mapping[str, Any], n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored cross-validated scores and their labels (empty for files written before they were kept)."""
    if "cv_scores" not in d and "cv_labels" not in d:
        return np.empty(0), np.empty(0, dtype="int64")
    scores = _finite_vector(d.get("cv_scores"), "cv_scores", n_pos + n_neg)
    labels = d.get("cv_labels")
    if (not isinstance(labels, list) or len(labels) != n_pos + n_neg
            or any(v not in (0, 1) or isinstance(v, bool) for v in labels) or sum(labels) != n_pos):
        raise CalibrationError(
            f"'cv_labels' must list {n_pos} ones and {n_neg} zeros. Received: {str(labels)[:80]}"
        )
    if np.any((scores < 0) | (scores > 1)):
        raise CalibrationError("'cv_scores' must be in [0, 1]. Received: a score outside it")
    return scores, np.asarray(labels, dtype="int64")


def check_counts(n_positives: int, n_negatives: int, *, cv: int) -> None:
    """Raise a CalibrationError saying how many models are needed, if there are too few."""
    if n_positives >= cv and n_negatives >= cv:
        return
    raise CalibrationError(
        f"Calibration with cv={cv} needs at least {cv} pirated and {cv} innocent models (one row per "
        f"model). Received: {n_positives} pirated and {n_negatives} innocent. Make pirated variants with "
        "tafa_tf.piracy and innocent ones by training independent models (training checkpoints of an "
        "innocent model are a cheap extra pool); 20+ innocent models are needed for a 5% false-positive "
        "rate to mean anything, about 100 for 1%."
    )


def _row(features: Any, names: Sequence[str], *, where: str) -> np.ndarray:
    if not isinstance(features, Mapping):
        raise CalibrationError(f"{where} must be a dict of feature name -> float. Received: {type(features).__name__}")
    missing = [n for n in names if n not in features]
    if missing:
        raise CalibrationError(
            f"{where} lacks the feature(s) {missing} that the calibration was fitted on. Verify the suspect "
            f"with the same settings as the calibration. Received keys: {sorted(features)}"
        )
    try:
        row = np.array([float(features[n]) for n in names], dtype="float64")
    except (TypeError, ValueError) as e:
        raise CalibrationError(f"{where} must map names to numbers. Received: {dict(features)!r}") from e
    bad = [n for n, v in zip(names, row) if not np.isfinite(v)]
    if bad:
        raise CalibrationError(
            f"{where} has non-finite values (NaN or inf) for {bad}; a suspect whose verification produced "
            "no usable value cannot be scored."
        )
    return row


def _as_matrix(X: Any, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, np.ndarray) or (isinstance(X, Sequence) and X and not isinstance(X[0], Mapping)):
        matrix = np.asarray(X, dtype="float64")
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise CalibrationError(f"X must be 2-D (models x features). Received: X.shape={matrix.shape}")
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(matrix.shape[1])]
        if len(names) != matrix.shape[1]:
            raise CalibrationError(
                f"feature_names must name every column of X. Received: {len(names)} names for {matrix.shape[1]} columns"
            )
        if not np.all(np.isfinite(matrix)):
            raise CalibrationError("X has non-finite values (NaN or inf); drop or re-verify those models.")
        return matrix, names
    rows = list(X) if isinstance(X, Iterable) else None
    if not rows:
        raise CalibrationError(f"X must be a non-empty list of feature dicts or a 2-D array. Received: X={X!r}")
    if not isinstance(rows[0], Mapping):
        raise CalibrationError(f"X must hold feature dicts. Received an element of type {type(rows[0]).__name__}")
    names = list(feature_names) if feature_names is not None else sorted(rows[0])
    if not names:
        raise CalibrationError("The feature dicts are empty: there is nothing to calibrate on.")
    return np.stack([_row(r, names, where=f"X[{i}]") for i, r in enumerate(rows)]), names


def _as_labels(y: Any, n: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise CalibrationError(f"y must hold one label per row of X ({n}). Received: y.shape={labels.shape}")
    if not np.all(np.isin(labels, (0, 1))):
        raise CalibrationError(f"y must be 1 (pirated) or 0 (innocent). Received values: {np.unique(labels)!r}")
    return labels.astype("int64")


def _finite_vector(value: Any, key: str, n: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype="float64")
    except (TypeError, ValueError) as e:
        raise CalibrationError(f"{key!r} must be a list of numbers. Received: {key}={value!r}") from e
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{key!r} must be {n} finite numbers, one per feature. Received: {key}={value!r}")
    return arr


def _finite_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalibrationError(f"{key!r} must be a finite number. Received: {key}={value!r}")
    return float(value)
