"""Removal attacks of the fingerprinting literature: what a pirate does to hide a copy.

Each function takes the owner's Keras model and the attacker's data and returns a NEW
model; the owner's model is never changed. The settings follow the papers that use
them to judge fingerprints and watermarks:

- ``ftll``, ``ftal``, ``rtll``, ``rtal``: fine-tune the last layer, fine-tune all
  layers, re-initialise the last layer and retrain it alone, re-initialise it and
  retrain all layers (Adi et al., "Turning your weakness into a strength", USENIX
  Security 2018; used by IPGuard, Cao et al. AsiaCCS 2021, and DeepJudge, Chen et al.
  IEEE S&P 2022). The "last layer" is the last layer with a kernel, the output layer.
- ``prune_retune``: magnitude pruning of 20-60% of the kernel weights, then a short
  fine-tune (Uchida et al. 2017; DeepJudge's "fine-pruning" family).
- ``adversarial_tune``: fine-tuning on adversarial examples, FGSM (Goodfellow et al.
  2015) or PGD (Madry et al. 2018), mixed half-and-half with the clean data, as in
  the adversarial-training attacks of DeepJudge and of Lukas et al. (ICLR 2021).
- ``extract``: model extraction (Tramer et al. 2016; Orekondy et al. 2019): a fresh
  network trained only on the owner's answers to the attacker's data plus domain
  noise, from labels alone or from probabilities (soft labels).

They serve the benchmarks and the tests (see benchmarks/piracy_suite.py).

Examples:
    >>> pirate = rtll(owner, x_attacker, y_attacker, epochs=20)
    >>> pirate = adversarial_tune(owner, x_attacker, y_attacker, method="pgd", eps=0.05)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tafa_tf.domains import as_domain
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.piracy import (
    _check_model,
    _check_positive,
    _check_positive_int,
    _default_loss,
    _ends_with_softmax,
    _kernel_layers,
    _keras,
    _leaf_layers,
    _predict,
    _train,
    copy_model,
    prune,
)

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
        keras.utils.set_random_seed(seed)
        student = keras.models.clone_model(model)
    else:
        _check_model(student)
        student = copy_model(student)
    from_logits = not _ends_with_softmax(student)
    if labels_only:
        y, loss = answers.argmax(1).astype("int64"), keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    elif classifier:
        probs = answers if _ends_with_softmax(model) else _softmax(answers)
        y, loss = probs.astype("float32"), keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    else:
        y, loss = _predict(model, x), keras.losses.MeanSquaredError()
    return _train(student, x, y, epochs=epochs, learning_rate=learning_rate, loss=loss, seed=seed,
                  batch_size=batch_size)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _is_logit_classifier(model, answers: np.ndarray) -> bool:
    from tafa_tf.piracy import _activation_name

    return answers.shape[1] > 1 and _activation_name(model.layers[-1]) in (None, "linear")


__all__ = ["ftll", "ftal", "rtll", "rtal", "prune_retune", "adversarial_tune", "extract"]
