"""Fingerprint a digits classifier, then tell a pirated copy from an innocent model.

    python examples/classifier.py [--n 128] [--out owner.tafa]

Trains the owner (scikit-learn digits, ~5 s), fingerprints it without data, makes a
pirated copy (fine-tuned on the owner's data, then int8-quantized) and an innocent
model (another seed), and verifies both. Exits 0 when the pirated copy scores above
the innocent model.
"""

from __future__ import annotations

import argparse
import sys

import tafa_tf as tafa
from tafa_tf import piracy, zoo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128, help="fingerprint points")
    parser.add_argument("--out", default="owner_classifier.tafa", help="where to save the fingerprint")
    args = parser.parse_args(argv)

    owner = zoo.train("digits_mlp", seed=0)
    fp = tafa.fingerprint(owner, task="classification", n=args.n, domain=tafa.domains.Box(0.0, 1.0))
    fp.save(args.out)  # keep it secret: a pirate who knows the points can tune against them
    print(f"fingerprint: {fp.n_points} points -> {args.out}")

    data = zoo.data_for("digits_mlp")
    pirated = piracy.compose(
        owner,
        lambda m: piracy.fine_tune(m, data.x_train, data.y_train, epochs=3, learning_rate=1e-3),
        lambda m: piracy.quantize(m, "int8"),
    )
    innocent = zoo.train("digits_mlp", seed=1)
    fp = tafa.Fingerprint.load(args.out)
    scores = {}
    for name, model in (("pirated (fine-tune + int8)", pirated), ("innocent (seed 1)", innocent)):
        report = tafa.verify(fp, model)
        scores[name] = report.score
        print(f"{name:<28} {report}")
    return 0 if scores["pirated (fine-tune + int8)"] > scores["innocent (seed 1)"] else 1


if __name__ == "__main__":
    sys.exit(main())
