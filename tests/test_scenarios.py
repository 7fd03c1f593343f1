"""End to end on the three tasks: every pirated copy must outscore every independent model.

Owners and innocents are real Keras models trained on scikit-learn data; pirated
copies are made with tafa_tf.piracy. Nothing here is mocked.
"""

from __future__ import annotations

import numpy as np
import pytest

import tafa_tf as tafa
from tafa_tf import piracy, zoo
from tafa_tf.probes import query_budget

SCENARIOS = {
    "digits_mlp": tafa.domains.Box(0.0, 1.0),
    "digits_cnn": tafa.domains.Box(0.0, 1.0),
    "diabetes_mlp": None,  # the documented default: Gaussian(1) for standardized features
    "digits_decoder": None,  # the documented default: a Gaussian latent
    # held out: data and shapes no constant of the library was measured on
    "synthetic_mlp": None,  # make_classification, standardized features
    "friedman_mlp": tafa.domains.Box(0.0, 1.0),  # make_friedman1: features in [0, 1]
    "cancer_mlp": None,  # breast cancer, two classes, standardized features
}


def _tune_data(kind: str, owner):
    data = zoo.data_for(kind)
    if kind == "digits_decoder":
        z = np.random.default_rng(5).standard_normal((512, zoo.LATENT_DIM)).astype("float32")
        return z, np.asarray(owner(z))
    return data.x_train, data.y_train


def _pirates(kind: str, owner) -> dict:
    x, y = _tune_data(kind, owner)
    lr = 1e-3
    return {
        "fine-tune small lr": piracy.fine_tune(owner, x, y, epochs=3, learning_rate=1e-4, seed=1),
        "fine-tune lr 1e-3": piracy.fine_tune(owner, x, y, epochs=5, learning_rate=lr, seed=2),
        "prune 30%": piracy.prune(owner, 0.3),
        "prune 50% + fine-tune": piracy.prune(owner, 0.5, fine_tune_data=(x, y), epochs=2, learning_rate=lr),
        "int8": piracy.quantize(owner, "int8"),
        "float16": piracy.quantize(owner, "float16"),
        "noise 2%": piracy.add_noise(owner, 0.02, seed=3),
    }


FRIEDMAN_GAP = pytest.mark.xfail(strict=True, reason=(
    "held-out zoo, a known gap (docs/results.md, Held-out zoos): make_friedman1 is smooth, every model "
    "learns it alike, and a copy pruned by 30% without retraining (0.77) answers less like the owner than "
    "independent models do (up to 0.82)"))


HELD_OUT = ("synthetic_mlp", "friedman_mlp", "cancer_mlp")
SLOW = (*HELD_OUT, "digits_cnn")
"""Run with the slow tests (.ci/run): the default run keeps one zoo per task (the CNN, a second
classifier, took 32 s of a 9:40 default run on 2 cores; its seed-0 owner stays in the default run's
piracy and verification tests)."""


def _scenario(kind: str):
    marks = [pytest.mark.slow] if kind in SLOW else []
    return pytest.param(kind, marks=[*marks, FRIEDMAN_GAP] if kind == "friedman_mlp" else marks)


@pytest.mark.parametrize("kind", [_scenario(k) for k in SCENARIOS])
def test_every_pirate_outscores_every_independent_model(kind, trained):
    owner = trained(kind, 0)
    fp = tafa.fingerprint(owner, task=zoo.TASK_OF_KIND[kind], n=128, domain=SCENARIOS[kind], seed=0)
    pirated = {name: tafa.verify(fp, m) for name, m in _pirates(kind, owner).items()}
    innocent = {f"seed {s}": tafa.verify(fp, trained(kind, s)) for s in (1, 2, 3)}
    table = "\n".join(
        f"  {'PIRATED ' if name in pirated else 'innocent'} {name:<24} {r.score:.3f}"
        for name, r in {**pirated, **innocent}.items()
    )
    print(f"\n{kind}:\n{table}")
    for r in (*pirated.values(), *innocent.values()):
        assert r.status == "ok" and r.queries == fp.n_queries == query_budget(fp.n_points)
    worst_pirate = min(pirated, key=lambda k: pirated[k].score)
    best_innocent = max(innocent, key=lambda k: innocent[k].score)
    assert pirated[worst_pirate].score > innocent[best_innocent].score, (
        f"{kind}: pirated {worst_pirate!r} scored {pirated[worst_pirate].score:.3f}, not above innocent "
        f"{best_innocent!r} at {innocent[best_innocent].score:.3f}\n{table}"
    )
