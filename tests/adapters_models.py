"""Small model artifacts in every format the adapters load, for the adapter tests.

Untrained tiny models are enough to test loading and safety; the verification and
scan tests use trained models from tafa_tf.zoo instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: format -> file or folder name written by :func:`save_model_as`.
FORMAT_NAMES = {
    "keras": "model.keras",
    "keras_folder": "model_folder",
    "h5": "model.h5",
    "saved_model": "saved_model",
    "tflite": "model.tflite",
}


def tiny_model(seed: int = 0, *, lambda_layer: bool = False):
    """A 4 -> 8 -> 3 ReLU MLP (with a Lambda layer in front if asked)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4,))]
    if lambda_layer:
        layers.append(keras.layers.Lambda(lambda x: x * 2.0))
    layers += [keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)]
    return keras.Sequential(layers)


def save_model_as(model, fmt: str, folder: Path) -> Path:
    """Save ``model`` in ``fmt`` under ``folder``; returns the file or folder written."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FORMAT_NAMES[fmt]
    if fmt == "keras":
        model.save(path)
    elif fmt == "keras_folder":
        keras.saving.save_model(model, path, zipped=False)
    elif fmt == "h5":
        keras.saving.save_model(model, path)
    elif fmt == "tflite":
        path.write_bytes(tflite_bytes(model))
    else:
        model.export(str(path), verbose=False)
    return path


def tflite_bytes(model, *, int8_samples: np.ndarray | None = None) -> bytes:
    """``model`` converted to TensorFlow Lite: float32, or with ``int8_samples`` fully
    int8-quantized (``tafa_tf.piracy.to_tflite``)."""
    from tafa_tf import piracy

    return piracy.to_tflite(model, "float32" if int8_samples is None else "int8", samples=int8_samples)


def tf_ops_tflite(module, path: Path) -> Path:
    """``module.serve`` (a tf.function) converted to ``path`` with TensorFlow ops allowed
    (``SELECT_TF_OPS``): what TensorFlow Lite cannot run itself is carried as Flex ops."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path


def write_file_tflite(path: Path, target: Path) -> Path:
    """A .tflite file carrying TensorFlow's WriteFile op (a Flex op) that would write ``target``."""
    import tensorflow as tf

    class Exfiltrate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(target), "pwned")
            return x * 2.0

    return tf_ops_tflite(Exfiltrate(), path)


def write_file_saved_model(folder: Path, target: Path) -> Path:
    """A SavedModel whose serving function writes ``target`` when called (malicious)."""
    import tensorflow as tf

    class Exfiltrate(tf.Module):
        def __init__(self):
            super().__init__()
            # A variable also keeps variables.index clear of olah's 121-149 byte gap.
            self.scale = tf.Variable(tf.fill([4], 2.0), name="scale")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(target), "pwned")
            return {"output_0": x * self.scale}

    module = Exfiltrate()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def inputs(n: int = 5, seed: int = 0) -> np.ndarray:
    """A float32 batch for the tiny models."""
    return np.random.default_rng(seed).standard_normal((n, 4)).astype("float32")


def quiet_tf() -> None:
    """Less TensorFlow logging in test output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: The kinds of suspect :func:`digits_suspects` writes, in the order it cycles through them.
SUSPECT_KINDS = ("copy", "innocent", "copy", "broken", "innocent", "unsafe", "copy", "oversize", "innocent",
                 "other_shape")
#: A max_bytes that the digits MLPs pass and the "oversize" suspects exceed.
SUSPECT_MAX_BYTES = 300_000


def digits_suspects(folder: Path, owner, innocents, n: int, *, seed: int = 0) -> dict[str, str]:
    """``n`` small suspect .keras files of every kind in SUSPECT_KINDS, cheap to make and load.

    Copies are the owner with a little weight noise; innocents are the given independent
    models with a little noise; broken files are truncated archives; unsafe ones carry a
    Lambda layer; oversize ones exceed SUSPECT_MAX_BYTES; other_shape ones take 4 inputs.

    Returns:
        path -> kind, in file order.
    """
    import keras

    from tafa_tf import piracy

    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    big = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2048, activation="relu"), keras.layers.Dense(10)])
    out: dict[str, str] = {}
    for i in range(n):
        kind = SUSPECT_KINDS[i % len(SUSPECT_KINDS)]
        path = folder / f"s{i:04d}-{kind}.keras"
        if kind == "copy":
            piracy.add_noise(owner, 0.02, seed=seed + i).save(path)
        elif kind == "innocent":
            piracy.add_noise(innocents[i % len(innocents)], 0.02, seed=seed + i).save(path)
        elif kind == "broken":
            path.write_bytes(b"PK\x03\x04cut short" + bytes(i % 7))
        elif kind == "unsafe":
            tiny_model(seed + i, lambda_layer=True).save(path)
        elif kind == "oversize":
            big.save(path)
        else:
            tiny_model(seed + i).save(path)
        out[str(path)] = kind
    return out


def kill_a_busy_ray_worker(killed: list[int], timeout: float = 30.0) -> bool:
    """SIGKILL one Ray worker while it runs a scan task (``ray::_scan_task``); its pid goes to ``killed``.

    Does nothing once ``killed`` holds a pid. Returns whether a worker was killed.
    """
    import signal
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while not killed and time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if cmdline and cmdline[0].startswith("ray::_scan_task"):
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
                return True
        time.sleep(0.01)
    return False
