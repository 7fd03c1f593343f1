"""The piracy benchmark: TAFA against three baselines, per task and per piracy family.

For each task (a digits classifier, a diabetes regressor, a digits decoder) the owner
is a fine-tune of a public base model, as in practice. The zoo of suspects (results
and reading in docs/results.md):

- pirated (positives): fine-tunes at small and large learning rates, magnitude pruning
  with and without fine-tuning, float16 and int8 quantization, weight noise, neuron
  permutation and positive rescaling, distillation into a fresh student;
- innocent (negatives): same architecture with other seeds, another architecture,
  another data split, and the hard case: independent fine-tunes of the same base.

Every method gets the same query budget and is scored in the same run:

- tafa: tafa.verify's uncalibrated score on data-free boundary points, fingerprinted
  with the public base model the owner fine-tuned (``base=``: points where the owner
  departs from the base, feature ``owner_side``). No data is used;
- no base: the same without the base model (the model alone);
- tafa+: tafa plus 32 public samples as seeds for half of the points (``samples=``);
- tafa cv: tafa's features combined by a logistic regression fitted
  leave-one-model-out over the zoo, as a user's calibration would;
- random: output similarity on random inputs from the same domain;
- benign (ModelDiff-like): output similarity on held-out benign data;
- ipguard (IPGuard-like, classifiers): label agreement at points pushed onto the
  owner's decision boundary from benign data, probed on both sides.

Models are cached in benchmarks/.cache so reruns are quick. Prints one table (rows
task x family, columns method, cells AUC / TPR at 1% FPR), writes piracy_suite.json and
one ROC plot per task (roc_<task>.png, not committed) to --out (default benchmarks/results).

    python benchmarks/piracy_suite.py [--tasks classification regression generation] [--n 128]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
KIND_OF_TASK = {"classification": "digits_mlp", "regression": "diabetes_mlp", "generation": "digits_decoder"}
HARD = "same-base fine-tune"
METHODS = ("tafa", "no base", "tafa+", "tafa cv", "tafa+ cv", "random", "benign", "ipguard")
N_PUBLIC = 32  # public samples the owner may add (tafa+): the first of the held-out split


# -- the zoo ---------------------------------------------------------------------------------


class Zoo:
    """Builds (or loads from the cache) every model of one task's benchmark."""

    def __init__(self, kind: str, cache: Path, quick: bool, zoo_seed: int = 0):
        from tafa_tf import zoo

        self.kind = kind
        self.task = zoo.TASK_OF_KIND[kind]
        # zoo_seed 0 is the reference zoo; any other gives an independent one (data split and every model)
        self.zs = int(zoo_seed)
        self.cache = cache / (kind if self.zs == 0 else f"{kind}-zoo{self.zs}")
        self.cache.mkdir(parents=True, exist_ok=True)
        self.quick = quick
        data = zoo.data_for(kind, seed=self.zs)
        half = len(data.x_train) // 2
        self.data = data
        self.base_xy = (data.x_train[:half], data.y_train[:half])
        self.own_xy = (data.x_train[half:], data.y_train[half:])

    def _cached(self, name: str, build: Callable[[], Any]):
        import keras

        path = self.cache / f"{name}.keras"
        if path.exists():
            return keras.saving.load_model(path, compile=False)
        model = build()
        tmp = path.with_suffix(".tmp.keras")
        model.save(tmp)
        os.replace(tmp, path)
        return model

    def _tune(self, model, xy, *, seed: int, epochs: int, lr: float):
        from tafa_tf import zoo

        return zoo.fine_tune(model, self.kind, zoo.Data(xy[0], xy[1], xy[0], xy[1]), epochs=epochs,
                             learning_rate=lr, seed=seed)

    def _pirate_xy(self, owner):
        if self.kind == "digits_decoder":
            z = np.random.default_rng(11).standard_normal((1024, 8)).astype("float32")
            return z, np.asarray(owner(z))
        return self.own_xy

    def _domain(self):
        import tafa_tf as tafa

        return tafa.domains.Box(0.0, 1.0) if self.task == "classification" else tafa.domains.Gaussian(1.0)

    def build(self) -> tuple[Any, dict[str, list[tuple[str, Any]]], dict[str, list[tuple[str, Any]]]]:
        from tafa_tf import piracy, zoo

        kind = self.kind
        o = 1000 * self.zs  # offsets every model seed in an independent zoo
        base = self._cached("base", lambda: zoo.train(kind, seed=o + 100, data=zoo.Data(*self.base_xy, *self.base_xy)))
        self.base = base
        owner = self._cached("owner", lambda: self._tune(base, self.own_xy, seed=o, epochs=15, lr=2e-3))
        x, y = self._pirate_xy(owner)
        k = 1 if self.quick else 2
        pos: dict[str, list[tuple[str, Any]]] = {
            "fine-tune": [
                *[(f"ft-small-{s}", lambda s=s: piracy.fine_tune(owner, x, y, epochs=3, learning_rate=1e-4, seed=o + s)) for s in range(k)],
                *[(f"ft-large-{s}", lambda s=s: piracy.fine_tune(owner, x, y, epochs=10, learning_rate=3e-3, seed=o + s)) for s in range(k)],
            ],
            "pruning": [
                ("prune-30", lambda: piracy.prune(owner, 0.3)),
                ("prune-50", lambda: piracy.prune(owner, 0.5)),
                ("prune-50-ft", lambda: piracy.prune(owner, 0.5, fine_tune_data=(x, y), epochs=3)),
                ("prune-70-ft", lambda: piracy.prune(owner, 0.7, fine_tune_data=(x, y), epochs=3)),
            ],
            "quantization": [
                ("fp16", lambda: piracy.quantize(owner, "float16")),
                ("int8-channel", lambda: piracy.quantize(owner, "int8")),
                ("int8-tensor", lambda: piracy.quantize(owner, "int8", per_channel=False)),
            ],
            "noise": [(f"noise-{p}", lambda p=p: piracy.add_noise(owner, p / 100, seed=o + p)) for p in (1, 2, 5)],
            "permute/rescale": [
                ("permute", lambda: piracy.permute_neurons(owner, seed=o + 1)),
                ("rescale", lambda: piracy.rescale_neurons(owner, seed=o + 2)),
                ("permute+rescale", lambda: piracy.rescale_neurons(piracy.permute_neurons(owner, seed=o + 3), seed=o + 4)),
            ],
            "distillation": [
                (f"distill-{s}", lambda s=s: piracy.distill(owner, x=np.concatenate([x, self.data.x_test]) if self.kind != "digits_decoder" else None,
                                                       domain=self._domain() if self.kind == "digits_decoder" else None,
                                                       epochs=30, seed=o + s))
                for s in range(k + 1)
            ],
        }
        n_indep = 3 if self.quick else 5
        neg: dict[str, list[tuple[str, Any]]] = {
            "independent": [(f"indep-{s}", lambda s=s: zoo.train(kind, seed=o + s)) for s in range(1, n_indep + 1)],
            "other data split": [
                (f"split-{s}", lambda s=s: zoo.train(kind, seed=o + s + 50, data=zoo.data_for(kind, seed=o + s)))
                for s in (1, 2)
            ],
            HARD: [(f"samebase-{s}", lambda s=s: self._tune(base, self._other_half(s), seed=o + s + 20, epochs=15, lr=2e-3))
                   for s in range(1, n_indep + 1)],
        }
        built_pos = {f: [(n, self._cached(f"pos-{n}", b)) for n, b in items] for f, items in pos.items()}
        built_neg = {f: [(n, self._cached(f"neg-{n}", b)) for n, b in items] for f, items in neg.items()}
        return owner, built_pos, built_neg

    def _other_half(self, s: int):
        """A different random half of the training data: another team's fine-tuning set."""
        rng = np.random.default_rng(1000 + s + 1000 * self.zs)
        idx = rng.permutation(len(self.data.x_train))[: len(self.data.x_train) // 2]
        return self.data.x_train[idx], self.data.y_train[idx]


# -- baselines -------------------------------------------------------------------------------


def _outputs(model, x: np.ndarray) -> np.ndarray:
    from tafa_tf.outputs import model_outputs

    return model_outputs(model, x).reshape(len(x), -1)


def _similarity(task: str, owner_y: np.ndarray, sus_y: np.ndarray) -> float:
    from tafa_tf.outputs import canonical
    from tafa_tf.verification import _relative_similarity

    kind = "logits" if task == "classification" else "values"
    o, s = canonical(owner_y, kind), canonical(sus_y, kind)
    sim = _relative_similarity(s, o, o - o.mean(axis=0))
    if task == "classification":
        sim = 0.5 * (sim + float(np.mean(o.argmax(1) == s.argmax(1))))
    return sim


class Baseline:
    """Scores a suspect by comparing its outputs with the owner's at fixed inputs."""

    def __init__(self, name: str, task: str, owner, x: np.ndarray, label_only: bool = False):
        self.name, self.task, self.x, self.label_only = name, task, x, label_only
        self.owner_y = _outputs(owner, x)

    def score(self, suspect) -> float:
        y = _outputs(suspect, self.x)
        if self.label_only:
            return float(np.mean(self.owner_y.argmax(1) == y.argmax(1)))
        return _similarity(self.task, self.owner_y, y)


def ipguard_points(owner, x_benign: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """IPGuard-like: benign inputs pushed onto the owner's decision boundary, probed on both sides."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n = budget // 2
    x = tf.constant(x_benign[rng.choice(len(x_benign), size=n, replace=len(x_benign) < n)].astype("float32"))
    for _ in range(30):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = owner(x, training=False)
            top2 = tf.math.top_k(logits, 2).values
            margin = top2[:, 0] - top2[:, 1]
            total = tf.reduce_sum(margin)
        g = tape.gradient(total, x)
        step = margin[:, None] * g / (tf.reduce_sum(g * g, axis=1, keepdims=True) + 1e-12)
        x = tf.clip_by_value(x - step, 0.0, 1.0)
    g = g / (tf.norm(g, axis=1, keepdims=True) + 1e-12)
    pts = np.concatenate([(x + 0.02 * g).numpy(), (x - 0.02 * g).numpy()])
    return np.clip(pts, 0.0, 1.0)


def _leave_one_out(features: dict[str, dict[str, float]], sides: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Scores of a logistic combiner of the features, each model scored by a fit without it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = [n for side in ("pos", "neg") for n in sides[side]]
    keys = sorted(features[names[0]])
    X = np.array([[features[n][k] for k in keys] for n in names])
    y = np.array([1] * len(sides["pos"]) + [0] * len(sides["neg"]))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))
    p = cross_val_predict(model, X, y, cv=LeaveOneOut(), method="predict_proba")[:, 1]
    out: dict[str, dict[str, float]] = {"pos": {}, "neg": {}}
    for n, label, score in zip(names, y, p):
        out["pos" if label else "neg"][n] = float(score)
    return out


# -- metrics ---------------------------------------------------------------------------------


def auc_and_tpr(pos: list[float], neg: list[float], fpr_target: float = 0.01) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    auc = float(roc_auc_score(y, s))
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= fpr_target
    return auc, float(tpr[ok].max()) if ok.any() else 0.0


# -- the run ---------------------------------------------------------------------------------


def run_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    import tafa_tf as tafa

    kind = KIND_OF_TASK[task]
    t0 = time.time()
    z = Zoo(kind, Path(args.cache), args.quick, args.zoo_seed)
    owner, pos, neg = z.build()
    t_zoo = time.time() - t0
    domain = z._domain()
    fp = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed, base=z.base)
    fp_alone = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed)
    budget = fp.n_queries
    rng = np.random.default_rng(args.seed + 7)
    public = z.data.x_test[:N_PUBLIC] if task != "generation" else rng.standard_normal((N_PUBLIC, *fp.input_shape)).astype("float32")
    fp_plus = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed, samples=public, base=z.base)
    features: dict[str, dict[str, dict[str, float]]] = {"tafa": {}, "tafa+": {}}

    def scorer(name: str, fingerprint) -> Callable[[Any], float]:
        def score(model) -> float:
            report = tafa.verify(fingerprint, model)
            features[name][model.name + str(id(model))] = report.features
            return report.score
        return score

    methods: dict[str, Callable[[Any], float]] = {
        "tafa": scorer("tafa", fp),
        "no base": lambda m: tafa.verify(fp_alone, m).score,
        "tafa+": scorer("tafa+", fp_plus),
    }
    methods["random"] = Baseline("random", task, owner, domain.sample(rng, (budget, *fp.input_shape))).score
    if task == "generation":
        benign = rng.standard_normal((budget, *fp.input_shape)).astype("float32")  # a decoder's benign inputs are latents
    else:
        benign = z.data.x_test[rng.choice(len(z.data.x_test), size=budget, replace=len(z.data.x_test) < budget)]
    methods["benign"] = Baseline("benign", task, owner, benign).score
    if task == "classification":
        methods["ipguard"] = Baseline("ipguard", task, owner, ipguard_points(owner, z.data.x_test, budget, args.seed), label_only=True).score

    scores: dict[str, dict[str, dict[str, float]]] = {m: {"pos": {}, "neg": {}} for m in methods}
    family_of: dict[str, str] = {}
    from tqdm.auto import tqdm

    suspects = [("pos", f, n, m) for f, items in pos.items() for n, m in items] + [
        ("neg", f, n, m) for f, items in neg.items() for n, m in items
    ]
    for side, fam, name, model in tqdm(suspects, desc=f"{task}: scoring", disable=args.no_progress, file=sys.stderr):
        family_of[name] = fam
        for meth, fn in methods.items():
            scores[meth][side][name] = float(fn(model))
        for f in features.values():
            f[name] = f.pop(model.name + str(id(model)))
    for name in ("tafa", "tafa+"):
        scores[f"{name} cv"] = _leave_one_out(features[name], scores[name])
        methods[f"{name} cv"] = None  # type: ignore[assignment]

    rows = []
    fams = list(pos) + ["all pirated vs " + HARD]
    for fam in fams:
        row = {"task": task, "family": fam}
        for meth in methods:
            if fam.startswith("all pirated"):
                p = list(scores[meth]["pos"].values())
                n = [v for k, v in scores[meth]["neg"].items() if family_of[k] == HARD]
            else:
                p = [v for k, v in scores[meth]["pos"].items() if family_of[k] == fam]
                n = list(scores[meth]["neg"].values())
            auc, tpr = auc_and_tpr(p, n)
            row[meth] = {"auc": auc, "tpr_at_1pct_fpr": tpr}
        rows.append(row)
    if args.plot:
        _plot(task, scores, Path(args.out) / f"roc_{task}.png")
    return {"task": task, "rows": rows, "scores": scores, "families": family_of, "zoo_seconds": t_zoo,
            "queries_per_suspect": budget, "n_points": fp.n_points}


def _plot(task: str, scores: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for meth, s in scores.items():
        p, n = list(s["pos"].values()), list(s["neg"].values())
        fpr, tpr, _ = roc_curve(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n])
        auc, _ = auc_and_tpr(p, n)
        ax.plot(fpr, tpr, label=f"{meth} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(f"{task}: all pirated vs all innocent")
    ax.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'task':<15} {'piracy family':<34}" + "".join(f"{m:>13}" for m in METHODS)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = "".join(
            f"{(format(r[m]['auc'], '.2f') + ' / ' + format(r[m]['tpr_at_1pct_fpr'], '.2f')) if m in r else '-':>13}"
            for m in METHODS
        )
        lines.append(f"{r['task']:<15} {r['family']:<34}{cells}")
    lines.append("cells: ROC AUC / TPR at 1% FPR; each family's pirated copies against all innocent models")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(KIND_OF_TASK), choices=list(KIND_OF_TASK))
    parser.add_argument("--n", type=int, default=128, help="fingerprint points (queries = 3n + 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(HERE / ".cache"))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--quick", action="store_true", help="a smaller zoo, for tests")
    parser.add_argument("--zoo-seed", type=int, default=0,
                        help="0: the reference zoo; another value builds an independent zoo (data split and models)")
    parser.add_argument("--no-plot", dest="plot", action="store_false")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.time()
    results = [run_task(t, args) for t in args.tasks]
    rows = [r for res in results for r in res["rows"]]
    print(format_table(rows))
    from tafa_tf.verification import DEFAULT_THRESHOLD

    for res in results:  # what a user without a calibration gets from tafa's verdict
        s = res["scores"]["tafa"]
        res["default_threshold"] = {
            "threshold": DEFAULT_THRESHOLD,
            "pirated_flagged": sum(v >= DEFAULT_THRESHOLD for v in s["pos"].values()), "pirated": len(s["pos"]),
            "innocent_flagged": sum(v >= DEFAULT_THRESHOLD for v in s["neg"].values()), "innocent": len(s["neg"]),
        }
        d = res["default_threshold"]
        print(f"tafa at the default threshold {DEFAULT_THRESHOLD}, {res['task']}: flags {d['pirated_flagged']} of "
              f"{d['pirated']} pirated and {d['innocent_flagged']} of {d['innocent']} innocent models")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "tasks": results, "seconds": time.time() - t0, "n": args.n, "quick": args.quick,
               "zoo_seed": args.zoo_seed}
    tmp = out / ".piracy_suite.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, out / "piracy_suite.json")
    print(f"wrote {out / 'piracy_suite.json'} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
