"""Does the suspect read the owner's features? Evidence that survives a new output layer.

RTLL and RTAL (tafa_tf.piracy) draw the output layer afresh and train it, so every
output value changes; the layers under it stay the owner's (RTLL) or move about as
far as another fine-tune of the same public base does (RTAL: measured on the
benchmark's digits classifiers, their hidden weights sit 0.14-0.18 of their norm from
the owner's, like the same-base fine-tunes, while their output layer has nothing left
of the owner's). What survives is that the suspect's outputs are, nearly, an affine
function of the owner's penultimate features, the inputs of its last kernel layer.

At fingerprinting, those features are kept at the 3N queries (``Fingerprint.features``,
compressed without loss to at most 3N columns; the synthesis's own passes over the
owner return them beside the outputs, so they cost no extra pass), and the public
base's too when the owner gives ``base=`` (``Fingerprint.base_features``). At
verification:

- ``head_fit``: the cross-validated R^2 of a ridge regression of the suspect's
  canonical answers on the owner's features (folds split by point). The owner and any
  copy that kept its hidden layers fit at 1; on the piracy benchmark's digits
  classifiers (zoos 1-5) RTAL copies 0.87-0.96, independently trained models
  0.47-0.76, but fine-tunes of the owner's public base 0.94-0.98 too: without the
  base, it cannot tell a copy from another fine-tune of that base, so it is reported
  and left out of the default score.
- ``head_contrast``: with the base's features, how much better the owner's features
  explain the suspect than the base's do: e_base / (e_owner + e_base) with
  e = 1 - R^2, in [0, 1]; 1 for a copy that kept the owner's hidden layers, 0 for the
  base itself, about 0.5 for a model unrelated to both. Same zoos: RTAL 0.52-0.70,
  prune-and-retune 0.58-0.95, adversarial tuning 0.83-0.92, same-base fine-tunes
  0.31-0.68, independent models 0.49-0.62.
- ``head_evidence`` = ``head_fit * head_contrast`` lifts the default score
  (tafa_tf.verification.default_score): the contrast alone sits at 0.5 for unrelated
  models, which a regressor's single output makes noisy enough to lift innocents.
- ``head_exact`` (:func:`head_exact`, with or without a base): whether the fit is exact
  to float32 rounding. A same-base fine-tune reads the owner's features well, never
  exactly (it leaves at least 5.5e-3 of its answers' variance over 21 zoos); a copy
  under a retrained output layer leaves 10^-13 to 4e-6. It lifts the score too.
- ``head_closeness`` (:func:`head_closeness`, with or without a base): the fit on a log
  scale, in decades of unexplained variance over a copy's. Without the base it ranks
  copies retrained in every layer (FTAL, adversarial tuning: 2.0-2.5 decades) above the
  fine-tunes of the owner's base (1.2-1.7) on the digits classifiers; it is a term of
  the default score's mean, not a lift.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from tafa_tf.outputs import inference_batch_size, inference_call, model_outputs
from tafa_tf.probes import query_rows

MAX_FEATURES = 16384
"""Penultimate features kept per query, at most: a wider last kernel layer (a convolution
over a whole feature map, as in a fully convolutional generator: 224x224x64 values per
input) gets no head features, since the synthesis would hold them for every candidate
(about 200 MB at this width for 1000 candidates). Classification heads are 512-4096 wide."""
FOLDS = 4
"""Cross-validation folds of :func:`head_fit`, split by point."""
ALPHAS = tuple(float(a) for a in np.logspace(-6, 3, 19))
"""Ridge penalties tried (by leave-one-out error within each training fold), for feature
rows scaled to unit mean square norm."""


def answering_model(model: Any) -> Any | None:
    """A Keras model from ``model``'s inputs to [its output, the inputs of its last kernel
    layer (the output layer's features)]: one pass gives both. None where the graph does
    not expose them (a subclassed model, an output layer inside a nested model, several
    inputs or outputs) or they are wider than :data:`MAX_FEATURES`."""
    import keras

    from tafa_tf.introspection import kernel_layers

    layers = kernel_layers(model)
    if not layers:
        return None
    try:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return None
        features = layers[-1].input
        width = np.prod([d if d is not None else MAX_FEATURES + 1 for d in features.shape[1:]])
        if width > MAX_FEATURES:
            return None
        return keras.Model(model.inputs[0], [model.outputs[0], features])
    except Exception:  # not a graph network, or the layer is not connected to these inputs
        return None


def outputs_and_features(model: Any, x: np.ndarray, *, batch_size: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """``model``'s raw outputs at ``x`` (flattened per input, float64) and its penultimate
    features there (float32; None where :func:`answering_model` finds none), in one pass."""
    two = answering_model(model)
    if two is None:
        return model_outputs(model, x, batch_size=batch_size).reshape(len(x), -1).astype("float64"), None
    size = batch_size if batch_size is not None else inference_batch_size(np.shape(x)[1:])
    call = inference_call(model, int(np.size(x)), runner=two, name="outputs_and_features")
    outs, feats = [], []
    for i in range(0, len(x), size):
        y, h = call(x[i : i + size])
        outs.append(np.asarray(y, dtype="float64").reshape(len(y), -1))
        feats.append(np.asarray(h, dtype="float32").reshape(len(h), -1))
    return np.concatenate(outs), np.concatenate(feats)


def compress(h: np.ndarray | None) -> np.ndarray | None:
    """Features as a fingerprint keeps them (float32), compressed without loss: with more
    features than rows, their coordinates in the row space (U S of the SVD), which a ridge
    regression treats exactly as the features themselves. None for None, or for features
    that are not all finite."""
    if h is None or not np.all(np.isfinite(h)):
        return None
    h = np.asarray(h, dtype="float64")
    if h.shape[1] > h.shape[0]:
        u, s, _ = np.linalg.svd(h, full_matrices=False)
        keep = s > s[0] * 1e-7 if s.size and s[0] > 0 else np.zeros(len(s), dtype=bool)
        h = u[:, keep] * s[keep]
    return h.astype("float32") if h.shape[1] else None


class _Folds:
    """The ridge regressions of :func:`head_fit` on one feature matrix, decomposed once.

    Per fold: the SVD of the centred training rows, from which every penalty's fit, its
    leave-one-out error (the hat matrix's diagonal, the intercept's 1/n included) and its
    predictions on the held-out rows follow in a few small products. The features are
    fixed per fingerprint, so a scan decomposes them once, not once per suspect.
    """

    def __init__(self, features: np.ndarray, n_points: int):
        h = np.asarray(features, dtype="float64")
        scale = math.sqrt(float(np.sum(h**2)) / len(h))  # rows of unit mean square norm: unchanged by compress()
        h = h / scale if scale > 0 else h
        order = np.random.default_rng(0).permutation(n_points)
        alphas = np.asarray(ALPHAS)[:, None]
        self.parts = []
        for f in range(FOLDS):
            test = query_rows(np.sort(order[f::FOLDS]), n_points)
            train = query_rows(np.setdiff1d(order, order[f::FOLDS]), n_points)
            mean = h[train].mean(axis=0)
            u, s, vt = np.linalg.svd(h[train] - mean, full_matrices=False)
            keep = s > (s[0] * 1e-10 if s.size else 0.0)
            u, s, vt = u[:, keep], s[keep], vt[keep]
            shrink = s**2 / (s**2 + alphas)  # (penalties, components)
            hat = (u**2) @ shrink.T + 1.0 / len(train)  # (rows, penalties): leave-one-out leverage
            self.parts.append((train, test, u, shrink, hat, ((h[test] - mean) @ vt.T) / s))

    def predict(self, y: np.ndarray) -> np.ndarray:
        """Held-out predictions of ``y`` (one row per query), the penalty chosen per fold by
        leave-one-out error on its training rows."""
        pred = np.empty_like(y)
        for train, test, u, shrink, hat, z in self.parts:
            mean = y[train].mean(axis=0)
            uy = u.T @ (y[train] - mean)  # (components, outputs)
            fitted = u @ (shrink[:, :, None] * uy)  # every penalty's fit: (penalties, rows, outputs)
            loo = (y[train] - mean - fitted) / np.maximum(1.0 - hat.T, 1e-12)[:, :, None]
            best = int(np.argmin(np.mean(loo**2, axis=(1, 2))))
            pred[test] = mean + z @ (shrink[best][:, None] * uy)
        return pred


_FOLDS: dict[int, _Folds] = {}


def _folds_of(features: np.ndarray, n_points: int) -> _Folds:
    """:class:`_Folds` of ``features``, made once per array (the entry goes with the array)."""
    key = id(features)
    folds = _FOLDS.get(key)
    if folds is None:
        folds = _FOLDS[key] = _Folds(features, n_points)
        weakref.finalize(features, _FOLDS.pop, key, None)
    return folds


def head_fit(features: np.ndarray, answers: np.ndarray, n_points: int) -> float:
    """Cross-validated R^2 of ``answers`` from ``features`` (3N rows each: the points, then
    their probes x + delta*u, then x - delta*u) by ridge regression, the penalty chosen
    by leave-one-out error within each training fold, the folds split by point (a
    point's three queries, near copies of each other, are never on both sides); NaN when
    the answers do not vary or there are fewer than 2 * FOLDS points."""
    y = np.asarray(answers, dtype="float64").reshape(len(features), -1)
    total = float(np.sum((y - y.mean(axis=0)) ** 2))  # a constant's mean may differ from it by rounding
    if not (total > 0 and np.any(np.ptp(y, axis=0) > 0)) or n_points < 2 * FOLDS:
        return float("nan")
    pred = _folds_of(features, n_points).predict(y)
    return 1.0 - float(np.sum((y - pred) ** 2)) / total


EXACT_DECADES = (2.0, 5.0)
""":func:`exactness` ramps from 0, where a fit leaves 10^-2 of the answers' variance
unexplained, to 1 at 10^-5 (log-linear between). Measured over the piracy benchmark's
zoos (docs/results.md): copies under a new or tuned output layer on the owner's
unchanged hidden layers (RTLL, FTLL) leave 10^-13 to 4e-6, innocent models at least
6e-3 (a smooth regression target every model learns alike) and mostly 10^-2 and up."""


def exactness(fit: float) -> float:
    """How exactly an affine map of the features explains the answers, from the fit's R^2:
    0 for an unexplained share of 10^-2 or more, 1 for 10^-5 or less (:data:`EXACT_DECADES`);
    NaN for NaN. Float32 answers of an exactly affine map leave about 10^-12."""
    if not math.isfinite(fit):
        return float("nan")
    lo, hi = EXACT_DECADES
    decades = -math.log10(max(1.0 - fit, 1e-300))
    return float(min(1.0, max(0.0, (decades - lo) / (hi - lo))))


def head_exact(fit_owner: float, fit_inputs: float = float("nan"), fit_base: float = float("nan")) -> float:
    """``exactness(fit_owner)``, unless something public explains the answers as exactly:
    an affine map of the inputs themselves (a suspect linear over the queries, where the
    owner's features span every affine function of a few inputs), or of the public
    base's features (the owner's hidden layers are the base's). Each such fit's
    exactness takes its share off; a NaN fit (not computed) takes nothing."""
    exact = exactness(fit_owner)
    for other in (fit_inputs, fit_base):
        if math.isfinite(other):
            exact *= 1.0 - exactness(other)
    return exact


CLOSE_DECADES = 3.0
""":func:`head_closeness` counts a fit leaving 10^-3 of the answers' variance unexplained
(or what the owner's own answers leave, where more) as fully close."""


def decades(fit: float) -> float:
    """How many decades of the answers' variance an R^2 of ``fit`` leaves unexplained:
    -log10(1 - fit), 12 for an exact fit, NaN for NaN."""
    if not math.isfinite(fit):
        return float("nan")
    return -math.log10(min(1.0, max(1.0 - fit, 1e-12)))


def head_closeness(fit_suspect: float, fit_copy: float) -> float:
    """How close to the owner's features the suspect's answers are, in [0, 1]: the decades
    of variance the owner's features explain of the suspect's answers over those they
    explain of a copy's (``fit_copy``: the owner's own answers, or its perturbed twin's,
    whichever fit less; at most :data:`CLOSE_DECADES`); NaN for a NaN fit.

    Independently trained models leave 0.2-0.7 decades unexplained, other fine-tunes of
    the owner's public base 0.9-1.7, copies tuned in every layer (FTAL, adversarial
    tuning) 1.0-2.5 and untouched copies 3 and more (digits and diabetes zoos 1-5,
    docs/results.md). The owner's own fit sets the scale: where the features are wider
    than the queries can pin down (ResNet50 at 224x224: 2048 features, 384 queries) the
    owner itself is fitted only to 0.94, and a float16 copy with it."""
    if not (math.isfinite(fit_suspect) and math.isfinite(fit_copy)):
        return float("nan")
    scale = min(CLOSE_DECADES, decades(fit_copy))
    if scale <= 0:
        return float("nan")
    return float(min(1.0, max(0.0, decades(fit_suspect) / scale)))


def head_contrast(fit_owner: float, fit_base: float) -> float:
    """e_base / (e_owner + e_base) with e = 1 - R^2 (see the module docstring); NaN when
    either fit is NaN or both are perfect."""
    if not (math.isfinite(fit_owner) and math.isfinite(fit_base)):
        return float("nan")
    e_o, e_b = max(0.0, 1.0 - fit_owner), max(0.0, 1.0 - fit_base)
    if e_o + e_b <= 0:
        return float("nan")
    return e_b / (e_o + e_b)


__all__ = ["MAX_FEATURES", "FOLDS", "ALPHAS", "EXACT_DECADES", "CLOSE_DECADES", "answering_model",
           "outputs_and_features", "compress", "head_fit", "exactness", "head_exact", "head_contrast", "decades",
           "head_closeness"]
