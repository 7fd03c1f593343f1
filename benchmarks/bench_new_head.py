"""Suspects under a new output layer of another width: the owner's network transferred to a
task of the pirate's own (verification mode "new_head", tafa_tf.piracy.new_head).

For each zoo of the piracy benchmark (its owner, a fine-tune of a public base, and its
innocent models, built or loaded from benchmarks/.cache as piracy_suite.py does) and each
new task on the attacker's data (classifiers: digits 0-4, five outputs, and parity, two;
the regressor: two and three targets), the suspects are:

- copies: the owner's network frozen under the new layer (Keras's transfer recipe), then
  also fine-tuned in every layer for 10 epochs at 1e-5, 1e-4 and 1e-3;
- innocents: the same recipes (frozen, and fine-tuned at 1e-4) on three independently
  trained models, three fine-tunes of the owner's public base by others, and the public
  base itself: a new head on the very hidden layers the owner started from.

Each is verified against the owner's fingerprint with and without ``base=``. Prints, per
zoo kind and fingerprint, the lowest and highest copy score per recipe, the highest
innocent score, the AUC of all copies against all innocents, and the verdicts; writes
every score and feature to --out (JSON).

    python benchmarks/bench_new_head.py [--kinds digits_mlp diabetes_mlp digits_cnn] [--zoo-seed 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

COPY_RECIPES = {"frozen": 0.0, "tuned 1e-5": 1e-5, "tuned 1e-4": 1e-4, "tuned 1e-3": 1e-3}
INNOCENT_RECIPES = ("frozen", "tuned 1e-4")


def new_tasks(zoo, owner) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """The pirate's tasks on the attacker's data: (x, y, outputs) by name."""
    x, y = zoo.attacker_data(owner)
    if zoo.task == "classification":
        few = y < 5
        return {"5 classes": (x[few], y[few], 5), "parity": (x, y % 2, 2)}
    t = np.asarray(y, dtype="float32").reshape(-1)
    cols = [t, t**2 - np.mean(t**2), np.abs(t) - np.mean(np.abs(t))]
    return {"2 targets": (x, np.stack(cols[:2], 1), 2), "3 targets": (x, np.stack(cols, 1), 3)}


def suspects(zoo, owner, innocents, task: tuple) -> list[tuple[str, str, object]]:
    """(role, name, model) of every new-head suspect for one new task."""
    from tafa_tf import piracy

    x, y, k = task

    def head(model, rate: float, seed: int):
        return piracy.new_head(model, x, y, k, seed=seed, fine_tune_epochs=10 if rate else 0,
                               fine_tune_rate=rate or 1e-5)

    out = [("copy", f"owner, {r}", head(owner, rate, 1)) for r, rate in COPY_RECIPES.items()]
    for i, (name, model) in enumerate(innocents):
        for r in INNOCENT_RECIPES:
            out.append(("innocent", f"{name}, {r}", head(model, COPY_RECIPES[r], 10 + i)))
    return out


def run_zoo(kind: str, zoo_seed: int, n: int, cache: Path) -> list[dict]:
    import tafa_tf as tafa
    from piracy_suite import HARD, Zoo

    zoo = Zoo(kind, cache, quick=False, zoo_seed=zoo_seed)
    owner, _, neg = zoo.build()
    innocents = [*neg["independent"][:3], *neg[HARD][:3], ("public base", zoo.base)]
    fps = {"base": tafa.fingerprint(owner, task=zoo.task, n=n, domain=zoo._domain(), seed=0, base=zoo.base),
           "no base": tafa.fingerprint(owner, task=zoo.task, n=n, domain=zoo._domain(), seed=0)}
    rows = []
    for task_name, task in new_tasks(zoo, owner).items():
        for role, name, model in suspects(zoo, owner, innocents, task):
            for fp_name, fp in fps.items():
                r = tafa.verify(fp, model)
                rows.append({"kind": kind, "zoo": zoo_seed, "task": task_name, "fingerprint": fp_name, "role": role,
                             "suspect": name, "score": r.score, "verdict": r.verdict, "mode": r.mode,
                             "features": r.features})
        print(f"{kind} zoo {zoo_seed} {task_name}: done", flush=True)
    return rows


def summary(rows: list[dict]) -> list[str]:
    from sklearn.metrics import roc_auc_score

    lines = [f"{'kind':<12} {'fingerprint':<8} {'copies: frozen / 1e-5 / 1e-4 / 1e-3 (min-max)':<56} "
             f"{'innocents max':<14} {'AUC':<6} verdicts (copies; innocents)"]
    for kind in sorted({r["kind"] for r in rows}):
        for fp_name in ("base", "no base"):
            sel = [r for r in rows if r["kind"] == kind and r["fingerprint"] == fp_name]
            if not sel:
                continue
            cells = []
            for recipe in COPY_RECIPES:
                s = [r["score"] for r in sel if r["role"] == "copy" and r["suspect"].endswith(recipe)]
                cells.append(f"{min(s):.2f}-{max(s):.2f}")
            pos = [r["score"] for r in sel if r["role"] == "copy"]
            neg = [r["score"] for r in sel if r["role"] == "innocent"]
            auc = roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)

            def count(role: str) -> str:
                v = [r["verdict"] for r in sel if r["role"] == role]
                return "/".join(f"{v.count(w)} {w}" for w in ("PIRATED", "uncertain", "not pirated") if v.count(w))

            lines.append(f"{kind:<12} {fp_name:<8} {' / '.join(cells):<56} {max(neg):<14.2f} {auc:<6.3f} "
                         f"{count('copy')}; {count('innocent')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", nargs="+", default=["digits_mlp", "diabetes_mlp", "digits_cnn"])
    p.add_argument("--zoo-seed", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--cache", default=str(HERE / ".cache"))
    p.add_argument("--out", default=str(HERE / "results" / "new_head.json"))
    args = p.parse_args(argv)
    rows = []
    for kind in args.kinds:
        for s in args.zoo_seed:
            rows += run_zoo(kind, s, args.n, Path(args.cache))
    lines = summary(rows)
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"summary": lines, "rows": rows}, indent=1, default=float) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
