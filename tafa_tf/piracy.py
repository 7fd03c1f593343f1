"""Piracy transforms: make the stolen variants a fingerprint must still recognise.

A fingerprint is only as good as the pirated copies it has been tested against. Each
function here takes the owner's Keras model and returns a NEW model, a pirate's
variant of it: fine-tuned, pruned, quantized, noised, with neurons permuted or
rescaled (the same function with other weights), distilled into a student, or any
composition of these; or attacked by the removal attacks of the fingerprinting
literature (FTLL, FTAL, RTLL, RTAL, prune-and-retune, FGSM/PGD adversarial tuning,
extraction: ``ftll`` ... ``extract`` at the end of this module, with their sources).
The owner's model is never changed.

They serve the benchmarks, the tests and users who calibrate a threshold on their own
model (``tafa.calibrate(fp, positives=[...], negatives=[...])``).

Examples:
    >>> from functools import partial
    >>> from tafa_tf import piracy
    >>> stolen = piracy.compose(
    ...     owner,
    ...     partial(piracy.prune, fraction=0.3),
    ...     partial(piracy.quantize, dtype="int8"),
    ... )
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tafa_tf.domains import Domain, as_domain
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.introspection import activation_name
from tafa_tf.introspection import kernel_layers as _kernel_layers
from tafa_tf.introspection import leaf_layers as _leaf_layers
from tafa_tf.introspection import SHAPE_ONLY_LAYERS, output_squash
from tafa_tf.introspection import state_weights
from tafa_tf.outputs import model_outputs, softmax

Transform = Callable[[Any], Any]

_QUANT_DTYPES = ("float16", "int8")
_PRUNE_SCOPES = ("global", "layer")
_TARGETS = ("auto", "labels", "outputs")
_BATCHNORM = ("train", "frozen")
# Elementwise activations commute with a permutation of units; only the positively
# homogeneous ones (f(c*z) = c*f(z) for c > 0) also commute with a rescaling.
_ELEMENTWISE = {
    "relu", "linear", "leaky_relu", "relu6", "elu", "selu", "gelu", "silu", "swish",
    "sigmoid", "hard_sigmoid", "tanh", "softplus", "softsign", "exponential", "mish",
}
_HOMOGENEOUS = {"relu", "linear", "leaky_relu"}
PREPROCESSING_STATE = frozenset({"Normalization"})
"""Layers whose weights are statistics of the data, not learned: kept by :func:`fresh_model`."""


# --------------------------------------------------------------------------- helpers


def _keras():
    import keras

    return keras


def copy_model(model):
    """A new model with the same architecture and weights as ``model``.

    Args:
        model: a Keras model.

    Returns:
        An independent Keras model: changing it leaves ``model`` untouched.
    """
    return _with_weights(model, model.get_weights())


def set_weights(model, weights: list[np.ndarray]) -> None:
    """``model.set_weights(weights)``, then each layer that derives its computation from
    its variables (an adapted ``Normalization``: its mean and variance are copied into
    constants by ``finalize_state``, which Keras calls when it loads a file but not on
    ``set_weights``) brought up to date. Without it a copy of a model with an adapted
    Normalization layer normalizes with mean 0 and variance 1."""
    model.set_weights(weights)
    for layer in _leaf_layers(model):
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            finalize()


def _seed_initializers(seed: int) -> None:
    """Seed Python's and NumPy's generators, from which Keras draws the seeds of new layers'
    initializers: ``keras.utils.set_random_seed`` without ``tf.random.set_seed``, which
    clears TensorFlow's kernel caches, so every traced function (the synthesis engine's,
    a large model's inference) paid its setup again on its next call (0.1-0.2 s each on
    the digits MLP, whose fingerprint took 0.91 s with these clears and 0.16 s without).
    The fresh weights are the same."""
    random.seed(seed)
    np.random.seed(seed)


def fresh_model(model, seed: int):
    """``model``'s architecture with new weights drawn from ``seed``, keeping the state
    of its data preprocessing layers (an adapted ``Normalization``'s mean and variance: a
    model trained independently on the same data would have adapted them alike;
    ``clone_model`` alone leaves them at 0 and 1)."""
    keras = _keras()
    _seed_initializers(seed)
    clone = keras.models.clone_model(model)
    for mine, theirs in zip(_leaf_layers(clone), _leaf_layers(model)):
        if type(mine).__name__ in PREPROCESSING_STATE:
            mine.set_weights(theirs.get_weights())
            mine.finalize_state()
    return clone


def _check_model(model) -> None:
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model. Received: model={model!r}")


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")


def _check_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")


def _predict(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs in inference mode; direct calls are faster than predict()
    for the few thousand inputs used here."""
    return model_outputs(model, x, batch_size=batch_size).astype("float32")


def _input_shape(model) -> tuple[int, ...]:
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else model.input_shape
    return tuple(int(d) for d in shape[1:])


def _draw_inputs(model, domain: Any, n: int, seed: int) -> np.ndarray:
    dom: Domain = as_domain(domain)
    return dom.sample(np.random.default_rng(seed), (n, *_input_shape(model)))


def head_activation(model) -> str | None:
    """The activation of ``model``'s output layer: the last layer that computes (inside
    nested models, past trailing Reshape/Flatten/Dropout), a ``Softmax()`` layer read as
    "softmax"; None where it applies none."""
    layers = [layer for layer in _leaf_layers(model) if type(layer).__name__ not in SHAPE_ONLY_LAYERS]
    if not layers:
        return None
    last = layers[-1]
    return output_squash(last) if type(last).__name__ == "Softmax" else _layer_activation(last)


def _ends_with_softmax(model) -> bool:
    return head_activation(model) == "softmax"


def _default_loss(model, y: np.ndarray):
    """Sparse cross-entropy for integer labels, mean squared error otherwise.

    Integer labels mean a classifier; whether its outputs are logits is read from the
    last layer, so the zoo's logit classifiers and softmax heads both train correctly.
    """
    keras = _keras()
    if np.issubdtype(np.asarray(y).dtype, np.integer):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=not _ends_with_softmax(model))
    return keras.losses.MeanSquaredError()


def _train(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    loss: Any,
    seed: int,
    batch_size: int,
    callbacks: Sequence[Any] = (),
):
    """Fit ``model`` in place (callers pass a copy) with Adam."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(learning_rate), loss if loss is not None else _default_loss(model, y))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=list(callbacks))
    return model


def _resolve_inputs(model, x: Any, domain: Any, n: int, seed: int, fn: str) -> np.ndarray:
    if x is None and domain is None:
        raise ValueError(f"{fn} needs inputs: pass x=... or domain=... (data-free). Received: x=None, domain=None")
    if x is not None and domain is not None:
        raise ValueError(f"{fn} takes x or domain, not both. Received: domain={domain!r}")
    if x is None:
        _check_positive_int(n, "n")
        return _draw_inputs(model, domain, n, seed)
    arr = np.asarray(x, dtype="float32")
    if len(arr) == 0:
        raise ValueError(f"x must hold at least one input. Received: x.shape={arr.shape}")
    return arr


# --------------------------------------------------------------------------- fine-tuning


def fine_tune(
    model,
    x: Any = None,
    y: Any = None,
    *,
    epochs: int = 5,
    learning_rate: float = 1e-3,
    loss: Any = None,
    seed: int = 0,
    domain: Any = None,
    n: int = 2048,
    targets: str = "auto",
    jitter: float = 0.1,
    batch_size: int = 64,
    batchnorm: str = "train",
):
    """Continue training a copy of ``model``, as a pirate adapting a stolen model would.

    With ``x`` and ``y`` it trains on that data. With ``y=None`` it needs no labels: the
    owner's answers are the targets; with ``domain`` instead of ``x`` it needs no data
    either: ``n`` inputs are drawn from the domain.

    The owner's exact outputs at the training inputs are already a perfect fit, so
    training on them alone would not move a single weight. Label-free tuning therefore
    uses either the owner's hard labels (``targets="labels"``: argmax of the outputs,
    sparse cross-entropy, for classifiers) or the owner's outputs at inputs shifted by
    Gaussian noise of ``jitter`` times each coordinate's spread (``targets="outputs"``,
    mean squared error, for regressors and generators). ``"auto"`` picks labels when
    the model has several outputs and its last layer is linear or softmax, else outputs.

    Args:
        model: the owner's Keras model (unchanged).
        x: training inputs, or None with ``domain``.
        y: targets; integer labels train with sparse cross-entropy (from logits unless
            the model ends in softmax), float targets with mean squared error. None
            means the owner's outputs.
        epochs: passes over the data.
        learning_rate: Adam's learning rate; 1e-3 is a gentle fine-tune, 1e-2 a rough one.
        loss: a Keras loss to use instead of the default above.
        seed: seeds the shuffling, the optimizer and the domain draws.
        domain: a ``tafa_tf.domains`` domain (or a (low, high) pair) for data-free tuning.
        n: how many inputs to draw from ``domain``.
        targets: with ``y=None``: "auto", "labels" or "outputs" (see above).
        jitter: with ``targets="outputs"``, the relative input noise.
        batch_size: the minibatch size.
        batchnorm: "train" (Keras's ``fit`` as is: BatchNormalization layers normalize
            by the batch and their moving statistics follow the new data) or "frozen"
            (Keras's transfer-learning guide: those layers stay in inference mode, their
            statistics, scales and offsets unchanged). They differ where the model's
            moving statistics do not match the data: in a randomly initialised
            backbone, whose statistics are still the initial ones, "train" rewrites
            every one of them.

    Returns:
        A new fine-tuned Keras model.

    Raises:
        ValueError: on a bad argument, or neither/both of ``x`` and ``domain``.

    Examples:
        >>> pirate = fine_tune(owner, x_train, y_train, epochs=5, learning_rate=1e-3)
        >>> pirate = fine_tune(owner, domain=Box(0, 1), epochs=5)   # data-free
    """
    _check_fine_tune(model, epochs, learning_rate, batch_size, targets, jitter, batchnorm)
    x = _resolve_inputs(model, x, domain, n, seed, "fine_tune")
    if y is None:
        x, y, loss = _owner_targets(model, x, targets=targets, jitter=jitter, loss=loss, seed=seed, domain=domain)
    else:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x and y must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}")
    pirate = copy_model(model)
    if batchnorm == "frozen":
        norm = _keras().layers.BatchNormalization
        for layer in _leaf_layers(pirate):
            if isinstance(layer, norm):
                layer.trainable = False  # Keras 3 runs a non-trainable BatchNormalization in inference mode
    return _train(pirate, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed, batch_size=batch_size)


def _check_fine_tune(model, epochs, learning_rate, batch_size, targets, jitter, batchnorm) -> None:
    """Raise a clear error for a bad argument of :func:`fine_tune`."""
    _check_model(model)
    _check_positive_int(epochs, "epochs")
    _check_positive(learning_rate, "learning_rate")
    _check_positive_int(batch_size, "batch_size")
    if targets not in _TARGETS:
        raise ValueError(f"targets must be one of {_TARGETS}. Received: targets={targets!r}")
    if batchnorm not in _BATCHNORM:
        raise ValueError(f"batchnorm must be one of {_BATCHNORM}. Received: batchnorm={batchnorm!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not np.isfinite(jitter) or jitter < 0:
        raise ValueError(f"jitter must be a non-negative number. Received: jitter={jitter!r}")


def _owner_targets(model, x: np.ndarray, *, targets: str, jitter: float, loss: Any, seed: int, domain: Any):
    """Inputs, targets and loss for label-free fine-tuning (see :func:`fine_tune`)."""
    keras = _keras()
    outputs = _predict(model, x)
    if targets == "auto":
        head = head_activation(model)
        several = outputs.ndim == 2 and outputs.shape[1] > 1
        targets = "labels" if several and head in (None, "linear", "softmax") else "outputs"
    if targets == "labels":
        labels = np.argmax(outputs.reshape(len(outputs), -1), axis=1).astype("int64")
        return x, labels, loss if loss is not None else _default_loss(model, labels)
    rng = np.random.default_rng(seed + 1)
    spread = np.std(x, axis=0, keepdims=True)
    moved = x + jitter * spread * rng.standard_normal(x.shape).astype("float32")
    if domain is not None:
        moved = as_domain(domain).project(moved)
    return moved.astype("float32"), outputs, loss if loss is not None else keras.losses.MeanSquaredError()


# --------------------------------------------------------------------------- pruning


def _prune_masks(kernels: list[np.ndarray], fraction: float, scope: str) -> list[np.ndarray]:
    """Keep-masks that zero the ``fraction`` of kernel weights smallest in magnitude.

    Ties at the cut are broken by order, so exactly round(fraction * size) weights go.
    """
    if scope == "layer":
        return [_smallest_mask([k], fraction)[0] for k in kernels]
    return _smallest_mask(kernels, fraction)


def _smallest_mask(kernels: list[np.ndarray], fraction: float) -> list[np.ndarray]:
    flat = np.concatenate([np.abs(k).ravel() for k in kernels])
    n_cut = round(fraction * flat.size)
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:n_cut]] = False
    masks, start = [], 0
    for k in kernels:
        masks.append(keep[start : start + k.size].reshape(k.shape))
        start += k.size
    return masks


def _mask_keeper(layers: list[Any], masks: list[np.ndarray]):
    """A callback that re-applies the pruning masks after every training step, so a
    pruned weight stays zero however the optimizer moves it."""
    keras = _keras()

    class _KeepMask(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for layer, mask in zip(layers, masks):
                layer.kernel.assign(layer.kernel * mask)

    return _KeepMask()


def prune(
    model,
    fraction: float,
    *,
    scope: str = "global",
    fine_tune_data: Any = None,
    epochs: int = 2,
    learning_rate: float = 1e-3,
    loss: Any = None,
    seed: int = 0,
    batch_size: int = 64,
):
    """Magnitude pruning: zero the smallest kernel weights, optionally then fine-tune.

    Only kernels (Dense, Conv) are pruned; biases and normalization weights stay, as
    in common pruning tools. During the fine-tune the pruned weights are held at zero.

    Args:
        model: the owner's Keras model (unchanged).
        fraction: share of kernel weights to zero, in [0, 1).
        scope: "global" ranks all kernel weights together (large layers lose more);
            "layer" removes ``fraction`` of every kernel.
        fine_tune_data: None for no fine-tune; ``(x, y)`` to train on labels; ``x``
            alone to train towards the owner's outputs.
        epochs, learning_rate, loss, seed, batch_size: as in :func:`fine_tune`.

    Returns:
        A new pruned Keras model.

    Raises:
        ValueError: on a bad argument.
        UnsupportedModelError: if the model has no kernels to prune.

    Examples:
        >>> pirate = prune(owner, 0.5)
        >>> pirate = prune(owner, 0.8, fine_tune_data=(x_train, y_train), epochs=2)
    """
    _check_model(model)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ValueError(f"fraction must be a number in [0, 1). Received: fraction={fraction!r}")
    if scope not in _PRUNE_SCOPES:
        raise ValueError(f"scope must be one of {_PRUNE_SCOPES}. Received: scope={scope!r}")
    clone = copy_model(model)
    layers = _kernel_layers(clone)
    if not layers:
        raise UnsupportedModelError(f"Model {model.name!r} has no kernel weights (Dense, Conv) to prune.")
    masks = _prune_masks([np.asarray(layer.kernel) for layer in layers], float(fraction), scope)
    for layer, mask in zip(layers, masks):
        layer.kernel.assign(np.asarray(layer.kernel) * mask)
    if fine_tune_data is None:
        return clone
    _check_positive_int(epochs, "epochs")
    _check_positive(learning_rate, "learning_rate")
    if isinstance(fine_tune_data, (tuple, list)) and len(fine_tune_data) == 2:
        x, y = np.asarray(fine_tune_data[0], "float32"), np.asarray(fine_tune_data[1])
    else:
        x = np.asarray(fine_tune_data, "float32")
        # The owner's outputs, not the pruned copy's: the pirate wants the original back.
        y = _predict(model, x)
        loss = loss if loss is not None else _keras().losses.MeanSquaredError()
    return _train(
        clone, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed, batch_size=batch_size,
        callbacks=[_mask_keeper(layers, masks)],
    )


# --------------------------------------------------------------------------- quantization


def _int8_round_trip(w: np.ndarray, per_channel: bool) -> np.ndarray:
    """Symmetric int8: w ~ scale * q with q in [-127, 127], scale = max|w| / 127.

    Per channel means one scale per output unit (the kernel's last axis), as TFLite
    does for Dense and Conv kernels.
    """
    axes = tuple(range(w.ndim - 1)) if per_channel else None
    peak = np.max(np.abs(w), axis=axes, keepdims=per_channel)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    q = np.clip(np.round(w / scale), -127, 127)
    return (q * scale).astype("float32")


TFLITE_CONVERSIONS = ("float32", "float16", "dynamic", "int8")


def to_tflite(model, conversion: str = "int8", *, samples: np.ndarray | None = None) -> bytes:
    """The model as a pirate ships it to phones: a TensorFlow Lite flatbuffer.

    Follows TensorFlow's post-training quantization guide: "float32" converts as is;
    "float16" stores the weights in half precision; "dynamic" stores them as int8 and
    computes in float; "int8" is full integer quantization, weights, activations, input
    and output all int8, calibrated on ``samples`` (its activations' ranges). Load the
    bytes, written to a ``.tflite`` file, with ``adapters.load_suspect``.

    Args:
        model: the owner's Keras model (unchanged).
        conversion: one of :data:`TFLITE_CONVERSIONS`.
        samples: "int8" only: inputs to calibrate on (a few hundred training inputs).

    Returns:
        The .tflite file's bytes.

    Raises:
        ValueError: an unknown ``conversion``, or "int8" without ``samples``.
    """
    import tensorflow as tf

    _check_model(model)
    if conversion not in TFLITE_CONVERSIONS:
        raise ValueError(f"conversion must be one of {TFLITE_CONVERSIONS}. Received: conversion={conversion!r}")
    if conversion == "int8" and (samples is None or len(samples) == 0):
        raise ValueError("conversion='int8' calibrates on inputs: pass samples= (a few hundred training inputs). "
                         f"Received: samples={None if samples is None else np.shape(samples)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if conversion != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if conversion == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if conversion == "int8":
        rows = np.asarray(samples, "float32")
        converter.representative_dataset = lambda: ([row[None]] for row in rows)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def quantize(model, dtype: str, *, per_channel: bool = True):
    """Simulated weight quantization: weights rounded through ``dtype``, kept as float32.

    "float16" rounds every weight to half precision. "int8" maps each kernel to
    symmetric 8-bit integers and back (per output channel or per tensor); biases and
    other 1-D weights stay float32, as deployed int8 models keep them in 32 bits.
    The result still runs as an ordinary float32 Keras model.

    Args:
        model: the owner's Keras model (unchanged).
        dtype: "float16" or "int8".
        per_channel: int8 only; one scale per output unit (True) or per kernel (False).

    Returns:
        A new Keras model with quantized weights.

    Raises:
        ValueError: on an unknown ``dtype``.

    Examples:
        >>> pirate = quantize(owner, "int8", per_channel=False)
    """
    _check_model(model)
    if dtype not in _QUANT_DTYPES:
        raise ValueError(f"dtype must be one of {_QUANT_DTYPES}. Received: dtype={dtype!r}")
    weights = []
    for w in model.get_weights():
        w = np.asarray(w)
        if not np.issubdtype(w.dtype, np.floating):
            weights.append(w)
        elif dtype == "float16":
            weights.append(w.astype("float16").astype(w.dtype))
        elif w.ndim >= 2:
            weights.append(_int8_round_trip(w.astype("float32"), per_channel).astype(w.dtype))
        else:
            weights.append(w)
    return _with_weights(model, weights)


def _with_weights(model, weights: list[np.ndarray]):
    """A new, uncompiled model of ``model``'s architecture holding ``weights``.

    Keras's ``clone_model`` compiles the clone of a compiled model and so builds its
    optimizer's variables (Adam: two more copies of every weight), held in memory and
    saved with the copy: a ResNet50 (32x32) reference's file was 270 MiB for 90 MiB of
    weights, and building 10 such references in one process grew it by 7.3 GiB (now 91 MiB
    and 4.9 GiB). The copy is rebuilt from the model's config instead; a copy that is
    trained is compiled by whoever trains it (``fine_tune``)."""
    keras = _keras()
    clone = type(model).from_config(model.get_config()) if getattr(model, "compiled", False) \
        else keras.models.clone_model(model)
    set_weights(clone, weights)
    return clone


# --------------------------------------------------------------------------- noise


def add_noise(model, scale: float, *, seed: int = 0):
    """Relative Gaussian weight noise: each parameter tensor gets noise of standard
    deviation ``scale`` times that tensor's root-mean-square value.

    Relative noise hits every layer alike whatever its weight scale; a tensor of zeros
    (a fresh bias) stays zero. Layer state is not a parameter and is left as it is
    (BatchNormalization's moving statistics, as PyTorch's ``parameters()`` leaves its
    buffers): 2% of a moving-variance tensor's RMS made one channel of a trained
    ResNet50 negative, and the copy answered NaN (docs/results.md).

    Args:
        model: the owner's Keras model (unchanged).
        scale: relative noise level, e.g. 0.01 (mild) to 0.1 (strong).
        seed: seeds the noise.

    Returns:
        A new Keras model with noisy weights.

    Raises:
        ValueError: if ``scale`` is negative or not finite.

    Examples:
        >>> pirate = add_noise(owner, 0.05, seed=1)
    """
    _check_model(model)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a non-negative number. Received: scale={scale!r}")
    return _with_weights(model, noisy_weights(model, scale, np.random.default_rng(seed)))


def noisy_weights(model, scale: float, rng: np.random.Generator) -> list[np.ndarray]:
    """``model.get_weights()`` with relative Gaussian noise on its parameters (see
    :func:`add_noise`); layer state, non-float and empty arrays unchanged."""
    out = []
    for w, state in zip(model.get_weights(), state_weights(model)):
        w = np.asarray(w)
        if state or not np.issubdtype(w.dtype, np.floating) or w.size == 0:
            out.append(w)
            continue
        rms = float(np.sqrt(np.mean(np.square(w, dtype="float64"))))
        out.append((w + scale * rms * rng.standard_normal(w.shape)).astype(w.dtype))
    return out


# --------------------------------------------------------------------------- equivalent reparametrizations


def _layer_activation(layer) -> str | None:
    """The name of the activation a layer applies, or None if it applies none."""
    keras = _keras()
    if isinstance(layer, keras.layers.ReLU):
        plain = layer.max_value is None and float(layer.threshold) == 0.0
        if not plain:
            return "relu6"  # clipped or shifted: elementwise, not homogeneous
        return "relu" if float(layer.negative_slope) == 0.0 else "leaky_relu"
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    fn = getattr(layer, "activation", None)
    return None if fn is None else activation_name(fn)


@dataclass
class _Unit:
    """A layer whose output units can be permuted or rescaled, and the layer that reads them."""

    producer: Any
    consumer: Any
    activations: list[str]
    flattened: bool


def _hidden_pairs(model) -> list[_Unit]:
    """Find (producer, consumer) pairs of affine layers in a Sequential chain.

    Between them only layers that act on each channel alike are allowed (activations,
    pooling, dropout, Flatten in channels_last), so that a change of the producer's
    output units can be undone exactly in the consumer's input rows.
    """
    keras = _keras()
    if not isinstance(model, keras.Sequential):
        raise UnsupportedModelError(
            "permute_neurons and rescale_neurons handle keras.Sequential models (nested Sequentials "
            f"included). Received a {type(model).__name__} named {model.name!r}."
        )
    pairs: list[_Unit] = []
    current: _Unit | None = None
    for layer in _leaf_layers(model):
        if _is_affine(layer):
            if current is not None:
                current.consumer = layer
                pairs.append(current)
            act = _layer_activation(layer)
            current = _Unit(layer, None, [act] if act and act != "linear" else [], False)
            continue
        if current is None:
            continue  # preprocessing before the first affine layer does not matter
        name = _passthrough_kind(layer)
        if name is None:
            raise UnsupportedModelError(
                f"Layer {layer.name!r} ({type(layer).__name__}) sits between {current.producer.name!r} and the "
                "next Dense/Conv layer; permute_neurons and rescale_neurons support only Dense, Conv1D/2D/3D "
                "(groups=1), activation layers, pooling, Dropout and Flatten (channels_last) there."
            )
        if name == "flatten":
            current.flattened = True
        elif name != "identity":
            current.activations.append(name)
    return pairs


def _is_affine(layer) -> bool:
    keras = _keras()
    conv = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    transposed = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
    separable = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    if isinstance(layer, (*transposed, *separable)):
        return False  # their kernels are laid out differently: unsupported (raises)
    if isinstance(layer, conv):
        # Grouped or channels_first kernels do not map units to the last axis: unsupported.
        return getattr(layer, "groups", 1) == 1 and getattr(layer, "data_format", "channels_last") == "channels_last"
    return isinstance(layer, keras.layers.Dense)


def _passthrough_kind(layer) -> str | None:
    """How a non-affine layer between two affine ones treats channels.

    Returns "flatten", "identity", an activation name, or None when unsupported.
    """
    keras = _keras()
    pooling = (
        keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
        keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
        keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
        keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalAveragePooling3D,
    )
    # Max pooling commutes with a positive per-channel scale, average pooling with any.
    identity = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
                keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.ActivityRegularization)
    if isinstance(layer, keras.layers.Flatten):
        return "flatten" if getattr(layer, "data_format", "channels_last") == "channels_last" else None
    if isinstance(layer, pooling):
        return "identity" if getattr(layer, "data_format", "channels_last") == "channels_last" else None
    if isinstance(layer, identity):
        return "identity"
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.Activation)):
        name = _layer_activation(layer)
        return name if name in _ELEMENTWISE else None
    return None


def _reparametrize(model, *, seed: int, make: Callable[[np.random.Generator, int], tuple], homogeneous: bool,
                   fn: str):
    """Apply a per-unit change to every hidden affine layer of a copy of ``model``.

    ``make(rng, units)`` returns (out_map, in_map): out_map(kernel, bias) changes the
    producer's output units, in_map(kernel_rows) undoes it on the consumer's input rows
    (shaped (..., groups, units, out) so that Flatten's interleaving is handled).
    """
    clone = copy_model(model)
    pairs = _hidden_pairs(clone)
    allowed = _HOMOGENEOUS if homogeneous else _ELEMENTWISE
    pairs = [p for p in pairs if all(a in allowed for a in p.activations)]
    if not pairs:
        need = "positively homogeneous (relu, leaky_relu)" if homogeneous else "elementwise"
        raise UnsupportedModelError(
            f"{fn} found no hidden Dense/Conv layer with an {need} activation followed by another "
            f"Dense/Conv layer in model {model.name!r}."
        )
    rng = np.random.default_rng(seed)
    for pair in pairs:
        units = int(pair.producer.kernel.shape[-1])
        out_map, in_map = make(rng, units)
        kernel = np.asarray(pair.producer.kernel)
        bias = np.asarray(pair.producer.bias) if pair.producer.use_bias else None
        kernel, bias = out_map(kernel, bias)
        pair.producer.kernel.assign(kernel)
        if bias is not None:
            pair.producer.bias.assign(bias)
        ck = np.asarray(pair.consumer.kernel)
        # Input rows are on axis -2 for Dense and Conv kernels. After Flatten, row r
        # of a Dense kernel reads channel r % units (channels_last interleaving).
        rows = ck.reshape(*ck.shape[:-2], -1, units, ck.shape[-1])
        pair.consumer.kernel.assign(in_map(rows).reshape(ck.shape))
    return clone


def reparametrizable(model) -> bool:
    """Whether :func:`permute_neurons` and :func:`rescale_neurons` apply to ``model``: a
    keras.Sequential chain with a hidden Dense/Conv layer whose ReLU (or leaky ReLU, or
    no activation) feeds another, and only channel-wise layers between them. Functional
    models (keras.applications backbones) are not."""
    try:
        pairs = _hidden_pairs(model)
    except UnsupportedModelError:
        return False
    return any(all(a in _HOMOGENEOUS for a in p.activations) for p in pairs)


def permute_neurons(model, *, seed: int = 0):
    """Shuffle the hidden units of every hidden Dense/Conv layer: same function, other weights.

    The producer's output units (kernel columns, bias) and the consumer's matching
    input rows are permuted together, so outputs agree up to float rounding while
    the weight tensors differ: a pirate's cheapest disguise.

    Args:
        model: the owner's keras.Sequential model (unchanged) of Dense/Conv layers,
            activations, pooling, Dropout and Flatten.
        seed: seeds the permutations.

    Returns:
        A new, functionally equivalent Keras model.

    Raises:
        UnsupportedModelError: a non-Sequential model, or an unsupported layer between
            two Dense/Conv layers.

    Examples:
        >>> pirate = permute_neurons(owner, seed=3)
    """
    _check_model(model)

    def make(rng: np.random.Generator, units: int):
        perm = rng.permutation(units)
        return (
            lambda k, b: (k[..., perm], None if b is None else b[perm]),
            lambda rows: rows[..., perm, :],
        )

    return _reparametrize(model, seed=seed, make=make, homogeneous=False, fn="permute_neurons")


def rescale_neurons(model, *, seed: int = 0, low: float = 0.5, high: float = 2.0):
    """Multiply each hidden ReLU unit's incoming weights and bias by c > 0 and its
    outgoing weights by 1/c: the same function, since relu(c*z) = c*relu(z).

    Factors are drawn log-uniformly in [low, high], one per unit.

    Args:
        model: the owner's keras.Sequential model (unchanged); only hidden layers with
            relu, leaky_relu or no activation are rescaled.
        seed: seeds the factors.
        low, high: range of the factors, 0 < low <= high.

    Returns:
        A new, functionally equivalent Keras model.

    Raises:
        ValueError: on a bad range.
        UnsupportedModelError: a non-Sequential model, an unsupported layer between two
            Dense/Conv layers, or no hidden ReLU layer at all.

    Examples:
        >>> pirate = rescale_neurons(owner, seed=3, low=0.25, high=4.0)
    """
    _check_model(model)
    _check_positive(low, "low")
    _check_positive(high, "high")
    if high < low:
        raise ValueError(f"high must be at least low. Received: low={low!r}, high={high!r}")

    def make(rng: np.random.Generator, units: int):
        c = np.exp(rng.uniform(np.log(low), np.log(high), units)).astype("float32")
        return (
            lambda k, b: (k * c, None if b is None else b * c),
            lambda rows: rows / c[:, None],
        )

    return _reparametrize(model, seed=seed, make=make, homogeneous=True, fn="rescale_neurons")


# --------------------------------------------------------------------------- distillation


def distill(
    teacher,
    *,
    student: Any = None,
    x: Any = None,
    domain: Any = None,
    n: int = 4096,
    epochs: int = 20,
    learning_rate: float = 3e-3,
    loss: Any = None,
    seed: int = 0,
    batch_size: int = 64,
):
    """Train a student to imitate the teacher's outputs: the pirate's hardest disguise.

    The student learns the teacher's raw outputs (logits for the zoo's classifiers)
    with mean squared error, on the given unlabeled inputs ``x`` or, data-free, on
    ``n`` inputs drawn from ``domain``.

    Args:
        teacher: the owner's Keras model (unchanged).
        student: an untrained (or pre-trained) Keras model with the teacher's input and
            output shapes; it is copied, not changed. None means the teacher's
            architecture with fresh weights drawn from ``seed``.
        x: unlabeled inputs, or None with ``domain``.
        domain: a ``tafa_tf.domains`` domain (or (low, high) pair) for data-free distillation.
        n: how many inputs to draw from ``domain``.
        epochs, learning_rate, batch_size: training settings.
        loss: a Keras loss to use instead of mean squared error.
        seed: seeds the student's initial weights, the draws and the training.

    Returns:
        A new trained student model.

    Raises:
        ValueError: on a bad argument, or if the student's output shape differs.

    Examples:
        >>> pirate = distill(owner, x=x_public, epochs=20)
        >>> pirate = distill(owner, student=other_arch, domain=Box(0, 1), n=8192)
    """
    keras = _keras()
    _check_model(teacher)
    _check_positive_int(epochs, "epochs")
    _check_positive(learning_rate, "learning_rate")
    x = _resolve_inputs(teacher, x, domain, n, seed, "distill")
    targets = _predict(teacher, x)
    if student is None:
        student = fresh_model(teacher, seed)  # fresh weights, same architecture
    else:
        _check_model(student)
        student = copy_model(student)
    out_shape = tuple(student.outputs[0].shape[1:]) if getattr(student, "outputs", None) else None
    if out_shape is not None and out_shape != targets.shape[1:]:
        raise ValueError(
            f"The student's output shape must match the teacher's {targets.shape[1:]}. "
            f"Received: student output shape={out_shape}"
        )
    return _train(
        student, x, targets, epochs=epochs, learning_rate=learning_rate,
        loss=loss if loss is not None else keras.losses.MeanSquaredError(), seed=seed, batch_size=batch_size,
    )


# --------------------------------------------------------------------------- composition


def compose(model, *steps: Transform):
    """Apply piracy transforms in order: ``compose(m, f, g)`` is ``g(f(m))``.

    Args:
        model: the owner's Keras model (unchanged).
        *steps: callables taking a model and returning a new one, typically
            ``functools.partial`` of the transforms in this module.

    Returns:
        The model after the last step (a copy of ``model`` if there are no steps).

    Raises:
        TypeError: if a step is not callable or does not return a Keras model.

    Examples:
        >>> pirate = compose(owner, partial(prune, fraction=0.5), partial(quantize, dtype="int8"))
    """
    keras = _keras()
    _check_model(model)
    for i, step in enumerate(steps):
        if not callable(step):
            raise TypeError(f"Every step must be callable (model -> model). Received: steps[{i}]={step!r}")
    current = copy_model(model)
    for i, step in enumerate(steps):
        current = step(current)
        if not isinstance(current, keras.Model):
            raise TypeError(f"Step {i} ({step!r}) must return a keras.Model. Received: {type(current).__name__}")
    return current


# --------------------------------------------------------------------------- removal attacks of the literature
#
# What a pirate does to hide a copy from a fingerprint, with the settings of the papers
# that use them to judge fingerprints and watermarks. Each needs the attacker's own data
# (x, y) and returns a new model:
#
# - ftll, ftal, rtll, rtal: fine-tune the last layer, fine-tune all layers, re-initialise
#   the last layer and retrain it alone, re-initialise it and retrain all layers (Adi et
#   al., USENIX Security 2018; used by IPGuard, Cao et al. AsiaCCS 2021, and DeepJudge,
#   Chen et al. IEEE S&P 2022). The "last layer" is the last layer with a kernel.
# - prune_retune: magnitude pruning of 20-60% of the kernel weights, then a short
#   fine-tune (Uchida et al. 2017; DeepJudge's fine-pruning).
# - adversarial_tune: fine-tuning on FGSM (Goodfellow et al. 2015) or PGD (Madry et al.
#   2018) examples mixed half-and-half with the clean data (DeepJudge; Lukas et al. ICLR
#   2021).
# - extract: model extraction (Tramer et al. 2016; Orekondy et al. 2019): a fresh network
#   trained only on the owner's answers, from labels alone or from probabilities.


_ADV_METHODS = ("fgsm", "pgd")


def _xy(x: Any, y: Any, fn: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"{fn} needs as many targets as inputs, at least one. Received: len(x)={len(x)}, len(y)={len(y)}")
    return x, y


def _reinit_last(model, seed: int) -> None:
    """Draw the output layer's kernel afresh (Glorot uniform) and zero its bias."""
    keras = _keras()
    last = _kernel_layers(model)[-1]
    kernel = np.asarray(last.kernel)
    init = keras.initializers.GlorotUniform(seed=seed)
    last.kernel.assign(np.asarray(init(kernel.shape), dtype=kernel.dtype))
    if getattr(last, "bias", None) is not None:
        last.bias.assign(np.zeros(last.bias.shape, dtype=np.asarray(last.bias).dtype))


def _retrain(model, x, y, *, last_only: bool, reinit: bool, epochs: int, learning_rate: float, seed: int,
             loss: Any, batch_size: int, fn: str):
    _check_model(model)
    _check_positive_int(epochs, "epochs")
    _check_positive(learning_rate, "learning_rate")
    x, y = _xy(x, y, fn)
    clone = copy_model(model)
    if not _kernel_layers(clone):
        raise UnsupportedModelError(f"{fn}: model {model.name!r} has no layer with a kernel (Dense, Conv) to retrain.")
    if reinit:
        _reinit_last(clone, seed)
    leaves = _leaf_layers(clone)
    was = [layer.trainable for layer in leaves]
    if last_only:
        last = _kernel_layers(clone)[-1]
        for layer in leaves:
            layer.trainable = layer is last
    out = _train(clone, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed, batch_size=batch_size)
    for layer, flag in zip(leaves, was):
        layer.trainable = flag
    return out


def ftll(model, x: Any, y: Any, *, epochs: int = 10, learning_rate: float = 1e-3, seed: int = 0,
         loss: Any = None, batch_size: int = 64):
    """FTLL: fine-tune the output layer only on the attacker's (x, y); all else frozen.

    Args:
        model: the owner's Keras model (unchanged).
        x, y: the attacker's data; integer y trains with cross-entropy, float y with MSE.
        epochs, learning_rate, seed, loss, batch_size: as in ``piracy.fine_tune``.

    Returns:
        A new model whose hidden layers are exactly the owner's.
    """
    return _retrain(model, x, y, last_only=True, reinit=False, epochs=epochs, learning_rate=learning_rate,
                    seed=seed, loss=loss, batch_size=batch_size, fn="ftll")


def ftal(model, x: Any, y: Any, *, epochs: int = 10, learning_rate: float = 1e-3, seed: int = 0,
         loss: Any = None, batch_size: int = 64):
    """FTAL: fine-tune every layer on the attacker's (x, y). Arguments as in :func:`ftll`."""
    return _retrain(model, x, y, last_only=False, reinit=False, epochs=epochs, learning_rate=learning_rate,
                    seed=seed, loss=loss, batch_size=batch_size, fn="ftal")


def rtll(model, x: Any, y: Any, *, epochs: int = 30, learning_rate: float = 1e-2, seed: int = 0,
         loss: Any = None, batch_size: int = 64):
    """RTLL: re-initialise the output layer, then retrain it alone (hidden layers frozen).

    Arguments as in :func:`ftll`; ``seed`` also draws the new output layer. The
    default rate is higher than for fine-tuning: a fresh linear head on 300 samples
    needs it to reach the owner's accuracy.
    """
    return _retrain(model, x, y, last_only=True, reinit=True, epochs=epochs, learning_rate=learning_rate,
                    seed=seed, loss=loss, batch_size=batch_size, fn="rtll")


def rtal(model, x: Any, y: Any, *, epochs: int = 20, learning_rate: float = 3e-3, seed: int = 0,
         loss: Any = None, batch_size: int = 64):
    """RTAL: re-initialise the output layer, then retrain every layer. Arguments as in :func:`rtll`."""
    return _retrain(model, x, y, last_only=False, reinit=True, epochs=epochs, learning_rate=learning_rate,
                    seed=seed, loss=loss, batch_size=batch_size, fn="rtal")


def new_head(model, x: Any, y: Any, outputs: int, *, epochs: int = 30, learning_rate: float = 1e-2,
             fine_tune_epochs: int = 0, fine_tune_rate: float = 1e-5, seed: int = 0, loss: Any = None,
             batch_size: int = 64):
    """Transfer: the owner's network under a new output layer of ``outputs`` units, for the
    attacker's own task (five classes where the owner had ten, two targets where it had one).

    Keras's transfer-learning recipe: the owner's layers up to its last kernel layer are
    kept frozen and a new Dense layer (the owner's output activation) is trained on the
    attacker's (x, y); with ``fine_tune_epochs`` every layer is then trained at the low
    ``fine_tune_rate``. The suspect answers another number of values than the owner, so
    verification reads it as a new head (``tafa_tf.verification``, mode "new_head").

    Args:
        model: the owner's Keras model (unchanged): one input, one output, a Dense output layer.
        x, y: the attacker's data for its task (integer labels under ``outputs`` classes,
            or ``outputs`` float targets per input).
        outputs: units of the new output layer.
        epochs, learning_rate: the new layer's training, the rest frozen.
        fine_tune_epochs, fine_tune_rate: then every layer's (0: none).
        seed, loss, batch_size: as in :func:`fine_tune`; ``seed`` also draws the new layer.

    Returns:
        A new Keras model with ``outputs`` outputs.

    Raises:
        UnsupportedModelError: the model's output layer is not a Dense layer on a single-input graph.
    """
    keras = _keras()
    _check_model(model)
    for value, name in ((outputs, "outputs"), (epochs, "epochs")):
        _check_positive_int(value, name)
    _check_positive(learning_rate, "learning_rate")
    x, y = _xy(x, y, "new_head")
    clone = copy_model(model)
    last = (_kernel_layers(clone) or [None])[-1]
    keras.utils.set_random_seed(seed)
    head = keras.layers.Dense(int(outputs), activation=head_activation(model), name="new_head")
    refusal = (f"new_head needs a single-input Keras graph whose output layer is Dense. Received: model "
               f"{model.name!r} with output layer {type(last).__name__ if last is not None else None}.")
    if not isinstance(last, keras.layers.Dense) or len(getattr(clone, "inputs", None) or ()) != 1:
        raise UnsupportedModelError(refusal)
    try:
        pirate = keras.Model(clone.inputs[0], head(last.input), name=f"{model.name}_new_head")
    except Exception as e:  # the output layer inside a nested model: not on this graph
        raise UnsupportedModelError(f"{refusal} ({e})") from e
    frozen = _leaf_layers(clone)
    for layer in frozen:
        layer.trainable = False
    _train(pirate, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed, batch_size=batch_size)
    if fine_tune_epochs:
        for layer in frozen:
            layer.trainable = True
        _train(pirate, x, y, epochs=fine_tune_epochs, learning_rate=fine_tune_rate, loss=loss, seed=seed + 1,
               batch_size=batch_size)
    return pirate


def prune_retune(model, x: Any, y: Any, fraction: float = 0.4, *, epochs: int = 5, learning_rate: float = 1e-3,
                 seed: int = 0, loss: Any = None, batch_size: int = 64):
    """Prune ``fraction`` (0.2-0.6 in the literature) of the smallest kernel weights
    globally, then fine-tune all layers on (x, y) with the pruned weights held at zero.

    A named wrapper of ``piracy.prune(model, fraction, fine_tune_data=(x, y))``.
    """
    x, y = _xy(x, y, "prune_retune")
    return prune(model, fraction, fine_tune_data=(x, y), epochs=epochs, learning_rate=learning_rate, loss=loss,
                 seed=seed, batch_size=batch_size)


def _adversarial(model, x: np.ndarray, y: np.ndarray, loss_fn, *, method: str, eps: float, steps: int,
                 low: Any, high: Any, seed: int) -> np.ndarray:
    """FGSM (one signed step of size eps) or PGD (``steps`` signed steps of eps/4 from a
    random start, projected back into the eps-ball) against ``model``'s loss."""
    import tensorflow as tf

    x0 = tf.constant(x)
    rng = np.random.default_rng(seed)
    if method == "fgsm":
        xa, n_steps, alpha = x0, 1, eps
    else:
        xa = x0 + tf.constant(rng.uniform(-eps, eps, x.shape).astype("float32"))
        n_steps, alpha = steps, eps / 4.0
    yt = tf.constant(y)
    for _ in range(n_steps):
        with tf.GradientTape() as tape:
            tape.watch(xa)
            lossv = loss_fn(yt, model(xa, training=False))
        g = tape.gradient(lossv, xa)
        xa = xa + alpha * tf.sign(g)
        xa = x0 + tf.clip_by_value(xa - x0, -eps, eps)
        if low is not None:
            xa = tf.clip_by_value(xa, low, high)
    return xa.numpy().astype("float32")


def adversarial_tune(model, x: Any, y: Any, *, method: str = "fgsm", eps: float = 0.1, steps: int = 7,
                     epochs: int = 5, learning_rate: float = 1e-3, seed: int = 0, clip: Any = None,
                     loss: Any = None, batch_size: int = 64):
    """Adversarial fine-tuning: each epoch, craft FGSM or PGD examples against the current
    model and train one epoch on the clean data plus them (labels kept).

    Args:
        model: the owner's Keras model (unchanged).
        x, y: the attacker's data (labels, or target values for regressors and generators).
        method: "fgsm" or "pgd".
        eps: the L-infinity radius, in input units (pixels in [0, 1]: 0.03-0.3).
        steps: PGD steps (step size eps / 4, random start).
        epochs, learning_rate, seed, loss, batch_size: as in ``piracy.fine_tune``.
        clip: None, or a (low, high) pair the adversarial inputs are clipped to.

    Returns:
        A new adversarially fine-tuned model.
    """
    _check_model(model)
    _check_positive_int(epochs, "epochs")
    _check_positive_int(steps, "steps")
    _check_positive(eps, "eps")
    if method not in _ADV_METHODS:
        raise ValueError(f"method must be one of {_ADV_METHODS}. Received: method={method!r}")
    x, y = _xy(x, y, "adversarial_tune")
    low, high = (None, None) if clip is None else (float(clip[0]), float(clip[1]))
    loss_fn = loss if loss is not None else _default_loss(model, y)
    current = copy_model(model)
    for epoch in range(epochs):
        xa = _adversarial(current, x, y, loss_fn, method=method, eps=float(eps), steps=steps, low=low,
                          high=high, seed=seed + epoch)
        current = _train(current, np.concatenate([x, xa]), np.concatenate([y, y]), epochs=1,
                         learning_rate=learning_rate, loss=loss_fn, seed=seed + epoch, batch_size=batch_size)
    return current


def extract(model, x: Any, *, labels_only: bool, domain: Any = None, n_noise: int = 0, student: Any = None,
            epochs: int = 40, learning_rate: float = 3e-3, seed: int = 0, batch_size: int = 64):
    """Model extraction: train a fresh network on the owner's answers alone.

    The attacker asks the owner about its data ``x`` plus ``n_noise`` inputs drawn from
    ``domain``, and trains ``student`` (default: the owner's architecture, fresh weights
    from ``seed``) on the answers: the top label with cross-entropy when
    ``labels_only``, else the probabilities (softmax of a classifier's logits) with
    cross-entropy on soft labels; for a regressor or generator, its output values with
    mean squared error (``labels_only`` must be False there).

    Returns:
        A new trained student model.
    """
    keras = _keras()
    _check_model(model)
    _check_positive_int(epochs, "epochs")
    x = np.asarray(x, dtype="float32")
    if n_noise:
        noise = as_domain(domain).sample(np.random.default_rng(seed + 1), (int(n_noise), *x.shape[1:]))
        x = np.concatenate([x, noise.astype("float32")])
    answers = _predict(model, x).reshape(len(x), -1)
    classifier = answers.shape[1] > 1 and _ends_with_softmax(model) or _is_logit_classifier(model, answers)
    if labels_only and not classifier:
        raise ValueError("labels_only extraction needs a classifier (several outputs, linear or softmax head).")
    if student is None:
        student = fresh_model(model, seed)
    else:
        _check_model(student)
        student = copy_model(student)
    from_logits = not _ends_with_softmax(student)
    if labels_only:
        y, loss = answers.argmax(1).astype("int64"), keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    elif classifier:
        probs = answers if _ends_with_softmax(model) else softmax(answers)
        y, loss = probs.astype("float32"), keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    else:
        y, loss = _predict(model, x), keras.losses.MeanSquaredError()
    return _train(student, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed,
                  batch_size=batch_size)


def _is_logit_classifier(model, answers: np.ndarray) -> bool:
    return answers.shape[1] > 1 and head_activation(model) in (None, "linear")


ENSEMBLE_SPACES = ("outputs", "probabilities")


def ensemble(model, others: Sequence[Any], *, weight: float = 0.5, space: str = "outputs"):
    """Output mixing: the owner's answers averaged with other models', as one Keras model.

    Not an attack of the removal literature but the cheapest way to hide a copy: ship
    an ensemble that answers ``weight * owner(x) + (1 - weight) * mean(others(x))``.
    Each member answers as the owner does about as often as its weight says, so the
    output features fall with the weight; the owner's kinks stay, scaled by it
    (``tafa_tf.verification``, feature ``mixture_kinks``).

    Args:
        model: the owner's Keras model (unchanged), one input and one output.
        others: Keras models with the owner's input and output shapes.
        weight: the owner's share in (0, 1); the others share the rest equally.
        space: "outputs" mixes what the models answer (logits for a logit classifier,
            values for a regressor, pixels for a decoder); "probabilities" passes each
            classifier's logits through a softmax first (not one that ends with a
            softmax already), as ensembles of classifiers usually average.

    Returns:
        A new Keras model (members copied, under names of their own, so it saves and loads).
    """
    keras = _keras()
    for m in (model, *others):
        _check_model(m)
    if not others:
        raise ValueError("ensemble needs at least one other model. Received: others=[]")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 < weight < 1.0:
        raise ValueError(f"weight must be a number in (0, 1): the owner's share. Received: weight={weight!r}")
    if space not in ENSEMBLE_SPACES:
        raise ValueError(f"space must be one of {ENSEMBLE_SPACES}. Received: space={space!r}")
    width = int(model.outputs[0].shape[-1])
    if space == "probabilities" and width < 2:
        raise ValueError(f"space='probabilities' needs a classifier with an output per class; {model.name!r} "
                         f"answers {width} value. Use space='outputs' to average its values.")
    inputs = keras.Input(_input_shape(model))
    shares = [float(weight)] + [(1.0 - float(weight)) / len(others)] * len(others)
    terms = []
    for i, (member, share) in enumerate(zip((model, *others), shares)):
        clone = copy_model(member)
        y = keras.Model(clone.inputs[0], clone.outputs[0], name=f"member_{i}")(inputs)
        if space == "probabilities" and not _ends_with_softmax(member):
            y = keras.layers.Softmax(name=f"probabilities_{i}")(y)
        terms.append(keras.layers.Rescaling(share, name=f"share_{i}")(y))
    return keras.Model(inputs, keras.layers.Add(name="mix")(terms), name=f"{model.name}_ensemble")
