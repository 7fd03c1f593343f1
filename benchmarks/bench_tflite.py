"""TensorFlow Lite copies: does verification still flag the owner's model once a pirate
ships it as a .tflite file, float or quantized, and clear independent models so converted?

For each zoo kind and owner seed, the owner is fingerprinted (n=128) and these suspects
are loaded through ``adapters.load_suspect`` from .tflite files written by
``tafa_tf.piracy.to_tflite``: the owner in float32, float16 and dynamic-range (int8
weights) TensorFlow Lite, and with full integer quantization (int8 weights, activations,
input and output, calibrated on 200 training inputs); two independently trained models
with full integer quantization. Each gets the score and verdict ``tafa.verify`` gives,
and the score it got before session 28 ("before"): its answers read as float32 ones
(the features read across the probes kept) and kink similarity taken as it is (no floor,
``tafa_tf.verification.FLOORS``); and in session 28 ("s28"): without
``lattice_agreement`` standing in for the kinks of a quantized suspect and without
``noise_agreement`` raising the floor under a noisy one's.

    python benchmarks/bench_tflite.py [--kinds digits_mlp diabetes_mlp ...] [--seeds 0 1 2]
        [--arch mnv2_035_32_trained resnet50_32_trained ...] [--json benchmarks/results/tflite.json]

``--arch`` adds rows of benchmarks/bench_architectures.py (keras.applications backbones
under a head, their cached models): the owner (seed 0) and its two independent models
(seeds 1, 2), calibrated on 200 of the row's training images.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tafa_tf, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_architectures, for --arch

KINDS = ("digits_mlp", "digits_cnn", "diabetes_mlp", "digits_decoder", "synthetic_mlp", "cancer_mlp", "friedman_mlp")
BOX_KINDS = ("digits_mlp", "digits_cnn", "friedman_mlp")  # inputs in [0, 1], as in piracy_suite.py
INNOCENT_SEEDS = (101, 102)
CONVERSIONS = ("float32", "float16", "dynamic", "int8")


def _samples(kind: str):
    import numpy as np

    from tafa_tf import zoo

    if zoo.TASK_OF_KIND[kind] == "generation":
        return np.random.default_rng(0).standard_normal((200, zoo.LATENT_DIM)).astype("float32")
    return np.asarray(zoo.data_for(kind).x_train[:200], "float32")


def _score_before(fp, answers) -> float:
    """The default score as before session 28: answers read as float32 ones (no quantized
    reading) and no floor under kink similarity."""
    from tafa_tf import verification as V
    from tafa_tf.outputs import coarse_grid

    reading = V._read(fp, answers, fp.owner_outputs().shape[1])
    # an int8 softmax whose grid bfloat16's fits was read as labels before too
    if reading.kind == "labels" and reading.grid and reading.grid.startswith("quantized") and coarse_grid(answers) is None:
        reading = V._Reading(answers, V.output_kind(answers, fp.task, fp.owner_outputs().shape[1]))
    return V.default_score(V._features(fp, dataclasses.replace(reading, lattice=None))[0], floors=False)


def zoo_rows(kind: str, seed: int, folder: Path) -> list[dict]:
    """Rows of one zoo kind's owner trained from ``seed``."""
    import tafa_tf as tafa
    from tafa_tf import zoo

    task = zoo.TASK_OF_KIND[kind]
    domain = tafa.domains.Box(0.0, 1.0) if kind in BOX_KINDS else (None if task == "generation" else tafa.domains.Gaussian(1.0))
    owner = zoo.train(kind, seed=seed)
    fp = tafa.fingerprint(owner, task=task, n=128, domain=domain, seed=0)
    innocents = [(f"independent {s}", zoo.train(kind, seed=s)) for s in INNOCENT_SEEDS]
    return rows_of(kind, seed, fp, owner, innocents, _samples(kind), folder)


def arch_rows(name: str, folder: Path) -> list[dict]:
    """Rows of one bench_architectures.py row: its cached owner and independent models."""
    import bench_architectures as arch

    import tafa_tf as tafa

    row = arch.ROWS[name]
    owner = arch.row_model(row, 0)
    fp = tafa.fingerprint(owner, task="classification", n=row.n, domain=tafa.domains.Box(0.0, arch._scale(row)), seed=0)
    innocents = [(f"independent {s}", arch.row_model(row, s)) for s in (1, 2)]
    samples = arch.digits_images(row.size, 200, scale=arch._scale(row))[0]
    return rows_of(name, 0, fp, owner, innocents, samples, folder)


def rows_of(kind: str, seed: int, fp, owner, innocents, samples, folder: Path) -> list[dict]:
    """Verify the owner's TensorFlow Lite copies and its innocents' int8 conversions against ``fp``."""
    import tafa_tf as tafa
    from adapters import load_suspect
    from tafa_tf import piracy, verification

    suspects = [("pirated", f"TFLite {c}", owner, c) for c in CONVERSIONS]
    suspects += [("innocent", f"{name}, TFLite int8", model, "int8") for name, model in innocents]
    rows = []
    for side, name, model, conversion in suspects:
        path = folder / f"{kind}-{seed}-{len(rows)}.tflite"
        path.write_bytes(piracy.to_tflite(model, conversion, samples=samples))
        suspect = load_suspect(path, modelscan=False)
        report = tafa.verify(fp, suspect)
        answers = verification.query(fp, suspect, fp.queries())
        without = {k: v for k, v in report.features.items() if k not in ("lattice_agreement", "noise_agreement")}
        rows.append({"kind": kind, "seed": seed, "side": side, "suspect": name, "score": report.score,
                     "pirated": report.pirated, "score_before": _score_before(fp, answers),
                     "lattice_agreement": report.features.get("lattice_agreement"),
                     "noise_agreement": report.features.get("noise_agreement"),
                     "score_session28": verification.default_score(without) if report.mode == "outputs" else report.score,
                     "quantized_reading": any("quantized" in w for w in report.warnings),
                     "bytes": path.stat().st_size})
        print(f"{kind:15s} seed {seed} {name:32s} score {report.score:.3f} (before {rows[-1]['score_before']:.3f})"
              f" pirated={report.pirated}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--arch", nargs="*", default=[], help="bench_architectures.py rows to add")
    parser.add_argument("--json", default="benchmarks/results/tflite.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in args.seeds:
                rows += zoo_rows(kind, seed, Path(tmp))
        for name in args.arch:
            rows += arch_rows(name, Path(tmp))
    print(f"\n{'kind':22s} {'suspect':26s} {'score':13s} {'s28':13s} {'before':13s} flagged")
    for kind in [*args.kinds, *args.arch]:
        groups: dict[str, list[dict]] = {}
        for r in rows:
            if r["kind"] == kind:
                groups.setdefault(r["suspect"] if r["side"] == "pirated" else "independent, TFLite int8", []).append(r)
        for name, group in groups.items():
            s, f = [r["score"] for r in group], [r["score_before"] for r in group]
            t = [r["score_session28"] for r in group]
            print(f"{kind:22s} {name:26s} {min(s):.3f}-{max(s):.3f}   {min(t):.3f}-{max(t):.3f}   {min(f):.3f}-{max(f):.3f}   "
                  f"{sum(r['pirated'] is True for r in group)}/{len(group)}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    tmp_json = Path(args.json).with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps({"rows": rows}, indent=1))
    os.replace(tmp_json, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
