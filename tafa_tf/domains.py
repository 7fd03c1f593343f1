"""Input domains: where fingerprint points may live.

A fingerprint is made of inputs that the owner's model is meant to accept: pixels in
a box, standardized features, a generator's Gaussian latent. A domain draws seeds,
pulls a point back inside after a step, and says how large a step is in its units.
"""

from __future__ import annotations

import math

from typing import Any

import numpy as np

from tafa_tf.errors import DomainError


class Domain:
    """Base class: subclasses implement ``sample``, ``project`` and ``to_dict``."""

    kind = "domain"

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def project(self, x: np.ndarray) -> np.ndarray:
        """Return the nearest point of the domain (numpy, float32)."""
        raise NotImplementedError

    @property
    def scale(self) -> float:
        """A typical per-coordinate spread, used to size steps and tolerances."""
        raise NotImplementedError

    def bounds(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-coordinate (low, high) for box-like domains, else None."""
        return None

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Domain:
        kind = d.get("kind") if isinstance(d, dict) else None
        if kind == "box":
            return Box(np.asarray(d["low"], "float32"), np.asarray(d["high"], "float32"))
        if kind == "gaussian":
            return Gaussian(float(d["std"]), mean=float(d.get("mean", 0.0)), shell=bool(d.get("shell", True)))
        raise DomainError(f"Unknown domain description. Expected kind 'box' or 'gaussian'. Received: {d!r}")


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype="float32")
    except (TypeError, ValueError) as e:
        raise DomainError(f"{name} must be a number or an array of numbers. Received: {name}={value!r}") from e
    if not np.all(np.isfinite(arr)):
        raise DomainError(f"{name} must be finite. Received: {name}={value!r}")
    return arr


class Box(Domain):
    """Inputs inside ``[low, high]``, per coordinate (scalars or arrays that broadcast).

    Examples:
        >>> tafa.domains.Box(0.0, 1.0)      # pixels scaled to [0, 1]
        >>> tafa.domains.Box(-3.0, 3.0)     # standardized features
    """

    kind = "box"

    def __init__(self, low: Any, high: Any):
        self.low = _as_float_array(low, "low")
        self.high = _as_float_array(high, "high")
        try:
            gap = np.broadcast_arrays(self.low, self.high)
        except ValueError as e:
            raise DomainError(
                f"low and high must broadcast together. Received shapes {self.low.shape} and {self.high.shape}"
            ) from e
        if np.any(gap[1] <= gap[0]):
            raise DomainError(f"Box needs low < high everywhere. Received: low={low!r}, high={high!r}")

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        try:
            np.broadcast_shapes(self.low.shape, tuple(shape))
        except ValueError as e:
            raise DomainError(
                f"Box bounds of shape {self.low.shape} do not fit inputs of shape {tuple(shape)}. "
                "Pass scalars or arrays shaped like one input."
            ) from e

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        self._check_shape(shape[1:])
        u = rng.random(shape, dtype="float32")
        return (self.low + u * (self.high - self.low)).astype("float32")

    def sample_varied(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draws of random brightness and contrast: each a uniform draw (:meth:`sample`)
        pulled toward a random level of the box by a random share, so the draws spread over
        the box instead of clustering round its centre as independent coordinates do in
        high dimensions (every uniform 224x224x3 image is mid-grey noise, mean 0.5 +- 0.001).
        """
        self._check_shape(shape[1:])
        u = rng.random(shape, dtype="float32")
        per_draw = (shape[0],) + (1,) * (len(shape) - 1)
        level, contrast = rng.random(per_draw, dtype="float32"), rng.random(per_draw, dtype="float32")
        return (self.low + (level * (1 - contrast) + contrast * u) * (self.high - self.low)).astype("float32")

    def project(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.low, self.high).astype("float32")

    @property
    def scale(self) -> float:
        return float(np.mean(self.high - self.low))

    def bounds(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        self._check_shape(shape)
        return (
            np.broadcast_to(self.low, shape).astype("float32"),
            np.broadcast_to(self.high, shape).astype("float32"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "box", "low": self.low.tolist(), "high": self.high.tolist()}

    def __repr__(self) -> str:
        def show(bound: np.ndarray) -> str:
            if bound.size == 1:
                return str(bound.item())
            return f"<{'x'.join(map(str, bound.shape))} values from {bound.min():.4g} to {bound.max():.4g}>"

        return f"Box(low={show(self.low)}, high={show(self.high)})"


class Gaussian(Domain):
    """Inputs drawn from N(mean, std^2) per coordinate: standardized features or a latent.

    With ``shell=True`` (the default) projected points are kept in the typical shell
    of the distribution: their distance from the mean stays within a few standard
    deviations of ``std * sqrt(d)``, where a generator's latents live.
    """

    kind = "gaussian"

    def __init__(self, std: float = 1.0, *, mean: float = 0.0, shell: bool = True):
        if not isinstance(std, (int, float)) or not np.isfinite(std) or std <= 0:
            raise DomainError(f"std must be a positive number. Received: std={std!r}")
        self.std = float(std)
        self.mean = float(mean)
        self.shell = bool(shell)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return (self.mean + self.std * rng.standard_normal(shape)).astype("float32")

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, "float32")
        if not self.shell:
            return x
        flat = (x - self.mean).reshape(len(x), -1)
        d = flat.shape[1]
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        target = np.clip(norms, *self.shell_radii(d))
        flat = flat * np.where(norms > 0, target / np.maximum(norms, 1e-12), 1.0)
        return (self.mean + flat.reshape(x.shape)).astype("float32")

    def shell_radii(self, d: int) -> tuple[float, float]:
        """The typical shell of ``d``-dimensional draws: the range of distances from the mean kept."""
        # The norm of a d-dim standard normal is sqrt(d) +- ~0.71; allow 3 of those.
        spread = 3 * 0.71
        return max(self.std * (math.sqrt(d) - spread), 0.0), self.std * (math.sqrt(d) + spread)

    @property
    def scale(self) -> float:
        return self.std

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "gaussian", "std": self.std, "mean": self.mean, "shell": self.shell}

    def __repr__(self) -> str:
        return f"Gaussian(std={self.std:g}, mean={self.mean:g})"


def default_domain(task: str, input_shape: tuple[int, ...], model: Any = None) -> Domain:
    """The documented default when the user gives no domain.

    - generation: Gaussian(1.0), a standard normal latent;
    - a model whose first layer rescales its input (``model`` given): the raw range that
      layer maps onto the network's working range. ``Rescaling(scale, offset)`` maps
      raw x to x*scale + offset, onto [0, 1] (offset >= 0) or [-1, 1] (offset < 0), so
      Rescaling(1/255) and Rescaling(1/127.5, offset=-1) both give Box(0, 255).
      ``Normalization(mean, variance)`` gives Box(mean - 3 std, mean + 3 std);
    - image-like inputs (rank 3, e.g. HxWxC): Box(0, 1), pixels scaled to [0, 1]; but
      Box(0, 255) where the model's first computation is arithmetic on its input tensor
      (``keras.applications.*.preprocess_input`` applied inside the model: every mode of
      it takes 0-255 pixels);
    - anything else: Gaussian(1.0), standardized features.
    """
    if task == "generation":
        return Gaussian(1.0)
    front = _first_layer(model) if model is not None else None
    name = type(front).__name__
    if name == "Rescaling":
        scale, offset = float(np.asarray(front.scale).mean()), float(np.asarray(front.offset).mean())
        lo, hi = (0.0, 1.0) if offset >= 0 else (-1.0, 1.0)
        ends = sorted(((lo - offset) / scale, (hi - offset) / scale))
        return Box(ends[0], ends[1])
    if name == "Normalization" and getattr(front, "mean", None) is not None:
        mean, std = _moments(front, len(input_shape), "float32")
        return Box(mean - 3 * std, mean + 3 * std)
    if len(input_shape) == 3:
        # arithmetic before any layer is what keras.applications' preprocess_input does, and
        # every mode of it (x / 127.5 - 1; x / 255 then standardized; BGR minus the mean) takes 0-255 pixels
        return Box(0.0, 255.0) if _is_arithmetic(front) else Box(0.0, 1.0)
    return Gaussian(1.0)


def _moments(layer: Any, rank: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """An adapted ``Normalization`` layer's mean and standard deviation, shaped to broadcast
    against inputs of ``rank`` axes (no batch axis)."""
    mean = np.asarray(layer.mean, dtype)
    std = np.sqrt(np.maximum(np.asarray(layer.variance, dtype), 1e-12))
    if mean.ndim > rank:  # Keras keeps a leading batch axis of size 1
        mean, std = mean[0], std[0]
    return mean, std


def _is_arithmetic(op: Any) -> bool:
    """Whether ``op`` is a Keras operation on tensors (``keras.ops``: divide, subtract, a
    channel reorder), not a layer."""
    return type(op).__module__.startswith("keras.src.ops.")


def _first_layer(model: Any) -> Any:
    """The first computing layer of a Keras model, looking into a nested model in front and past
    layers that do nothing in inference (data augmentation, dropout, noise)."""
    return next(iter(_front_layers(model)), None)


AFFINE_FRONTS = ("Rescaling", "Normalization")


def input_front(model: Any, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """The affine map ``x -> x * scale + offset`` that ``model``'s leading ``Rescaling``
    and ``Normalization`` layers apply to its raw input (composed, in order; looking into
    nested models and past layers that do nothing in inference), as float64 arrays that
    broadcast against ``input_shape``: scale 1 and offset 0 where the model starts with
    anything else. None where it cannot be read: arithmetic on the input tensor
    (``preprocess_input`` inside the model), an inverting ``Normalization``, a zero scale.

    A pirate can republish a copy with its own input scaling in front (raw 0-255 pixels
    where the owner took 0-1), or strip the owner's; tafa_tf.asking undoes the difference
    between the owner's front (recorded in the fingerprint) and a Keras suspect's."""
    scale, offset = np.ones(()), np.zeros(())
    for layer in _front_layers(model):
        name = type(layer).__name__
        if name not in AFFINE_FRONTS:
            if _is_arithmetic(layer):
                return None
            break
        if name == "Rescaling":
            s, o = np.asarray(layer.scale, "float64"), np.asarray(layer.offset, "float64")
        elif getattr(layer, "invert", False) or getattr(layer, "mean", None) is None:
            return None
        else:
            mean, std = _moments(layer, len(input_shape), "float64")
            s = 1.0 / std
            o = -mean * s
        if not np.all(np.isfinite(s)) or np.any(s == 0) or not np.all(np.isfinite(o)):
            return None
        scale, offset = scale * s, offset * s + o
    try:
        np.broadcast_shapes(scale.shape, offset.shape, tuple(input_shape))
    except ValueError:
        return None
    return scale, offset


def _front_layers(model: Any) -> list[Any]:
    """``model``'s leading affine front layers (:data:`AFFINE_FRONTS`) in order, then the
    first computing layer or operation after them, if any."""
    import keras

    from tafa_tf.introspection import inference_identity

    found: list[Any] = []

    def walk(m: Any) -> bool:  # True once a layer that is not an affine front is found
        # a Functional model's operations hold, beside its layers, the arithmetic on tensors
        # (keras.applications' preprocess_input: x / 127.5 - 1), in the order they run
        for layer in getattr(m, "operations", None) or getattr(m, "layers", []):
            if type(layer).__name__ in ("InputLayer", "Dropout", "GaussianNoise", "GaussianDropout") or inference_identity(layer):
                continue
            if isinstance(layer, keras.Model):
                if walk(layer):
                    return True
                continue
            found.append(layer)
            if type(layer).__name__ not in AFFINE_FRONTS:
                return True
        return False

    walk(model)
    return found


def as_domain(value: Any) -> Domain:
    """Accept a Domain, or a (low, high) pair meaning a Box."""
    if isinstance(value, Domain):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Box(value[0], value[1])
    raise DomainError(
        "domain must be a tafa.domains.Box, a tafa.domains.Gaussian or a (low, high) pair. "
        f"Received: domain={value!r}"
    )
