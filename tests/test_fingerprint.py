"""Fingerprinting: boundary synthesis, determinism, the API contract and the .tafa file."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

import tafa_tf as tafa
from tafa_tf.errors import FingerprintFileError, UnsupportedModelError
from tafa_tf.introspection import ReluNetwork
from tafa_tf.probes import KIND_DECISION, KIND_MULTI, KIND_UNIT


def test_public_api_is_exactly_the_design():
    for name in ("fingerprint", "verify", "calibrate", "Fingerprint", "Report", "Calibration", "domains"):
        assert hasattr(tafa, name), name
    assert hasattr(tafa.domains, "Box") and hasattr(tafa.domains, "Gaussian")
    assert hasattr(tafa.Fingerprint, "load") and hasattr(tafa.Fingerprint, "with_calibration")


def test_points_lie_on_owner_boundaries_inside_the_domain(owner, fp):
    assert fp.n_points == 64 and fp.n_queries == 3 * 64 + 8  # 3 queries per point, 8 repeated
    assert fp.x.min() >= 0.0 and fp.x.max() <= 1.0
    q = fp.queries()
    assert q.min() >= -1e-6 and q.max() <= 1 + 1e-6
    net = ReluNetwork(owner)
    out, z = net(fp.x)
    z = z.numpy()
    bends = fp.kind != KIND_DECISION
    for i in np.flatnonzero(bends):
        cols = fp.targets[i][fp.targets[i] >= 0]
        # on the boundary: tiny compared with the units' typical size (~1)
        assert np.all(np.abs(z[i, cols]) < 1e-3), (i, z[i, cols])
    # decision points sit on a tie of the two top logits
    logits = out.numpy()
    for i in np.flatnonzero(~bends):
        a, b = fp.targets[i][:2]
        assert abs(logits[i, a] - logits[i, b]) < 1e-3
    assert set(np.unique(fp.kind)) == {KIND_UNIT, KIND_MULTI, KIND_DECISION}
    np.testing.assert_allclose(np.linalg.norm(fp.u.reshape(64, -1), axis=1), 1.0, atol=1e-5)
    assert np.all(fp.delta > 0)
    # every kept bend is audible in the output
    assert np.all(np.linalg.norm(fp.kink[bends], axis=1) > 0)


def test_background_is_measured_at_bends_where_the_mlps_bends_stand_out(owner, fp):
    from tafa_tf.bends import STANDOUT, STANDOUT_SHARE, relative_curvature
    from tafa_tf.outputs import canonical

    bends = fp.kind != KIND_DECISION
    assert np.isnan(fp.background[~bends]).all()  # decision points have no bend to compare
    assert np.isfinite(fp.background[bends]).mean() > 0.9  # nearly every bend has room for a control probe
    curved = relative_curvature(*(canonical(y.astype("float64"), fp.output_kind) for y in (fp.y0, fp.yp, fp.ym)))
    # a small MLP bends rarely: its bend at x stands far above its curvature two steps away
    with np.errstate(invalid="ignore"):
        assert np.mean(curved[bends] > STANDOUT * fp.background[bends]) > max(0.5, STANDOUT_SHARE)
    # the owner itself shows its bends: bend presence is measured (1 to the rounding of answers
    # asked again in other batches: 0.9999964 on one CPU)
    assert tafa.verify(fp, owner).features["bend_presence"] == pytest.approx(1.0, abs=1e-4)


def test_points_spread_over_layers(fp):
    first = fp.targets[fp.kind == KIND_UNIT, 0]
    # the digits MLP has two ReLU layers: units 0-63 and 64-95
    assert (first < 64).any() and (first >= 64).any()


def test_same_seed_same_fingerprint_other_seed_other_points(owner, fp):
    again = tafa.fingerprint(owner, task="classification", n=64, domain=tafa.domains.Box(0.0, 1.0), seed=0)
    np.testing.assert_allclose(again.x, fp.x, atol=1e-6)
    other = tafa.fingerprint(owner, task="classification", n=64, domain=tafa.domains.Box(0.0, 1.0), seed=1)
    assert not np.allclose(other.x, fp.x)


def test_fingerprinting_and_verifying_leave_tensorflow_random_state_alone(owner, fp):
    # tf.random.set_seed clears TensorFlow's kernel caches, so every traced function paid
    # its setup again on its next call (a digits MLP fingerprint: 0.91 s with the clears,
    # 0.16 s without); the fresh models take their weights from Python's and NumPy's seeds alone
    import tensorflow as tf

    from tafa_tf import piracy

    tf.random.set_seed(3)
    expected = tf.random.uniform((4,)).numpy()
    tf.random.set_seed(3)
    tafa.fingerprint(owner, task="classification", n=16, domain=tafa.domains.Box(0.0, 1.0), seed=2)
    tafa.verify(fp, owner)
    np.testing.assert_array_equal(tf.random.uniform((4,)).numpy(), expected)
    first = piracy.fresh_model(owner, 5).get_weights()
    tf.random.set_seed(11)
    again = piracy.fresh_model(owner, 5).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], piracy.fresh_model(owner, 6).get_weights()[0])


def test_regressor_and_generator_have_no_decision_points(trained):
    reg = tafa.fingerprint(trained("diabetes_mlp"), task="auto", n=32, seed=0)
    assert reg.task == "regression" and KIND_DECISION not in reg.kind
    gen = tafa.fingerprint(trained("digits_decoder"), task="generation", n=32, seed=0)
    assert isinstance(gen.domain, tafa.domains.Gaussian)
    norms = np.linalg.norm(gen.x, axis=1)
    assert norms.min() > np.sqrt(8) - 3 * 0.71 - 1e-3 and norms.max() < np.sqrt(8) + 3 * 0.71 + 1e-3


def test_bad_arguments_are_refused(owner):
    with pytest.raises(ValueError, match="Received: task='images'"):
        tafa.fingerprint(owner, task="images")
    with pytest.raises(ValueError, match="Received: n=0"):
        tafa.fingerprint(owner, n=0)
    with pytest.raises(ValueError, match="Unknown synthesis options"):
        tafa.fingerprint(owner, n=8, newton_step=3)
    with pytest.raises(UnsupportedModelError, match="dead or always on"):
        # far outside where the model works, every unit is saturated one way
        tafa.fingerprint(owner, n=8, domain=tafa.domains.Box(1e6, 1e6 + 1))


# -- the .tafa file ------------------------------------------------------------------------


def test_save_load_round_trip(fp, tmp_path):
    path = fp.save(tmp_path / "owner.tafa")
    back = tafa.Fingerprint.load(path)
    for name in ("x", "u", "delta", "kind", "targets", "y0", "yp", "ym", "kink"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fp, name))
    assert back.task == fp.task and back.input_shape == fp.input_shape
    assert back.owner["digest"] == fp.owner["digest"]
    assert [p.name for p in tmp_path.iterdir()] == ["owner.tafa"]  # no temporary left behind


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def test_altered_truncated_and_foreign_files_are_refused(fp, tmp_path):
    good = fp.save(tmp_path / "good.tafa")
    raw = good.read_bytes()
    (tmp_path / "trunc.tafa").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FingerprintFileError, match="not a usable tafa fingerprint"):
        tafa.Fingerprint.load(tmp_path / "trunc.tafa")

    def flip_x(name, data):
        if name == "x.npy":
            arr = np.load(io.BytesIO(data))
            arr.flat[0] += 0.25
            buf = io.BytesIO()
            np.save(buf, arr)
            return buf.getvalue()
        return data

    _rewrite(good, tmp_path / "altered.tafa", flip_x)
    with pytest.raises(FingerprintFileError, match="sha256"):
        tafa.Fingerprint.load(tmp_path / "altered.tafa")

    def bump_version(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["version"] = 99
            return json.dumps(m).encode()
        return data

    _rewrite(good, tmp_path / "future.tafa", bump_version)
    with pytest.raises(FingerprintFileError, match="version 99"):
        tafa.Fingerprint.load(tmp_path / "future.tafa")

    with pytest.raises(FingerprintFileError, match="No fingerprint file"):
        tafa.Fingerprint.load(tmp_path / "missing.tafa")


def test_object_arrays_are_never_unpickled(fp, tmp_path):
    good = fp.save(tmp_path / "good.tafa")

    def pickled(name, data):
        if name == "kind.npy":
            buf = io.BytesIO()
            np.save(buf, np.array([object()] * fp.n_points, dtype=object), allow_pickle=True)
            return buf.getvalue()
        return data

    _rewrite(good, tmp_path / "evil.tafa", pickled)
    with pytest.raises(FingerprintFileError):
        tafa.Fingerprint.load(tmp_path / "evil.tafa")


def test_failed_save_keeps_the_previous_file(fp, tmp_path, monkeypatch):
    path = fp.save(tmp_path / "owner.tafa")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        fp.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["owner.tafa"]


@pytest.mark.parametrize("prior", [0, 2, 4, 7])
def test_the_probe_step_search_finds_the_smallest_audible_step_and_a_good_prior_saves_passes(prior):
    """Each row's bend is heard from some step on (monotone); the search returns the smallest
    k whose step min(d0 * 10^k, room) is heard (top + 1 for none), whatever the prior; with
    the prior at the k most rows need (4 here) it asks twice, bisecting from 0 four times."""
    from tafa_tf.synthesis import _smallest_audible

    rng = np.random.default_rng(0)
    n = 40
    d0 = 10.0 ** rng.uniform(-1, 0, n)
    room = np.full(n, 1e7)
    top = np.ceil(np.log10(room / d0) - 1e-9).astype(int)
    # 30 rows heard from k = 4 on; 10 anywhere, or never
    threshold = np.where(np.arange(n) < 30, d0 * 10.0**3.5, 10.0 ** rng.uniform(-2, 9, n))
    calls = []

    def hear(rows, steps, keep=None):
        calls.append(len(rows))
        return steps >= threshold[rows]

    hi = _smallest_audible(hear, np.arange(n), d0, room, top, prior)
    expected = np.array([next((k for k in range(t + 1) if min(d * 10.0**k, 1e7) >= th), t + 1)
                         for d, t, th in zip(d0, top, threshold)])
    np.testing.assert_array_equal(hi, expected)
    calls.clear()
    _smallest_audible(hear, np.arange(30), d0[:30], room[:30], top[:30], prior)
    assert len(calls) == (2 if prior == 4 else 4 if prior == 0 else len(calls))


def test_influence_from_a_share_of_the_pool_keeps_the_unit_statistics_and_ranks_units_alike(owner):
    """Huge models take the units' influence from a budget of seeds with gradients (the rest
    of the pool runs forward only); the active shares and spreads are the whole pool's, and
    the influence, noisier (a quarter of the seeds: rank correlation 0.74 on the digits MLP),
    still ranks the units as the whole pool's does."""
    from scipy.stats import spearmanr

    from tafa_tf.synthesis import SynthesisConfig, _grad_seeds, engine_for, unit_statistics

    config = SynthesisConfig()
    assert _grad_seeds(config, 200, 1024) is None  # the digits MLP: every seed
    assert _grad_seeds(config, 9_081_856, 220) == 64  # ResNet50 at 224x224: 64 of its 220 seeds
    engine = engine_for(ReluNetwork(owner))
    pool = np.random.default_rng(0).random((1024, 64), dtype="float32")
    full, part = (unit_statistics(engine, pool, True, 64, np.random.default_rng(1), g) for g in (None, 256))
    np.testing.assert_allclose(part.active, full.active)
    np.testing.assert_allclose(part.spread, full.spread, rtol=1e-6)
    np.testing.assert_allclose(part.out, full.out, rtol=1e-6)
    alive = full.influence > 0
    assert not np.array_equal(part.influence, full.influence) and spearmanr(part.influence[alive],
                                                                            full.influence[alive])[0] > 0.6


def test_newton_stops_earlier_only_where_the_probe_steps_dwarf_the_residual():
    """Later chunks may stop Newton at a residual that moves the boundary no more than a
    twentieth of the probe step from the point: 1e-2 where steps change the constraint
    by far more than its scale (deep networks), the default 1e-4 where they do not."""
    from tafa_tf.synthesis import NEWTON_TOLERANCE, _looser_tolerance

    scale = np.ones(50)
    deep = _looser_tolerance(np.full(50, 10.0), np.linspace(1.0, 5.0, 50), scale)  # the step moves z by 10-50 scales
    small = _looser_tolerance(np.full(50, 1e-3), np.linspace(0.5, 1.0, 50), scale)  # a thousandth of a scale
    middle = _looser_tolerance(np.full(50, 0.02), np.ones(50), scale)
    assert deep == 1e-2 and small == NEWTON_TOLERANCE == 1e-4 and middle == pytest.approx(1e-3)
    assert _looser_tolerance(np.zeros(0), np.zeros(0), np.zeros(0)) == NEWTON_TOLERANCE


def test_a_classifiers_later_rounds_draw_each_kind_as_it_paid():
    """After the first round, decision points get their share of the usable points found
    (never under the first round's share; half when nothing was found), not a fixed half:
    a weak ResNet50 kept 9 of 45 decision points and 28 of 48 unit points."""
    from tafa_tf.synthesis import SynthesisConfig, _round_counts

    config = SynthesisConfig()
    first = _round_counts(200, "classification", config, 0)
    assert first[2] == round(200 * config.decision_fraction) and sum(first) == 200
    bends_paid = _round_counts(200, "classification", config, 1, 9 / 56)
    assert bends_paid == first  # decisions under the first round's share keep it; not a fixed half (100)
    decisions_paid = _round_counts(200, "classification", config, 1, 90 / 91)
    assert decisions_paid[2] == 198 and sum(decisions_paid) == 200
    assert _round_counts(200, "classification", config, 1, None)[2] == 100  # nothing usable yet: half
    assert _round_counts(200, "regression", config, 1, None)[2] == 0


def test_a_newton_row_whose_point_cannot_move_leaves_the_loop_at_once():
    """A target unit with no input weights is the same everywhere: its Newton step is zero,
    and the row leaves unconverged after two passes instead of running all thirty, while
    a row beside it converges as before."""
    import keras

    from tafa_tf.synthesis import _geometry, engine_for, newton, stalled

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="relu")
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden(inputs)))
    kernel, bias = hidden.get_weights()
    kernel[:, 0], bias[0] = 0.0, 0.5  # unit 0: always 0.5, whatever the input
    hidden.set_weights([kernel, bias])
    engine = engine_for(ReluNetwork(model))
    geo = _geometry(engine, tafa.domains.Gaussian(1.0), "values")
    traced = engine.step(1, False)
    rows_asked = []

    def counted(*args):
        rows_asked.append(int(args[0].shape[0]))
        return traced(*args)

    engine.step = lambda m, probs: counted
    try:
        seeds = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
        idx = np.array([[0, -1], [1, -1]], dtype="int32")  # unit 0 (stuck), unit 1 (normal)
        _, residual, _, _ = newton(engine, geo, seeds, idx, np.zeros(2, bool), np.ones((2, 4)), 30, 64)
    finally:
        del engine.step
    assert residual[1] < 1e-4 and not residual[0] < 1e-4
    assert sum(rows_asked) <= 2 + 4  # the stuck row: two passes; the other converges in a few
    # the rule itself: no move beyond float32 rounding and no fall of the residual
    x = np.ones((3, 2), dtype="float32")
    moved = x + np.array([[1e-8, 0], [1e-3, 0], [1e-8, 0]], dtype="float32")
    assert stalled(x, moved, np.array([1.0, 1.0, 0.5]), np.array([1.0, 1.0, 1.0])).tolist() == [True, False, False]


def test_a_newton_row_that_lands_on_its_boundary_leaves_without_another_full_pass():
    """First-layer units are linear in the input, so one least-norm Newton step lands on
    their boundaries (and on an intersection of two). A forward pass says so: each row costs
    one full pass (forward and backward), not a second one to confirm, and keeps the
    normal of the step that brought it there, the unit's own weight direction."""
    import keras

    from tafa_tf.synthesis import MAX_TARGETS, _geometry, engine_for, newton

    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, activation="relu")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3, activation="relu")(hidden(inputs))))
    engine = engine_for(ReluNetwork(model))
    geo = _geometry(engine, tafa.domains.Gaussian(1.0), "values")
    rows_asked = []
    steps = {m: engine.step(m, False) for m in (1, MAX_TARGETS)}

    def counted(m, probs):
        def call(*args):
            rows_asked.append(int(args[0].shape[0]))
            return steps[m](*args)
        return call

    engine.step = counted
    try:
        seeds = np.random.default_rng(1).standard_normal((3, 5)).astype("float32")
        idx = np.full((3, MAX_TARGETS), -1, dtype="int32")
        idx[0, 0], idx[1, 0], idx[2, :2] = 0, 1, (2, 3)
        x, residual, u, _ = newton(engine, geo, seeds, idx, np.zeros(3, bool), np.ones((3, MAX_TARGETS)), 30, 64)
    finally:
        del engine.step
    kernel, bias = (np.asarray(w, "float64") for w in hidden.get_weights())
    z = x.astype("float64") @ kernel + bias
    assert np.all(residual < 1e-4) and abs(z[0, 0]) < 1e-4 and abs(z[1, 1]) < 1e-4
    assert np.abs(z[2, 2:4]).max() < 1e-4
    assert sum(rows_asked) == 3  # one full pass a row
    for row, unit in ((0, 0), (1, 1)):
        normal = kernel[:, unit] / np.linalg.norm(kernel[:, unit])
        assert abs(abs(float(u[row] @ normal)) - 1.0) < 1e-5


def test_the_engine_passes_read_the_same_columns_as_the_network():
    """The synthesis engine reduces, gathers and differentiates the units layer by layer
    (not on one concatenation of every column); what it reads must be the network's own
    columns, in the network's order, breakpoints included: a ReLU6 unit gives two columns
    (z and z - 6), and a nested model's units follow its host's."""
    import keras
    import tensorflow as tf

    from tafa_tf.synthesis import MAX_TARGETS, _geometry, engine_for

    rng = np.random.default_rng(0)
    inner = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3, padding="same"), keras.layers.ReLU(6.0)])
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inner(inputs))
    out = keras.layers.Dense(3)(keras.layers.Dense(5, activation="relu")(keras.layers.Flatten()(h)))
    net = ReluNetwork(keras.Model(inputs, out))
    engine = engine_for(net)
    x = rng.standard_normal((5, engine.d)).astype("float32") * 3
    y, coords = (v.numpy() for v in net(tf.reshape(x, (-1, 6, 6, 2))))
    assert coords.shape[1] == net.n_units == 6 * 6 * 3 * 2 + 4 * 4 * 4 + 5

    cols = rng.choice(net.n_units, 40, replace=False).astype("int32")
    np.testing.assert_array_equal(engine.gather()(tf.constant(x), tf.constant(cols))[1].numpy(), coords[:, cols])
    _, active, s1, s2, _ = (v.numpy() for v in engine.stats(False, False)(tf.constant(x), tf.zeros((5, 3))))
    np.testing.assert_array_equal(active, (coords > 0).sum(0))
    np.testing.assert_allclose(s1, coords.sum(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s2, (coords**2).sum(0), rtol=1e-5, atol=1e-4)
    g = engine.stats(False, True)(tf.constant(x), tf.constant(rng.standard_normal((5, 3)), tf.float32))[4].numpy()
    relu6 = 6 * 6 * 3  # the ReLU6 site's columns at 0 and at 6 share one gradient
    np.testing.assert_array_equal(g[:relu6], g[relu6:2 * relu6])
    assert np.all(g >= 0) and (g > 0).mean() > 0.5

    idx = np.stack([rng.choice(net.n_units, MAX_TARGETS, replace=False) for _ in x]).astype("int32")
    idx[0, 2:] = -1  # an intersection of two
    geo = _geometry(engine, tafa.domains.Gaussian(1.0), "values")
    c, jac, _ = (v.numpy() for v in engine.step(MAX_TARGETS, False)(
        tf.constant(x), tf.constant(idx), tf.zeros(5, tf.bool), geo.low, geo.high, geo.shell))
    np.testing.assert_array_equal(c, np.where(idx >= 0, np.take_along_axis(coords, np.maximum(idx, 0), 1), 0.0))
    xt = tf.constant(x)
    for j in range(MAX_TARGETS):  # each constraint's gradient: that column's, zero where padded
        with tf.GradientTape() as tape:
            tape.watch(xt)
            z = tf.reduce_sum(tf.gather(net(tf.reshape(xt, (-1, 6, 6, 2)))[1], np.maximum(idx[:, j], 0), batch_dims=1))
        want = tape.gradient(z, xt).numpy() * (idx[:, j:j + 1] >= 0)
        np.testing.assert_allclose(jac[:, j], want, rtol=1e-5, atol=1e-6)

    u = rng.standard_normal(x.shape).astype("float32")
    with tf.autodiff.ForwardAccumulator(xt, tf.constant(u)) as acc:
        _, z = net(tf.reshape(xt, (-1, 6, 6, 2)))
    t = np.abs(z.numpy()) / np.abs(acc.jvp(z).numpy())
    t[~np.isfinite(t) | (t < 1e-9)] = np.inf
    for row, targets in enumerate(idx):
        t[row, targets[targets >= 0]] = np.inf
    np.testing.assert_allclose(engine.region()(tf.constant(x), tf.constant(u), tf.constant(idx)).numpy(),
                               t.min(axis=1), rtol=1e-5)


def test_fingerprinting_a_small_model_leaks_no_numpy_warning():
    # candidates with no audible step yet (a step of 0) divided 0 by 0 in the stability
    # test, and a user saw "RuntimeWarning: invalid value encountered in divide"
    import warnings

    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fp = tafa.fingerprint(model, task="classification", n=8, domain=tafa.domains.Box(0.0, 1.0), seed=0)
    assert fp.n_points == 8


def test_fingerprinting_and_verifying_many_models_logs_no_retracing_warning():
    # each model gets its own traced passes, but TensorFlow counts the traces of every
    # function made from the same code together: from the fifth model on, a user
    # fingerprinting or scanning several models read "5 out of the last 5 calls to
    # <function _Engine.stats...> triggered tf.function retracing"
    import logging

    import keras
    import tensorflow as tf

    from tafa_tf.outputs import inference_call
    from tafa_tf.synthesis import engine_for

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        for seed in range(7):
            keras.utils.set_random_seed(seed)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
            x = tf.random.uniform((5, 4))
            engine_for(ReluNetwork(model)).stats(False, False)(x, tf.zeros((5, 3)))
            inference_call(model, values=2**30)(x.numpy())
    finally:
        tf_logger.removeHandler(handler)
    retracing = [m for m in messages if "retracing" in m]
    assert not retracing, retracing[0]


def test_a_functional_suspect_built_on_a_list_of_inputs_is_asked_without_a_keras_warning(fp, owner):
    # keras.Model(owner.inputs, ...) builds on a one-element list; called with the bare
    # array, Keras warned "The structure of `inputs` doesn't match the expected structure"
    # at every verification (once per suspect of a scan)
    import warnings

    import keras

    listed = keras.Model(owner.inputs, owner.outputs)
    assert isinstance(listed.input, list)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = tafa.verify(fp, listed)
    assert not [w for w in caught if "structure" in str(w.message)], [str(w.message) for w in caught]
    assert report.score > 0.99
