"""The literature's removal attacks (tafa_tf.piracy) on real small models: the owner
untouched, the right layers changed, and a pirate's accuracy kept."""

from __future__ import annotations

import numpy as np
import pytest

from test_piracy import assert_new_and_owner_untouched

from tafa_tf import piracy, zoo
from tafa_tf.bends import (FOLLOW_BELOW, FRESH_MODELS, STANDOUT_MIN, STANDOUT_SHARE, background_curvature,
                           bend_presence, beyond_fresh, control_queries, relative_curvature)
from tafa_tf.domains import Box, Gaussian
from tafa_tf.probes import KIND_DECISION, query_rows


@pytest.fixture(scope="module")
def digits():
    return zoo.data_for("digits_mlp")


@pytest.fixture(scope="module")
def attacker(digits):
    """300 labelled digits: the attacker's own data."""
    return digits.x_test[:300], digits.y_test[:300]


def accuracy(model, data) -> float:
    return float(np.mean(np.argmax(np.asarray(model(data.x_train[:400])), axis=1) == data.y_train[:400]))


def changed(a, b) -> list[bool]:
    return [not np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights())]


@pytest.mark.parametrize("attack", [piracy.ftll, piracy.rtll])
def test_last_layer_attacks_change_only_the_output_layer(owner, attacker, attack, digits):
    pirate = assert_new_and_owner_untouched(owner, lambda: attack(owner, *attacker, epochs=3, learning_rate=1e-2))
    # Dense(64), Dense(32) kept exactly; the output Dense(10) kernel and bias retrained
    assert changed(owner, pirate) == [False, False, False, False, True, True]
    assert all(layer.trainable for layer in pirate.layers)


@pytest.mark.slow
@pytest.mark.parametrize(("attack", "lr"), [(piracy.ftal, 1e-3), (piracy.rtal, 3e-3)])
def test_all_layer_attacks_change_every_layer_and_keep_accuracy(owner, attacker, attack, lr, digits):
    pirate = assert_new_and_owner_untouched(owner, lambda: attack(owner, *attacker, epochs=10, learning_rate=lr))
    assert all(changed(owner, pirate))
    assert accuracy(pirate, digits) > 0.85


def test_rtll_draws_a_new_output_layer(owner, attacker):
    pirate = piracy.rtll(owner, *attacker, epochs=1, learning_rate=1e-6)
    # one tiny step from a fresh Glorot draw is nowhere near the owner's output layer
    assert np.max(np.abs(pirate.get_weights()[4] - owner.get_weights()[4])) > 0.05


@pytest.mark.slow
def test_prune_retune_zeroes_the_share_asked_and_keeps_accuracy(owner, attacker, digits):
    pirate = assert_new_and_owner_untouched(owner, lambda: piracy.prune_retune(owner, *attacker, 0.6, epochs=2))
    kernels = [w for w in pirate.get_weights() if w.ndim == 2]
    assert abs(sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels) - 0.6) < 0.01
    assert accuracy(pirate, digits) > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_tune_moves_the_model_and_keeps_accuracy(owner, attacker, digits, method):
    pirate = assert_new_and_owner_untouched(owner, lambda: piracy.adversarial_tune(owner, *attacker, method=method, eps=0.05,
                                                                  steps=2, epochs=1, clip=(0.0, 1.0)))
    assert all(changed(owner, pirate))
    assert accuracy(pirate, digits) > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("labels_only", [True, False])
def test_extract_trains_a_fresh_network_from_answers(owner, attacker, digits, labels_only):
    pirate = assert_new_and_owner_untouched(owner, lambda: piracy.extract(owner, attacker[0], labels_only=labels_only, domain=Box(0, 1),
                                                         n_noise=100, epochs=15))
    assert all(changed(owner, pirate))
    assert accuracy(pirate, digits) > 0.7


@pytest.mark.slow
def test_attacks_work_for_a_regressor(trained):
    reg = trained("diabetes_mlp", epochs=5)
    data = zoo.data_for("diabetes_mlp")
    x, y = data.x_test[:64], data.y_test[:64].astype("float32")
    assert changed(reg, piracy.rtll(reg, x, y, epochs=1)) == [False, False, False, False, True, True]
    assert all(changed(reg, piracy.adversarial_tune(reg, x, y, method="pgd", eps=0.1, steps=2, epochs=1)))
    student = piracy.extract(reg, x, labels_only=False, domain=Gaussian(1.0), n_noise=32, epochs=1)
    assert student.output_shape == reg.output_shape
    with pytest.raises(ValueError, match="labels_only extraction needs a classifier"):
        piracy.extract(reg, x, labels_only=True)


def test_bad_arguments_are_refused_clearly(owner, attacker):
    with pytest.raises(ValueError, match="method must be one of"):
        piracy.adversarial_tune(owner, *attacker, method="cw")
    with pytest.raises(ValueError, match="as many targets as inputs"):
        piracy.ftll(owner, attacker[0], attacker[1][:10])
    with pytest.raises(TypeError, match="keras.Model"):
        piracy.rtal("owner.keras", *attacker)


def test_relative_curvature_is_zero_on_a_line_and_one_on_a_sharp_bend():
    y0 = np.array([[0.0], [0.0]])
    yp, ym = np.array([[1.0], [1.0]]), np.array([[-1.0], [1.0]])
    np.testing.assert_allclose(relative_curvature(y0, yp, ym), [0.0, 1.0])
    owner = (y0, yp, np.array([[1.0], [1.0]]))
    assert bend_presence(owner, owner) == 1.0
    assert bend_presence(owner, (y0, yp, -yp)) == 0.0  # a straight line where the owner bends
    assert bend_presence(owner, (y0, yp, ym)) == 0.5  # bends at one of the two points
    # curving more than the owner does is no sign of a copy: random answers curve everywhere
    mild = (y0, np.array([[2.0], [2.0]]), np.array([[-1.0], [-1.0]]))  # curvature 1/3 at both points
    assert bend_presence(mild, owner) == pytest.approx(1 / 3)


def test_bend_presence_counts_only_bends_that_stand_above_float32_rounding():
    # a nearly constant owner: its "bends" are rounding noise, and so are any suspect's
    y0 = np.full((4, 3), 0.1)
    noisy = y0 + np.array([1e-9, -1e-9, 0.0])
    assert np.isnan(bend_presence((y0, noisy, y0), (y0, noisy, y0)))
    loud = y0 + np.array([1e-2, 0.0, 0.0])
    owner = (np.concatenate([y0, y0]), np.concatenate([noisy, loud]), np.concatenate([y0, y0]))
    step = np.array([1e-3, 0.0, 0.0])
    suspect = (owner[0], np.concatenate([y0 + step, loud]), np.concatenate([y0 - step, y0]))  # straight where owner is noise
    # only the four audible points count: the suspect bends there as the owner does
    assert bend_presence(owner, suspect) == 1.0


def _along(f, x, u, delta, side):
    """f's answers at a probe triple and at its background probe, x and u of shape (N, 1)."""
    probes = tuple(f(q) for q in (x, x + delta[:, None] * u, x - delta[:, None] * u))
    return probes, f(control_queries(x, u, delta, side))


def test_background_is_zero_for_a_lone_bend_and_high_where_bends_are_dense():
    x, u, delta = np.zeros((2, 1)), np.ones((2, 1)), np.array([0.5, 0.5])
    side = np.array([1.0, -1.0])  # one point looks up the line, the other down
    lone = lambda t: np.abs(t)  # noqa: E731  one bend, at 0
    probes, controls = _along(lone, x, u, delta, side)
    np.testing.assert_allclose(background_curvature(probes, controls, side), [0.0, 0.0], atol=1e-12)
    zigzag = lambda t: np.abs(((t + 0.5) % 1.0) - 0.5)  # noqa: E731  a bend every half unit: at every probe
    probes, controls = _along(zigzag, x, u, delta, side)
    assert np.all(background_curvature(probes, controls, side) > 0.9)
    # a point whose control probe fits on neither side of the domain has none
    assert np.isnan(background_curvature(probes, controls, np.array([0.0, -1.0]))[0])


def test_bend_presence_is_not_measured_where_the_owners_bends_do_not_stand_out():
    x, u, delta = np.zeros((8, 1)), np.ones((8, 1)), np.full(8, 0.5)
    side = np.where(np.arange(8) % 2, 1.0, -1.0)
    lone, zigzag = (lambda t: np.abs(t)), (lambda t: np.abs(((t + 0.5) % 1.0) - 0.5))  # noqa: E731
    for owner_f, measured in ((lone, True), (zigzag, False)):
        probes, controls = _along(owner_f, x, u, delta, side)
        background = background_curvature(probes, controls, side)
        innocent = tuple(owner_f(q + 0.25) for q in (x, x + 0.5, x - 0.5))  # the same shape, bending elsewhere
        presence = bend_presence(probes, innocent, background=background)
        # dense bends: any model curves across these probes, and presence would call an innocent a copy
        assert np.isnan(presence) != measured
        itself = bend_presence(probes, probes, background=background)
        assert itself == 1.0 if measured else np.isnan(itself)
    # the share of standing-out bends decides, and on few bends their number: just under, nothing is measured
    for m in (8, 32):
        xm, um, dm = np.zeros((m, 1)), np.ones((m, 1)), np.full(m, 0.5)
        probes, _ = _along(lone, xm, um, dm, np.where(np.arange(m) % 2, 1.0, -1.0))
        k = int(np.ceil(max(STANDOUT_MIN, STANDOUT_SHARE * m)))
        assert k == (STANDOUT_MIN if m == 8 else int(np.ceil(STANDOUT_SHARE * m)))
        background = np.where(np.arange(m) < k - 1, 0.0, np.nan)
        assert np.isnan(bend_presence(probes, probes, background=background))
        background[k - 1] = 0.0
        assert bend_presence(probes, probes, background=background) == 1.0


def _curving(a: np.ndarray):
    """Probe triples (one output) whose relative curvature at point i is (1 - a_i) / (1 + a_i)."""
    return np.zeros((len(a), 1)), np.ones((len(a), 1)), -a[:, None]


def test_bend_presence_on_a_rough_owner_asks_the_suspect_to_curve_where_the_owner_does():
    """Where under half of the owner's bends stand out from its background, an innocent
    that curves as much as the owner, but at other points, gets no presence; a copy whose
    bends keep the owner's order (their sizes changed) keeps its level ratio."""
    a = np.linspace(0.0, 0.9, 40)
    owner = _curving(a)
    curved = relative_curvature(*owner)
    elsewhere = _curving(a[::-1])  # the same curvatures, largest where the owner's are smallest
    kept = _curving(np.sqrt(a))  # smaller bends, in the owner's order
    level = np.mean(relative_curvature(*kept)) / np.mean(curved)
    smooth = np.zeros(40)  # every bend stands out: the owner is not rough, the level ratio alone counts
    assert bend_presence(owner, elsewhere, background=smooth) == pytest.approx(1.0)
    rough = np.where(np.arange(40) < int(FOLLOW_BELOW * 40) - 1, 0.0, np.nan)  # just under half stand out
    assert bend_presence(owner, elsewhere, background=rough) == 0.0
    assert bend_presence(owner, kept, background=rough) == pytest.approx(level)
    assert bend_presence(owner, owner, background=rough) == 1.0


def test_presence_counts_only_beyond_what_models_with_fresh_weights_show():
    assert beyond_fresh(0.9, 0.0) == 0.9 and beyond_fresh(0.9, float("nan")) == 0.9  # none, or older fingerprints
    assert beyond_fresh(0.4, 0.4) == 0.0 and beyond_fresh(0.3, 0.4) == 0.0
    assert beyond_fresh(0.7, 0.4) == pytest.approx(0.5) and beyond_fresh(1.0, 0.4) == 1.0
    assert beyond_fresh(0.5, 1.0) == 0.0 and np.isnan(beyond_fresh(float("nan"), 0.4))


def test_a_fingerprint_asks_models_with_fresh_weights_and_a_suspect_like_them_gets_no_presence(fp, owner, tmp_path):
    """The digits MLP's bends stand out, so its fingerprint keeps the answers of
    FRESH_MODELS models of its architecture with fresh weights; a suspect that is one of
    them bends at the owner's points no more than they do, the owner's copy as the owner."""
    import dataclasses

    import tafa_tf as tafa
    from tafa_tf.creation import FRESH_SEED

    points = fp.bend_points()  # the bends only: bend_presence reads nothing else
    assert 0 < len(points) < fp.n_points and not np.isin(points, np.flatnonzero(fp.kind == KIND_DECISION)).any()
    rows = query_rows(points, fp.n_points)
    assert fp.fresh is not None and fp.fresh.shape == (FRESH_MODELS * len(rows), 10)
    fresh = piracy.fresh_model(owner, FRESH_SEED)  # the first of them, seed 0
    np.testing.assert_allclose(np.asarray(fresh(fp.queries()[rows])), fp.fresh[: len(rows)], rtol=1e-5, atol=1e-6)
    assert tafa.verify(fp, fresh).features.get("bend_presence", 0.0) == 0.0
    assert tafa.verify(fp, piracy.quantize(owner, "float16")).features["bend_presence"] > 0.95
    # an older fingerprint, without them, reads the raw level ratio: higher
    older = dataclasses.replace(fp, fresh=None)
    assert tafa.verify(older, fresh).features.get("bend_presence", 0.0) > 0.0
    fp.save(tmp_path / "fp.tafa")
    np.testing.assert_array_equal(tafa.Fingerprint.load(tmp_path / "fp.tafa").fresh, fp.fresh)
