"""``tafa calibrate --model --data``: build the reference models from the owner's assets.

Kept apart from calibrate.py so that the command reads as: load, get the models (from
files, or built here), calibrate, store.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf.cli import _common as c

DATA_KEYS = (("x", "y"), ("x_train", "y_train"))


def add_flags(p: argparse.ArgumentParser) -> None:
    """The flags that build references when --positives/--negatives are not given."""
    g = p.add_argument_group("reference models built from your own assets (instead of --positives/--negatives)")
    g.add_argument("--model", default=None, help="your model (.keras, .h5, Keras folder), the one fingerprinted")
    g.add_argument("--data", default=None,
                   help="your training data: a .npz with arrays x and y (x_train/y_train also read); "
                        "a generator's images alone as x")
    g.add_argument("--base", default=None,
                   help="the public model yours was fine-tuned from, if any: the innocent references include "
                        "fine-tunes of it, and a fingerprint made without base= gets its answers (also with "
                        "--positives/--negatives)")
    g.add_argument("--n-innocent", type=c.positive_int, default=12, help="innocent references (default: 12)")
    g.add_argument("--n-pirated", type=c.positive_int, default=12, help="pirated references (default: 12)")
    g.add_argument("--epochs", type=c.positive_int, default=30,
                   help="epochs to train a reference from scratch; fine-tunes take fewer (default: 30)")
    g.add_argument("--refs-cache", default=None,
                   help="folder to keep the references in (default: <fingerprint>.refs beside the .tafa); "
                        "a rerun loads them, an interrupted build resumes")
    g.add_argument("--refs-seed", type=int, default=0, help="seed of the references (default: 0)")


def load_data(path: str) -> Any:
    """The training data in a .npz: ``(x, y)``, or ``x`` alone (a generator's images).

    Raises:
        CliError: EXIT_INPUT when the file is missing, not an .npz, or holds no x.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        c.fail(f"The data file {path} does not exist. Received: --data {path!r}", c.EXIT_INPUT)
    with c.failing_as(c.EXIT_INPUT, f"Cannot read the data {path}"):
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    for kx, ky in DATA_KEYS:
        if kx in arrays:
            return (arrays[kx], arrays[ky]) if ky in arrays else arrays[kx]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    c.fail(f"The data file {path} must hold an array x (and y for labels or targets). Received arrays: "
           f"{sorted(arrays)}", c.EXIT_INPUT)


def check_args(args: argparse.Namespace) -> bool:
    """True to build references; fail on a half-given choice."""
    given = args.positives is not None or args.negatives is not None
    if given and (args.positives is None or args.negatives is None):
        c.fail("Give both --positives and --negatives, or neither (then --model and --data build them).", c.EXIT_USAGE)
    if given:
        return False
    if not args.model or not args.data:
        c.fail("Give --positives and --negatives, or --model and --data to build reference models from your "
               "own model and training data.", c.EXIT_USAGE)
    return True


def build(args: argparse.Namespace, base: Any, progress: bool) -> tuple[Any, dict[str, Any]]:
    """Build (or load from the cache) the references the flags describe; and a summary."""
    from tafa_tf import references

    model = c.load_owner_model(args.model)
    data = load_data(args.data)
    fp_path = Path(args.fingerprint).expanduser()
    cache = Path(args.refs_cache).expanduser() if args.refs_cache else fp_path.with_name(fp_path.stem + ".refs")
    with c.failing_as(c.EXIT_INPUT, "Cannot build the reference models"):
        refs = references.build(model, data, base=base, n_innocent=args.n_innocent, n_pirated=args.n_pirated,
                                seed=args.refs_seed, cache_dir=cache, epochs=args.epochs, progress=progress)
    summary = {"positives": len(refs.positives), "negatives": len(refs.negatives), "built": refs.built,
               "loaded": refs.loaded, "cache_dir": str(refs.cache_dir), "names": refs.names,
               "warnings": refs.warnings}
    return refs, summary
