"""Asking a suspect: fitting the queries to the inputs it takes, and reading what it answers.

A pirate can republish a model behind a trivial wrapper that costs it nothing: inputs
flattened, or channels first where the owner's came last; the answer wrapped in a
dict or a tuple, or beside a second output. None of that changes the function, so
none of it should stop a verification. :func:`ask` undoes what can be undone without
guessing (the same number of input values in another layout; outputs named or listed)
and says what it did; anything else is refused with a message that says what the
suspect takes or gives.

A Keras suspect re-exported at another image size (a fully convolutional network with
global pooling takes any size) is rebuilt at the fingerprint's size with its own weights
(:func:`at_input_shape`): the same function the file holds, asked where the owner's
points are. One whose layers need its own size (a Flatten before a Dense) is refused.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tafa_tf.errors import SuspectError, SuspectShapeError, SuspectTimeoutError
from tafa_tf.introspection import full_precision
from tafa_tf.outputs import inference_batch_size, inference_call
from tafa_tf.record import Fingerprint


@dataclass
class Asked:
    """A suspect's answers: one array per output that fits the owner's, and how they were asked."""

    outputs: list[tuple[str, np.ndarray]]  # (name, answers with one row per query)
    notes: list[str] = field(default_factory=list)


def expected_input_shape(suspect: Any) -> tuple[int, ...] | None:
    """The input shape a suspect declares (no batch axis), if it declares a fixed one."""
    shape = None
    inputs = getattr(suspect, "inputs", None)
    if inputs and len(inputs) == 1 and getattr(inputs[0], "shape", None) is not None:
        shape = tuple(inputs[0].shape[1:])
    elif getattr(suspect, "input_shape", None) is not None and not callable(suspect.input_shape):
        shape = tuple(suspect.input_shape)
        shape = shape[1:] if len(shape) and shape[0] is None else shape
    if shape is None or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)


def input_layout(owner: tuple[int, ...], suspect: tuple[int, ...]) -> tuple[str, Callable[[np.ndarray], np.ndarray]] | None:
    """How to give the owner's queries (shape ``owner``) to a suspect taking ``suspect``.

    The same values in another layout: channels moved from last to first (or back) for
    images, else the values in their row-major order (flattened, or reshaped). None when
    the suspect takes another number of values: that is another model, or the wrong
    fingerprint.
    """
    owner, suspect = tuple(owner), tuple(suspect)
    if int(np.prod(owner, dtype=np.int64)) != int(np.prod(suspect, dtype=np.int64)):
        return None
    if len(owner) == len(suspect) == 3 and owner[0] != owner[2]:
        if suspect == (owner[2], owner[0], owner[1]):
            return "channels first", lambda x: np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        if suspect == (owner[1], owner[2], owner[0]):
            return "channels last", lambda x: np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))
    return "reshaped in row-major order", lambda x: x.reshape((len(x),) + suspect)


def resizable(owner: tuple[int, ...], suspect: tuple[int, ...]) -> bool:
    """Whether a suspect taking inputs of shape ``suspect`` may take the owner's (``owner``)
    once rebuilt at their size (:func:`at_input_shape`): images or sequences of the same
    rank and channels (last axis), of another size."""
    owner, suspect = tuple(owner), tuple(suspect)
    return len(owner) == len(suspect) >= 2 and owner[-1] == suspect[-1] and owner != suspect


def could_take(owner: tuple[int, ...], suspect: tuple[int, ...]) -> bool:
    """Whether :func:`ask` may give the owner's queries (shape ``owner``) to a suspect taking
    ``suspect``: as they are, in another layout, or to the suspect rebuilt at their size
    (which only a Keras suspect can be, and not every one)."""
    return input_layout(owner, suspect) is not None or resizable(owner, suspect)  # the same shape is a layout


_RESIZED_ATTR = "_tafa_at_input_shape"


def at_input_shape(model: Any, shape: tuple[int, ...]) -> Any:
    """A Keras ``model`` rebuilt to take inputs of ``shape`` with its own weights, or None
    where its layers need the size it was built for.

    Every input layer of its configuration (nested models' too) declaring the model's
    own input shape declares ``shape`` instead; the layers are built anew on it (Keras
    safe mode: the configuration is the one the model was loaded from) and given the
    model's weights, which fit only where no weight depends on the input size. The result
    is kept on ``model`` (as :func:`tafa_tf.outputs.inference_call` keeps its traced
    functions), so a scan asking one suspect about several fingerprints rebuilds it once.
    """
    import keras

    shape = tuple(int(d) for d in shape)
    kept = getattr(model, "__dict__", {}).get(_RESIZED_ATTR, {})
    if shape in kept:
        return kept[shape]
    own = [None, *model.inputs[0].shape[1:]]

    def declare(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("build_config", None)  # built anew on the input, at its size
            if node.get("class_name") == "InputLayer" and list(node["config"].get("batch_shape") or []) == own:
                node["config"]["batch_shape"] = [None, *shape]
            if list(node.get("build_input_shape") or []) == own:
                node["build_input_shape"] = [None, *shape]
            for value in node.values():
                declare(value)
        elif isinstance(node, list):
            for value in node:
                declare(value)

    config = keras.saving.serialize_keras_object(model)
    declare(config)
    try:
        rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
        rebuilt.set_weights(model.get_weights())
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError):
        rebuilt = None  # a weight or a layer depends on the input size
    object.__setattr__(model, _RESIZED_ATTR, {**kept, shape: rebuilt})  # plain attribute: not tracked by Keras
    return rebuilt


def _resized(fp: Fingerprint, suspect: Any, expected: tuple[int, ...]) -> tuple[Any, str]:
    """``suspect`` (taking ``expected``) rebuilt at the fingerprint's input shape, and a note
    that says so; raises SuspectShapeError where it cannot be."""
    import keras

    ours = tuple(fp.input_shape)
    model = suspect if isinstance(suspect, keras.Model) else getattr(suspect, "model", None)
    tried = resizable(ours, expected) and isinstance(model, keras.Model) and len(model.inputs or ()) == 1
    rebuilt = at_input_shape(model, ours) if tried else None
    if rebuilt is None:
        why = " Its layers need that size (rebuilt at the fingerprint's, its weights no longer fit)." if tried else ""
        raise SuspectShapeError(
            f"The suspect takes inputs of shape {expected}, but the fingerprint was made for "
            f"{ours}.{why} Check that you picked the right fingerprint for this model."
        )
    return rebuilt, (f"The suspect takes inputs of shape {expected}, the fingerprint's are {ours}: its layers "
                     "take either size, so it was rebuilt at the fingerprint's with its own weights.")


def output_list(y: Any, rows: int) -> list[tuple[str, Any]]:
    """A suspect's answer as named outputs: a dict's entries, or a tuple/list of arrays with
    one row per input each; anything else is one output (a list of rows among them)."""
    if isinstance(y, dict):
        return [(str(k), v) for k, v in y.items()]
    if isinstance(y, (list, tuple)) and y and all(
        getattr(v, "shape", None) is not None and len(v.shape) >= 1 and v.shape[0] == rows for v in y
    ):
        return [(str(i), v) for i, v in enumerate(y)]
    return [("", y)]


def batched_outputs(call: Callable[[np.ndarray], Any], x: np.ndarray, size: int) -> list[tuple[str, np.ndarray]]:
    """``call`` on ``x`` in batches of ``size``, each answer read as named outputs
    (:func:`output_list`) and joined batch after batch: one array per output."""
    parts = [output_list(call(x[i : i + size]), len(x[i : i + size])) for i in range(0, len(x), size)]
    return [(name, np.concatenate([np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in
                                   (p[k][1] for p in parts)], axis=0)) for k, (name, _) in enumerate(parts[0])]


def _keras_outputs(model: Any, x: np.ndarray, batch_size: int | None) -> list[tuple[str, np.ndarray]]:
    """A Keras model's outputs at ``x`` in inference mode, batch by batch, one array per output."""
    size = batch_size if batch_size is not None else inference_batch_size(np.shape(x)[1:])
    return batched_outputs(inference_call(model, int(np.size(x))), x, size)


def _as_callable(suspect: Any, batch_size: int | None) -> Callable[[np.ndarray], Any]:
    import keras

    if isinstance(suspect, keras.Model):
        model = full_precision(suspect)  # a mixed or half precision model computed exactly
        return lambda x: _keras_outputs(model, x, batch_size)
    if callable(suspect):
        return lambda x: output_list(suspect(x), len(x))
    raise SuspectError(
        "A suspect must be a keras.Model or a callable taking a numpy batch and returning a numpy batch. "
        f"Received: {type(suspect).__name__}"
    )


def _call(call: Callable[[np.ndarray], Any], x: np.ndarray, timeout: float | None) -> Any:
    try:
        if timeout is None:
            return call(x)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tafa-suspect")
        try:
            return pool.submit(call, x).result(timeout=timeout)
        except concurrent.futures.TimeoutError as e:
            raise SuspectTimeoutError(
                f"The suspect did not answer {len(x)} queries within timeout={timeout} s. "
                "Raise the timeout for slow models."
            ) from e
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    except SuspectError:
        raise
    except Exception as e:
        raise SuspectError(
            f"The suspect raised {type(e).__name__} when asked about a batch of shape {x.shape}: {e}"
        ) from e


def _numeric(name: str, y: Any, rows: int) -> np.ndarray:
    what, who = (f"output '{name}'", f"'s output '{name}'") if name else ("answer", "")
    try:
        y = np.asarray(y, dtype="float64")
    except (TypeError, ValueError) as e:
        raise SuspectError(
            f"The suspect's {what} is not a numeric array. Received: {type(y).__name__}. "
            "Return one array (or tensor) with a row per input."
        ) from e
    if y.ndim == 0 or len(y) != rows:
        raise SuspectShapeError(
            f"The suspect{who} answered {0 if y.ndim == 0 else len(y)} rows for {rows} inputs. "
            f"Received output shape {y.shape}."
        )
    return y


def _readings(fp: Fingerprint, name: str, y: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One output's answers as they can be read against the owner's: as they are, a row
    per input, and, for a feature map of another width than the owner's answers (rows of
    shape (H, W, C) or (T, C)) where the fingerprint keeps the owner's penultimate
    features, pooled over its positions by their mean and by their max, as a global
    pooling head reads it. The owner's backbone published as a feature extractor
    (``include_top=False`` without pooling, keras.applications' default) answers the
    very maps the owner's head pooled; read flat, an affine map of the owner's features
    explained them no better than an independent model's (R^2 -1.97 against -2.11 on a
    digits CNN)."""
    flat = y.reshape(len(y), -1) if y.ndim > 1 else y
    if y.ndim < 3 or fp.features is None or flat.shape[1] == int(np.prod(fp.output_shape, dtype=np.int64)):
        return [(name, flat)]
    axes = tuple(range(1, y.ndim - 1))
    what = f"'{name}'" if name else "output"
    return [(f"{what} as it is", flat), (f"{what} as its mean over positions", y.mean(axis=axes)),
            (f"{what} as its max over positions", y.max(axis=axes))]


def _fitting(fp: Fingerprint, outputs: list[tuple[str, np.ndarray]]) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """The outputs that answer as the owner's does (its width; or labels for a classifier)."""
    if len(outputs) == 1:
        return outputs, []
    width = int(np.prod(fp.output_shape, dtype=np.int64))
    per_row = [1 if y.ndim == 1 else y.shape[1] for _, y in outputs]
    keep = [o for o, w in zip(outputs, per_row) if w == width]
    if not keep and fp.task == "classification":
        keep = [o for o, w in zip(outputs, per_row) if w == 1]  # labels only
    if not keep and fp.features is not None:
        return outputs, [f"None of the suspect's {len(outputs)} readings answers {width} values per input, as the "
                         "owner's model does: each was read as the owner's network under a new output layer, and "
                         "the closest was scored."]
    if not keep:
        shapes = ", ".join(f"'{name}': {w}" for (name, _), w in zip(outputs, per_row))
        raise SuspectShapeError(
            f"None of the suspect's {len(outputs)} outputs answers {width} values per input, as the "
            f"owner's model does (values per input: {shapes}). Verify the output that does the owner's task."
        )
    names = ", ".join(f"'{name}'" for name, _ in keep)
    return keep, [f"The suspect has {len(outputs)} outputs; {names} answer(s) like the owner's and "
                  f"{'was' if len(keep) == 1 else 'were'} scored."]


def _fronts(fp: Fingerprint, suspect: Any, expected: tuple[int, ...] | None) -> tuple[np.ndarray, ...] | None:
    """The owner's input front (scale, offset; recorded in the fingerprint) and a Keras
    suspect's (:func:`tafa_tf.domains.input_front`), or None where either is unknown (a
    black box, a fingerprint older than this record, arithmetic on the input)."""
    import keras

    from tafa_tf.domains import input_front

    recorded = fp.owner.get("input_front")
    model = suspect if isinstance(suspect, keras.Model) else getattr(suspect, "model", None)
    if not isinstance(recorded, dict) or not isinstance(model, keras.Model):
        return None
    theirs = input_front(model, expected if expected is not None else tuple(fp.input_shape))
    if theirs is None:
        return None
    return (np.asarray(recorded["scale"], "float64"), np.asarray(recorded["offset"], "float64"), *theirs)


def ask(fp: Fingerprint, suspect: Any, x: np.ndarray, *, batch_size: int | None = None,
        timeout: float | None = None) -> Asked:
    """Ask ``suspect`` about ``x`` (inputs shaped as the fingerprint's): its outputs that fit
    the owner's, each a float array with one row per input, and notes on how it was asked.

    Raises:
        SuspectShapeError: the suspect takes another number of input values (and is not a
            Keras model that can be rebuilt at the fingerprint's input size), or none of its
            outputs fits, or it answers another number of rows.
        SuspectTimeoutError: no answer within ``timeout`` seconds.
        SuspectError: the suspect raised, or answered something that is not an array.
    """
    notes = []
    expected = expected_input_shape(suspect)
    ours = tuple(fp.input_shape)
    layout = input_layout(ours, expected) if expected not in (None, ours) else None
    if expected not in (None, ours) and layout is None:
        suspect, note = _resized(fp, suspect, expected)
        expected = ours
        notes.append(note)
    fronts = _fronts(fp, suspect, expected)
    asked = x if fronts is None else x * fronts[0] + fronts[1]  # the owner's working inputs
    if layout is not None:
        how, move = layout
        x, asked = move(x), move(asked)
        notes.append(f"The suspect takes inputs of shape {expected}, the fingerprint's are {ours}: "
                     f"the same values were given {how}.")
    if fronts is not None:
        asked = ((asked - fronts[3]) / fronts[2]).astype(x.dtype)  # the suspect's raw inputs for them
        if not np.allclose(asked, x, rtol=1e-6, atol=1e-6 * (1.0 + float(np.max(np.abs(x), initial=0.0)))):
            x = asked
            notes.append("The suspect scales its inputs unlike the owner's model (a Rescaling or Normalization "
                         "in front): each query was given as the raw input its front maps onto the owner's.")
    raw = _call(_as_callable(suspect, batch_size), x, timeout)
    read = [reading for name, y in raw for reading in _readings(fp, name, _numeric(name, y, len(x)))]
    if len(read) > len(raw):
        maps = ", ".join(str(tuple(np.shape(y)[1:])) for _, y in raw if np.ndim(y) >= 3)
        notes.append(f"The suspect answers feature maps ({maps}): each was read as it is and pooled over its "
                     "positions (mean, max), as a global pooling head reads it.")
    outputs, said = _fitting(fp, read)
    return Asked(outputs, notes + said)


def query(fp: Fingerprint, suspect: Any, x: np.ndarray, *, batch_size: int | None = None,
          timeout: float | None = None) -> np.ndarray:
    """Ask ``suspect`` about ``x``; return its answers as a float array, one row per input.

    A suspect with several outputs that fit the owner's gives its first (``tafa.verify``
    scores each and keeps the closest to the owner).

    Raises:
        SuspectShapeError: the suspect's input or output does not fit the fingerprint.
        SuspectTimeoutError: no answer within ``timeout`` seconds.
        SuspectError: the suspect raised, or answered something that is not an array.
    """
    return ask(fp, suspect, x, batch_size=batch_size, timeout=timeout).outputs[0][1]


__all__ = ["Asked", "ask", "query", "input_layout", "resizable", "could_take", "at_input_shape", "output_list",
           "batched_outputs", "expected_input_shape"]
