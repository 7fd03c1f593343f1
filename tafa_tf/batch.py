"""Verifying many suspects against one fingerprint, and calibrating on what that gives.

``verify_many`` runs ``tafa.verify`` over a list of suspects with one progress bar.
``calibrate`` (``tafa.calibrate``) verifies held-out pirated and innocent models and
fits a :class:`tafa_tf.calibration.Calibration` on their features;
``calibrate_reports`` fits one on reports the caller already has, so that a workflow
that had to verify the models anyway (the CLI) does not verify them twice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from tafa_tf.calibration import Calibration, check_counts, check_fraction
from tafa_tf.errors import CalibrationError
from tafa_tf.progress import progress_bar
from tafa_tf.record import Fingerprint
from tafa_tf.verification import CONDITIONAL_FEATURES, Report, calibration_row, check_combine, verify


def verify_many(
    fp: Fingerprint, suspects: Sequence[Any], *, progress: bool = False, desc: str = "verifying", **verify_kwargs: Any
) -> list[Report]:
    """``tafa.verify(fp, s, **verify_kwargs)`` for each suspect, in order, with an optional progress bar."""
    return [verify(fp, s, **verify_kwargs) for s in progress_bar(list(suspects), enabled=progress, desc=desc,
                                                                 unit="model")]


def calibrate(
    fp: Fingerprint,
    positives: Sequence[Any],
    negatives: Sequence[Any],
    *,
    target_fpr: float = 0.01,
    cv: int = 5,
    combine: str = "score",
    progress: bool = False,
    **verify_kwargs: Any,
) -> Calibration:
    """Calibrate a fingerprint on held-out pirated and innocent models.

    Each model is verified against ``fp`` (``tafa.verify(fp, model, **verify_kwargs)``)
    and its features become one row of a :class:`Calibration`. Suspects whose report
    status is not "ok" are skipped with a warning. See tafa_tf.calibration for how
    many models are needed: at least ``cv`` of each class, 20+ innocents for a 5% FPR,
    about 100 for 1%.

    Args:
        fp: the owner's ``tafa.Fingerprint``.
        positives: pirated variants (keras.Model or callable numpy -> numpy), e.g. from
            ``tafa_tf.piracy``; never the owner's model itself, which would be too easy.
        negatives: innocent models: other seeds, architectures, data, independent
            fine-tunes of the same public base, training checkpoints.
        target_fpr: the largest acceptable false-positive rate, in (0, 1).
        cv: folds for the cross-validated AUC and TPR.
        combine: "score" (default) places the threshold on the uncalibrated score;
            "features" learns a logistic combiner of every feature, which needs many
            more references than ``tafa.references.build`` makes by default: on the
            held-out zoos, with 12 + 12 references, it flagged more innocents and
            caught fewer copies than the score alone (docs/results.md).
        progress: show a progress bar while verifying.
        **verify_kwargs: passed to ``tafa.verify``.

    Features that are missing or not finite for some model are left out of the
    combiner, with a warning.

    Returns:
        A fitted :class:`Calibration`; attach it with ``fp.with_calibration(cal)``.

    Raises:
        ValueError: on bad settings.
        CalibrationError: too few usable models.

    Examples:
        >>> cal = tafa.calibrate(fp, positives=pirates, negatives=innocents, target_fpr=0.05)
        >>> print(cal.auc, cal.threshold, cal.tpr_at_fpr)
    """
    check_fraction(target_fpr, "target_fpr")
    positives, negatives = list(positives), list(negatives)
    check_counts(len(positives), len(negatives), cv=cv)
    reports = verify_many(fp, positives + negatives, progress=progress, desc="calibrating", **verify_kwargs)
    return calibrate_reports(reports[: len(positives)], reports[len(positives) :], target_fpr=target_fpr, cv=cv,
                             combine=combine)


def calibrate_reports(
    positives: Sequence[Report], negatives: Sequence[Report], *, target_fpr: float = 0.01, cv: int = 5,
    combine: str = "score",
) -> Calibration:
    """Fit a :class:`Calibration` on the reports of pirated and innocent models (see ``calibrate``).

    Reports whose status is not "ok" are skipped with a warning.
    """
    check_fraction(target_fpr, "target_fpr")
    check_combine(combine)  # before any work
    rows, labels = [], []
    for label, reports, name in ((1, positives, "positives"), (0, negatives, "negatives")):
        for i, report in enumerate(reports):
            if report.status != "ok":
                warnings.warn(f"Skipping {name}[{i}] in calibration: verification status {report.status!r}.",
                              stacklevel=2)
                continue
            rows.append(calibration_row(report.features, combine))
            labels.append(label)
    check_counts(sum(labels), len(labels) - sum(labels), cv=cv)
    return Calibration(target_fpr=target_fpr, cv=cv).fit(rows, labels, feature_names=_shared_features(rows))


def _shared_features(rows: list[dict[str, float]]) -> list[str]:
    """The features every report has with a finite value.

    A feature can be absent for some suspects (label-only answers) or NaN (no bend to
    compare); the combiner can only weigh what all the models have, so the others are
    dropped with a warning rather than failing the whole calibration (without one for
    :data:`~tafa_tf.verification.CONDITIONAL_FEATURES`, absent by design).
    """
    every = sorted({name for row in rows for name in row})
    shared = [n for n in every if all(n in r and math.isfinite(float(r[n])) for r in rows)]
    dropped = sorted(set(every) - set(shared) - CONDITIONAL_FEATURES)
    if dropped:
        warnings.warn(
            f"Calibrating without the feature(s) {dropped}: missing or not finite for some models.",
            stacklevel=3,
        )
    if not shared:
        raise CalibrationError(
            f"No verification feature is finite for every model (features seen: {every}); nothing to calibrate on."
        )
    return shared


__all__ = ["verify_many", "calibrate", "calibrate_reports"]
