"""load_suspect: a Keras/TF model file, folder or Hub repository as a black box.

Every path goes through the same steps: find the model's files, check their total
size, run the static safety checks (see :mod:`adapters.safety`), then load with
Keras ``safe_mode`` on (unless ``trust_code=True``) or, for a SavedModel, through
its serving signature, or, for a TensorFlow Lite file, in an interpreter with built-in
operators only.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adapters.errors import ModelLoadError, NoModelError, UnsafeModelError, first_line
from adapters.formats import ModelLayout, find_model
from adapters.hub import fetch, is_hub_ref, parse_hub_ref
from adapters.safety import (
    check_keras_code,
    check_saved_model_ops,
    check_size,
    check_zip_expansion,
    run_modelscan,
    tflite_interpreter,
)
from adapters.suspect import DEFAULT_BATCH_SIZE, FileRecord, Suspect
from tafa_tf._backend import require_tensorflow_backend
from tafa_tf.introspection import full_precision

DEFAULT_MAX_BYTES = 2 * 1024**3
SERVING_SIGNATURE = "serving_default"


def load_suspect(
    ref: str | os.PathLike[str],
    *,
    trust_code: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    revision: str | None = None,
    token: str | None = None,
    modelscan: bool = True,
    filename: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    scan: bool | None = None,
) -> Suspect:
    """Load a suspect model as a callable ``numpy -> numpy`` with its provenance.

    Args:
        ref: a ``.keras`` file, a Keras folder (config.json + model.weights.h5), a
            full-model ``.h5`` file, a SavedModel folder, a TensorFlow Lite ``.tflite``
            file (float or quantized), a folder holding one of these, or
            ``hf://ORG/NAME[@REVISION]`` on the Hugging Face Hub.
        trust_code: accept layers that carry Python code (Lambda) and load with
            Keras ``safe_mode=False``. Only for models whose author you trust.
        max_bytes: the largest total size of the model's files (default 2 GiB),
            checked before download from the Hub's announced sizes and again on disk.
        revision: a branch, tag or commit sha for a Hub ref (overrides ``@REVISION``).
        token: a Hub token for private or gated repositories (default: HF_TOKEN).
        modelscan: run modelscan before loading (needs the ``tafa-tf[scan]`` extra).
            The built-in Lambda and unsafe-operator checks run regardless.
        filename: the model file or folder inside a folder or repository that holds
            several models.
        batch_size: the largest batch sent to the model in one call.
        progress: show download progress bars for Hub refs.
        scan: deprecated name of ``modelscan`` (it read as :func:`adapters.scan`,
            which verifies many suspects); warns.

    Returns:
        A Suspect: ``suspect(x)`` answers a float32 batch with a numpy array.

    Raises:
        ValueError: a malformed argument.
        FileNotFoundError: a local path does not exist.
        adapters.errors.NoModelError: no loadable model among the files.
        adapters.errors.UnsafeModelError: code or unsafe operators were found.
        adapters.errors.ModelTooLargeError: the files exceed ``max_bytes``.
        adapters.errors.ModelLoadError: the model is corrupt or cannot be queried.
        adapters.errors.RepoNotFoundError, RevisionNotFoundError, GatedRepoError,
            HubConnectionError: for Hub references.
        adapters.errors.MissingDependencyError: ``modelscan=True`` without modelscan.

    Examples:
        >>> suspect = load_suspect("hf://org/name@0123abcd")  # doctest: +SKIP
        >>> suspect(np.zeros((2, 64), "float32")).shape  # doctest: +SKIP
        (2, 10)
    """
    modelscan = _modelscan_option(modelscan, scan)
    for name, value in (("max_bytes", max_bytes), ("batch_size", batch_size)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
    require_tensorflow_backend()  # Keras loads the model: a clear error under JAX or PyTorch
    options: dict[str, Any] = {
        "trust_code": trust_code,
        "max_bytes": max_bytes,
        "modelscan": modelscan,
        "batch_size": batch_size,
    }
    if isinstance(ref, str) and is_hub_ref(ref):
        return load_hub(ref, revision=revision, token=token, filename=filename, progress=progress,
                        **options)
    if revision is not None:
        raise ValueError(
            f"revision= applies to hf:// references only. Received: ref={str(ref)!r}, "
            f"revision={revision!r}"
        )
    path = Path(ref).expanduser()
    base, layout = local_layout(path, filename=filename)
    return load_layout(base, layout, source=str(path), **options)


def _modelscan_option(modelscan: bool, scan: bool | None) -> bool:
    """The ``modelscan`` setting, honouring the deprecated ``scan=`` spelling."""
    if scan is None:
        return modelscan
    warnings.warn(
        "load_suspect(scan=...) is deprecated: pass modelscan=... (adapters.scan is the "
        f"function that verifies many suspects). Received: scan={scan!r}",
        DeprecationWarning,
        stacklevel=3,
    )
    if not modelscan and scan:
        raise ValueError(
            "scan= (deprecated) and modelscan= disagree; pass modelscan= only. "
            f"Received: scan={scan!r}, modelscan={modelscan!r}"
        )
    return bool(scan)


def load_hub(
    ref: str,
    *,
    revision: str | None,
    token: str | None,
    filename: str | None,
    progress: bool,
    **options: Any,
) -> Suspect:
    """Download (within ``max_bytes``) and load a ``hf://ORG/NAME[@REVISION]`` suspect.

    Args:
        ref: the Hub reference.
        revision, token, filename, progress: see :func:`load_suspect`.
        **options: ``trust_code``, ``max_bytes``, ``modelscan``, ``batch_size``: see
            :func:`load_layout`.

    Returns:
        The Suspect, with the resolved commit and the announced size in its provenance.
    """
    hub_ref = parse_hub_ref(ref)
    if revision is not None:
        hub_ref = type(hub_ref)(hub_ref.repo_id, revision)
    snapshot = fetch(
        hub_ref, max_bytes=options["max_bytes"], token=token, filename=filename, progress=progress
    )
    suspect = load_layout(snapshot.folder, snapshot.layout, source=str(hub_ref), **options)
    suspect.commit_sha = snapshot.commit_sha
    suspect.revision = hub_ref.revision
    suspect.scan_report["announced_bytes"] = snapshot.announced_bytes
    return suspect


def local_layout(path: Path, *, filename: str | None = None) -> tuple[Path, ModelLayout]:
    """Find the model at a local path.

    Args:
        path: a model file or a folder.
        filename: a file or folder inside ``path`` to choose among several models.

    Returns:
        ``(base, layout)``: the layout's paths are relative to ``base``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        NoModelError: no loadable model there.
    """
    if not path.exists():
        raise FileNotFoundError(
            f"No such model file or folder; pass an existing path or an hf:// reference. "
            f"Received: ref={str(path)!r}"
        )
    if path.is_file():
        layout = find_model([path.name], where=str(path.parent), filename=None)
        return path.parent, layout
    files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    return path, find_model(files, where=str(path), filename=filename)


def load_layout(
    base: Path,
    layout: ModelLayout,
    *,
    source: str,
    trust_code: bool,
    max_bytes: int,
    modelscan: bool,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Suspect:
    """Check and load the model that ``layout`` describes under ``base``.

    Args:
        base: the folder the layout's relative paths start from.
        layout: the model's format and files.
        source: the user's reference, for messages and metadata.
        trust_code: see :func:`load_suspect`.
        max_bytes: see :func:`load_suspect`.
        modelscan: see :func:`load_suspect`.
        batch_size: see :func:`load_suspect`.

    Returns:
        The Suspect.

    Raises:
        See :func:`load_suspect`.
    """
    root = base / layout.root if layout.root else base
    missing = [p for p in layout.files if not (base / p).is_file()]
    if missing:
        raise NoModelError(
            f"The model files of {source} are incomplete. Received: missing={missing}"
        )
    check_size(sum((base / p).stat().st_size for p in layout.files), max_bytes, source)
    report: dict[str, Any] = {"code_layers": []}
    interpreter = None
    if layout.format == "keras":
        check_zip_expansion(root, max_bytes)
    if layout.format == "saved_model":
        check_saved_model_ops(root)
    elif layout.format == "tflite":
        interpreter, report["tflite_runtime"] = tflite_interpreter(root, source)
    else:
        report["code_layers"] = check_keras_code(root, layout.format, trust_code=trust_code)
    if modelscan:
        report.update(run_modelscan(root, trust_code=trust_code))
    files = tuple(FileRecord.of(base / p, base) for p in layout.files)
    if layout.format == "saved_model":
        predict, model, in_shape, out_shape = _load_saved_model(root, source)
    elif layout.format == "tflite":
        predict, model, in_shape, out_shape = _load_tflite(interpreter, source)
    else:
        predict, model, in_shape, out_shape = _load_keras(root, source, trust_code=trust_code)
    return Suspect(
        predict=predict,
        source=source,
        format=layout.format,
        files=files,
        input_shape=in_shape,
        output_shape=out_shape,
        model=model,
        batch_size=batch_size,
        scan_report=report,
    )


Loaded = tuple[
    Callable[[np.ndarray], Any],
    Any,
    "tuple[int | None, ...] | None",
    "tuple[int | None, ...] | None",
]


def _load_keras(path: Path, source: str, *, trust_code: bool) -> Loaded:
    import keras

    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=not trust_code)
    except Exception as e:
        if "safe_mode" in str(e):
            raise UnsafeModelError(
                f"Keras refused to load {source} in safe mode because it carries Python "
                f"code. Pass trust_code=True only if you trust its author. Received: "
                f"{first_line(e)}"
            ) from e
        raise ModelLoadError(
            f"Could not load the Keras model {source} (corrupt, truncated, or it needs "
            f"custom objects). Received: {type(e).__name__}: {first_line(e)}"
        ) from e
    if len(model.inputs) != 1:
        raise ModelLoadError(
            "A suspect must take one input tensor (it may return several: tafa.verify scores "
            f"those that fit the owner's). Received: {len(model.inputs)} inputs in {source}"
        )

    model = full_precision(model)  # one saved in mixed or half precision, computed exactly

    def predict(x: np.ndarray) -> Any:
        return model(x, training=False)

    out_shape = _shape(model.outputs[0].shape) if len(model.outputs) == 1 else None
    return predict, model, _shape(model.inputs[0].shape), out_shape


def _load_saved_model(path: Path, source: str) -> Loaded:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise ModelLoadError(
            f"Could not load the SavedModel {source}. Received: {type(e).__name__}: {first_line(e)}"
        ) from e
    signatures = dict(loaded.signatures)
    if SERVING_SIGNATURE in signatures:
        fn = signatures[SERVING_SIGNATURE]
    elif len(signatures) == 1:
        fn = next(iter(signatures.values()))
    else:
        raise ModelLoadError(
            f"The SavedModel {source} has no {SERVING_SIGNATURE!r} signature to query. "
            f"Received: signatures={sorted(signatures)}"
        )
    inputs = fn.structured_input_signature[1]
    outputs = fn.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError(
            "A suspect's serving signature must take one tensor and return one tensor. "
            f"Received: inputs={sorted(inputs)}, outputs={sorted(outputs)} in {source}"
        )
    (in_name, in_spec), (out_name, out_spec) = (
        next(iter(inputs.items())),
        next(iter(outputs.items())),
    )

    def predict(x: np.ndarray) -> Any:
        # ``loaded`` is captured so the signature's variables stay alive.
        return fn(**{in_name: tf.constant(x, dtype=in_spec.dtype)})[out_name] if loaded else None

    return predict, None, _shape(in_spec.shape), _shape(out_spec.shape)


def _load_tflite(interpreter: Any, source: str) -> Loaded:
    """Query a checked TensorFlow Lite interpreter (:func:`adapters.safety.tflite_interpreter`).

    Batches are sent whole, the input resized to each; a model whose graph fixes its
    batch size answers row by row instead. Quantized inputs and outputs (int8, uint8)
    are quantized and dequantized with the file's own scale and zero point, so the
    suspect takes and answers float32 as any other. One interpreter answers one call at
    a time (a lock), as TensorFlow Lite requires.
    """
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1:
        raise ModelLoadError(
            "A suspect must take one input tensor (it may return several: tafa.verify scores "
            f"those that fit the owner's). Received: {len(inputs)} inputs in {source}"
        )
    spec, lock = inputs[0], threading.Lock()
    fixed = tuple(int(d) for d in spec["shape"])  # the shape it was converted with
    state = {"shape": None, "rowwise": False}

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        if state["shape"] != x.shape:
            interpreter.resize_tensor_input(spec["index"], x.shape, strict=False)
            interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(spec["index"], _quantize(x, spec))
        interpreter.invoke()
        answers = {d["name"]: _dequantize(interpreter.get_tensor(d["index"]), d) for d in outputs}
        if any(len(a) != len(x) for a in answers.values()):  # a batch folded away by the graph
            raise ValueError(f"answers for {[len(a) for a in answers.values()]} rows, not {len(x)}")
        return answers

    def predict(x: np.ndarray) -> Any:
        with lock:
            if not state["rowwise"]:
                try:
                    answers = run(x)
                except (RuntimeError, ValueError):  # a graph that fixes its batch size
                    state["rowwise"], state["shape"] = True, None
            if state["rowwise"]:
                rows = [run(row.reshape(fixed)) for row in x]
                answers = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
        return next(iter(answers.values())) if len(answers) == 1 else answers

    out_shape = _shape(outputs[0]["shape_signature"]) if len(outputs) == 1 else None
    return predict, None, _shape(spec["shape_signature"]), out_shape


def _quantize(x: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """``x`` in the tensor's type: quantized with its scale and zero point if it has them."""
    dtype = np.dtype(spec["dtype"])
    scale, zero = spec["quantization"]
    if not np.issubdtype(dtype, np.integer) or scale == 0:
        return x.astype(dtype)
    limits = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), limits.min, limits.max).astype(dtype)


def _dequantize(y: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """A tensor read back as float32, dequantized if it is quantized."""
    scale, zero = spec["quantization"]
    if not np.issubdtype(y.dtype, np.integer) or scale == 0:
        return y.astype(np.float32, copy=False)
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def _shape(shape: Any) -> tuple[int | None, ...] | None:
    try:
        dims = list(shape)
    except (TypeError, ValueError):
        return None
    return tuple(None if d is None or int(d) < 0 else int(d) for d in dims[1:])
