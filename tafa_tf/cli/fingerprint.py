"""``tafa fingerprint``: the owner's model file -> a secret .tafa fingerprint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tafa_tf.cli import _common as c
from tafa_tf.outputs import TASKS

EPILOG = """\
examples:
  tafa fingerprint owner.keras                       # writes owner.tafa
  tafa fingerprint owner.keras --task classification --domain box:0,1 --n 256 -o secret/owner.tafa
  tafa fingerprint decoder.keras --task generation --domain gaussian:1.0
  tafa fingerprint owner.keras --base public_base.keras   # owner was fine-tuned from a public model
  tafa fingerprint mobilenet.keras --batchnorm-samples    # copies may ship as full-int8 TFLite
  tafa fingerprint owner.keras --json

domains: box:LOW,HIGH (inputs in [LOW, HIGH], e.g. pixels box:0,1), gaussian:STD
  (standardized features or a generator's latent). Default: box:0,1 for images,
  gaussian:1.0 otherwise.

If you fine-tuned a public model, pass it with --base: the points are then chosen
where your model departs from it, and a verification tells a copy of yours from
someone else's fine-tune of the same public model (feature owner_side).

With --batchnorm-samples every point grows from inputs fitted to your model's
BatchNormalization statistics (tafa.batchnorm_samples, still no data): a copy shipped as
full-int8 TensorFlow Lite, whose 8-bit ranges were calibrated on data, keeps your
model's answers there and not at the domain's random inputs (docs/results.md).

Keep the .tafa file secret: a pirate who knows the points can tune against them.

exit codes: 0 written, 3 the model cannot be loaded or fingerprinted or --out exists
  (use --force), 2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the fingerprint subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "fingerprint",
        help="fingerprint your trained model into a .tafa file",
        description="Synthesize boundary points of your model's ReLU units (no training data needed) "
        "and save them with your model's answers as a .tafa fingerprint.",
        epilog=EPILOG,
    )
    p.add_argument("model", help="your model file or folder (.keras, .h5, Keras folder)")
    p.add_argument("--task", default="auto", choices=("auto", *TASKS),
                   help="what the model does (default: inferred from its output layer)")
    p.add_argument("--n", type=c.positive_int, default=128,
                   help="boundary points; verification asks 3*n queries (default: 128)")
    p.add_argument("--domain", type=c.parse_domain, default=None,
                   help="input domain: box:LOW,HIGH or gaussian:STD (default: by task and input shape)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--base", default=None,
                   help="the public model yours was fine-tuned from (.keras, .h5, Keras folder), if any")
    p.add_argument("--batchnorm-samples", action="store_true",
                   help="grow every point from inputs fitted to the model's BatchNormalization statistics")
    p.add_argument("-o", "--out", default=None, help="where to write the .tafa (default: beside the model)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (its calibration is lost)")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def default_out(model_path: str) -> Path:
    """owner.keras -> owner.tafa; a folder my_model/ -> my_model.tafa beside it."""
    p = Path(model_path).expanduser()
    stem = p.stem if p.suffix.lower() in c.MODEL_SUFFIXES else p.name
    return p.with_name(stem + ".tafa")


def run(args: argparse.Namespace) -> int:
    """Fingerprint ``args.model`` and write the .tafa file."""
    import tafa_tf as tafa

    out = Path(args.out).expanduser() if args.out else default_out(args.model)
    # A .tafa may carry a calibration that took many models to fit: never replace it silently.
    if out.exists() and not args.force:
        c.fail(f"{out} exists; pass --force to replace it or --out to write elsewhere. Received: out={str(out)!r}",
               c.EXIT_INPUT)
    for path in (args.model, args.base):  # a mistyped --base is said before the owner loads
        if path:
            c.existing_model_path(path)
    model = c.load_owner_model(args.model)
    base = c.load_owner_model(args.base) if args.base else None
    with c.failing_as(c.EXIT_INPUT, f"Cannot fingerprint {args.model}"):
        grown = {}
        if args.batchnorm_samples:
            grown = {"samples": tafa.batchnorm_samples(model, domain=args.domain, seed=args.seed,
                                                       progress=c.show_progress(args)), "sample_fraction": 1.0}
        fp = tafa.fingerprint(model, task=args.task, n=args.n, domain=args.domain, seed=args.seed,
                              base=base, progress=c.show_progress(args), **grown)
        fp.save(out)
    summary = {
        "out": str(out), "task": fp.task, "points": fp.n_points, "queries": fp.n_queries,
        "domain": fp.domain.to_dict(), "input_shape": list(fp.input_shape), "owner": fp.owner,
        "coverage_complete": bool(fp.coverage.get("complete", False)), "base": args.base,
        "batchnorm_samples": bool(args.batchnorm_samples),
    }
    if args.json:
        c.write_json(summary)
        return c.EXIT_OK
    print(f"wrote {out}: {fp.task}, {fp.n_points} boundary points ({fp.n_queries} queries per verification), "
          f"domain {fp.domain!r}")
    if not summary["coverage_complete"]:
        print("note: some layers are not piecewise linear; run `tafa inspect` on the model for details")
    print("keep this file secret: a pirate who knows the points can tune against them")
    return c.EXIT_OK
