"""Calibrated verdicts on the keras.applications rows of bench_architectures.py.

Uncalibrated, the verdict on a CNN is cautious: working fine-tuned copies are left
"uncertain" and some are cleared (docs/results.md, Real architectures), and the README
tells the owner to calibrate. This measures what calibration then gives, the way an
owner would do it: ``tafa.references.build`` on the owner's model and its training
images (the row's upsampled digits), ``tafa.calibrate`` at a 5% target false-positive
rate, then the row's own pirated copies and independently trained models (none of them
a reference) verified with and without the calibration.

The references are trained with the owner's own recipe (``--recipe owner``, the
default: ``fit=`` the row's training, Adam at 1e-3 in batches of 8 or 32, the row's
epochs per call), or with the library's default recipe (``--recipe default``: batches
of 64, ``--epochs`` epochs), which on a few hundred images is a few dozen steps.

    python benchmarks/calibrate_architectures.py --rows mnv2_035_32_trained,mnv2_035_96_trained

Rows are trained and cached as bench_architectures.py does; references are cached in
benchmarks/.cache/architecture-references/<row>. Results are merged by row name into
benchmarks/results/architectures_calibrated.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's tafa_tf, not an installed one
sys.path.insert(0, str(HERE))

import bench_architectures as arch  # noqa: E402

RESULTS = HERE / "results" / "architectures_calibrated.json"
REFS = HERE / ".cache" / "architecture-references"


def owner_recipe(row: arch.Row):
    """``fit`` for references.build: the row's own training (bench_architectures.make_model)."""

    def fit(model, data, seed):
        import keras

        keras.utils.set_random_seed(seed)
        return arch.train_as_row(model, row, data)

    fit.__qualname__ = f"owner_recipe.{row.name}"  # names the recipe in the references' cache key
    return fit


def calibrate_row(row: arch.Row, recipe: str, epochs: int, target_fpr: float, progress: bool) -> dict:
    """Fingerprint the row's owner, calibrate it on references built from the owner's
    assets, and verify the row's copies and innocents with and without the calibration."""
    import tafa_tf as tafa

    data = arch.digits_images(row.size, row.n_train, scale=arch._scale(row))
    owner = arch.row_model(row, 0)
    t = time.perf_counter()
    fp = arch.fingerprint_row(owner, row)
    fp_s = time.perf_counter() - t
    t = time.perf_counter()
    refs = tafa.references.build(owner, data, epochs=epochs, learning_rate=1e-3, cache_dir=REFS / row.name,
                                 fit=owner_recipe(row) if recipe == "owner" else None, progress=progress)
    refs_s = time.perf_counter() - t
    cal = tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=target_fpr)
    calibrated = fp.with_calibration(cal)
    suspects = {}

    def check(name: str, model, label: int) -> None:
        plain, with_cal = tafa.verify(fp, model), tafa.verify(calibrated, model)
        suspects[name] = {"label": label, "score": plain.score, "verdict": plain.verdict,
                          "calibrated_score": with_cal.score, "calibrated_verdict": with_cal.verdict,
                          "p_value": with_cal.p_value}
        print(f"  {'copy' if label else 'innocent':8} {name:22} {plain.score:.3f} {plain.verdict:12} "
              f"calibrated {with_cal.score:.3f} {with_cal.verdict}", flush=True)

    for name, model in arch.pirates(owner, row):
        check(name, model, 1)
    for seed in (1, 2):
        check(f"seed {seed}", arch.row_model(row, seed), 0)
    copies = [s for s in suspects.values() if s["label"] == 1]
    innocents = [s for s in suspects.values() if s["label"] == 0]
    return {"name": row.name, "recipe": recipe, "epochs": epochs, "target_fpr": target_fpr, "fingerprint_s": fp_s,
            "references_s": refs_s, "references": refs.names, "threshold": float(cal.threshold_),
            "cv_auc": float(cal.auc_), "cv_fpr": float(cal.fpr_at_threshold_), "suspects": suspects,
            "copies_accused": sum(s["calibrated_verdict"] == "PIRATED" for s in copies), "copies": len(copies),
            "innocents_accused": sum(s["calibrated_verdict"] == "PIRATED" for s in innocents),
            "innocents": len(innocents)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="comma-separated trained rows of bench_architectures.py")
    parser.add_argument("--recipe", choices=("owner", "default"), default="owner",
                        help="how the references are trained (see above)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the default recipe's training")
    parser.add_argument("--target-fpr", type=float, default=0.05)
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    names = args.rows.split(",")
    bad = [n for n in names if n not in arch.ROWS or not arch.ROWS[n].trained]
    if bad:
        parser.error(f"not trained rows of bench_architectures.py: {bad}; see bench_architectures.py --list")
    out = Path(args.json)
    by_name = {(r["name"], r["recipe"]): r for r in (json.loads(out.read_text())["rows"] if out.exists() else [])}
    for name in names:
        print(name, flush=True)
        r = calibrate_row(arch.ROWS[name], args.recipe, args.epochs, args.target_fpr, not args.no_progress)
        print(f"  threshold {r['threshold']:.3f}: copies accused {r['copies_accused']}/{r['copies']}, "
              f"innocents accused {r['innocents_accused']}/{r['innocents']}", flush=True)
        by_name[(name, args.recipe)] = r
        arch.write_rows(out, [by_name[k] for k in sorted(by_name, key=lambda k: (list(arch.ROWS).index(k[0]), k[1]))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
