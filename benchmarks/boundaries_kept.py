"""Did a copy keep the owner's boundaries where its answers do not show them? (white-box)

``bench_architectures.py`` scores each suspect from its answers alone, as the library
does. When a copy scores like an innocent, that leaves two explanations apart: the copy
moved the owner's boundaries away (nothing is left to find), or it kept them and its
answers hide them (the fingerprint missed what is there). This script tells them apart
with what verification never has, the suspect's insides: at each of the fingerprint's
bends (unit-boundary and intersection points) it asks whether the suspect's own unit of
the same column (same architecture, so the same column) still changes sign across the
owner's probe, x - delta*u to x + delta*u, and how curved the suspect's answers are across
that probe (``tafa_tf.bends.relative_curvature``), where the unit crossed and where it did
not. An intersection is counted by its first target unit.

    python benchmarks/boundaries_kept.py --rows vgg16_96_random,resnet50_96_random
    python benchmarks/boundaries_kept.py --rows mnv2_035_32_trained --fingerprints /tmp/fps

Each row's owner is fingerprinted as ``bench_architectures.py`` does (seed 0, data-free),
or loaded from ``--fingerprints DIR/<row>.tafa`` where that file exists (and saved there
otherwise). Suspects are the row's pirated copies and innocent models; results are merged
by row into ``results/boundaries_kept.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_architectures as arch  # noqa: E402  (puts this checkout's tafa_tf first on the path)

RESULTS = Path(__file__).resolve().parent / "results" / "boundaries_kept.json"


def unit_values(model, queries, columns, batch: int = 8):
    """The pre-activation (minus breakpoint) of column ``columns[i]`` at ``queries[i]``, per row."""
    import numpy as np
    import tensorflow as tf

    from tafa_tf.introspection import ReluNetwork

    net, out = ReluNetwork(model), []
    for i in range(0, len(queries), batch):
        cols = columns[i : i + batch]
        _, coords = net(tf.constant(queries[i : i + batch], tf.float32))
        out.append(tf.gather_nd(coords, np.stack([np.arange(len(cols)), cols], axis=1)).numpy())
    return np.concatenate(out)


def kept_boundaries(fp, model) -> dict:
    """At the fingerprint's bends: the share whose unit ``model`` still crosses within the
    probe, and ``model``'s mean relative curvature where it does and where it does not."""
    import numpy as np

    from tafa_tf.bends import relative_curvature
    from tafa_tf.outputs import canonical, model_outputs
    from tafa_tf.probes import query_rows

    bends = fp.bend_points()
    queries = fp.queries()[query_rows(bends, fp.n_points)]  # the bends' own queries, as a suspect is asked
    targets = fp.targets[bends]
    columns = np.tile(targets[:, 0] if targets.ndim > 1 else targets, 3)
    z0, zp, zm = np.split(unit_values(model, queries, columns), 3)
    crossed = np.sign(zp) != np.sign(zm)
    y = canonical(model_outputs(model, queries).astype("float64"), fp.output_kind)
    curved = relative_curvature(*np.split(y, 3))
    mean = lambda v: float(np.mean(v)) if v.size else float("nan")  # noqa: E731
    return {"bends": int(len(bends)), "crossed": int(crossed.sum()), "crossed_share": mean(crossed),
            "curvature_where_crossed": mean(curved[crossed]), "curvature_elsewhere": mean(curved[~crossed])}


def run_row(row, fingerprints: Path | None) -> dict:
    import tafa_tf as tafa

    owner = arch.row_model(row, 0)
    path = fingerprints / f"{row.name}.tafa" if fingerprints else None
    if path is not None and path.exists():
        fp = tafa.Fingerprint.load(path)
    else:
        fp = arch.fingerprint_row(owner, row)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fp.save(path)
    suspects = [("owner", owner), *arch.pirates(owner, row)]
    suspects += [(f"seed {s}", arch.row_model(row, s)) for s in (1, 2)]
    result = {}
    for name, model in suspects:
        report = tafa.verify(fp, model)
        result[name] = {**kept_boundaries(fp, model), "score": float(report.score),
                        "bend_presence": float(report.features.get("bend_presence", float("nan")))}
        print(f"{row.name:<24} {name:<22} " + " ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result[name].items()), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", required=True, help="comma-separated rows of bench_architectures.py (its --list)")
    parser.add_argument("--fingerprints", type=Path, help="folder of <row>.tafa fingerprints to reuse (or fill)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file, rows merged in by name")
    args = parser.parse_args(argv)
    names = args.rows.split(",")
    unknown = [n for n in names if n not in arch.ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; see bench_architectures.py --list")
    old = json.loads(args.json.read_text()) if args.json.exists() else {"rows": []}
    by_name = {r["name"]: r for r in old["rows"]}
    for name in names:
        by_name[name] = {"name": name, "suspects": run_row(arch.ROWS[name], args.fingerprints)}
        arch.write_rows(args.json, list(by_name.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
