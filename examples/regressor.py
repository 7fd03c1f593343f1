"""Fingerprint a regressor (scikit-learn diabetes) and verify a pruned, fine-tuned copy.

    python examples/regressor.py [--n 128] [--out owner_regressor.tafa]

A regressor has no labels to compare, which is where TAFA's task-agnostic features
matter: outputs, slopes and bends at points on (intersections of) the owner's ReLU
boundaries. Inputs are standardized features, so the domain is Gaussian(1.0).
Exits 0 when the pirated copy scores above the innocent model.
"""

from __future__ import annotations

import argparse
import sys

import tafa_tf as tafa
from tafa_tf import piracy, zoo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128, help="fingerprint points")
    parser.add_argument("--out", default="owner_regressor.tafa", help="where to save the fingerprint")
    args = parser.parse_args(argv)

    owner = zoo.train("diabetes_mlp", seed=0)
    fp = tafa.fingerprint(owner, task="regression", n=args.n, domain=tafa.domains.Gaussian(1.0))
    fp.save(args.out)
    print(f"fingerprint: {fp.n_points} points -> {args.out}")

    data = zoo.data_for("diabetes_mlp")
    pirated = piracy.prune(owner, 0.3, fine_tune_data=(data.x_train, data.y_train), epochs=2)
    innocent = zoo.train("diabetes_mlp", seed=1)
    scores = {}
    for name, model in (("pirated (pruned + tuned)", pirated), ("innocent (seed 1)", innocent)):
        report = tafa.verify(fp, model)
        scores[name] = report.score
        print(f"{name:<26} {report}")
        print(" " * 27 + ", ".join(f"{k} {v:.3f}" for k, v in report.features.items()))
    return 0 if scores["pirated (pruned + tuned)"] > scores["innocent (seed 1)"] else 1


if __name__ == "__main__":
    sys.exit(main())
