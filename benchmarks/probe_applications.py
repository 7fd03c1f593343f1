"""Does fingerprinting work, or refuse cleanly, on every kind of keras.applications backbone?

A quick sweep beside bench_architectures.py (which scores five copies per row): each
backbone is built with ``weights=None`` (nothing downloaded) under
``GlobalAveragePooling2D + Dense(10, softmax)``, trained 2 epochs on 512 digits upsampled
to its smallest input size (BatchNormalization momentum 0.9, as the benchmark's trained
rows), then fingerprinted with 32 points in the default domain. Reported per backbone:
coverage (complete, or what is not piecewise linear), points, seconds, the score of a
float16 copy and of the same architecture trained from another seed, peak RSS; or the
error it was refused with. Each backbone runs in its own process.

    python benchmarks/probe_applications.py                        # every backbone below
    python benchmarks/probe_applications.py --only Xception ResNet101
    python benchmarks/probe_applications.py --json out.json        # default: results/applications.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_architectures import write_rows  # noqa: E402  (after the log level is set)

RESULTS = Path(__file__).resolve().parent / "results" / "applications.json"
# (class, input size, keyword arguments, trained): the smallest size each accepts
BACKBONES = [
    ("MobileNetV3Small", 32, {"minimalistic": True}, True),
    ("MobileNetV3Small", 32, {}, True),  # hard-swish and squeeze-excite: a partial fingerprint
    ("MobileNet", 32, {}, True),
    ("ResNet50V2", 32, {}, True),
    ("ResNet101", 32, {}, True),
    ("VGG19", 32, {}, False),  # no BatchNormalization: trained from scratch at 1e-3 its ReLUs die
    ("DenseNet169", 32, {}, True),
    ("NASNetMobile", 32, {}, True),
    ("Xception", 71, {}, True),
    ("InceptionV3", 75, {}, True),
    ("InceptionResNetV2", 75, {}, True),
    ("EfficientNetB0", 32, {}, True),  # SiLU: refused
    ("ConvNeXtTiny", 32, {}, False),  # GELU, LayerNormalization: refused
]


def _model(arch: str, size: int, kwargs: dict, trained: bool, seed: int, data):
    import keras

    from bench_architectures import fast_moving_statistics

    keras.utils.set_random_seed(seed)
    backbone = getattr(keras.applications, arch)(input_shape=(size, size, 3), include_top=False, weights=None, **kwargs)
    model = keras.Sequential([keras.Input((size, size, 3)), backbone, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
    if trained:
        fast_moving_statistics(model)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        model.fit(*data, epochs=2, batch_size=32, verbose=0)
    return model


def probe(arch: str, size: int, kwargs: dict, trained: bool) -> dict:
    """One backbone's line of the table."""
    import keras

    import tafa_tf as tafa
    from bench_architectures import digits_images
    from tafa_tf.errors import UnsupportedModelError

    # MobileNetV3's own preprocessing takes pixels in [0, 255]
    data = digits_images(size, 512, scale=255.0 if arch.startswith("MobileNetV3") else 1.0)
    out = {"arch": arch, "size": size, "kwargs": kwargs, "trained": trained}
    model = _model(arch, size, kwargs, trained, 0, data)
    out["params"] = int(model.count_params())
    t = time.perf_counter()
    try:
        cov = tafa.inspect_model(model)
        out["not_piecewise_linear"] = len(cov.non_piecewise_linear)
        fp = tafa.fingerprint(model, n=32)
    except UnsupportedModelError as e:
        return {**out, "refused": str(e), "seconds": time.perf_counter() - t}
    out.update(seconds=time.perf_counter() - t, points=fp.n_points, domain=repr(fp.domain))
    half = keras.models.clone_model(model)
    half.set_weights([w.astype("float16").astype("float32") for w in model.get_weights()])
    out["float16"] = tafa.verify(fp, half).score
    out["innocent"] = tafa.verify(fp, _model(arch, size, kwargs, trained, 1, data)).score
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="backbone class names")
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per backbone")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        out = probe(*BACKBONES[args.child])
        out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    rows = []
    for i, (arch, size, kwargs, trained) in enumerate(BACKBONES):
        if args.only and arch not in args.only:
            continue
        try:
            run = subprocess.run([sys.executable, __file__, "--child", str(i)], capture_output=True, text=True,
                                 timeout=args.timeout)
            lines = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
            row = json.loads(lines[-1][7:]) if lines else {"arch": arch, "error": run.stderr.strip()[-600:]}
        except subprocess.TimeoutExpired:
            row = {"arch": arch, "error": f"timed out after {args.timeout:.0f} s"}
        rows.append(row)
        what = row.get("refused") or row.get("error")
        print(f"{arch:<18} {json.dumps(row.get('kwargs', {})):<22} "
              + (f"refused: {what[:110]}" if what else
                 f"{row['points']:>3} pts {row['seconds']:6.1f} s  float16 {row['float16']:.3f}  innocent "
                 f"{row['innocent']:.3f}  {row['peak_rss_gib']:.2f} GiB  not PL: {row['not_piecewise_linear']}"),
              flush=True)
    write_rows(Path(args.json), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
