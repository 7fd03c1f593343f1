"""tafa-tf runs Keras on TensorFlow: a clear error when Keras is set to another backend.

Keras 3 picks its backend once, when it is first imported: from ``KERAS_BACKEND``, else
from ``keras.json`` in ``KERAS_HOME`` (default ``~/.keras``), else TensorFlow. Under JAX
or PyTorch the library's TensorFlow passes would meet tensors of another framework (or,
without that framework installed, Keras itself fails with "No module named 'jax'"), so
the first use of the library checks, without importing TensorFlow or Keras, and says
what to change.
"""

from __future__ import annotations

import json
import os
import sys

_CHECKED = False


def configured_backend() -> tuple[str, str]:
    """The Keras backend in use or that Keras will pick, and where that choice comes from."""
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return str(keras.backend.backend()), "the Keras already imported"
        except Exception:  # noqa: BLE001 - a half-imported keras: read the settings instead
            pass
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name, f"KERAS_BACKEND={name}"
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path, encoding="utf-8") as f:
            name = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        name = None
    if isinstance(name, str) and name:
        return name, f'"backend" in {path}'
    return "tensorflow", "the default"


def require_tensorflow_backend() -> None:
    """Raise :class:`tafa_tf.errors.BackendError` unless Keras runs, or will run, on TensorFlow."""
    global _CHECKED
    if _CHECKED:
        return
    name, source = configured_backend()
    if name != "tensorflow":
        from tafa_tf.errors import BackendError

        raise BackendError(
            f"tafa-tf runs Keras on TensorFlow, but Keras is set to the {name!r} backend ({source}). "
            "Set KERAS_BACKEND=tensorflow (or unset it) before Keras is first imported, in a new process."
        )
    _CHECKED = True
