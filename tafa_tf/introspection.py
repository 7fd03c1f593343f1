"""Find the ReLU-family units of a Keras model and expose their pre-activations.

A network of affine layers and ReLU units is piecewise affine; its bends lie where a
unit's pre-activation crosses one of its breakpoints (0 for ReLU and LeakyReLU, 0 and
6 for ReLU6). ``ReluNetwork`` runs the model once and returns, beside its output,
every unit's distance to its breakpoints, in one forward pass that tf.GradientTape
can differentiate.

Which layers are ReLU sites is a registry (``relu_breakpoints``): fused
``activation=`` arguments of Dense/Conv layers, ``ReLU``, ``LeakyReLU`` and
``Activation`` layers. Sequential and Functional models are walked, nested ones too;
a subclassed model's call cannot be walked and is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tafa_tf.errors import UnsupportedModelError

# Layers that are affine or piecewise linear in their input at inference time.
PIECEWISE_LINEAR_LAYERS = frozenset(
    {
        "InputLayer", "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
        "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
        "SeparableConv1D", "SeparableConv2D", "BatchNormalization", "Dropout", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "Flatten", "Reshape", "Permute", "RepeatVector", "Cropping1D", "Cropping2D", "Cropping3D",
        "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "UpSampling1D", "UpSampling2D",
        "UpSampling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
        "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
        "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "GlobalAveragePooling3D", "Add", "Subtract", "Average", "Maximum", "Minimum",
        "Concatenate", "Rescaling", "Normalization", "Identity", "ActivityRegularization",
        "ReLU", "LeakyReLU", "PReLU",
    }
)
# Layers that only move values about (or drop them in training): an output activation
# before them is still the model's output squash.
SHAPE_ONLY_LAYERS = frozenset({
    "Reshape", "Flatten", "Permute", "Identity", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
})
# Keras's own internal layers that are affine, named with their module: a user's layer of
# the same class name is not trusted to be. InceptionResNetV2 scales each residual branch
# with CustomScaleLayer (inputs[0] + inputs[1] * scale).
AFFINE_KERAS_INTERNALS = frozenset({"keras.src.applications.inception_resnet_v2.CustomScaleLayer"})
# Keras's own augmentation layers (RandomFlip, RandomRotation, RandomZoom, RandomCrop, MixUp,
# ...) change their input only in training: in inference, where a fingerprint asks, they pass
# it through (RandomCrop crops the centre). Trusted by their Keras module, as above.
_AUGMENTATIONS = ("MixUp", "CutMix", "AugMix", "RandAugment")


def inference_identity(layer: Any) -> bool:
    """Whether ``layer`` is one of Keras's data augmentation layers (linear in inference)."""
    name = type(layer).__name__
    return type(layer).__module__.startswith("keras.src.layers.preprocessing") and (
        name.startswith("Random") or name in _AUGMENTATIONS)


PIECEWISE_LINEAR_ACTIVATIONS = frozenset({"linear", "relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_tanh"})
# Where each piecewise-linear activation bends (Keras 3: hard_sigmoid is relu6(x + 3) / 6,
# hard_tanh clips to [-1, 1]).
ACTIVATION_BREAKPOINTS = {
    "relu": (0.0,), "leaky_relu": (0.0,), "relu6": (0.0, 6.0),
    "hard_sigmoid": (-3.0, 3.0), "hard_tanh": (-1.0, 1.0),
}
# Monotone squashing at the very output keeps every bend where it was: allowed there.
OUTPUT_ACTIVATIONS = frozenset({"softmax", "sigmoid", "log_softmax", "tanh"})

_ACTIVATION_SWAP_LOCK = threading.RLock()


def step_layer(layer: Any) -> Any:
    """The layer a ``TimeDistributed`` wrapper applies at every time step; any other layer itself."""
    return layer.layer if type(layer).__name__ == "TimeDistributed" else layer


def leaf_paths(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``model``'s layers in order, those of nested models (and what a ``TimeDistributed``
    applies) in their place, each with its path of names ("backbone/conv1")."""
    import keras

    out = []
    for wrapper in model.layers:
        layer = step_layer(wrapper)
        path = prefix + (wrapper.name + "/" if layer is not wrapper else "") + layer.name
        out.extend(leaf_paths(layer, path + "/") if isinstance(layer, keras.Model) else [(path, layer)])
    return out


def leaf_layers(model: Any) -> list[Any]:
    """``model``'s layers in order, as :func:`leaf_paths` walks them."""
    return [layer for _, layer in leaf_paths(model)]


LOW_PRECISION = ("float16", "bfloat16")
_TWIN_ATTR = "_tafa_float32_twin"


def low_precision(model: Any) -> list[str]:
    """The 16-bit float types ``model``'s layers compute in (a mixed or half precision
    dtype policy), sorted; empty where every layer computes in float32 or wider."""
    return sorted({str(getattr(layer, "compute_dtype", "float32")) for layer in leaf_layers(model)} & set(LOW_PRECISION))


def full_precision(model: Any) -> Any:
    """``model`` where every layer computes in float32 or wider; else its float32 twin:
    the same layers and weights under a float32 dtype policy.

    A model trained or served in mixed or half precision rounds every layer's output to
    8 (bfloat16) or 11 (float16) bits, far coarser than the steps across which a
    fingerprint reads its bends. Measured on a digits MLP under ``mixed_bfloat16``: a
    fine-tuned copy of such an owner scored 0.14, "not pirated" (0.73 for the same
    fine-tune in float32), and a suspect served in half precision was read on its labels
    only. The weights are the model; computed exactly, both read as in float32. The twin
    is kept on the model (a plain attribute, as the synthesis engine is) and takes the
    model's current weights at every call. A model that cannot be cloned (subclassed)
    is returned as it is."""
    import keras

    if not isinstance(model, keras.Model) or not low_precision(model):
        return model
    twin = model.__dict__.get(_TWIN_ATTR)
    if twin is None:
        def in_float32(layer: Any) -> Any:
            return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

        try:
            twin = keras.models.clone_model(model, clone_function=in_float32, recursive=True)
        except Exception:  # noqa: BLE001 - not clonable: the model as it is
            return model
        object.__setattr__(model, _TWIN_ATTR, twin)  # plain attribute: not tracked or saved by Keras
    twin.set_weights([np.asarray(w, dtype=v.dtype) for w, v in zip(model.get_weights(), twin.weights)])
    return twin


def state_weights(model: Any) -> list[bool]:
    """Per entry of ``model.weights`` (the order of ``get_weights()``), whether it is a
    layer's state rather than a parameter: a variable its layer made non-trainable from
    the start, such as BatchNormalization's moving mean and variance or Normalization's
    statistics. Freezing a layer (``trainable = False``) does not make its kernel state."""
    state = set()
    for layer in leaf_layers(model):
        # Keras 3 files the variables a layer creates with trainable=False here, whatever
        # its ``trainable`` flag is later; the public moving statistics as a fallback.
        made = list(getattr(layer, "_non_trainable_variables", None) or [])
        made += [getattr(layer, name, None) for name in ("moving_mean", "moving_variance")]
        state.update(id(v) for v in made if v is not None)
    return [id(v) in state for v in model.weights]


def kernel_layers(model: Any) -> list[Any]:
    """The leaf layers with a ``kernel`` (Dense, Conv...), in order: the last is the output layer."""
    return [layer for layer in leaf_layers(model) if getattr(layer, "kernel", None) is not None]


def activation_name(fn: Any) -> str:
    """The lower-case name of an activation function ("linear" for None)."""
    if fn is None:
        return "linear"
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name).lower()


def output_squash(layer: Any) -> str:
    """The name of the activation ``layer`` applies last: its ``activation``'s, "softmax" for
    a ``keras.layers.Softmax`` over the last axis, "linear" for a layer without one."""
    if type(layer).__name__ == "Softmax":
        axis = getattr(layer, "axis", -1)
        return "softmax" if axis in (-1, [-1], (-1,)) else f"softmax over axis {axis}"
    return activation_name(getattr(layer, "activation", None)) if hasattr(layer, "activation") else "linear"


def relu_breakpoints(layer: Any) -> tuple[str, tuple[float, ...]] | None:
    """How a layer bends: ("fused"|"layer", breakpoints) for a ReLU site, else None.

    "fused" means the layer computes act(affine(x)) and its pre-activation is the
    affine part; "layer" means the layer's input is the pre-activation.
    """
    cls = type(layer).__name__
    if cls == "ReLU":
        points = [float(getattr(layer, "threshold", 0.0) or 0.0)]
        max_value = getattr(layer, "max_value", None)
        if max_value is not None:
            points.append(float(max_value))
        return "layer", tuple(points)
    if cls in ("LeakyReLU", "PReLU"):
        return "layer", (0.0,)
    act = activation_name(getattr(layer, "activation", None))
    points = ACTIVATION_BREAKPOINTS.get(act)
    if points is None:
        return None
    return ("layer" if cls == "Activation" else "fused"), points


@dataclass(frozen=True)
class ReluSite:
    """One layer's worth of ReLU units."""

    name: str  # path of the layer, nested models joined by "/"
    layer_class: str
    mode: str  # "fused" or "layer"
    breakpoints: tuple[float, ...]
    shape: tuple[int, ...]  # per-input shape of the pre-activation
    offset: int  # first column of this site in the stacked coordinates

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) * len(self.breakpoints)


@dataclass(frozen=True)
class Coverage:
    """What the model has, and what in it is not piecewise linear."""

    sites: tuple[ReluSite, ...]
    non_piecewise_linear: tuple[str, ...]  # "path (Class, activation)" of offending layers
    output_activation: str
    n_units: int

    @property
    def complete(self) -> bool:
        return not self.non_piecewise_linear

    def summary(self) -> str:
        lines = [f"{len(self.sites)} ReLU sites, {self.n_units} units (breakpoints counted once each)"]
        for s in self.sites:
            lines.append(
                f"  {s.name:<32} {s.layer_class:<16} {s.mode:<5} shape={s.shape} breakpoints={list(s.breakpoints)}"
            )
        if self.output_activation != "linear":
            lines.append(f"output activation: {self.output_activation} (monotone, allowed at the output)")
        if self.non_piecewise_linear:
            lines.append("not piecewise linear (bends there are not fingerprinted): " + count_kinds(self.non_piecewise_linear))
            lines.extend(f"  {entry}" for entry in self.non_piecewise_linear)
        else:
            lines.append("coverage: complete (every layer is piecewise linear)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sites": [
                {"name": s.name, "class": s.layer_class, "mode": s.mode, "shape": list(s.shape),
                 "breakpoints": list(s.breakpoints), "units": s.size}
                for s in self.sites
            ],
            "n_units": self.n_units,
            "output_activation": self.output_activation,
            "non_piecewise_linear": list(self.non_piecewise_linear),
            "complete": self.complete,
        }


def count_kinds(offenders: tuple[str, ...]) -> str:
    """``Coverage.non_piecewise_linear`` in a few words: "81 layers (65 silu, 16 sigmoid)".

    A deep model can have a hundred such layers; errors name their kinds, and
    ``tafa inspect`` (``Coverage.summary``) lists each one.
    """
    kinds = Counter(entry.rpartition(" (")[2].rstrip(")").split(", ")[-1].removeprefix("activation=")
                    for entry in offenders)
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    return f"{len(offenders)} layer{'s' if len(offenders) != 1 else ''} ({counts})"


def _qualified(layer: Any) -> str:
    return f"{type(layer).__module__}.{type(layer).__qualname__}"


def _is_sequential(model: Any) -> bool:
    return type(model).__name__ == "Sequential" or any(c.__name__ == "Sequential" for c in type(model).__mro__)


def _is_functional(model: Any) -> bool:
    return hasattr(model, "_nodes_by_depth") and hasattr(model, "_run_through_graph") and not _is_sequential(model)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


@contextlib.contextmanager
def _linear_activation(layer: Any):
    """Run a fused layer without its activation (its affine part only)."""
    import keras

    with _ACTIVATION_SWAP_LOCK:
        saved = layer.activation
        layer.activation = keras.activations.linear
        try:
            yield saved
        finally:
            layer.activation = saved


_LOOKUPS = ("Embedding", "IntegerLookup", "StringLookup", "Hashing", "CategoryEncoding", "TextVectorization")


def _integer_inputs(model: Any, dtype: str) -> UnsupportedModelError:
    """The refusal of a model taking integer inputs: tokens into a lookup, or integer pixels."""
    lookups = sorted({type(layer).__name__ for layer in leaf_layers(model)} & set(_LOOKUPS))
    if lookups:
        return UnsupportedModelError(
            f"The model takes integer inputs (tokens into {', '.join(lookups)}): its boundaries cannot be "
            "reached by moving the input continuously. Fingerprint the sub-model after the "
            f"embedding instead. Received: input dtype {dtype}"
        )
    return UnsupportedModelError(
        f"The model takes {dtype} inputs (integer pixels?), which a fingerprint cannot move by less than 1, "
        "and no embedding or lookup: its layers take floats. Rebuild it on a float input of the same shape, "
        "e.g. `keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers])` for a Sequential, "
        f"and fingerprint (and verify) that. Received: input dtype {dtype} in {model.name!r}"
    )


class ReluNetwork:
    """A Keras model viewed as a piecewise-affine network.

    ``net(x)`` returns ``(outputs, coords)`` where ``coords`` has shape
    ``(batch, n_units)``: each column is one unit's pre-activation minus one of its
    breakpoints, so the column crosses zero exactly where the network bends.

    Args:
        model: a built Sequential or Functional keras.Model (nested ones allowed),
            with one input and one output.

    Raises:
        UnsupportedModelError: for a model that is not a keras.Model, is subclassed,
            has several inputs or outputs, takes integer inputs, or has no ReLU unit.
    """

    def __init__(self, model: Any):
        import keras

        if not isinstance(model, keras.Model):
            raise UnsupportedModelError(
                "fingerprint() needs a keras.Model (Sequential or Functional). "
                f"Received: model of type {type(model).__name__}"
            )
        if not (_is_sequential(model) or _is_functional(model)):
            raise UnsupportedModelError(
                "Cannot find the ReLU units of a subclassed keras.Model: its call() is Python code "
                "that cannot be walked. Rebuild it as a Sequential or Functional model (the same "
                f"layers, called on keras.Input). Received: {type(model).__name__} named {model.name!r}"
            )
        inputs = getattr(model, "inputs", None)
        outputs = getattr(model, "outputs", None)
        if not inputs:
            raise UnsupportedModelError(
                f"The model has no known input shape; build it first (keras.Input or model.build). Received: {model.name!r}"
            )
        if len(inputs) != 1 or len(outputs) != 1:
            raise UnsupportedModelError(
                "Only models with one input and one output can be fingerprinted. "
                f"Received: {len(inputs)} inputs and {len(outputs)} outputs in {model.name!r}. "
                + ("Fingerprint the output that does the task, keras.Model(model.inputs, model.outputs[k]); "
                   "verify finds it among a suspect's outputs." if len(inputs) == 1 else
                   "Fingerprint a model of one input: the inputs concatenated, split inside by layers.")
            )
        dtype = str(inputs[0].dtype)
        if "int" in dtype or "bool" in dtype:
            raise _integer_inputs(model, dtype)
        self.model = model
        for what, tensor in (("input", inputs[0]), ("output", outputs[0])):
            if any(d is None or d <= 0 for d in tensor.shape[1:]):
                raise UnsupportedModelError(
                    f"The model's {what} shape must be fully known: a fingerprint asks the model at "
                    "fixed inputs. Fix the free dimensions at the size the model is used at, "
                    "e.g. `x = keras.Input((64, 1)); fixed = keras.Model(x, model(x))`, and "
                    f"fingerprint (and verify) that. Received: {what} shape {tuple(tensor.shape)} "
                    f"in {model.name!r}"
                )
        self.input_shape = tuple(int(d) for d in inputs[0].shape[1:])
        self.output_shape = tuple(int(d) for d in outputs[0].shape[1:])
        self.sites: tuple[ReluSite, ...] = ()
        self._discover()

    # -- walking -----------------------------------------------------------------------------

    def _run(self, model: Any, x: Any, record: Callable[[str, Any, Any, tuple], None], prefix: str,
             skip: Any = None, observe: Callable[[Any, Any], None] | None = None) -> Any:
        """``model`` on ``x``, each ReLU site's pre-activation given to ``record``; the layer
        ``skip`` (if any) passes its input through unchanged; ``observe(layer, input)``, if
        given, sees every leaf layer's first input."""
        if _is_sequential(model):
            for layer in model.layers:
                x = self._call_layer(layer, x, record=record, prefix=prefix, skip=skip, observe=observe)
            return x
        if _is_functional(model):
            return model._run_through_graph(
                x, operation_fn=lambda op: self._wrap(op, record, prefix, skip, observe)
            )
        raise UnsupportedModelError(
            f"Nested subclassed model {prefix}{model.name!r} cannot be walked; rebuild it as Functional."
        )

    def _wrap(self, layer: Any, record: Callable, prefix: str, skip: Any, observe: Callable | None) -> Callable:
        return lambda *args, **kwargs: self._call_layer(layer, *args, record=record, prefix=prefix, skip=skip,
                                                        observe=observe, **kwargs)

    def _call_layer(self, layer: Any, *args: Any, record: Callable, prefix: str, skip: Any = None,
                    observe: Callable | None = None, **kwargs: Any) -> Any:
        name = prefix + layer.name
        if layer is skip:
            return args[0]
        if step_layer(layer) is not layer:
            return self._every_step(layer, args[0], record, name + "/", skip, observe)
        if _is_model(layer):
            if len(args) != 1 or kwargs.get("mask") is not None:
                raise UnsupportedModelError(f"Nested model {name!r} must take one input.")
            return self._run(layer, args[0], record, name + "/", skip, observe)
        if observe is not None:
            observe(layer, args[0])
        if getattr(layer, "_call_has_training_arg", False):
            kwargs["training"] = False  # inference: augmentation and dropout off, BatchNormalization's statistics
        kind = relu_breakpoints(layer)
        if kind is None:
            return layer(*args, **kwargs)
        mode, points = kind
        if mode == "fused":
            with _linear_activation(layer) as activation:
                z = layer(*args, **kwargs)
            record(name, layer, z, points, mode)
            return activation(z)
        record(name, layer, args[0], points, mode)
        return layer(*args, **kwargs)

    def _every_step(self, wrapper: Any, x: Any, record: Callable, prefix: str, skip: Any,
                    observe: Callable | None) -> Any:
        """A ``TimeDistributed`` layer: its layer on the time steps folded into the batch, the
        pre-activations recorded unfolded again, so each row stays one input's."""
        import tensorflow as tf

        steps = int(x.shape[1])
        unfold = lambda t: tf.reshape(t, (-1, steps, *t.shape[1:]))  # noqa: E731
        y = self._call_layer(wrapper.layer, tf.reshape(x, (-1, *x.shape[2:])), prefix=prefix, skip=skip,
                             observe=observe, record=lambda n, lay, z, pts, mode: record(n, lay, unfold(z), pts, mode))
        return unfold(y)

    # -- discovery ---------------------------------------------------------------------------

    def _discover(self) -> None:
        import keras

        found: list[tuple[str, Any, tuple[int, ...], tuple[float, ...], str]] = []

        def record(name, layer, z, points, mode):
            found.append((name, layer, tuple(int(d) for d in z.shape[1:]), points, mode))

        probe = np.zeros((1, *self.input_shape), dtype="float32")
        self._run(self.model, keras.ops.convert_to_tensor(probe), record, "")
        sites = []
        offset = 0
        for name, layer, shape, points, mode in found:
            site = ReluSite(name, type(layer).__name__, mode, points, shape, offset)
            sites.append(site)
            offset += site.size
        self.sites = tuple(sites)
        self.n_units = offset
        self.coverage = self._coverage()
        if not self.sites:
            gaps = self.coverage.non_piecewise_linear
            error = UnsupportedModelError(
                "The model has no ReLU-family unit (ReLU, relu6, LeakyReLU, hard_sigmoid, hard_tanh, "
                "or activation='relu' in a Dense/Conv layer), so it has no activation boundaries to fingerprint. "
                f"Received: {self.model.name!r} with layers "
                f"{[type(l).__name__ for l in self.model.layers][:12]}"
                + (f"; not piecewise linear: {count_kinds(gaps)}, listed by `tafa inspect`" if gaps else "")
            )
            error.coverage = self.coverage  # what `tafa inspect` prints before the error
            raise error

    def _coverage(self) -> Coverage:
        offenders: list[str] = []
        leaves = leaf_paths(self.model)
        output_activation = "linear"
        computing = [i for i, (_, layer) in enumerate(leaves) if type(layer).__name__ not in SHAPE_ONLY_LAYERS]
        last = computing[-1] if computing else len(leaves) - 1  # past a trailing Reshape or Flatten
        for i, (path, layer) in enumerate(leaves):
            cls = type(layer).__name__
            act = output_squash(layer)
            is_last = i == last
            if is_last and act in OUTPUT_ACTIVATIONS:
                output_activation = act
                if cls in PIECEWISE_LINEAR_LAYERS or cls in ("Activation", "Softmax"):
                    continue
            if cls == "Activation":
                if act not in PIECEWISE_LINEAR_ACTIVATIONS:
                    offenders.append(f"{path} (Activation, {act})")
                continue
            if (cls not in PIECEWISE_LINEAR_LAYERS and _qualified(layer) not in AFFINE_KERAS_INTERNALS
                    and not inference_identity(layer)):
                offenders.append(f"{path} ({cls})")
            elif act not in PIECEWISE_LINEAR_ACTIVATIONS:
                offenders.append(f"{path} ({cls}, activation={act})")
        return Coverage(self.sites, tuple(offenders), output_activation, self.n_units)

    # -- forward -----------------------------------------------------------------------------

    def __call__(self, x: Any) -> tuple[Any, Any]:
        """(outputs, coords) for a batch ``x``; differentiable with tf.GradientTape."""
        import tensorflow as tf

        raw: list[tuple[Any, tuple[float, ...]]] = []
        out = self._run(self.model, x, lambda name, layer, z, points, mode: raw.append((z, points)), "")
        out = tf.reshape(tf.cast(out, tf.float32), (tf.shape(out)[0], -1))
        return out, tf.concat([flat for flat, _, _ in column_pieces(raw)], axis=1)

    def observed(self, x: Any, observe: Callable[[Any, Any], None]) -> Any:
        """The model's outputs on ``x`` in inference mode, ``observe(layer, input)`` called
        with every leaf layer (nested models walked) and its first input; differentiable."""
        return self._run(self.model, x, lambda *_: None, "", observe=observe)

    def site_of_unit(self) -> np.ndarray:
        """For each coordinate column, the index of its site (spreads targets over layers)."""
        return np.concatenate([np.full(s.size, i, dtype="int32") for i, s in enumerate(self.sites)])


def column_pieces(raw: list[tuple[Any, tuple[float, ...]]], shift: bool = True):
    """The coordinate columns of ``raw`` (each site's pre-activation tensor and its
    breakpoints, in the order ``ReluNetwork._run`` records them), one piece per site and
    breakpoint, in column order: (its columns as a (batch, size) tensor, less the
    breakpoint unless not ``shift``; the first column's index; size)."""
    import tensorflow as tf

    offset = 0
    for z, points in raw:
        size = int(np.prod(z.shape[1:]))
        flat = tf.reshape(tf.cast(z, tf.float32), (-1, size))
        for p in points:
            yield (flat - p if p and shift else flat), offset, size
            offset += size


def inspect_model(model: Any) -> Coverage:
    """The ReLU sites and the coverage report of a model (see ``ReluNetwork``)."""
    return ReluNetwork(model).coverage


__all__ = ["ReluNetwork", "ReluSite", "Coverage", "inspect_model", "relu_breakpoints", "leaf_layers", "leaf_paths",
           "kernel_layers", "step_layer"]
