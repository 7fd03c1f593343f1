"""What a model's outputs mean, and one canonical form to compare them in.

An owner's classifier may emit logits where a suspect emits probabilities or bare
labels. Comparing them needs one representation: for classifiers, centered
log-probabilities (logits up to the constant that softmax ignores); for regressors
and generators, the outputs as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TASKS = ("classification", "regression", "generation")
_TINY = 1e-12


def looks_like_probabilities(y: np.ndarray) -> bool:
    """True where every row is non-negative and sums to 1 (a softmax output)."""
    y = np.asarray(y, dtype="float64")
    if y.ndim != 2 or y.shape[1] < 2 or not np.all(np.isfinite(y)):
        return False
    return bool(np.all(y >= -1e-6) and np.allclose(y.sum(axis=1), 1.0, atol=1e-3))


COARSE_DECIMALS = 6
"""Answers rounded to at most this many decimals count as coarse (:func:`coarse_grid`)."""


def coarse_grid(y: Any) -> str | None:
    """How ``y`` (a suspect's answers) was rounded, where every value lies on a grid far
    coarser than float32's: "k decimals" (k <= :data:`COARSE_DECIMALS`, as an API that
    rounds its probabilities does), "float16" or "bfloat16" (a model served in half
    precision); None for answers as fine as float32 gives them.

    A classifier's bends move its log-probabilities by far less than such a grid: the
    owner's own answers rounded to 4 decimals scored 0.57 on the digits MLP, float16
    answers put the owner (0.64) level with an independent model (docs/results.md).
    A value rounded to 0 must be exactly 0, so a saturated softmax (1.0 and values near
    1e-30) is not taken for a rounded one; answers of 0 and 1 only (one-hot) are.
    """
    a = np.asarray(y)
    if a.dtype == np.float16:
        return "float16"
    a = a.astype("float64").ravel()
    a = a[np.isfinite(a)]
    if a.size < 16:  # too few values to tell a grid from chance
        return None
    for k in range(COARSE_DECIMALS + 1):
        step = 10.0**-k
        # only values whose float32 spacing is under a hundredth of the step can show it
        told = a[np.abs(a) * 2.0**-23 <= step / 100]
        scaled = told / step
        nearest = np.round(scaled)
        # on the grid to float32's rounding of the decimal (so 0.9997 is not a rounded 1);
        # zeros show no grid (a confident float32 softmax underflows to 0), so it takes 16
        # values on the grid's nonzero steps
        close = np.abs(scaled - nearest) <= np.abs(scaled) * 2.0**-22 + 1e-9
        if np.count_nonzero(nearest) >= 16 and np.all(close & ((nearest != 0) | (told == 0))):
            return f"{k} decimals"
    a32 = a.astype("float32")
    if np.array_equal(a32.astype("float64"), a):
        if not np.any(a32.view("uint32") & 0xFFFF):
            return "bfloat16"
        if np.array_equal(a32.astype("float16").astype("float64"), a):
            return "float16"
    return None


QUANTIZED_LEVELS = 256
"""The most distinct values a suspect's answers take for :func:`lattice_step` to call them
quantized: an int8 or uint8 output tensor has 256."""


def lattice_step(y: Any) -> float | None:
    """The step of the evenly spaced levels that every value of ``y`` lies on, where there
    are at most :data:`QUANTIZED_LEVELS` of them and some come back: a
    quantized model's answers (TensorFlow Lite int8 outputs, dequantized as
    ``(q - zero_point) * scale``, are multiples of ``scale``, to within a hundredth of it).
    None for answers as fine as float32 gives them: they almost never repeat, and a few
    dozen of them never fall on one grid.

    A suspect quantized this way answers the owner's probes on a grid far coarser than
    its bends: an int8 TensorFlow Lite copy of the digits MLP kept every label and an
    output correlation of 1.00, but its kink similarity fell to 0.01 (docs/results.md).
    """
    a = np.asarray(y, dtype="float64").ravel()
    a = a[np.isfinite(a)]
    levels = np.unique(a)
    if not 3 <= len(levels) <= QUANTIZED_LEVELS or a.size < max(16, len(levels) + 8):
        return None
    offsets = levels - levels[0]
    smallest = float(np.min(np.diff(levels)))
    for parts in (1, 2, 3, 4):  # levels that never occur can make the smallest gap a multiple
        k = np.round(offsets / (smallest / parts))
        step = float(np.dot(k, offsets) / np.dot(k, k))  # least squares: rounding drifts over 255 steps
        if np.all(np.abs(offsets - k * step) <= 0.01 * step):
            return step
    return None


def output_kind(y: np.ndarray, task: str, n_outputs: int) -> str:
    """"labels", "probabilities", "logits" (classification) or "values"."""
    y = np.asarray(y)
    if task != "classification":
        return "values"
    if n_outputs > 1 and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        # one column of whole numbers: class labels; of any other values, a single output
        # of the suspect's own (a new head on the owner's network: tafa_tf.verification)
        return "labels" if _whole(y) else "values"
    flat = y.reshape(len(y), -1)
    return "probabilities" if looks_like_probabilities(flat) else "logits"


def _whole(y: np.ndarray) -> bool:
    y = np.asarray(y)
    if y.dtype.kind != "f":
        return y.dtype.kind in "iub"
    finite = y[np.isfinite(y)]
    return bool(np.array_equal(finite, np.rint(finite)))


def canonical(y: np.ndarray, kind: str) -> np.ndarray:
    """Outputs in the comparable form for their kind (see the module docstring)."""
    y = np.asarray(y, dtype="float64").reshape(len(y), -1)
    if kind == "probabilities":
        y = np.log(np.clip(y, _TINY, None))
    if kind in ("probabilities", "logits"):
        y = y - y.mean(axis=1, keepdims=True)
    return y


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (or of centered log-probabilities: the same probabilities)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


INPUT_VALUES_PER_BATCH = 2**22
"""Input values sent to a model in one inference call when the caller sets no batch size.

A batch of 512 224x224x3 images made ResNet50's inference pass hold over 20 GB of
activations (the kernel killed the benchmark); 2^22 values (16 MB of float32 input)
is 27 such images, 151 at 96x96x3, and the 512 cap for anything at 32x32x3 or smaller.
"""


def inference_batch_size(input_shape: Any, cap: int = 512) -> int:
    """Inputs per inference call for inputs of ``input_shape`` (no batch axis): at most ``cap``."""
    values = int(np.prod([d for d in input_shape if d is not None], dtype=np.int64)) if len(input_shape) else 1
    return int(max(1, min(cap, INPUT_VALUES_PER_BATCH // max(values, 1))))


TRACE_FROM_VALUES = 2**24
"""Input values from which one inference job runs its model as a traced graph
(:func:`inference_call`): ResNet50 at 224x224 answered in 0.038 s a row traced (after
1.3 s of tracing) against 0.057-0.065 s eagerly, so from about 100 such images tracing
pays; the small models of the tests and the digits zoo stay eager, where tracing would
cost more than it saves."""

_TRACED_ATTR = "_tafa_traced_inference"


def trace_per_model(fn: Any, signature: list[Any]) -> Any:
    """``tf.function(fn, input_signature=signature)`` for a function traced once per model.

    TensorFlow counts the traces of every ``tf.function`` made from the same Python code
    together, so tracing one per model (by design: each model is its own graph) reads as
    retracing from the fifth model on, and it logged "N out of the last N calls to
    <function _Engine.step...> triggered tf.function retracing" when a user fingerprinted
    or scanned several models. That warning is turned off for these functions only (the
    flag TensorFlow sets on the functions it restores from a SavedModel, for the same
    reason; where a TensorFlow lacks it, the warning stays, nothing else changes)."""
    import tensorflow as tf

    traced = tf.function(fn, input_signature=signature)
    if hasattr(traced, "_omit_frequent_tracing_warning"):
        traced._omit_frequent_tracing_warning = True
    return traced


def inference_call(model: Any, values: int, *, runner: Any = None, name: str = "outputs") -> Any:
    """``runner(x, training=False)`` (``runner`` defaults to ``model``; tafa_tf.heads passes
    a model built on it) for a job of ``values`` input values: traced once for any batch
    size when the job is heavy (:data:`TRACE_FROM_VALUES`) or one was traced before, eager
    otherwise. Traced functions are kept on ``model`` under ``name``, so they live exactly
    as long as it (as tafa_tf.synthesis keeps its engines): no global cache keeps models
    alive. Weights may change between calls: the graph reads the model's variables."""
    run = runner if runner is not None else model
    traced = getattr(model, "__dict__", {}).get(_TRACED_ATTR, {})
    if name in traced:
        return traced[name]

    listed = _takes_a_list(run)

    def eager(x: Any) -> Any:
        return run([x] if listed else x, training=False)

    if values < TRACE_FROM_VALUES:
        return eager
    try:
        import tensorflow as tf

        spec = run.inputs[0]
        graph = trace_per_model(eager, [tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)])
    except (AttributeError, IndexError, TypeError, ValueError):  # no known single input: eager
        return eager

    def call(x: Any) -> Any:
        return graph(tf.convert_to_tensor(x, spec.dtype))

    call.graph = graph  # type: ignore[attr-defined]  # its tracing count shows it is traced once
    object.__setattr__(model, _TRACED_ATTR, {**traced, name: call})  # plain attribute: not tracked by Keras
    return call


def _takes_a_list(model: Any) -> bool:
    """Whether a functional model was built on a one-element list of inputs
    (``keras.Model([inputs], outputs)``, as ``keras.Model(m.inputs, ...)`` builds one):
    Keras warns on every call given the bare array ("The structure of `inputs` doesn't
    match the expected structure"), once per suspect of a scan."""
    try:
        declared = model.input
    except (AttributeError, ValueError, TypeError):  # a Sequential never called, a subclassed model
        return False
    return isinstance(declared, list) and len(declared) == 1


def model_outputs(model: Any, x: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
    """A Keras model's outputs at ``x`` in inference mode, batch by batch.

    Direct calls beat ``model.predict`` for the few thousand inputs used here and do
    not retrace per call; heavy jobs run traced (:func:`inference_call`).
    ``batch_size`` None: :func:`inference_batch_size`.
    """
    size = batch_size if batch_size is not None else inference_batch_size(np.shape(x)[1:])
    call = inference_call(model, int(np.size(x)))
    return np.concatenate([np.asarray(call(x[i : i + size])) for i in range(0, len(x), size)])


def labels_of(y: np.ndarray, kind: str) -> np.ndarray:
    """Predicted class per row."""
    y = np.asarray(y)
    if kind == "labels":
        return np.rint(y.reshape(len(y))).astype("int64")
    return np.asarray(y).reshape(len(y), -1).argmax(axis=1)
