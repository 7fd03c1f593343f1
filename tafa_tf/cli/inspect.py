"""``tafa inspect``: which ReLU units a model has, and what TAFA cannot see in it."""

from __future__ import annotations

import argparse
from typing import Any

from tafa_tf.cli import _common as c

EPILOG = """\
examples:
  tafa inspect owner.keras
  tafa inspect owner.keras --json | jq .coverage.n_units

exit codes: 0 inspected, 3 the model cannot be loaded or has no ReLU unit,
  2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the inspect subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "inspect",
        help="list a model's ReLU sites and what is not piecewise linear",
        description="Load your own model (Keras safe_mode stays on) and report its ReLU-family units: "
        "the sites that fingerprints are made of, and any layer that is not piecewise linear.",
        epilog=EPILOG,
    )
    p.add_argument("model", help="the model file or folder (.keras, .h5, Keras folder)")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def run(args: argparse.Namespace) -> int:
    """Print the coverage of ``args.model``."""
    import tafa_tf as tafa

    from tafa_tf.errors import UnsupportedModelError

    model = c.load_owner_model(args.model)
    with c.failing_as(c.EXIT_INPUT, f"Cannot inspect {args.model}"):
        try:
            coverage = tafa.inspect_model(model)
        except UnsupportedModelError as e:
            # no ReLU unit: the error names the kinds of layers in the way; list each one here
            if getattr(e, "coverage", None) is not None and not args.json:
                print(f"{args.model}: {model.name}, {model.count_params():,} parameters")
                print(e.coverage.summary())
            raise
    if args.json:
        c.write_json({"model": args.model, "name": model.name, "params": int(model.count_params()),
                      "coverage": coverage.to_dict()})
        return c.EXIT_OK
    print(f"{args.model}: {model.name}, {model.count_params():,} parameters")
    print(coverage.summary())
    return c.EXIT_OK
