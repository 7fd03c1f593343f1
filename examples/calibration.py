"""Calibrate a fingerprint on held-out pirated and innocent models.

    python examples/calibration.py [--out owner_calibrated.tafa] [--target-fpr 0.05]

Positives are pirated variants of the owner made with tafa_tf.piracy; negatives are
innocent models: two independently trained models and cheap variants of them (a
noised or pruned copy of an innocent model is still innocent with respect to the
owner). The calibration picks a threshold at the target false-positive rate,
reports a cross-validated AUC and TPR, and is stored in the .tafa file. A real
calibration wants many more models (20+ innocents for a 5% FPR): this one is small
so that it runs in about a minute.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import tafa_tf as tafa
from tafa_tf import piracy, zoo

KIND = "digits_mlp"


def variants(model, seed: int) -> list:
    """Cheap copies of ``model``: they keep whatever relation ``model`` has to the owner."""
    return [
        piracy.quantize(model, "float16"),
        piracy.quantize(model, "int8"),
        piracy.add_noise(model, 0.03, seed=seed),
        piracy.add_noise(model, 0.08, seed=seed),
        piracy.prune(model, 0.2),
        piracy.permute_neurons(model, seed=seed),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="owner_calibrated.tafa", help="where to save the calibrated fingerprint")
    parser.add_argument("--target-fpr", type=float, default=0.05, help="largest acceptable false-positive rate")
    parser.add_argument("--n", type=int, default=128, help="fingerprint points")
    args = parser.parse_args(argv)

    owner = zoo.train(KIND, seed=0)
    fp = tafa.fingerprint(owner, task="classification", n=args.n, domain=tafa.domains.Box(0.0, 1.0))
    innocents = [zoo.train(KIND, seed=s) for s in (1, 2)]
    positives = variants(owner, seed=1)
    negatives = innocents + [v for i, m in enumerate(innocents) for v in variants(m, seed=10 + i)]

    cal = tafa.calibrate(fp, positives, negatives, target_fpr=args.target_fpr, cv=3)
    print(f"calibrated on {len(positives)} pirated and {len(negatives)} innocent models:")
    print(f"  AUC {cal.auc:.3f}, TPR {cal.tpr_at_fpr:.3f} at FPR {args.target_fpr:g}, threshold {cal.threshold:.4f}")
    fp.with_calibration(cal).save(args.out)
    fp = tafa.Fingerprint.load(args.out)

    # Held out from calibration: a fine-tuned pirate and a variant of an innocent model.
    data = zoo.data_for(KIND)
    held_out = {
        "pirated (fine-tuned, held out)": piracy.fine_tune(owner, data.x_train, data.y_train, epochs=3),
        "innocent (pruned seed 2, held out)": piracy.compose(innocents[1], partial(piracy.prune, fraction=0.4)),
    }
    scores = {}
    for name, model in held_out.items():
        report = tafa.verify(fp, model)
        scores[name] = report.score
        print(f"{name:<36} {report}")
    return 0 if scores["pirated (fine-tuned, held out)"] > scores["innocent (pruned seed 2, held out)"] else 1


if __name__ == "__main__":
    sys.exit(main())
