"""TAFA on real keras.applications CNNs: one row per model, each in its own process.

Every row builds a backbone (weights=None: nothing is downloaded) nested under a new
head, as transfer learning does: ``backbone(include_top=False) + GlobalAveragePooling2D
+ Dense(10, softmax)``; "trained" rows fit it for a few epochs on scikit-learn's digits
upsampled to the input size. Then it fingerprints the owner, times the same number of
single-input forward+backward passes as the reference, and verifies pirated copies
(float16, int8, 30% pruned, 2% weight noise, fine-tuned with Keras's plain fit and,
where the model has BatchNormalization, with those layers frozen as Keras's
transfer-learning guide does) against independently
initialised (or trained) models of the same architecture.

Each row runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is that
row's alone; trained models are trained in a process of their own and cached in
benchmarks/.cache/architectures (training is the benchmark's cost, not the library's).
Columns: parameters, input size, points found of wanted, fingerprint seconds, ratio to
single-input forward+backward passes, peak RSS, seconds per verification, lowest
pirated score, highest innocent score.

    python benchmarks/bench_architectures.py --quick                 # the 32x32 rows
    python benchmarks/bench_architectures.py --others                # ResNet50V2, MobileNet, Xception, InceptionV3
    python benchmarks/bench_architectures.py --rows mnv2_035_32_trained,resnet50_224_random
    python benchmarks/bench_architectures.py --rows mnv2_100_224_trained --samples 32  # with 32 public images
    python benchmarks/bench_architectures.py --list
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tafa_tf, not an installed one

RESULTS = Path(__file__).resolve().parent / "results" / "architectures.json"
RESULTS_WITH_SAMPLES = RESULTS.with_name("architectures_samples.json")  # rows run with --samples
CACHE = Path(__file__).resolve().parent / ".cache" / "architectures"  # trained models (gitignored)


@dataclass(frozen=True)
class Row:
    name: str
    arch: str  # keras.applications class name
    size: int  # input height = width
    alpha: float = 1.0  # MobileNetV2 only
    trained: bool = False
    head: str = "functional"  # "functional" or "sequential" transfer model
    rescaling: bool = False  # a Rescaling(1/255) layer in front: the domain is Box(0, 255)
    n: int = 128
    epochs: int = 3
    n_train: int = 1257  # digits training images (fewer at large sizes: CPU time)
    other: bool = False  # an architecture beyond the list (--others), never tuned against


def _rows() -> list[Row]:
    rows = []
    for arch, tag, alpha in (("MobileNetV2", "mnv2_035", 0.35), ("MobileNetV2", "mnv2_100", 1.0),
                             ("ResNet50", "resnet50", 1.0), ("VGG16", "vgg16", 1.0),
                             ("DenseNet121", "densenet121", 1.0)):
        for size in (32, 96):
            for trained in (False, True):
                rows.append(Row(f"{tag}_{size}_{'trained' if trained else 'random'}", arch, size, alpha, trained,
                                n_train=1257 if size == 32 else 384))
    for arch, tag in (("ResNet50", "resnet50"), ("MobileNetV2", "mnv2_100")):
        for trained in (False, True):
            rows.append(Row(f"{tag}_224_{'trained' if trained else 'random'}", arch, 224, 1.0, trained,
                            n_train=384))
    rows.append(Row("mnv2_035_32_trained_sequential_rescaling", "MobileNetV2", 32, 0.35, True,
                    head="sequential", rescaling=True))
    # Other ReLU backbones of keras.applications, at their smallest input sizes: pre-activation
    # residuals, ReLU6 depthwise-separable blocks, separable convolutions, inception branches
    for arch, tag, size in (("ResNet50V2", "resnet50v2", 32), ("MobileNet", "mobilenet", 32),
                            ("Xception", "xception", 71), ("InceptionV3", "inceptionv3", 75)):
        # at 71-75 px, 3 epochs on 384 images left Xception and InceptionV3 at chance (0.11 / 0.13)
        rows.append(Row(f"{tag}_{size}_trained", arch, size, 1.0, True, n_train=1257, epochs=3 if size == 32 else 6,
                        other=True))
    return rows


ROWS = {r.name: r for r in _rows()}
QUICK = [r.name for r in _rows() if r.size == 32 and not r.other]
OTHERS = [r.name for r in _rows() if r.other]


# ----------------------------------------------------------------------------- models and data


def digits_images(size: int, n: int, *, scale: float = 1.0, seed: int = 0):
    """scikit-learn digits, upsampled to size x size x 3, pixels in [0, scale]."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    ds = load_digits()
    order = np.random.default_rng(seed).permutation(len(ds.target))[:n]
    x = (ds.data[order] / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    x = tf.image.resize(x, (size, size), method="bilinear").numpy()
    x = np.repeat(np.clip(x, 0.0, 1.0), 3, axis=-1) * scale
    return x.astype("float32"), ds.target[order].astype("int64")


def build(row: Row, seed: int):
    """The transfer model of ``row``, initialised from ``seed``."""
    import keras

    keras.utils.set_random_seed(seed)
    shape = (row.size, row.size, 3)
    kwargs = {"alpha": row.alpha} if row.arch == "MobileNetV2" else {}
    backbone = getattr(keras.applications, row.arch)(input_shape=shape, include_top=False, weights=None, **kwargs)
    front = [keras.layers.Rescaling(1.0 / 255.0)] if row.rescaling else []
    head = [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")]
    if row.head == "sequential":
        return keras.Sequential([keras.Input(shape), *front, backbone, *head], name=f"{row.arch}_{seed}")
    inp = keras.Input(shape)
    x = inp
    for layer in [*front, backbone, *head]:
        x = layer(x)
    return keras.Model(inp, x, name=f"{row.arch}_{seed}")


def fast_moving_statistics(model) -> None:
    """BatchNormalization momentum 0.9 throughout ``model``, before a few epochs of training.

    keras.applications use momentum 0.99-0.999: after a few CPU epochs the moving
    statistics are still the initial ones and the model is nearly constant in inference
    mode (nothing like a pretrained backbone). Faster moving averages give a model that
    works in inference, as a real fine-tuned one does.
    """
    import keras

    from tafa_tf.introspection import leaf_layers

    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9


def train_as_row(model, row: Row, data):
    """Fit ``model`` in place on ``data`` as the row's owner is trained (also the owner's
    recipe for its calibration references, benchmarks/calibrate_architectures.py)."""
    import keras

    model.compile(keras.optimizers.Adam(_train_lr(row)), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data[0], data[1], epochs=row.epochs, batch_size=_train_batch(row), verbose=0)
    return model


def _train_lr(row: Row) -> float:
    """The owner's Adam learning rate (part of the model cache's key).

    VGG16 has no batch normalization: from scratch at Adam 1e-3 its ReLUs die in the first
    epoch (accuracy 0.11, constant outputs, refused by the fingerprint as such); at 96x96
    (batches of 8) 1e-4 still left two seeds of three answering one class everywhere
    (session 44: accuracy 0.094), where 3e-5 trained seed 0 to 0.79 and seed 2 to 0.31."""
    return (3e-5 if row.size >= 96 else 1e-4) if row.arch == "VGG16" else 1e-3


def make_model(row: Row, seed: int, data):
    model = build(row, seed)
    if row.trained:
        fast_moving_statistics(model)
        train_as_row(model, row, data)
    return model


def row_model(row: Row, seed: int, fine_tuned: str | None = None):
    """A row's model (``fine_tuned``: the owner, seed 0, fine-tuned as a pirate would, its
    BatchNormalization layers "train"-ing or "frozen"; see :func:`pirate_fine_tune`).

    Models that need training are trained in a child process (training holds more memory
    than the fingerprint: fitting DenseNet121 at 96x96 took its row from 5.0 to 8.3 GiB,
    and that is the benchmark's cost, not the library's), cached in
    benchmarks/.cache/architectures and loaded here with Keras's safe mode.
    """
    if not (row.trained or fine_tuned):
        return build(row, seed)
    import keras

    tag = {None: "", "train": "-finetuned", "frozen": "-finetuned-bnfrozen"}[fine_tuned]
    path = CACHE / (f"{row.name}-seed{seed}-e{row.epochs}-n{row.n_train}-b{_train_batch(row)}-lr{_train_lr(row):g}"
                    f"{tag}.keras")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, "--train", row.name, "--seed", str(seed), "--out", str(path),
                        *(["--fine-tune", fine_tuned] if fine_tuned else [])], check=True)
    return keras.saving.load_model(path, safe_mode=True)


def _train_to(name: str, seed: int, out: Path, fine_tune: str | None) -> None:
    row = ROWS[name]
    data = digits_images(row.size, row.n_train, scale=_scale(row))
    model = pirate_fine_tune(row_model(row, 0), data, row, fine_tune) if fine_tune else make_model(row, seed, data)
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, out)  # a killed run leaves no half-written model behind


def write_rows(path: Path, rows: list[dict]) -> None:
    """``{"rows": rows}`` as JSON at ``path``, atomically: a killed run leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"rows": rows}, indent=1))
    os.replace(tmp, path)


def _scale(row: Row) -> float:
    return 255.0 if row.rescaling else 1.0


def _train_batch(row: Row) -> int:
    """Training batch of the owner's and the pirate's fits: ResNet50 trained on 32 224x224
    images at once holds more than 8 GB of activations, and ResNet50 or DenseNet121 on 32
    96x96 images 8.6-10.1 GiB, which is the benchmark's cost, not the library's."""
    return 8 if row.size >= 96 else 32


def pirate_fine_tune(owner, data, row: Row, batchnorm: str = "train"):
    """The owner fine-tuned for one epoch at 1e-4 on (at most 256 of) the row's images.

    ``batchnorm="train"`` is Keras's plain ``fit``; ``"frozen"`` keeps BatchNormalization
    in inference mode, as Keras's transfer-learning guide fine-tunes. They differ where the
    owner's moving statistics are not the data's: a random owner's are the initial (0, 1),
    and "train" replaces all of them (densenet121_96_random: the copy then agrees with the
    owner on none of 256 images' labels, log-probability correlation -0.05).
    """
    from tafa_tf import piracy

    n_tune = min(len(data[0]), 256)
    return piracy.fine_tune(owner, data[0][:n_tune], data[1][:n_tune], epochs=1, learning_rate=1e-4, seed=1,
                            batch_size=_train_batch(row), batchnorm=batchnorm)


def pirates(owner, row: Row):
    """(name, copy) pairs, each copy made when asked for, so only one is alive at a time (five
    ResNet50 copies at once, with their traced passes, took a 224x224 row past 8 GiB)."""
    import keras

    from tafa_tf import piracy
    from tafa_tf.introspection import leaf_layers

    yield "float16", piracy.quantize(owner, "float16")
    yield "int8", piracy.quantize(owner, "int8")
    yield "prune 30%", piracy.prune(owner, 0.3)
    yield "noise 2%", piracy.add_noise(owner, 0.02, seed=3)
    yield "fine-tune", row_model(row, 0, fine_tuned="train")
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in leaf_layers(owner)):
        yield "fine-tune, BN frozen", row_model(row, 0, fine_tuned="frozen")


# ----------------------------------------------------------------------------- one row


def single_pass_times(model, shape, repeats: int) -> list[float]:
    """Seconds of ``repeats`` single-input forward+backward passes (traced once, untimed)."""
    import numpy as np
    import tensorflow as tf

    @tf.function
    def fwd_bwd(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(model(x, training=False))
        return tape.gradient(y, x)

    xs = [tf.constant(np.random.default_rng(i).random((1, *shape), dtype="float32")) for i in range(repeats)]
    fwd_bwd(xs[0]).numpy()
    times = []
    for x in xs:
        t = time.perf_counter()
        fwd_bwd(x).numpy()
        times.append(time.perf_counter() - t)
    return times


def _accuracy(model, data, n: int = 256) -> float:
    """Accuracy on the first ``n`` training images, asked in the library's batches (one call on
    128 224x224 images held 15 GB more than the whole fingerprint)."""
    import numpy as np

    from tafa_tf.outputs import model_outputs

    return float(np.mean(model_outputs(model, data[0][:n]).argmax(1) == data[1][:n]))


def public_samples(row: Row, k: int):
    """``k`` digits images that no model of the row was trained on (those after the row's
    ``n_train`` in the same order), as an owner's few public inputs for ``samples=``."""
    return digits_images(row.size, row.n_train + k, scale=_scale(row))[0][row.n_train:] if k else None


def fingerprint_row(owner, row: Row, samples: int = 0):
    """The row's fingerprint of ``owner``: seed 0, the row's pixel range as the domain,
    data-free unless ``samples`` public images are given (:func:`public_samples`)."""
    import tafa_tf as tafa

    return tafa.fingerprint(owner, task="classification", n=row.n, domain=tafa.domains.Box(0.0, _scale(row)), seed=0,
                            samples=public_samples(row, samples))


def run_row(row: Row, n_innocent: int = 2, samples: int = 0) -> dict:
    import gc
    import resource

    import numpy as np

    import tafa_tf as tafa
    from tafa_tf.errors import UnsupportedModelError

    scale = _scale(row)
    data = digits_images(row.size, row.n_train, scale=scale)
    t = time.perf_counter()
    owner = row_model(row, 0)
    build_s = time.perf_counter() - t
    # the reference: single passes timed before and after the fingerprint, their median (a
    # median of 8 passes after it alone read 0.068-0.085 s for one ResNet50 at 224x224)
    repeats = 16 if row.size < 224 else 8
    before = single_pass_times(owner, owner.inputs[0].shape[1:], repeats)
    t = time.perf_counter()
    try:
        fp = fingerprint_row(owner, row, samples)
    except UnsupportedModelError as e:  # the library's refusal is this row's result, not a crash
        return {**asdict(row), "params": int(owner.count_params()), "input": f"{row.size}x{row.size}x3",
                "refused": str(e), "refused_after_s": time.perf_counter() - t, "build_s": build_s,
                "owner_accuracy_train": _accuracy(owner, data)}
    fp_s = time.perf_counter() - t
    fp_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # loading the owner, and the fingerprint
    after = single_pass_times(owner, owner.inputs[0].shape[1:], repeats)
    t_single = float(np.median(before + after))
    pirated, innocent, verdicts, verify_s, copy_accuracy, features = {}, {}, {}, [], {}, {}
    for name, model in pirates(owner, row):
        t = time.perf_counter()
        report = tafa.verify(fp, model)
        verify_s.append(time.perf_counter() - t)
        pirated[name], verdicts[name], features[name] = float(report.score), report.pirated, dict(report.features)
        copy_accuracy[name] = _accuracy(model, data)  # a copy that lost the owner's accuracy is no prize
        del model
        gc.collect()
    for seed in range(1, n_innocent + 1):
        report = tafa.verify(fp, row_model(row, seed))
        innocent[f"seed {seed}"], verdicts[f"seed {seed}"] = float(report.score), report.pirated
        features[f"seed {seed}"] = dict(report.features)
        gc.collect()
    accuracy = _accuracy(owner, data)
    return {
        **asdict(row),
        "params": int(owner.count_params()),
        "input": f"{row.size}x{row.size}x3",
        "samples": samples,
        "points": int(fp.n_points),
        "wanted": row.n,
        "fingerprint_s": fp_s,
        "single_fwd_bwd_s": t_single,
        "single_fwd_bwd_s_before_after": [float(np.median(before)), float(np.median(after))],
        "ratio_vs_single_passes": fp_s / (row.n * t_single),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # the whole row
        "fingerprint_peak_rss_gib": fp_rss,
        "verify_s": float(np.median(verify_s)),
        "pirated": pirated,
        "innocent": innocent,
        # a copy that answered NaN is not above anything: it is the lowest (min() would skip it)
        "lowest_pirated": min(pirated.values(), key=lambda v: v if math.isfinite(v) else -math.inf),
        "highest_innocent": max(innocent.values()),
        # the uncalibrated verdict a user gets (True pirated, False cleared, None uncertain) and its band
        "verdicts": verdicts,
        # every suspect's verification features: a change of the score can be measured on them offline
        "features": features,
        "accuse_from": report.threshold,
        "clear_under": report.clear_threshold,
        "owner_accuracy_train": accuracy,
        "pirated_accuracy_train": copy_accuracy,
        "build_s": build_s,
        "synthesis": fp.synthesis.get("stats", {}),
    }


# ----------------------------------------------------------------------------- driver


def _spawn(name: str, timeout: float, samples: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--samples", str(samples)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        return {"name": name, "error": f"exit {proc.returncode}: " + " | ".join(tail),
                "wall_s": time.perf_counter() - t}
    return json.loads(lines[-1])


def _print_row(r: dict) -> None:
    if "refused" in r:
        print(f"{r['name']:<44} {r['params']:>10,} {r['input']:>11} REFUSED after {r.get('refused_after_s', float('nan')):.1f} s: "
              f"{r['refused'][:90]}...", flush=True)
        return
    if "error" in r:
        print(f"{r['name']:<44} ERROR {r['error']}", flush=True)
        return
    print(f"{r['name']:<44} {r['params']:>10,} {r['input']:>11} {r['points']:>4}/{r['wanted']:<4} "
          f"{r['fingerprint_s']:>8.1f} {r['ratio_vs_single_passes']:>6.1f}x {r['peak_rss_gib']:>6.2f} "
          f"{r['verify_s']:>7.2f} {r['lowest_pirated']:>7.3f} {r['highest_innocent']:>7.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", help="comma-separated row names (see --list)")
    parser.add_argument("--quick", action="store_true", help="only the issue's 32x32 rows")
    parser.add_argument("--others", action="store_true", help="only the other architectures (ResNet50V2, MobileNet, "
                        "Xception, InceptionV3)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per row")
    parser.add_argument("--samples", type=int, default=0, help="fingerprint with this many public images "
                        "(digits no model of the row was trained on) as samples=; 0: data-free")
    parser.add_argument("--json", help="results file, rows merged in by name (default: results/architectures.json, "
                        "with --samples results/architectures_samples.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)  # with --seed and --out: train one model, save it
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--fine-tune", nargs="?", const="train", choices=("train", "frozen"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        _train_to(args.train, args.seed, Path(args.out), args.fine_tune)
        return 0
    if args.list:
        print("\n".join(ROWS))
        return 0
    if args.child:
        print(json.dumps(run_row(ROWS[args.child], samples=args.samples)), flush=True)
        return 0
    names = args.rows.split(",") if args.rows else (QUICK if args.quick else OTHERS if args.others else list(ROWS))
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; see --list")
    out = Path(args.json or (RESULTS_WITH_SAMPLES if args.samples else RESULTS))
    old = json.loads(out.read_text()) if out.exists() else {"rows": []}
    by_name = {r["name"]: r for r in old.get("rows", [])}
    print(f"{'row':<44} {'params':>10} {'input':>11} {'pts':>9} {'fp s':>8} {'ratio':>7} {'GiB':>6} "
          f"{'verif s':>7} {'lo pir':>7} {'hi inn':>7}")
    for name in names:
        r = _spawn(name, args.timeout, args.samples)
        _print_row(r)
        by_name[name] = r
        write_rows(out, [by_name[k] for k in ROWS if k in by_name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
