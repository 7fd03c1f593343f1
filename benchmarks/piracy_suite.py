"""The piracy benchmark: TAFA against three baselines, per task and per piracy family.

For each task (a digits classifier, a diabetes regressor, a digits decoder) the owner
is a fine-tune of a public base model, as in practice. The zoo of suspects (results
and reading in docs/results.md):

- pirated (positives): fine-tunes at small and large learning rates, magnitude pruning
  with and without fine-tuning, float16 and int8 quantization, weight noise, neuron
  permutation and positive rescaling, distillation into a fresh student; and the
  removal attacks of the fingerprinting literature (tafa_tf.piracy): FTLL, FTAL,
  RTLL, RTAL, prune-and-retune at 20/40/60%, FGSM and PGD adversarial tuning, and
  extraction from probabilities and from labels only, on attacker data the owner
  never used (``Zoo.removal_families``); and ensembles that average the owner's answers
  with independently trained models' (``Zoo.ensembles``);
- innocent (negatives): same architecture with other seeds, another architecture,
  another data split, and the hard case: independent fine-tunes of the same base.

Every method gets the same query budget and is scored in the same run:

- tafa: tafa.verify's uncalibrated score on data-free boundary points, fingerprinted
  with the public base model the owner fine-tuned (``base=``: points where the owner
  departs from the base, feature ``owner_side``). No data is used;
- no base: the same without the base model (the model alone);
- tafa+: tafa plus 32 public samples as seeds for half of the points (``samples=``);
- tafa cv, no base cv, tafa+ cv: each one's features combined by a logistic regression
  fitted leave-one-model-out over the zoo, as a user's calibration would (every suspect's
  features are kept in the JSON, under each task's ``features``);
- random: output similarity on random inputs from the same domain;
- benign (ModelDiff-like): output similarity on held-out benign data;
- ipguard (IPGuard-like, classifiers): label agreement at points pushed onto the
  owner's decision boundary from benign data, probed on both sides;
- weights (wb), cka (wb): not fingerprints but a ceiling for one, what a judge holding
  the suspect's weights and the owner's held-out data would see: the relative distance
  of every weight but the output layer's from the owner's (negated), and the linear CKA
  of the activations entering the output layer with the owner's on the benign inputs.
  Where a family ranks under the innocents on both, no comparison of the suspect with
  the owner alone, black box or white, would rank it above them.

Models are cached in benchmarks/.cache so reruns are quick. Prints one table (rows
task x family, columns method, cells AUC / TPR at 1% FPR), writes piracy_suite.json and
one ROC plot per task (roc_<task>.png, not committed) to --out (default benchmarks/results).

    python benchmarks/piracy_suite.py [--tasks classification regression generation] [--n 128]
    python benchmarks/piracy_suite.py --zoo-seed 0 1 2      # three independent zoos, pooled
    python benchmarks/piracy_suite.py --tasks classification --classifier cnn   # the classifier as a small CNN
    python benchmarks/piracy_suite.py --tasks classification regression --classifier synthetic --regressor friedman
                                                                    # held-out zoos (make_classification, make_friedman1)
    python benchmarks/piracy_suite.py --sweep               # attack strength vs score, docs/sweep_*.png
"""

from __future__ import annotations

import argparse
import functools
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
# --classifier / --regressor: the zoo of that task (held out: synthetic, cancer and friedman, whose data
# and shapes no constant of the library was measured on)
CLASSIFIERS = {"mlp": "digits_mlp", "cnn": "digits_cnn", "synthetic": "synthetic_mlp", "cancer": "cancer_mlp"}
REGRESSORS = {"mlp": "diabetes_mlp", "friedman": "friedman_mlp"}
BOX_DOMAIN_KINDS = ("digits_mlp", "digits_cnn", "friedman_mlp")  # inputs in [0, 1]; the others standardized


def kind_of(task: str, args: argparse.Namespace) -> str:
    """The zoo kind of ``task`` in this run (``--classifier``, ``--regressor``)."""
    if task == "classification":
        return CLASSIFIERS[getattr(args, "classifier", "mlp")]
    if task == "regression":
        return REGRESSORS[getattr(args, "regressor", "mlp")]
    return KIND_OF_TASK[task]
HARD = "same-base fine-tune"
METHODS = ("tafa", "no base", "tafa+", "tafa cv", "no base cv", "tafa+ cv", "random", "benign", "ipguard", "weights (wb)", "cka (wb)")
REMOVAL = ("FTLL", "FTAL", "RTLL", "RTAL", "prune-retune", "adversarial tuning", "extraction (probabilities)")
LABEL_ONLY = "extraction (labels)"
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

    def owner_data(self):
        """What the owner trained on, as tafa.references.build takes it: its half of the
        training split (images alone for the decoder)."""
        return self.own_xy[0] if self.task == "generation" else self.own_xy

    def _pirate_xy(self, owner):
        if self.kind == "digits_decoder":
            z = np.random.default_rng(11).standard_normal((1024, 8)).astype("float32")
            return z, np.asarray(owner(z))
        return self.own_xy

    def _domain(self):
        import tafa_tf as tafa

        return tafa.domains.Box(0.0, 1.0) if self.kind in BOX_DOMAIN_KINDS else tafa.domains.Gaussian(1.0)

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
        pos.update(self.removal_families(owner))
        pos["ensemble"] = self.ensembles(owner)
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

    def attacker_data(self, owner) -> tuple[np.ndarray, np.ndarray]:
        """The removal attacker's data, used by neither the owner nor its public base: the
        last half of the held-out split (at most 300: digits 270, diabetes 67), with
        labels (regressor: targets); the first half measures the suspects' accuracy.
        For the decoder: the owner's images at latents jittered by N(0, 0.5^2), since
        tuning on the owner's exact answers has zero gradient and changes nothing."""
        if self.kind == "digits_decoder":
            rng = np.random.default_rng(11 + self.zs)
            z = rng.standard_normal((1024, 8)).astype("float32")
            return (z + 0.5 * rng.standard_normal(z.shape)).astype("float32"), _outputs(owner, z).astype("float32")
        half = min(300, len(self.data.x_test) // 2)
        return self.data.x_test[-half:], self.data.y_test[-half:]

    def quality(self, owner, model) -> float:
        """What a pirate keeps: test accuracy (classifier) or R^2 (regressor) on the first
        half of the held-out split; for the decoder, R^2 of its images against the
        owner's at 512 fresh latents."""
        if self.kind == "digits_decoder":
            z = np.random.default_rng(5 + self.zs).standard_normal((512, 8)).astype("float32")
            y, target = _outputs(model, z), _outputs(owner, z)
        else:
            half = len(self.data.x_test) // 2
            y, target = _outputs(model, self.data.x_test[:half]), self.data.y_test[:half]
            if self.task == "classification":
                return float(np.mean(y.argmax(1) == target))
        target = target.reshape(y.shape)
        return float(1.0 - np.mean((y - target) ** 2) / np.var(target))

    def removal_families(self, owner) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
        """The removal attacks of the literature (tafa_tf.piracy), one family each.

        Settings: fine-tuning at Adam 1e-3 (a third of the zoo's training rate), FTLL and
        FTAL 10 epochs, RTAL 20; RTLL retrains its fresh head at 1e-2 for 30 epochs (a
        linear probe needs it); prune 20/40/60% then 5 epochs; FGSM at eps 0.1 and PGD
        (7 steps) at eps 0.05 for 3 epochs, in input units; extraction into the owner's
        architecture with fresh weights, 40 epochs on the attacker's inputs plus 1000
        domain draws. ``--sweep`` varies the strengths.
        """
        from tafa_tf import piracy

        x, y = self.attacker_data(owner)
        o = 1000 * self.zs
        clip = (0.0, 1.0) if self.task == "classification" else None
        fams: dict[str, list[tuple[str, Callable[[], Any]]]] = {
            "FTLL": [("ftll", lambda: piracy.ftll(owner, x, y, seed=o))],
            "FTAL": [("ftal", lambda: piracy.ftal(owner, x, y, seed=o))],
            "RTLL": [("rtll", lambda: piracy.rtll(owner, x, y, seed=o))],
            "RTAL": [("rtal", lambda: piracy.rtal(owner, x, y, learning_rate=1e-3, seed=o))],
            "prune-retune": [(f"prune-retune-{p}", lambda p=p: piracy.prune_retune(owner, x, y, p / 100, seed=o))
                             for p in (20, 40, 60)],
            "adversarial tuning": [
                ("fgsm-0.1", lambda: piracy.adversarial_tune(owner, x, y, method="fgsm", eps=0.1, epochs=3, clip=clip, seed=o)),
                ("pgd-0.05", lambda: piracy.adversarial_tune(owner, x, y, method="pgd", eps=0.05, epochs=3, clip=clip, seed=o)),
            ],
            "extraction (probabilities)": [("extract-prob", lambda: piracy.extract(
                owner, x, labels_only=False, domain=self._domain(), n_noise=1000, seed=o))],
        }
        if self.task == "classification":
            fams[LABEL_ONLY] = [("extract-label", lambda: piracy.extract(
                owner, x, labels_only=True, domain=self._domain(), n_noise=1000, seed=o))]
        return fams

    def ensembles(self, owner) -> list[tuple[str, Callable[[], Any]]]:
        """The owner's answers averaged with independently trained models'
        (``tafa_tf.piracy.ensemble``): half and half, a third each with two others, and for
        classifiers half and half on probabilities. The others (seeds 70 and 71 of the
        zoo) are not among the innocents."""
        from tafa_tf import piracy, zoo

        o = 1000 * self.zs

        @functools.cache  # loaded once for the three ensembles
        def others() -> list:
            return [self._cached(f"ens-other-{s}", lambda s=s: zoo.train(self.kind, seed=o + s)) for s in (70, 71)]
        members = [("ens-half", lambda: piracy.ensemble(owner, others()[:1])),
                   ("ens-third", lambda: piracy.ensemble(owner, others(), weight=1 / 3))]
        if self.task == "classification":
            members.append(("ens-half-prob", lambda: piracy.ensemble(owner, others()[:1], space="probabilities")))
        return members

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


class WhiteBox:
    """A ceiling for a fingerprint, not one: how close the suspect's weights and hidden
    activations are to the owner's, read with the weights and the owner's held-out data.

    The body is every top-level layer with weights but the last (the output layer, which
    RTLL and RTAL draw afresh); units correspond as they are (every suspect of a zoo but
    the independent ones starts from the owner's weights or its base's). A body of
    another shape counts as infinitely far.
    """

    def __init__(self, owner, x: np.ndarray):
        self.x = x
        self.owner_body = self._body(owner)
        self.owner_features = self._into_head(owner)

    @staticmethod
    def _weighted(model) -> list:
        return [layer for layer in model.layers if layer.weights]

    def _body(self, model) -> list[np.ndarray]:
        return [w for layer in self._weighted(model)[:-1] for w in layer.get_weights()]

    def _into_head(self, model) -> np.ndarray:
        import keras

        head = self._weighted(model)[-1]
        return np.asarray(keras.Model(model.inputs, head.input)([self.x])).reshape(len(self.x), -1)  # built on a list

    def weights(self, suspect) -> float:
        """Minus the relative distance ||W_s - W_o|| / ||W_o|| of the bodies."""
        body = self._body(suspect)
        if [w.shape for w in body] != [w.shape for w in self.owner_body]:
            return -float(np.finfo("float32").max)
        diff = np.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(body, self.owner_body)))
        return -diff / np.sqrt(sum(float(np.sum(b ** 2)) for b in self.owner_body))

    def cka(self, suspect) -> float:
        """Linear CKA of the activations entering the output layer with the owner's; 0 for a
        suspect whose body is not shaped as the owner's (an ensemble has several output layers)."""
        if [w.shape for w in self._body(suspect)] != [w.shape for w in self.owner_body]:
            return 0.0
        a = self.owner_features - self.owner_features.mean(0)
        b = self._into_head(suspect)
        b = b - b.mean(0)
        cross = np.linalg.norm(a.T @ b) ** 2
        return float(cross / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b) + 1e-12))


def ipguard_points(owner, x_benign: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """IPGuard-like: benign inputs pushed onto the owner's decision boundary, probed on both sides."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n = budget // 2
    x = tf.constant(x_benign[rng.choice(len(x_benign), size=n, replace=len(x_benign) < n)].astype("float32"))
    axes = list(range(1, len(x.shape)))  # every input axis (an image's too)
    per_input = [-1] + [1] * len(axes)
    for _ in range(30):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = owner(x, training=False)
            top2 = tf.math.top_k(logits, 2).values
            margin = top2[:, 0] - top2[:, 1]
            total = tf.reduce_sum(margin)
        g = tape.gradient(total, x)
        step = tf.reshape(margin, per_input) * g / (tf.reduce_sum(g * g, axis=axes, keepdims=True) + 1e-12)
        x = tf.clip_by_value(x - step, 0.0, 1.0)
    g = g / (tf.sqrt(tf.reduce_sum(g * g, axis=axes, keepdims=True)) + 1e-12)
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


def run_task(task: str, args: argparse.Namespace, zoo_seed: int = 0) -> dict[str, Any]:
    """Score one zoo of ``task`` with every method; rows come from :func:`pool`."""
    import tafa_tf as tafa

    kind = kind_of(task, args)
    t0 = time.time()
    z = Zoo(kind, Path(args.cache), args.quick, zoo_seed)
    owner, pos, neg = z.build()
    t_zoo = time.time() - t0
    domain = z._domain()
    fp = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed, base=z.base)
    fp_alone = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed)
    budget = fp.n_queries
    rng = np.random.default_rng(args.seed + 7)
    public = z.data.x_test[:N_PUBLIC] if task != "generation" else rng.standard_normal((N_PUBLIC, *fp.input_shape)).astype("float32")
    fp_plus = tafa.fingerprint(owner, task=task, n=args.n, domain=domain, seed=args.seed, samples=public, base=z.base)
    features: dict[str, dict[str, dict[str, float]]] = {"tafa": {}, "no base": {}, "tafa+": {}}

    def scorer(name: str, fingerprint) -> Callable[[Any], float]:
        def score(model) -> float:
            report = tafa.verify(fingerprint, model)
            features[name][model.name + str(id(model))] = report.features
            return report.score
        return score

    methods: dict[str, Callable[[Any], float]] = {
        "tafa": scorer("tafa", fp),
        "no base": scorer("no base", fp_alone),
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
    white = WhiteBox(owner, benign)
    methods["weights (wb)"], methods["cka (wb)"] = white.weights, white.cka

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
    for name in features:
        scores[f"{name} cv"] = _leave_one_out(features[name], scores[name])
        methods[f"{name} cv"] = None  # type: ignore[assignment]

    return {"task": task, "zoo_seed": zoo_seed, "scores": scores, "features": features, "families": family_of,
            "pos_families": list(pos),
            "zoo_seconds": t_zoo, "queries_per_suspect": budget, "n_points": fp.n_points}


def pool(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """One task's rows over every zoo seed run: the models of all zoos pooled, each
    model scored only against its own zoo's fingerprint (names prefixed by the seed).

    Rows: each pirated family against all innocent models; the removal attacks
    (label-only extraction aside) against all innocent models; the pirated copies of
    the original families (not the removal attacks, so that the row stays comparable
    with earlier runs) against the same-base fine-tunes.
    """
    task = runs[0]["task"]
    several = len(runs) > 1
    scores: dict[str, dict[str, dict[str, float]]] = {}
    features: dict[str, dict[str, dict[str, float]]] = {}
    family_of: dict[str, str] = {}
    for run in runs:
        tag = f"z{run['zoo_seed']}:" if several else ""
        family_of.update({tag + n: f for n, f in run["families"].items()})
        for meth, per_model in run["features"].items():
            features.setdefault(meth, {}).update({tag + n: f for n, f in per_model.items()})
        for meth, sides in run["scores"].items():
            for side, vals in sides.items():
                scores.setdefault(meth, {"pos": {}, "neg": {}})[side].update({tag + n: v for n, v in vals.items()})
    removal_row = "removal attacks (not label-only)"
    rows = []
    for fam in [*runs[0]["pos_families"], removal_row, "all pirated vs " + HARD]:
        row = {"task": task, "family": fam}
        for meth in scores:
            p = [v for k, v in scores[meth]["pos"].items() if family_of[k] == fam
                 or (fam.startswith("all pirated") and family_of[k] not in (*REMOVAL, LABEL_ONLY))
                 or (fam == removal_row and family_of[k] in REMOVAL)]
            n = [v for k, v in scores[meth]["neg"].items() if family_of[k] == HARD or not fam.startswith("all pirated")]
            auc, tpr = auc_and_tpr(p, n)
            row[meth] = {"auc": auc, "tpr_at_1pct_fpr": tpr}
        rows.append(row)
    if args.plot:
        _plot(task, scores, Path(args.out) / f"roc_{task}.png")
    return {"task": task, "rows": rows, "scores": scores, "features": features, "families": family_of,
            "zoo_seeds": [r["zoo_seed"] for r in runs], "zoo_seconds": sum(r["zoo_seconds"] for r in runs),
            "queries_per_suspect": runs[0]["queries_per_suspect"], "n_points": runs[0]["n_points"]}


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


# -- the strength sweep ------------------------------------------------------------------------


def sweep_attacks(z: Zoo, owner) -> dict[str, tuple[str, tuple[float, ...], Callable[[float], Any]]]:
    """Each removal attack at growing strength: name -> (parameter, values, build(value))."""
    from tafa_tf import piracy

    x, y = z.attacker_data(owner)
    o = 1000 * z.zs
    clip = (0.0, 1.0) if z.task == "classification" else None
    return {
        "FTAL learning rate": ("learning rate", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
                               lambda v: piracy.ftal(owner, x, y, learning_rate=v, seed=o)),
        "FTAL epochs": ("epochs", (1, 3, 10, 30, 100), lambda v: piracy.ftal(owner, x, y, epochs=int(v), seed=o)),
        "RTAL learning rate": ("learning rate", (3e-4, 1e-3, 3e-3, 1e-2),
                               lambda v: piracy.rtal(owner, x, y, learning_rate=v, seed=o)),
        "prune-retune ratio": ("pruned share", (0.2, 0.4, 0.6, 0.8, 0.9),
                               lambda v: piracy.prune_retune(owner, x, y, v, seed=o)),
        "FGSM eps": ("eps", (0.02, 0.05, 0.1, 0.2, 0.3),
                     lambda v: piracy.adversarial_tune(owner, x, y, method="fgsm", eps=v, epochs=3, clip=clip, seed=o)),
        "PGD eps": ("eps", (0.02, 0.05, 0.1, 0.2),
                    lambda v: piracy.adversarial_tune(owner, x, y, method="pgd", eps=v, epochs=3, clip=clip, seed=o)),
    }


def _calibrated_sweep_fp(z: Zoo, owner, fp, args: argparse.Namespace):
    """``fp`` calibrated as an owner would: references from the owner's half of the data and the base."""
    import tafa_tf as tafa
    from tafa_tf import references

    refs = references.build(owner, z.owner_data(), base=z.base, n_innocent=12, n_pirated=12, seed=z.zs,
                            cache_dir=Path(args.cache) / "references", progress=not args.no_progress)
    return fp.with_calibration(tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=0.05))


def _on_score_scale(cal) -> float:
    """The default score at which a calibration on it (combine="score") starts to accuse."""
    import math

    t = min(max(float(cal.threshold_), 1e-12), 1 - 1e-12)
    return float(cal.mean_[0] + cal.scale_[0] * (math.log(t / (1 - t)) - cal.intercept_) / cal.coef_[0])


def run_sweep(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """Score and judge every sweep model against its quality, as a user gets the verdicts.

    ``tafa`` (with the base) and ``no base``: the uncalibrated verdict (accused from
    ``threshold``, cleared under ``clear``, uncertain between); ``calibrated``: the base
    fingerprint calibrated on references built from the owner's assets (5% FPR target).
    An attack "breaks the verdict" at the best quality among its models that the
    verdict does not accuse; the cost is the owner's quality minus that.
    """
    import tafa_tf as tafa

    z = Zoo(kind_of(task, args), Path(args.cache), args.quick, args.zoo_seed[0])
    owner, _, neg = z.build()
    fps = {"tafa": tafa.fingerprint(owner, task=task, n=args.n, domain=z._domain(), seed=args.seed, base=z.base),
           "no base": tafa.fingerprint(owner, task=task, n=args.n, domain=z._domain(), seed=args.seed)}
    fps["calibrated"] = _calibrated_sweep_fp(z, owner, fps["tafa"], args)
    innocents = [model for items in neg.values() for _, model in items]
    innocent = {m: max(tafa.verify(fp, model).score for model in innocents) for m, fp in fps.items()}
    owner_report = tafa.verify(fps["tafa"], owner)
    q_owner = z.quality(owner, owner)
    out: dict[str, Any] = {"task": task, "owner_quality": q_owner, "innocent_max": innocent,
                           "threshold": owner_report.threshold, "clear": owner_report.clear_threshold,
                           "calibrated_on_score_scale": _on_score_scale(fps["calibrated"].calibration),
                           "attacks": {}}
    for attack, (param, values, build) in sweep_attacks(z, owner).items():
        points = []
        for v in values:
            model = z._cached(f"sweep-{attack.replace(' ', '_')}-{v:g}", lambda v=v: build(v))
            reports = {m: tafa.verify(fp, model) for m, fp in fps.items()}
            points.append({"value": v, "quality": z.quality(owner, model),
                           **{m: float(r.score) for m, r in reports.items()},
                           "verdicts": {m: r.pirated for m, r in reports.items()}})
        out["attacks"][attack] = {"parameter": param, "points": points,
                                  **{f"breaks_at_cost{'' if m == 'tafa' else '_' + m.replace(' ', '_')}":
                                     _break_cost(points, m, q_owner) for m in fps}}
    return out


def _break_cost(points: list[dict[str, Any]], method: str, q_owner: float) -> float | None:
    """The owner's quality minus the best quality among the copies ``method`` does not accuse."""
    kept = [p["quality"] for p in points if p["verdicts"][method] is not True]
    return (q_owner - max(kept)) if kept else None


def plot_sweep(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = res["attacks"]
    fig, axes = plt.subplots(2, (len(attacks) + 1) // 2, figsize=(4.2 * ((len(attacks) + 1) // 2), 7.5), squeeze=False)
    metric = {"classification": "test accuracy", "regression": "test R^2", "generation": "R^2 vs owner's images"}[res["task"]]
    for ax, (name, a) in zip(axes.ravel(), attacks.items()):
        for meth, style in (("tafa", "o-"), ("no base", "s--")):
            q = [p["quality"] for p in a["points"]]
            ax.plot(q, [p[meth] for p in a["points"]], style, label=meth)
            ax.axhline(res["innocent_max"][meth], color="C0" if meth == "tafa" else "C1", lw=0.7, ls=":")
        for p in a["points"]:
            ax.annotate(f"{p['value']:g}", (p["quality"], p["tafa"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(res["threshold"], color="red", lw=0.8)
        if res.get("clear") is not None:
            ax.axhline(res["clear"], color="red", lw=0.6, ls="--")
        if res.get("calibrated_on_score_scale") is not None:
            ax.axhline(res["calibrated_on_score_scale"], color="green", lw=0.8)
        ax.axvline(res["owner_quality"], color="grey", lw=0.6, ls="--")
        ax.set_title(f"{name} ({a['parameter']})", fontsize=9)
        ax.set_xlabel(metric, fontsize=8)
        ax.set_ylabel("score", fontsize=8)
        ax.set_ylim(0, 1.05)
    axes.ravel()[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{res['task']}: score vs what the attacker kept (red: uncalibrated, accused above, cleared under "
                 "the dashed line; green: calibrated on references, 5% FPR; dotted: highest innocent; grey: owner)",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
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
    parser.add_argument("--classifier", choices=list(CLASSIFIERS), default="mlp",
                        help="the classification zoo: the digits MLP, a small CNN on 8x8 images, or (held out) an "
                             "MLP on make_classification (20 features, 5 classes)")
    parser.add_argument("--regressor", choices=list(REGRESSORS), default="mlp",
                        help="the regression zoo: the diabetes MLP, or (held out) an MLP on make_friedman1")
    parser.add_argument("--zoo-seed", type=int, nargs="+", default=[0],
                        help="0: the reference zoo; another value builds an independent zoo (data split and models); "
                             "several values pool their zoos into one table")
    parser.add_argument("--no-plot", dest="plot", action="store_false")
    parser.add_argument("--sweep", action="store_true",
                        help="instead of the table: the removal attacks' strength sweep on the first --zoo-seed, "
                             "plotted into --sweep-out")
    parser.add_argument("--sweep-out", default=str(HERE.parent / "docs"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verdicts", action="store_true",
                        help="also the uncalibrated and auto-calibrated verdicts on this zoo (benchmarks/verdicts.py)")
    args = parser.parse_args(argv)
    t0 = time.time()
    if args.sweep:
        return main_sweep(args)
    results = [pool([run_task(t, args, zs) for zs in args.zoo_seed], args) for t in args.tasks]
    rows = [r for res in results for r in res["rows"]]
    print(format_table(rows))
    verdict_results = None
    if args.verdicts:  # the verdicts a user gets on this zoo: benchmarks/verdicts.py
        import verdicts

        verdict_results = verdicts.for_suite(args.tasks, args.zoo_seed, cache=args.cache, n=args.n, seed=args.seed,
                                             classifier=args.classifier, regressor=args.regressor)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "tasks": results, "seconds": time.time() - t0, "n": args.n, "quick": args.quick,
               "classifier": args.classifier, "regressor": args.regressor,
               "zoo_seed": args.zoo_seed, "verdicts": verdict_results}
    tmp = out / ".piracy_suite.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, out / "piracy_suite.json")
    print(f"wrote {out / 'piracy_suite.json'} in {time.time() - t0:.0f} s")
    return 0


def main_sweep(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for task in args.tasks:
        res = run_sweep(task, args)
        results.append(res)
        plot_sweep(res, Path(args.sweep_out) / f"sweep_{task}.png")
        for name, a in res["attacks"].items():
            costs = ", ".join(f"{label} {'never' if c is None else f'{c:+.3f}'}" for label, c in
                              (("uncalibrated", a["breaks_at_cost"]), ("calibrated", a["breaks_at_cost_calibrated"])))
            pts = ", ".join(f"{p['value']:g}: {p['quality']:.2f}/{p['tafa']:.2f}/{p['no base']:.2f}" for p in a["points"])
            print(f"{task:<15} {name:<20} breaks the verdict at a quality cost of: {costs}; "
                  f"(value: quality/tafa/no base) {pts}")
        print(f"{task:<15} owner quality {res['owner_quality']:.3f}; highest innocent score "
              f"{res['innocent_max']['tafa']:.2f} (tafa), {res['innocent_max']['no base']:.2f} (no base)")
    tmp = out / ".sweep.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out / "sweep.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
