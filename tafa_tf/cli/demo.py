"""``tafa demo``: the embedded worked example (see :mod:`tafa_tf.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

from tafa_tf.cli import _common as c

EPILOG = """\
examples:
  tafa demo                 # about a minute on two cores; prints a table of suspects
  tafa demo --json
  tafa demo --innocents 4 --n 256 --seed 3

What it does: trains a small digits classifier (the owner), makes pirated copies of
it (fine-tuned, pruned, int8-quantized, noised, neurons permuted, in an ensemble) and innocent models
(other seeds), fingerprints the owner without data, and verifies every suspect.
Nothing is downloaded: the data ship with scikit-learn.

exit codes: 0 the demo ran (read the table for the verdicts), 2 usage error,
  1 internal error.
"""


def register(sub: Any) -> None:
    """Add the demo subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "demo",
        help="run the worked example: catch pirated copies of a digits classifier",
        description="Train an owner model, pirate it, fingerprint it and verify pirated and innocent suspects.",
        epilog=EPILOG,
    )
    p.add_argument("--n", type=c.int_between(8), default=128, help="fingerprint points, at least 8 (default: 128)")
    p.add_argument("--seed", type=int, default=0, help="the owner's seed (default: 0)")
    p.add_argument("--innocents", type=c.int_between(1, 10), default=2,
                   help="independently trained innocent models, ~5 s each (default: 2, at most 10)")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its table (or JSON)."""
    from tafa_tf import demo

    c.import_tensorflow()
    result = demo.run_demo(n=args.n, seed=args.seed, innocents=args.innocents, progress=c.show_progress(args))
    if args.json:
        c.write_json(result.to_dict())
    else:
        print(demo.format_table(result))
    return c.EXIT_OK
