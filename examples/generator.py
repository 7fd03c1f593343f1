"""Fingerprint a generator (Gaussian latent -> 8x8 digit images) and verify suspects.

    python examples/generator.py [--n 128] [--out owner_generator.tafa]

The decoder's inputs are latents, so the fingerprint lives in the Gaussian's typical
shell (domain Gaussian(1.0)); its outputs are images, compared as vectors. The
pirate fine-tunes the owner's decoder on the owner's own samples. Independently trained
decoders of the same data drift toward the owner's answers (see docs/results.md, "A second,
independent zoo"): calibrate before relying on a verdict.
Exits 0 when the pirated copy scores above the innocent model.
"""

from __future__ import annotations

import argparse
import sys

import tafa_tf as tafa
from tafa_tf import zoo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=128, help="fingerprint points")
    parser.add_argument("--out", default="owner_generator.tafa", help="where to save the fingerprint")
    args = parser.parse_args(argv)

    data = zoo.data_for("digits_decoder")
    owner = zoo.train("digits_decoder", seed=0)
    fp = tafa.fingerprint(owner, task="generation", n=args.n, domain=tafa.domains.Gaussian(1.0))
    fp.save(args.out)
    print(f"fingerprint: {fp.n_points} points -> {args.out}")

    pirated = zoo.fine_tune(owner, "digits_decoder", data, epochs=3, learning_rate=1e-3)
    innocent = zoo.train("digits_decoder", seed=1)
    scores = {}
    for name, model in (("pirated (fine-tuned)", pirated), ("innocent (seed 1)", innocent)):
        report = tafa.verify(fp, model)
        scores[name] = report.score
        print(f"{name:<22} {report}")
    return 0 if scores["pirated (fine-tuned)"] > scores["innocent (seed 1)"] else 1


if __name__ == "__main__":
    sys.exit(main())
