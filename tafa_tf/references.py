"""Reference models built from the owner's own assets, for calibration.

A calibrated verdict needs innocent models (to measure how often an innocent scores
high) and pirated ones (to measure how often a copy is caught). Nobody has dozens of
them at hand, but the owner has what it takes to build them: their model, their
training data and, if they fine-tuned one, the public base model.

- Innocent references (negatives): fine-tunes of ``base`` on random subsets of the
  owner's data with other seeds (when a base is given: every training run but one),
  and the owner's architecture re-initialised and trained on such subsets; each
  training run also keeps a checkpoint from half-way (a cheap extra innocent).
- Pirated references (positives): ``tafa_tf.piracy`` transforms of the owner:
  fine-tunes at small and large learning rates, pruning with and without re-tuning,
  float16 and int8 quantization, weight noise, neuron permutation and rescaling (1%
  weight noise instead where the model is not a Sequential chain, such as a
  keras.applications CNN), and distillation on the data.

Innocent references stand for independently trained models, so they must be trained
about as well as the owner: :func:`build` warns when a classifier's are not
(:func:`quality_warnings`). The default recipe suits small models; pass ``fit=`` with
your own training for a CNN.

The owner's model (and the base) are never changed: every reference starts from a
copy. With ``cache_dir`` each reference is saved as it is built (atomically), under a
key made of the owner's and base's weights, the data and the recipe, so an interrupted
build resumes where it stopped and a rerun loads everything.

The default training recipe fits classifiers (integer labels) with sparse
cross-entropy and everything else with mean squared error, using Adam. A generator
given images only (``data=x_images``) is trained as the decoding half of a small
autoencoder on them, the latent pushed towards N(0, 1). Models the recipe cannot
train (GANs, custom losses) take ``fit(model, data, seed) -> model``.

Examples:
    >>> refs = tafa.references.build(owner, (x_train, y_train), base=public_base, cache_dir="refs/")
    >>> cal = tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=0.05)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf import piracy

RECIPE_VERSION = 2
"""Part of the cache key: bump it when a recipe below changes what it builds."""

SUBSET = 0.5
"""Share of the owner's data each innocent reference trains on (a random subset)."""

Fit = Callable[[Any, Any, int], Any]


@dataclass
class References:
    """Reference models for calibration: ``positives`` (pirated) and ``negatives`` (innocent).

    Attributes:
        positives: pirated variants of the owner (keras models).
        negatives: innocent models (keras models).
        positive_names, negative_names: what each one is ("ft-small-0", "reinit-1-half"...).
        cache_dir: where they are stored, or None.
        recipe: the settings they were built with (part of the cache key).
        built, loaded: how many models this call trained (a training run yields two, so an
            odd ``n_innocent`` trains one more than it keeps), and how many it loaded.
        warnings: what makes a threshold set on them doubtful (:func:`quality_warnings`),
            also logged by :func:`build`.
    """

    positives: list[Any]
    negatives: list[Any]
    positive_names: list[str]
    negative_names: list[str]
    cache_dir: Path | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    built: int = 0
    loaded: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The names of ``positives`` then ``negatives``, in order."""
        return [*self.positive_names, *self.negative_names]

    def __len__(self) -> int:
        return len(self.positives) + len(self.negatives)

    def __repr__(self) -> str:
        where = f", cache_dir={str(self.cache_dir)!r}" if self.cache_dir else ""
        return f"References({len(self.positives)} pirated, {len(self.negatives)} innocent{where})"


# --------------------------------------------------------------------------- checks


UNDERTRAINED_GAP = 0.2
"""Warn when the innocent references' best accuracy on the owner's data is this much under the owner's."""
QUALITY_SAMPLES = 256
"""How many of the owner's training pairs the references' accuracy is measured on (bounded cost)."""


def quality_warnings(model: Any, data: tuple[np.ndarray, np.ndarray | None], negatives: Sequence[Any]) -> list[str]:
    """A warning when a classifier's innocent references are much worse models than the owner.

    A calibrated threshold sits above the innocent references, so they must be what an
    innocent model is: trained as well as the owner was. Under-trained ones answer unlike
    the owner and score low, and so does the threshold: a MobileNetV2 at 96x96 calibrated
    on references trained 12 optimizer steps each (4 epochs of 192 images in batches of
    64; accuracy 0.08-0.11, chance, against the owner's 0.61) accused both independently
    trained models of its benchmark row; trained with the owner's recipe (0.45-0.81) they
    accused neither, and every copy (docs/results.md). Measured on at most
    :data:`QUALITY_SAMPLES` of the owner's training pairs; classifiers only (integer
    labels, one output per class), else no warning.
    """
    x, y = data
    y = None if y is None else np.asarray(y)
    if y is None or not negatives or not np.issubdtype(y.dtype, np.integer) or y.size != len(x):
        return []  # judged only for one integer label per example
    rows = np.sort(np.random.default_rng(0).permutation(len(x))[:QUALITY_SAMPLES])
    x, y = x[rows], y.reshape(-1)[rows]

    def accuracy(m: Any) -> float:
        out = piracy._predict(m, x, batch_size=32).reshape(len(x), -1)
        return float(np.mean(out.argmax(axis=1) == y)) if out.shape[1] > 1 else float("nan")

    owner = accuracy(model)
    best = max(accuracy(m) for m in negatives)
    if not (math.isfinite(owner) and math.isfinite(best)) or best >= owner - UNDERTRAINED_GAP:
        return []
    return [f"The innocent references reach at most {best:.2f} accuracy on your training data, against "
            f"{owner:.2f} for your model: they are trained less than an independent model would be, and a "
            "threshold set on them can accuse innocent models. Train them as your model was trained "
            "(fit=, or more epochs=)."]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _as_data(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, y)`` pairs, or images alone for a generator (y None)."""
    if isinstance(data, np.ndarray):
        x, y = data, None
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), None if data[1] is None else np.asarray(data[1])
    else:
        raise ValueError(
            "data must be the owner's training pairs (x, y), or for a generator its training images "
            f"alone. Received: {type(data).__name__}"
        )
    if x.ndim < 2 or len(x) < 2:
        raise ValueError(f"data's inputs must be a batch of at least 2 examples. Received: x.shape={x.shape}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"data's x and y must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}")
    if not np.issubdtype(x.dtype, np.number) or (y is not None and not np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"data must be numeric arrays. Received dtypes: x={x.dtype}, y={getattr(y, 'dtype', None)}")
    return x.astype("float32"), y


def _shapes(model: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:])


def _check_models(model: Any, base: Any) -> None:
    import keras

    for name, m in (("model", model), ("base", base)):
        if m is not None and not isinstance(m, keras.Model):
            raise TypeError(f"{name} must be a keras.Model. Received: {name}={type(m).__name__}")
    if base is not None and _shapes(base) != _shapes(model):
        raise ValueError(
            "base must take and give the shapes of the owner's model (it is the public model the owner "
            f"fine-tuned). Received: owner {_shapes(model)}, base {_shapes(base)}"
        )


# --------------------------------------------------------------------------- training


def train_decoder(decoder: Any, images: np.ndarray, *, seed: int, epochs: int, learning_rate: float) -> Any:
    """Train ``decoder`` (in place) as the decoding half of a small noisy autoencoder on ``images``.

    The encoder (flatten, Dense 64 relu, Dense to the latent size) ends in a batch
    normalization and Gaussian noise, with an L2 penalty on the code, so that the code
    is pushed towards N(0, 1) and the decoder generates from Gaussian latents. The loss
    is binary cross-entropy for a decoder that ends in a sigmoid, else squared error.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed + 10_000)
    latent = int(np.prod(decoder.inputs[0].shape[1:]))
    encoder = keras.Sequential(
        [
            keras.Input(images.shape[1:]),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(latent, activity_regularizer=keras.regularizers.L2(0.05)),
            layers.BatchNormalization(center=False, scale=False),
            layers.GaussianNoise(0.5),
            layers.Reshape(tuple(decoder.inputs[0].shape[1:])),
        ]
    )
    autoencoder = keras.Sequential([encoder, decoder])
    loss = "binary_crossentropy" if piracy.head_activation(decoder) == "sigmoid" else "mse"
    target = images.reshape((len(images), *decoder.outputs[0].shape[1:]))
    autoencoder.compile(keras.optimizers.Adam(learning_rate), loss)
    autoencoder.fit(images, target, epochs=epochs, batch_size=64, verbose=0)
    return decoder


def _default_fit(model: Any, data: tuple[np.ndarray, np.ndarray | None], seed: int, *, epochs: int,
                 learning_rate: float) -> Any:
    x, y = data
    if y is None:
        return train_decoder(model, x, seed=seed, epochs=epochs, learning_rate=learning_rate)
    return piracy._train(model, x, y, epochs=epochs, learning_rate=learning_rate, loss=None, seed=seed,
                         batch_size=64)


def _subset(data: tuple[np.ndarray, np.ndarray | None], seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    x, y = data
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[: max(2, int(round(SUBSET * len(x))))])
    return x[idx], None if y is None else y[idx]


def _fresh(model: Any, seed: int) -> Any:
    """The owner's architecture with new weights drawn from ``seed`` (its data preprocessing
    state kept: :func:`tafa_tf.piracy.fresh_model`)."""
    return piracy.fresh_model(model, seed)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Job:
    """One training run or transform; ``names`` are the models it yields (a run: checkpoint, final)."""

    names: tuple[str, ...]
    label: int
    make: Callable[[], list[Any]]


class _Recipe:
    """What ``build`` trains, bound to the owner's assets and settings."""

    def __init__(self, model: Any, data: Any, base: Any, fit: Fit | None, seed: int, epochs: int,
                 learning_rate: float, domain: Any):
        self.model, self.base, self.seed = model, base, seed
        self.data = data
        self.epochs, self.lr = epochs, learning_rate
        self.user_fit = fit
        self.domain = domain
        # names the base in its fine-tunes' file names, so that one cache folder serves
        # builds with and without a base (the other references do not depend on it)
        self.base_key = None if base is None else _digest(*base.get_weights())[:8]

    def fit(self, model: Any, data: Any, seed: int, *, epochs: int, learning_rate: float) -> Any:
        if self.user_fit is not None:
            out = self.user_fit(model, data, seed)
            return model if out is None else out
        return _default_fit(model, data, seed, epochs=epochs, learning_rate=learning_rate)

    def run(self, start: Any, seed: int, epochs: int) -> list[Any]:
        """Train ``start`` on a data subset; return [final, half-way checkpoint]."""
        data = _subset(self.data, seed)
        half = max(1, epochs // 2)
        model = self.fit(start, data, seed, epochs=half, learning_rate=self.lr)
        checkpoint = piracy.copy_model(model)
        final = self.fit(model, data, seed + 1, epochs=max(1, epochs - half), learning_rate=self.lr)
        return [final, checkpoint]

    def innocent_jobs(self, n: int) -> list[_Job]:
        runs, s = [], 1000 * self.seed
        n_runs = math.ceil(n / 2)
        for i in range(n_runs):
            # With a base, every run but the last fine-tunes it: other fine-tunes of the
            # base are the innocents most like the owner, and the threshold must clear the
            # highest of them; the last run re-initialises the architecture, so that
            # independently trained models are represented too.
            if self.base is not None and (i < n_runs - 1 or n_runs == 1):
                start, epochs = lambda: piracy.copy_model(self.base), max(1, self.epochs // 2)
                name = f"base-ft-{i}-{self.base_key}"
            else:
                start, name, epochs = partial(_fresh, self.model, s + 500 + i), f"reinit-{i}", self.epochs
            runs.append(_Job((name, f"{name}-half"), 0,
                             lambda start=start, i=i, e=epochs: self.run(start(), s + 10 * i, e)))
        return runs

    def _pairs(self) -> tuple[np.ndarray, Any]:
        """Inputs and targets a pirate trains on: the data, or latents and the owner's outputs."""
        x, y = self.data
        if y is not None:
            return x, y
        z = self._latents(len(x))
        return z, piracy._predict(self.model, z)

    def _latents(self, n: int) -> np.ndarray:
        from tafa_tf.domains import Gaussian

        shape = _shapes(self.model)[0]
        return Gaussian(1.0).sample(np.random.default_rng(self.seed + 7), (n, *shape))

    def _tune(self, seed: int, *, epochs: int, learning_rate: float) -> Any:
        data = self.data if self.user_fit is not None or self.data[1] is None else self._pairs()
        return self.fit(piracy.copy_model(self.model), _subset(data, seed), seed, epochs=epochs,
                        learning_rate=learning_rate)

    def pirated_transforms(self, seed: int) -> list[tuple[str, Callable[[], Any]]]:
        owner, (x, y) = self.model, self._pairs()
        e = self.epochs  # a pirate's fine-tunes are short next to training: 3, 10 and 5 of 30 epochs
        short, long_, mid = min(3, e), min(10, max(1, e // 3)), min(5, max(1, e // 6))
        generator = self.data[1] is None
        tune_data = x if generator else (x, y)
        distill_on = dict(domain=self.domain) if generator else dict(x=x)
        return [
            (f"ft-small-{seed}", lambda: self._tune(seed, epochs=short, learning_rate=1e-4)),
            (f"ft-large-{seed}", lambda: self._tune(seed, epochs=long_, learning_rate=3e-3)),
            (f"prune-50-ft-{seed}", lambda: piracy.prune(owner, 0.5, fine_tune_data=tune_data, epochs=short, seed=seed)),
            (f"noise-2-{seed}", lambda: piracy.add_noise(owner, 0.02, seed=seed)),
            (f"int8-{seed}", lambda: piracy.quantize(owner, "int8", per_channel=seed % 2 == 0)),
            # the same function under other weights; where the model's layers cannot be
            # permuted and rescaled (a Functional CNN), a copy under 1% weight noise instead
            (f"permute-rescale-{seed}", lambda: piracy.rescale_neurons(piracy.permute_neurons(owner, seed=seed),
                                                                        seed=seed + 1))
            if piracy.reparametrizable(owner) else
            (f"noise-1-{seed}", lambda: piracy.add_noise(owner, 0.01, seed=seed)),
            (f"prune-30-{seed}", lambda: piracy.prune(owner, 0.3)),
            (f"fp16-{seed}", lambda: piracy.quantize(owner, "float16")),
            (f"prune-70-ft-{seed}", lambda: piracy.prune(owner, 0.7, fine_tune_data=tune_data, epochs=short, seed=seed)),
            (f"noise-5-{seed}", lambda: piracy.add_noise(owner, 0.05, seed=seed)),
            (f"ft-mid-{seed}", lambda: self._tune(seed + 1, epochs=mid, learning_rate=1e-3)),
            (f"distill-{seed}", lambda: piracy.distill(owner, epochs=self.epochs, seed=seed, **distill_on)),
        ]

    def pirated_jobs(self, n: int) -> list[_Job]:
        jobs: list[_Job] = []
        round_ = 0
        while len(jobs) < n:  # past the twelve families, the same again with new seeds
            for name, make in self.pirated_transforms(1000 * self.seed + round_)[: n - len(jobs)]:
                jobs.append(_Job((name,), 1, lambda make=make: [make()]))
            round_ += 1
        return jobs


# --------------------------------------------------------------------------- cache


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"\x00none")
        elif isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _cache_key(model: Any, data: Any, settings: dict[str, Any]) -> str:
    return _digest(settings, *model.get_weights(), *data)[:16]


def _save(model: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _load(path: Path) -> Any:
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _run_job(job: _Job, folder: Path | None) -> tuple[list[Any], bool]:
    """The job's models, and whether they came from the cache."""
    paths = [folder / f"{name}.keras" for name in job.names] if folder is not None else None
    if paths is not None and all(p.exists() for p in paths):
        return [_load(p) for p in paths], True
    # a trained model keeps its optimizer's state (with Adam two more copies of every weight):
    # kept and saved as an uncompiled copy; piracy's transforms already return one
    models = [piracy.copy_model(m) if getattr(m, "compiled", False) else m for m in job.make()]
    if paths is not None:
        for m, p in zip(models, paths):
            _save(m, p)
    return models, False


# --------------------------------------------------------------------------- build


def build(
    model: Any,
    data: Any,
    *,
    base: Any = None,
    n_innocent: int = 12,
    n_pirated: int = 12,
    fit: Fit | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    epochs: int = 30,
    learning_rate: float = 2e-3,
    domain: Any = None,
    progress: bool | None = None,
) -> References:
    """Build innocent and pirated reference models from the owner's model and data.

    Args:
        model: the owner's trained Keras model (never changed).
        data: the owner's training pairs ``(x, y)``: integer labels for a classifier,
            targets otherwise; for a generator, ``(latents, outputs)`` pairs, or its
            training images alone (then it is trained as an autoencoder's decoder).
        base: the public model the owner fine-tuned, if any: the innocent references
            are then independent fine-tunes of it (the hardest innocents), but for
            one re-initialised run (5 of 6 runs at the default 12).
        n_innocent, n_pirated: how many references of each kind. 20+ innocents are
            needed before a 5% false-positive rate means anything (see
            ``tafa_tf.calibration``); 12 give a threshold above every innocent reference.
        fit: ``fit(model, data, seed) -> model`` to train a model the default recipe
            cannot (a GAN, a custom loss); it gets a copy and a subset of ``data``.
        seed: seeds every subset, initialisation and transform.
        cache_dir: a folder to keep the references in; a rerun loads them, an
            interrupted build resumes.
        epochs, learning_rate: the default recipe's training from scratch (Adam);
            fine-tunes of the base take half the epochs.
        domain: where a generator's latents live, for distillation (default N(0, 1)).
        progress: show a progress bar (None: only on a terminal).

    Returns:
        :class:`References`.

    Raises:
        TypeError: ``model`` or ``base`` is not a keras.Model.
        ValueError: bad counts, data or shapes.

    Examples:
        >>> refs = build(owner, (x_train, y_train), base=base, cache_dir=".tafa-refs")
        >>> cal = tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=0.05)
    """
    from tafa_tf.domains import Gaussian

    _check_models(model, base)
    n_innocent, n_pirated = _check_count(n_innocent, "n_innocent"), _check_count(n_pirated, "n_pirated")
    _check_count(epochs, "epochs")
    piracy._check_positive(learning_rate, "learning_rate")
    pairs = _as_data(data)
    recipe = _Recipe(model, pairs, base, fit, seed, epochs, learning_rate, domain or Gaussian(1.0))
    settings = {"version": RECIPE_VERSION, "seed": seed, "epochs": epochs, "learning_rate": learning_rate,
                "fit": None if fit is None else f"{getattr(fit, '__module__', '')}.{getattr(fit, '__qualname__', fit)}",
                "domain": repr(domain)}
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser() / _cache_key(model, pairs, settings)
        folder.mkdir(parents=True, exist_ok=True)
    jobs = recipe.innocent_jobs(n_innocent) + recipe.pirated_jobs(n_pirated)
    refs = _collect(jobs, folder, n_innocent, settings, progress)
    refs.warnings = quality_warnings(model, pairs, refs.negatives)
    for message in refs.warnings:
        logging.getLogger("tafa_tf").warning(message)
    return refs


def _collect(jobs: Sequence[_Job], folder: Path | None, n_innocent: int, settings: dict[str, Any],
             progress: bool | None) -> References:
    import sys

    from tafa_tf.progress import progress_bar

    out: dict[int, list[tuple[str, Any]]] = {0: [], 1: []}
    total, loaded = sum(len(j.names) for j in jobs), 0
    enabled = sys.stderr.isatty() if progress is None else bool(progress)
    with progress_bar(total=total, enabled=enabled, desc="reference models", unit="model") as bar:
        for job in jobs:
            bar.set_postfix_str(job.names[0])
            models, cached = _run_job(job, folder)
            out[job.label].extend(zip(job.names, models))
            loaded += len(models) if cached else 0
            bar.update(len(job.names))
    negatives = out[0][:n_innocent]
    positives = out[1]
    if folder is not None:
        manifest = {"settings": settings, "positives": [n for n, _ in positives], "negatives": [n for n, _ in negatives]}
        tmp = folder / f".references.{os.getpid()}.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, folder / "references.json")
    return References(
        positives=[m for _, m in positives], negatives=[m for _, m in negatives],
        positive_names=[n for n, _ in positives], negative_names=[n for n, _ in negatives],
        cache_dir=folder, recipe=settings, built=total - loaded, loaded=loaded,
    )


__all__ = ["References", "build", "quality_warnings", "train_decoder"]
