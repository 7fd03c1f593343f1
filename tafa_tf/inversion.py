"""Inputs a trained model's BatchNormalization statistics describe, found without data.

A BatchNormalization layer keeps, per channel, the mean and variance of its input over
the training data (``moving_mean``, ``moving_variance``). Inputs whose activations match
those statistics, layer by layer, look like the training data to the model, though no
training input is used: ZeroQ (Cai et al., CVPR 2020) calibrates quantization with them,
DeepInversion (Yin et al., CVPR 2020) distills with them.

Why a fingerprint wants them: a pirate who ships a copy as a full-int8 TensorFlow Lite
file calibrates each layer's 8-bit range on data. At the domain's random inputs, where
the data-free points lie, a MobileNetV2's activations leave those ranges and are
clipped, and the copy keeps too few of the owner's answers to be accused (0.31 against
its line 0.87, docs/results.md). Points grown from these inputs stay within the ranges:

    >>> x = tafa.batchnorm_samples(model, domain=tafa.domains.Box(0.0, 1.0))
    >>> fp = tafa.fingerprint(model, domain=tafa.domains.Box(0.0, 1.0), samples=x, sample_fraction=1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tafa_tf.domains import Box, as_domain, default_domain
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.progress import progress_bar

INITIAL_TOLERANCE = 1e-6
"""Moving statistics this close to the initial mean 0 and variance 1 everywhere were never
updated: the layer describes no data."""


def _recorded(layer: Any) -> bool:
    """Whether a BatchNormalization layer's moving statistics moved from their initial values."""
    mean = np.asarray(layer.moving_mean)
    var = np.asarray(layer.moving_variance)
    return bool(np.max(np.abs(mean)) > INITIAL_TOLERANCE or np.max(np.abs(var - 1.0)) > INITIAL_TOLERANCE)


def _statistics_loss(observed: list[tuple[Any, Any]]) -> Any:
    """Mean over the layers of the squared gaps between each channel's batch mean and
    standard deviation and the layer's moving ones, in units of the moving deviation."""
    import tensorflow as tf

    terms = []
    for layer, z in observed:
        z = tf.cast(z, tf.float32)
        channel = (layer.axis if isinstance(layer.axis, int) else layer.axis[0]) % len(z.shape)
        axes = [a for a in range(len(z.shape)) if a != channel]
        std = tf.sqrt(tf.cast(layer.moving_variance, tf.float32) + layer.epsilon)
        mean = tf.reduce_mean(z, axis=axes)
        spread = tf.sqrt(tf.math.reduce_variance(z, axis=axes) + layer.epsilon)
        terms.append(tf.reduce_mean(((mean - tf.cast(layer.moving_mean, tf.float32)) / std) ** 2)
                     + tf.reduce_mean((spread / std - 1.0) ** 2))
    return tf.add_n(terms) / len(terms)


def _recorded_norms(model: Any) -> list[Any]:
    """``model``'s BatchNormalization layers with recorded statistics; raises if there are none."""
    import keras

    from tafa_tf.introspection import leaf_layers

    norms = [layer for layer in leaf_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    live = [layer for layer in norms if _recorded(layer)]
    if not live:
        found = (f"{len(norms)} BatchNormalization layers, all at their initial mean 0 and variance 1" if norms
                 else "no BatchNormalization layer")
        raise UnsupportedModelError(
            "batchnorm_samples needs BatchNormalization layers whose moving statistics were recorded in "
            f"training. Received: {model.name!r} with {found}. Pass a few public inputs as samples= "
            "instead, or fingerprint without samples.")
    return live


def _observing(net: Any, norms: list[Any]) -> Any:
    """A function of inputs: :func:`_statistics_loss` of ``norms``' inputs as ``net`` runs on them."""
    wanted = {id(layer) for layer in norms}

    def gap(x: Any) -> Any:
        seen: list[tuple[Any, Any]] = []
        net.observed(x, lambda layer, z: seen.append((layer, z)) if id(layer) in wanted else None)
        return _statistics_loss(seen)

    return gap


def statistics_gap(model: Any, x: Any) -> float:
    """How far the batch ``x`` is from what ``model``'s BatchNormalization layers recorded:
    the mean over the layers of the squared gaps between each channel's batch mean and
    deviation and the moving ones, in units of the moving deviation (0: a perfect match)."""
    from tafa_tf.introspection import ReluNetwork

    net = ReluNetwork(model)
    return float(_observing(net, _recorded_norms(model))(np.asarray(x, dtype="float32")))


def batchnorm_samples(
    model: Any,
    n: int = 32,
    domain: Any = None,
    *,
    steps: int = 150,
    learning_rate: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """``n`` inputs in ``domain`` whose activations match ``model``'s BatchNormalization statistics.

    Gradient descent (Adam) on a batch of ``n`` inputs, from random ones, of the gap
    between each BatchNormalization layer's batch statistics and its moving ones
    (``_statistics_loss``), the model in inference mode. In a box the inputs are kept
    inside through a sigmoid; elsewhere they are projected on the domain at the end.
    Pass them to :func:`tafa_tf.fingerprint` as ``samples`` (with
    ``sample_fraction=1.0`` to grow every point from them).

    Args:
        model: a trained keras.Model with BatchNormalization layers (nested models walked).
        n: how many inputs; the statistics are matched over the batch, so not too few.
        domain: where inputs live, as in :func:`tafa_tf.fingerprint` (None: the default).
        steps: descent steps (about a forward and a backward pass of ``n`` inputs each).
        learning_rate: Adam's step on the unconstrained inputs.
        seed: makes the inputs reproducible.
        progress: show a progress bar.

    Returns:
        float32 array of shape ``(n, *input_shape)``.

    Raises:
        UnsupportedModelError: the model has no BatchNormalization layer whose statistics
            were recorded in training (none, or all at their initial values).
        ValueError: ``n`` under 2 or ``steps`` under 1.
    """
    import keras
    import tensorflow as tf

    from tafa_tf.introspection import ReluNetwork

    if int(n) < 2 or int(steps) < 1:
        raise ValueError(f"batchnorm_samples needs n >= 2 inputs (a batch has statistics) and steps >= 1. "
                         f"Received: n={n!r}, steps={steps!r}")
    net = ReluNetwork(model)
    gap = _observing(net, _recorded_norms(model))
    domain = as_domain(domain) if domain is not None else default_domain("auto", net.input_shape, model)
    rng = np.random.default_rng(int(seed))
    start = domain.sample(rng, (int(n), *net.input_shape)).astype("float32")
    box = isinstance(domain, Box)
    if box:
        low, high = (b.astype("float32") for b in domain.bounds(net.input_shape))
        frac = np.clip((start - low) / np.maximum(high - low, 1e-12), 1e-3, 1 - 1e-3)
        start = np.log(frac / (1 - frac))
    z = tf.Variable(start)
    optimizer = keras.optimizers.Adam(learning_rate)

    def inputs():
        return low + (high - low) * tf.sigmoid(z) if box else z

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = gap(inputs())
        optimizer.apply_gradients([(tape.gradient(loss, z), z)])
        return loss

    with progress_bar(total=int(steps), enabled=progress, desc="batchnorm samples") as bar:
        for _ in range(int(steps)):
            loss = step()
            bar.update(1)
            bar.set_postfix(gap=f"{float(loss):.3f}", refresh=False)
    x = np.asarray(inputs(), dtype="float32")
    return x if box else domain.project(x).astype("float32")
