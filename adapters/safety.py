"""Static checks run on a suspect's files before anything is loaded.

A suspect is untrusted. Three independent checks run before Keras or TensorFlow
reads it:

- its Keras config is walked for layers that carry Python code (Lambda);
- a SavedModel's graph and function library are walked for operators that touch
  files or call back into Python (``UNSAFE_TF_OPS``): they would run at load or
  inference time;
- a TensorFlow Lite file's operators are listed before any runs: TensorFlow ops
  carried inside it (Flex ops) are refused, those of ``UNSAFE_TF_OPS`` as unsafe;
- modelscan (the ``tafa-tf[scan]`` extra) scans every file.

Loading then happens with Keras ``safe_mode=True`` unless the caller trusts the
model, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

from adapters.errors import (
    MissingDependencyError,
    ModelLoadError,
    ModelTooLargeError,
    UnsafeModelError,
    first_line,
)

#: TensorFlow operators refused in a SavedModel: file system access, Python callbacks,
#: and readers that pull data from paths. Checkpoint ops (SaveV2, RestoreV2) are not
#: listed: every SavedModel carries them in its saver functions.
UNSAFE_TF_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "DeleteFile",
        "ImmutableConst",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "Save",
        "SaveSlices",
        "TextLineDataset",
        "TextLineDatasetV2",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "CreateSummaryFileWriter",
        "WriteSummary",
        "WriteRawProtoSummary",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "LoadAndRemapMatrix",
    }
)

#: Keras class names that carry serialized Python code.
CODE_LAYER_CLASSES = frozenset({"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"})

#: modelscan operators that the trust flag accepts (Python code in Keras layers).
TRUSTABLE_SCAN_OPERATORS = frozenset({"Lambda"})


def check_size(total: int, max_bytes: int, what: str) -> None:
    """Refuse a model whose files add up to more than ``max_bytes``.

    Args:
        total: the number of bytes found (or announced by the Hub).
        max_bytes: the limit.
        what: a description of the files for the message.

    Raises:
        ModelTooLargeError: ``total > max_bytes``.
    """
    if total > max_bytes:
        raise ModelTooLargeError(
            f"The model files of {what} are {total} bytes, over the limit of {max_bytes} "
            f"bytes. Pass a larger max_bytes= if you trust this source. Received: "
            f"size={total}, max_bytes={max_bytes}"
        )


def check_zip_expansion(path: Path, max_bytes: int) -> None:
    """Refuse a .keras archive whose members would expand beyond ``max_bytes``.

    Args:
        path: the .keras (zip) file.
        max_bytes: the limit on the sum of uncompressed member sizes.

    Raises:
        ModelLoadError: the file is not a zip archive.
        ModelTooLargeError: the archive expands beyond the limit.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            expanded = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as e:
        raise ModelLoadError(
            f"A .keras file must be a zip archive; this one is not (corrupt or truncated?). "
            f"Received: {path}"
        ) from e
    check_size(expanded, max_bytes, f"{path} (uncompressed)")


def read_keras_config(path: Path, fmt: str) -> dict[str, Any] | None:
    """Read the architecture config of a Keras model without building it.

    Args:
        path: a .keras file, a Keras folder or a legacy .h5 file.
        fmt: ``"keras"``, ``"keras_folder"`` or ``"h5"``.

    Returns:
        The decoded config, or None if the file holds none.

    Raises:
        ModelLoadError: the config exists but cannot be read.
    """
    try:
        if fmt == "keras":
            with zipfile.ZipFile(path) as zf:
                if "config.json" not in zf.namelist():
                    return None
                return json.loads(zf.read("config.json"))
        if fmt == "keras_folder":
            return json.loads((path / "config.json").read_text(encoding="utf-8"))
        if fmt == "h5":
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is None:
                return None
            return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ModelLoadError(
            f"Could not read the model config of {path} (corrupt or not a Keras model). "
            f"Received: format={fmt!r}, error={e}"
        ) from e
    return None


def code_layers(config: Any) -> list[str]:
    """Find the layers in a Keras config that carry serialized Python code.

    Args:
        config: a decoded Keras config (nested dicts and lists).

    Returns:
        The names (or class names) of the offending layers, in config order.
    """
    found = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            if node.get("class_name") in CODE_LAYER_CLASSES:
                inner = node.get("config")
                name = inner.get("name") if isinstance(inner, dict) else None
                found.append(f"{node['class_name']}({name})" if name else str(node["class_name"]))
                continue  # the function inside a Lambda is the same finding
            stack.extend(reversed(list(node.values())))
    return found


def check_keras_code(path: Path, fmt: str, *, trust_code: bool) -> list[str]:
    """Refuse a Keras model with code-carrying layers unless the caller trusts it.

    Args:
        path: the model file or folder.
        fmt: its format.
        trust_code: accept such layers (they are then returned, not raised).

    Returns:
        The code-carrying layers found (empty if none, or with ``trust_code``).

    Raises:
        UnsafeModelError: such layers were found and ``trust_code`` is False.
    """
    config = read_keras_config(path, fmt)
    found = code_layers(config) if config is not None else []
    if found and not trust_code:
        raise UnsafeModelError(
            f"The model at {path} contains layers with serialized Python code, which "
            f"could run arbitrary code when loaded; it was refused. Load it with "
            f"trust_code=True only if you trust its author. Received: layers={found}"
        )
    return found


def saved_model_ops(saved_model_dir: Path) -> set[str]:
    """Every operator type in a SavedModel's graphs and function libraries.

    Args:
        saved_model_dir: the directory holding saved_model.pb.

    Returns:
        The set of op names.

    Raises:
        ModelLoadError: saved_model.pb is missing or cannot be parsed.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = saved_model_dir / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except (OSError, DecodeError) as e:
        raise ModelLoadError(
            f"Could not parse the SavedModel graph (corrupt or truncated?). Received: {pb}"
        ) from e
    ops: set[str] = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def check_saved_model_ops(saved_model_dir: Path) -> None:
    """Refuse a SavedModel whose graph contains operators from ``UNSAFE_TF_OPS``.

    Args:
        saved_model_dir: the directory holding saved_model.pb.

    Raises:
        UnsafeModelError: an unsafe operator was found.
        ModelLoadError: the graph cannot be parsed.
    """
    unsafe = sorted(saved_model_ops(saved_model_dir) & UNSAFE_TF_OPS)
    if unsafe:
        raise UnsafeModelError(
            f"The SavedModel at {saved_model_dir} contains operators that read or write "
            f"files or run Python, which would run when it is loaded or queried; it was "
            f"refused. Received: unsafe_ops={unsafe}"
        )


FLEX_PREFIX = "Flex"
"""How TensorFlow Lite names a TensorFlow op carried inside a .tflite file (``FlexWriteFile``)."""


TFLITE_RUNTIMES = ("ai_edge_litert", "tensorflow")
"""Where a TensorFlow Lite interpreter is taken from, first installed first: LiteRT
(``ai_edge_litert``, the ``tafa-tf[tflite]`` extra), which succeeds ``tf.lite.Interpreter``
(deprecated since TensorFlow 2.18 and announced for deletion), else TensorFlow's own."""


def _litert() -> tuple[Any, Any, str]:
    import ai_edge_litert
    from ai_edge_litert import interpreter

    return interpreter.Interpreter, interpreter.OpResolverType, f"ai_edge_litert {ai_edge_litert.__version__}"


def _tensorflow_lite() -> tuple[Any, Any, str]:
    import tensorflow as tf

    return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, f"tensorflow {tf.__version__}"


_TFLITE_RUNTIME_LOADERS = {"ai_edge_litert": _litert, "tensorflow": _tensorflow_lite}


def tflite_runtime() -> tuple[Any, Any, str]:
    """(interpreter class, its ``OpResolverType`` enum, the runtime's name and version) of the
    first of :data:`TFLITE_RUNTIMES` that is installed.

    Raises:
        MissingDependencyError: none is (a TensorFlow without ``tf.lite.Interpreter``).
    """
    for name in TFLITE_RUNTIMES:
        try:
            return _TFLITE_RUNTIME_LOADERS[name]()
        except (KeyError, ImportError, AttributeError):
            continue
    raise MissingDependencyError(
        "Reading a TensorFlow Lite file needs the LiteRT interpreter: pip install 'tafa-tf[tflite]' "
        f"(ai-edge-litert). Received: none of {list(TFLITE_RUNTIMES)} provides one."
    )


def tflite_interpreter(path: Path, source: str) -> tuple[Any, str]:
    """A TensorFlow Lite interpreter of the file at ``path``, after its operators are checked.

    The interpreter (:func:`tflite_runtime`) is made with TensorFlow Lite's built-in
    kernels only, without the default delegates, so no TensorFlow (Flex) op can run in it;
    its operators are read from the file before any tensor is allocated or any op
    prepared. A .tflite file may still carry TensorFlow ops (a converter's
    ``SELECT_TF_OPS``), which a Flex delegate would run, file writes included: those are
    refused here with their names.

    Args:
        path: the .tflite file.
        source: the user's reference, for messages.

    Returns:
        A LiteRT (or ``tf.lite``) ``Interpreter``, tensors not allocated, and the runtime's
        name and version.

    Raises:
        UnsafeModelError: a TensorFlow op of ``UNSAFE_TF_OPS`` is in the file.
        ModelLoadError: the file is not a TensorFlow Lite model, or it needs TensorFlow ops.
        MissingDependencyError: no TensorFlow Lite interpreter is installed.
    """
    import warnings

    interpreter_class, resolvers, runtime = tflite_runtime()
    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT succeeds it
            warnings.simplefilter("ignore")
            interpreter = interpreter_class(
                model_path=str(path), experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
    except Exception as e:
        raise ModelLoadError(
            f"Could not read the TensorFlow Lite model {source} (corrupt or truncated). "
            f"Received: {type(e).__name__}: {first_line(e)}"
        ) from e
    list_ops = getattr(interpreter, "_get_ops_details", None)  # not public, but read before anything runs
    if list_ops is None:
        raise ModelLoadError(
            f"This TensorFlow Lite interpreter cannot list a file's operators before running them, so "
            f"{source} was not loaded; load the Keras or SavedModel original. Received: {runtime}"
        )
    ops = {str(d["op_name"]) for d in list_ops()}
    flex = sorted(op[len(FLEX_PREFIX):] for op in ops if op.startswith(FLEX_PREFIX))
    unsafe = [op for op in flex if op in UNSAFE_TF_OPS]
    if unsafe:
        raise UnsafeModelError(
            f"The TensorFlow Lite model {source} carries TensorFlow operators that read or write "
            f"files or run Python; it was refused. Received: unsafe_ops={unsafe}"
        )
    if flex:
        raise ModelLoadError(
            f"The TensorFlow Lite model {source} needs TensorFlow operators (converted with "
            "SELECT_TF_OPS), which tafa-tf does not run in a suspect; convert it with built-in "
            f"operators only, or load the Keras or SavedModel original. Received: tf_ops={flex}"
        )
    return interpreter, runtime


class _QuietModelScan(logging.Filter):
    """Drops modelscan's ERROR line for weights-only .h5 files, which are expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Model Config not found" not in record.getMessage()


def run_modelscan(path: Path, *, trust_code: bool) -> dict[str, Any]:
    """Scan a model file or folder with modelscan and refuse it on any finding.

    Args:
        path: the file or folder to scan.
        trust_code: accept findings about code in Keras layers (Lambda); findings
            about unsafe operators or pickles are refused regardless.

    Returns:
        A summary: ``{"scanner": "modelscan", "version", "scanned", "issues"}``.

    Raises:
        MissingDependencyError: modelscan is not installed.
        UnsafeModelError: modelscan reported an issue that is not accepted.
    """
    try:
        from modelscan._version import __version__ as version
        from modelscan.modelscan import ModelScan
    except ImportError as e:
        raise MissingDependencyError(
            "Scanning suspect models needs modelscan. Install it with "
            "`pip install 'tafa-tf[scan]'`, or pass modelscan=False if you trust the files. "
            f"Received: {e}"
        ) from e
    modelscan_logger = logging.getLogger("modelscan")
    if not any(isinstance(f, _QuietModelScan) for f in modelscan_logger.filters):
        modelscan_logger.addFilter(_QuietModelScan())
    report = ModelScan().scan(str(path))
    issues = [
        {
            "severity": str(issue.get("severity")),
            "operator": str(issue.get("operator")),
            "source": str(issue.get("source")),
        }
        for issue in report.get("issues", [])
    ]
    refused = [
        issue
        for issue in issues
        if not (trust_code and issue["operator"] in TRUSTABLE_SCAN_OPERATORS)
    ]
    if refused:
        raise UnsafeModelError(
            f"modelscan found unsafe content in {path}; it was refused. "
            + (
                "Code in Keras layers can be accepted with trust_code=True if you trust the "
                "author; unsafe operators cannot. "
                if any(i["operator"] in TRUSTABLE_SCAN_OPERATORS for i in refused)
                else ""
            )
            + f"Received: issues={refused}"
        )
    return {
        "scanner": "modelscan",
        "version": version,
        "scanned": list(report.get("summary", {}).get("scanned", {}).get("scanned_files", [])),
        "issues": issues,
    }
