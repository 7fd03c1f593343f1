"""Points grown from inputs the owner's BatchNormalization statistics describe
(``tafa.batchnorm_samples``): do full-int8 TensorFlow Lite copies of a CNN get accused,
and what do the other copies and the innocents score?

For each bench_architectures.py row (its cached models), the owner is fingerprinted
twice, n=128, seed 0, in the row's domain: data-free as usual, and with
``samples=tafa.batchnorm_samples(owner, 32, domain)`` and ``sample_fraction=1.0`` (every
point grown from one of those inputs; no data). Suspects: the owner as TensorFlow Lite
int8 (calibrated on 200 of the row's training images, as a pirate would), dynamic range
and float16; 30%-pruned; 2% weight noise; the two fine-tunes of bench_architectures.py;
the two independently trained models, as they are and as int8 TensorFlow Lite.

    python benchmarks/bench_batchnorm_samples.py [--rows mnv2_100_32_trained resnet50_32_trained]
        [--json benchmarks/results/batchnorm_samples.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tafa_tf
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_architectures

ROWS = ("mnv2_100_32_trained", "mnv2_035_32_trained", "resnet50_32_trained")


def suspects_of(row, owner, folder: Path) -> list[tuple[str, str, object]]:
    """(side, name, suspect) of one row: the owner's copies, then its innocents."""
    import bench_architectures as arch

    from adapters import load_suspect
    from tafa_tf import piracy

    calib = arch.digits_images(row.size, 200, scale=arch._scale(row))[0]

    def tflite(model, conversion: str, tag: str):
        path = folder / f"{row.name}-{tag}.tflite"
        path.write_bytes(piracy.to_tflite(model, conversion, samples=calib))
        return load_suspect(path, modelscan=False)

    out = [("pirated", f"TFLite {c}", tflite(owner, c, c)) for c in ("int8", "dynamic", "float16")]
    out += [("pirated", "prune 30%", piracy.prune(owner, 0.3)),
            ("pirated", "noise 2%", piracy.add_noise(owner, 0.02, seed=1)),
            ("pirated", "fine-tune", arch.row_model(row, 0, fine_tuned="train")),
            ("pirated", "fine-tune, BN frozen", arch.row_model(row, 0, fine_tuned="frozen"))]
    for s in (1, 2):
        model = arch.row_model(row, s)
        out += [("innocent", f"independent {s}", model), ("innocent", f"independent {s}, TFLite int8", tflite(model, "int8", f"i{s}"))]
    return out


def run_row(name: str, folder: Path) -> dict:
    import bench_architectures as arch

    import tafa_tf as tafa

    row = arch.ROWS[name]
    owner = arch.row_model(row, 0)
    domain = tafa.domains.Box(0.0, arch._scale(row))
    t0 = time.time()
    samples = tafa.batchnorm_samples(owner, 32, domain, seed=0)
    t_samples = time.time() - t0
    fps = {}
    for tag, kwargs in (("data-free", {}), ("batchnorm samples", {"samples": samples, "sample_fraction": 1.0})):
        t0 = time.time()
        fps[tag] = (tafa.fingerprint(owner, task="classification", n=row.n, domain=domain, seed=0, **kwargs), time.time() - t0)
    result = {"row": name, "samples_seconds": t_samples,
              "fingerprint_seconds": {k: v[1] for k, v in fps.items()}, "suspects": []}
    for side, label, suspect in suspects_of(row, owner, folder):
        entry = {"side": side, "suspect": label}
        for tag, (fp, _) in fps.items():
            report = tafa.verify(fp, suspect)
            entry[tag] = {"score": report.score, "verdict": report.verdict}
        result["suspects"].append(entry)
        print(f"{name:22s} {label:30s} " + "  ".join(f"{t}: {entry[t]['score']:.3f} {entry[t]['verdict']}" for t in fps),
              flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--json", default="benchmarks/results/batchnorm_samples.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_row(name, Path(tmp)) for name in args.rows]
    print(f"\n{'row':22s} {'suspect':30s} {'data-free':>22s} {'batchnorm samples':>22s}")
    for res in results:
        for e in res["suspects"]:
            cells = "".join(f"{e[t]['score']:>10.3f} {e[t]['verdict']:>11s}" for t in ("data-free", "batchnorm samples"))
            print(f"{res['row']:22s} {e['suspect']:30s} {cells}")
        print(f"{res['row']:22s} samples {res['samples_seconds']:.0f} s; fingerprint "
              + ", ".join(f"{k} {v:.0f} s" for k, v in res["fingerprint_seconds"].items()))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": results}, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
