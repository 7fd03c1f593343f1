"""Small models of shapes the piracy suite does not train: does each fingerprint, and do
its copies outscore independent models of the same shape?

A held-out check beside probe_applications.py (large backbones): twenty-three small Keras
models on scikit-learn data (digits as vectors, 8x8 images, raw 0-255 pixels behind data
augmentation and a Rescaling or preprocess_input, and length-64 sequences;
make_regression with 3 targets; diabetes behind an adapted Normalization layer; a
decoder from an 8-d latent to digits), each trained 15 epochs at Adam 3e-3 on two
thirds of its data, fingerprinted with 32 points in its default domain, and verified
against five copies (float16, int8, 30% pruned, 2% weight noise, fine-tuned 5 epochs
at 1e-3 on the last third) and two models of the same shape trained from other seeds.
Reported per model: points, task and output kind, fingerprint seconds, each score and verdict, and
whether every copy outscores every independent model; or the error it was refused with.

This sweep found three bugs (docs/results.md, session 26): an adapted Normalization
copied with mean 0 and variance 1, a Newton step that gathered class indices as units
when a network has fewer hidden units than classes, and a TypeError for a free input
length. The two augmented models were added in session 27, when augmentation layers
called in training mode inside the synthesis crashed it.

    python benchmarks/probe_small.py                      # every model below (about 3 minutes)
    python benchmarks/probe_small.py --only conv1d tiny4
    python benchmarks/probe_small.py --json out.json      # default: results/small_models.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_architectures import write_rows  # noqa: E402  (after the log level is set)

RESULTS = Path(__file__).resolve().parent / "results" / "small_models.json"
EPOCHS, LEARNING_RATE, N = 15, 3e-3, 32


def _data():
    import numpy as np
    from sklearn.datasets import load_diabetes, load_digits, make_regression

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")
    xr, yr = make_regression(600, 10, n_targets=3, noise=5, random_state=0)
    xd, yd = load_diabetes(return_X_y=True)
    z = np.random.default_rng(0).normal(size=(len(x), 8)).astype("float32")
    return {
        "digits": (x, y), "binary": (x, (y >= 5).astype("int64")), "onehot": (x, np.eye(10, dtype="float32")[y]),
        "images": (x.reshape(-1, 8, 8, 1), y), "images16": (x.reshape(-1, 8, 8, 1) * 16, y),
        "images255": (x.reshape(-1, 8, 8, 1) * 255, y),
        "sequences": (x[..., None], y), "rows": (x.reshape(-1, 8, 8), y),
        "regression3": (xr.astype("float32"), (yr / yr.std(0)).astype("float32")),
        "diabetes": (xd.astype("float32"), ((yd - yd.mean()) / yd.std()).astype("float32")), "latent": (z, x),
    }


def _models(data):
    """name: (data key, loss, task, builder); each builder returns a keras.Model."""
    import keras
    from keras import layers as L

    logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def maximum():
        i = keras.Input((64,))
        a, b = L.Dense(32, activation="relu")(i), L.Dense(32, activation="relu")(i)
        return keras.Model(i, L.Dense(10)(L.Maximum()([a, b])))

    def residual():
        i = keras.Input((64,))
        h = L.Dense(32, activation="relu")(i)
        for _ in range(3):
            h = L.Add()([h, L.Dense(32)(L.ReLU()(L.Dense(32)(h)))])
        return keras.Model(i, L.Dense(10)(L.ReLU()(h)))

    def normalized():
        norm = L.Normalization()
        norm.adapt(data["diabetes"][0])
        return keras.Sequential([keras.Input((10,)), norm, L.Dense(32, activation="relu"),
                                 L.Dense(16, activation="relu"), L.Dense(1)])

    def augmented(front):
        """Keras's transfer-learning guide: augmentation, then Rescaling or preprocess_input, in front."""
        def build():
            augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomRotation(0.1), L.RandomZoom(0.1)])
            i = keras.Input((8, 8, 1))
            h = L.Rescaling(1 / 255.0)(augment(i)) if front == "rescaling" else \
                keras.applications.mobilenet_v2.preprocess_input(augment(i))
            h = L.Conv2D(16, 3, padding="same", activation="relu")(h)
            return keras.Model(i, L.Dense(10)(L.GlobalAveragePooling2D()(h)))
        return build

    def mk(*makers):
        """A Sequential builder: each maker (a layer class or a lambda) makes a new layer per model."""
        return lambda: keras.Sequential([make() for make in makers])

    dense = lambda n, a="relu": (lambda: L.Dense(n, activation=a))  # noqa: E731
    return {
        "conv1d": ("sequences", "sparse_categorical_crossentropy", None, mk(
            lambda: keras.Input((64, 1)), lambda: L.Conv1D(16, 3, activation="relu"), lambda: L.MaxPooling1D(2),
            lambda: L.Conv1D(16, 3, activation="relu"), lambda: L.GlobalAveragePooling1D(), dense(10, "softmax"))),
        "conv1d_lstm": ("sequences", logits, None, mk(  # partial: the LSTM is not piecewise linear
            lambda: keras.Input((64, 1)), lambda: L.Conv1D(16, 3, activation="relu"), lambda: L.MaxPooling1D(2),
            lambda: L.LSTM(16), dense(10, None))),
        "time_distributed": ("images", logits, None, mk(  # a frame network over the image's rows
            lambda: keras.Input((8, 8, 1)), lambda: L.TimeDistributed(L.Conv1D(8, 3, activation="relu")),
            L.Flatten, dense(10, None))),
        "free_length_conv1d": ("sequences", logits, None, mk(  # refused: the length must be fixed
            lambda: keras.Input((None, 1)), lambda: L.Conv1D(16, 3, activation="relu"), L.GlobalMaxPooling1D,
            dense(10, None))),
        "deep8": ("digits", logits, None, mk(lambda: keras.Input((64,)), *[dense(32)] * 8, dense(10, None))),
        "tiny4": ("digits", logits, None, mk(lambda: keras.Input((64,)), dense(4), dense(10, None))),
        "wide1024": ("digits", logits, None, mk(lambda: keras.Input((64,)), dense(1024), dense(10, None))),
        "bn_dropout": ("digits", "sparse_categorical_crossentropy", None, mk(
            lambda: keras.Input((64,)), dense(64, None), L.BatchNormalization, L.ReLU, lambda: L.Dropout(0.3),
            dense(32, None), L.BatchNormalization, L.ReLU, dense(10, "softmax"))),
        "softmax_layer": ("digits", "sparse_categorical_crossentropy", None, mk(
            lambda: keras.Input((64,)), dense(32), dense(10, None), L.Softmax)),
        "hard_tanh": ("digits", logits, None, mk(lambda: keras.Input((64,)), dense(32, "hard_tanh"), dense(10, None))),
        "maximum": ("digits", logits, None, maximum),
        "residual": ("digits", logits, None, residual),
        "two_class": ("binary", logits, None, mk(lambda: keras.Input((64,)), dense(32), dense(2, None))),
        "binary_sigmoid": ("binary", "binary_crossentropy", None, mk(
            lambda: keras.Input((64,)), dense(32), dense(16), dense(1, "sigmoid"))),
        "multilabel": ("onehot", "binary_crossentropy", None, mk(
            lambda: keras.Input((64,)), dense(32), dense(10, "sigmoid"))),
        "image_cnn": ("images", "sparse_categorical_crossentropy", None, mk(
            lambda: keras.Input((8, 8, 1)), lambda: L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D, lambda: L.Conv2D(32, 3, padding="same", activation="leaky_relu"), L.Flatten,
            dense(10, "softmax"))),
        "rescaling_0_16": ("images16", "sparse_categorical_crossentropy", None, mk(
            lambda: keras.Input((8, 8, 1)), lambda: L.Rescaling(1 / 16.0), lambda: L.Conv2D(8, 3, activation="relu"),
            lambda: L.AveragePooling2D(2), L.Flatten, dense(10, "softmax"))),
        "augment_rescaling": ("images255", logits, None, augmented("rescaling")),
        "augment_preprocess_input": ("images255", logits, None, augmented("preprocess_input")),
        "upsample_crop": ("images", logits, None, mk(
            lambda: keras.Input((8, 8, 1)), lambda: L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            L.UpSampling2D, lambda: L.Cropping2D(1), lambda: L.Conv2D(4, 3, activation="relu"),
            L.GlobalAveragePooling2D, dense(10, None))),
        "prelu_regression3": ("regression3", "mse", "regression", mk(
            lambda: keras.Input((10,)), dense(32, None), L.PReLU, dense(32, None), L.PReLU, dense(3, None))),
        "normalization": ("diabetes", "mse", "regression", normalized),
        "decoder": ("latent", "binary_crossentropy", "generation", mk(
            lambda: keras.Input((8,)), dense(64), lambda: L.Reshape((4, 4, 4)),
            lambda: L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
            lambda: L.Conv2D(1, 3, padding="same", activation="sigmoid"), lambda: L.Reshape((64,)))),
    }


def _trained(build, loss, x, y, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(keras.optimizers.Adam(LEARNING_RATE), loss)
    model.fit(x, y, epochs=EPOCHS, batch_size=64, verbose=0)
    return model


def probe(name, key, loss, task, build, data) -> dict:
    """One model: fingerprinted, its copies and two independent models verified."""
    import tafa_tf as tafa
    from tafa_tf import piracy

    x, y = data[key]
    cut = 2 * len(x) // 3
    owner = _trained(build, loss, x[:cut], y[:cut], 0)
    start = time.perf_counter()
    try:
        fp = tafa.fingerprint(owner, n=N, seed=0, **({"task": task} if task else {}))
    except tafa.errors.UnsupportedModelError as e:
        return {"model": name, "refused": str(e)}
    seconds = time.perf_counter() - start
    copies = {"float16": lambda: piracy.quantize(owner, "float16"), "int8": lambda: piracy.quantize(owner, "int8"),
              "prune 30%": lambda: piracy.prune(owner, 0.3), "noise 2%": lambda: piracy.add_noise(owner, 0.02),
              "fine-tune": lambda: piracy.fine_tune(owner, x[cut:], y[cut:], epochs=5, learning_rate=1e-3,
                                                    loss=loss)}
    innocents = {f"seed {s}": (lambda s=s: _trained(build, loss, x[:cut], y[:cut], s)) for s in (1, 2)}
    reports = {k: tafa.verify(fp, make()) for k, make in {**copies, **innocents}.items()}
    lowest = min(reports[k].score for k in copies)
    highest = max(reports[k].score for k in innocents)
    return {"model": name, "points": fp.n_points, "task": fp.task, "output_kind": fp.output_kind,
            "complete": bool(fp.coverage["complete"]), "seconds": seconds,
            "scores": {k: r.score for k, r in reports.items()}, "verdicts": {k: r.pirated for k, r in reports.items()},
            "lowest_copy": lowest, "highest_innocent": highest, "separated": bool(lowest > highest)}


def _line(row: dict) -> str:
    if "refused" in row:
        return f"{row['model']:<18} refused: {row['refused'][:110]}"
    mark = {True: "P", False: "c", None: "?"}
    scores = " ".join(f"{k.split()[0]}={v:.2f}{mark[row['verdicts'][k]]}" for k, v in row["scores"].items())
    return (f"{row['model']:<18} {row['points']:>3} pts {row['task'][:5]}/{row['output_kind'][:5]} "
            f"{row['seconds']:5.1f} s  {scores}  {'ok' if row['separated'] else 'OVERLAP'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="model names (see the list in this file)")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args(argv)
    data = _data()
    models = _models(data)
    unknown = sorted(set(args.only or ()) - set(models))
    if unknown:
        parser.error(f"unknown model {unknown}; choose from {sorted(models)}")
    rows = []
    for name, (key, loss, task, build) in models.items():
        if args.only and name not in args.only:
            continue
        rows.append(probe(name, key, loss, task, build, data))
        print(_line(rows[-1]), flush=True)
    fitted = [r for r in rows if "refused" not in r]
    print(f"{sum(r['separated'] for r in fitted)} of {len(fitted)} fingerprinted models: every copy above "
          f"every independent model; {len(rows) - len(fitted)} refused", flush=True)
    write_rows(Path(args.json), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
