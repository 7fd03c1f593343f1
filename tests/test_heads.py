"""The head features (tafa_tf.heads): how well a new linear head on the owner's penultimate
features explains a suspect's answers, and how much better than one on the base's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

import tafa_tf as tafa
from tafa_tf.errors import FingerprintFileError
from tafa_tf.heads import (ALPHAS, FOLDS, compress, decades, exactness, head_closeness, head_contrast, head_exact,
                           head_fit)


def three_queries(rng, n: int, d: int) -> np.ndarray:
    """Features at n points and at two probes each (near copies), stacked as a fingerprint's queries."""
    h = rng.standard_normal((n, d))
    return np.concatenate([h, h + 0.01 * rng.standard_normal((n, d)), h - 0.01 * rng.standard_normal((n, d))])


def ridge_cv_reference(h: np.ndarray, y: np.ndarray, n: int) -> float:
    """The same cross-validated R^2 computed with scikit-learn's RidgeCV."""
    h = h / np.sqrt(np.sum(h**2) / len(h))
    order = np.random.default_rng(0).permutation(n)
    rows = lambda p: np.concatenate([p, n + p, 2 * n + p])  # noqa: E731
    pred = np.empty_like(y)
    for f in range(FOLDS):
        test = np.sort(order[f::FOLDS])
        train = np.setdiff1d(order, test)
        pred[rows(test)] = RidgeCV(alphas=ALPHAS).fit(h[rows(train)], y[rows(train)]).predict(h[rows(test)])
    return 1.0 - float(np.sum((y - pred) ** 2)) / float(np.sum((y - y.mean(axis=0)) ** 2))


@pytest.mark.parametrize("noise", [0.1, 1.0, 5.0])
def test_head_fit_is_scikit_learns_ridge_cv_with_folds_split_by_point(noise):
    rng = np.random.default_rng(1)
    n, d = 60, 12
    h = three_queries(rng, n, d)
    y = h @ rng.standard_normal((d, 4)) + noise * rng.standard_normal((3 * n, 4))
    assert head_fit(h, y, n) == pytest.approx(ridge_cv_reference(h, y, n), abs=1e-9)


def test_head_fit_is_one_for_a_new_affine_head_and_near_zero_for_unrelated_answers():
    rng = np.random.default_rng(2)
    n, d = 64, 16
    h = three_queries(rng, n, d)
    assert head_fit(h, h @ rng.standard_normal((d, 10)) + 3.0, n) > 0.999
    assert head_fit(h, rng.standard_normal((3 * n, 10)), n) < 0.1
    assert np.isnan(head_fit(h, np.ones((3 * n, 10)), n))  # answers that do not vary
    assert np.isnan(head_fit(h[:21], rng.standard_normal((21, 2)), 7))  # fewer than 2 points per fold


def test_compressed_features_give_every_fit_exactly():
    rng = np.random.default_rng(3)
    n, d = 40, 500  # wider than the 120 queries: kept as their coordinates in the row space
    h = three_queries(rng, n, d)
    small = compress(h)
    assert small.shape[0] == 3 * n and small.shape[1] <= 3 * n and small.dtype == np.float32
    for y in (h[:, :3] @ rng.standard_normal((3, 2)), rng.standard_normal((3 * n, 2))):
        assert head_fit(small, y, n) == pytest.approx(head_fit(h, y, n), abs=1e-5)
    assert compress(np.where(np.eye(3 * n, 4) > 0, np.nan, h[:, :4])) is None
    assert compress(None) is None


def test_exactness_ramps_over_three_decades_of_unexplained_variance():
    assert exactness(1.0 - 1e-12) == 1.0 and exactness(1.0 - 1e-5) == pytest.approx(1.0)
    assert exactness(1.0 - 1e-2) == pytest.approx(0.0) and exactness(0.5) == 0.0 and exactness(-3.0) == 0.0
    assert exactness(1.0 - 10**-3.5) == pytest.approx(0.5)
    assert np.isnan(exactness(float("nan")))


def test_head_exact_for_an_affine_head_on_the_features_only():
    """Float32 answers of a new affine head on the owner's features fit to rounding; a
    non-affine part a tenth of their spread (about what the closest innocent models of
    the benchmark leave: 5e-3 of the variance) counts for little;
    and where the inputs (or the base's features) explain the answers as exactly, the
    owner's features prove nothing."""
    rng = np.random.default_rng(4)
    n, d = 96, 24
    h = three_queries(rng, n, d)
    head = (h @ rng.standard_normal((d, 10))).astype("float32")
    fit = head_fit(h, head, n)
    assert head_exact(fit) == 1.0
    assert head_exact(head_fit(h, head + 0.1 * np.abs(h[:, :10]) * head.std(), n)) < 0.1
    assert head_exact(fit, fit_inputs=fit) == 0.0 and head_exact(fit, fit_base=fit) == 0.0
    assert head_exact(fit, fit_inputs=0.7, fit_base=float("nan")) == 1.0


def test_head_contrast_is_one_for_the_owners_features_zero_for_the_bases_and_half_between():
    assert head_contrast(1.0, 0.6) == 1.0
    assert head_contrast(0.6, 1.0) == 0.0
    assert head_contrast(0.7, 0.7) == pytest.approx(0.5)
    assert head_contrast(0.9, 0.6) == pytest.approx(0.4 / 0.5)
    assert np.isnan(head_contrast(1.0, 1.0))
    assert np.isnan(head_contrast(float("nan"), 0.5))


def test_head_closeness_counts_decades_of_unexplained_variance_on_the_owners_own_scale():
    assert decades(0.999) == pytest.approx(3.0) and decades(1.0) == 12.0 and decades(-2.0) == 0.0
    assert head_closeness(0.99, 1.0) == pytest.approx(2.0 / 3.0)  # an exact owner: the scale is 3 decades
    assert head_closeness(0.9999, 1.0) == 1.0 and head_closeness(-0.5, 1.0) == 0.0
    # features wider than the queries pin down fit the owner itself only to 0.94: a copy fitted as well is 1
    assert head_closeness(0.94, 0.94) == pytest.approx(1.0) and head_closeness(0.6, 0.94) < 0.35
    assert np.isnan(head_closeness(float("nan"), 1.0)) and np.isnan(head_closeness(0.9, 0.0))


def test_head_closeness_ranks_a_copy_tuned_in_every_layer_above_an_independent_model(fp, owner, trained):
    """FTAL (every layer fine-tuned on other data) changes every output value, but the
    owner's features still explain its answers to within a percent; an independently
    trained model's, to within tens of percents."""
    from tafa_tf import piracy, zoo

    data = zoo.data_for("digits_mlp")
    ftal = piracy.fine_tune(owner, data.x_test, data.y_test, epochs=5, learning_rate=1e-3, seed=1)
    close = {name: tafa.verify(fp, model).features["head_closeness"]
             for name, model in (("float16", piracy.quantize(owner, "float16")), ("ftal", ftal),
                                 ("independent", trained("digits_mlp", seed=1)))}
    assert close["float16"] > 0.99
    assert close["ftal"] > close["independent"] + 0.4, close


def test_a_copy_with_a_fresh_output_layer_keeps_its_label_terms_at_its_head_closeness(fp, owner, trained,
                                                                                     monkeypatch):
    """RTAL (output layer drawn afresh, every layer retrained) decides the labels off the
    data anew; the owner's features still explain its answers better than an independent
    model's, and its label terms count no lower than that (verification.FLOOR_RAISERS)."""
    from tafa_tf import piracy, verification, zoo

    data = zoo.data_for("digits_mlp")
    rtal = tafa.verify(fp, piracy.rtal(owner, data.x_test, data.y_test, learning_rate=1e-3, seed=1))
    features = rtal.features
    assert features["head_closeness"] > features["flip_agreement"], features
    for term in ("label_agreement", "flip_agreement"):
        monkeypatch.delitem(verification.FLOOR_RAISERS, term)
    assert rtal.score > verification.default_score(features) + 0.02
    for seed in (1, 2):
        independent = tafa.verify(fp, trained("digits_mlp", seed=seed))
        assert rtal.score > independent.score + 0.02, (rtal.score, independent.score)


def test_a_fingerprint_keeps_its_features_and_refuses_malformed_ones(fp, owner, tmp_path):
    assert fp.features is not None and fp.features.shape == (3 * fp.n_points, 32)  # the digits MLP's last hidden layer
    assert fp.base_features is None
    again = tafa.Fingerprint.load(fp.save(tmp_path / "fp.tafa"))
    np.testing.assert_array_equal(again.features, fp.features)
    assert tafa.verify(again, owner).features["head_fit"] > 0.999

    bad = dataclasses.replace(fp, features=fp.features[: fp.n_points])
    with pytest.raises(FingerprintFileError, match=rf"array 'features' has shape \({fp.n_points}, 32\), "
                                                   rf"expected {3 * fp.n_points} rows"):
        tafa.Fingerprint.load(bad.save(tmp_path / "bad.tafa"))
    nan = dataclasses.replace(fp, features=np.full_like(fp.features, np.nan))
    with pytest.raises(FingerprintFileError, match="array 'features' holds NaN or inf"):
        tafa.Fingerprint.load(nan.save(tmp_path / "nan.tafa"))


def test_a_fingerprint_without_features_verifies_as_before(fp, owner, tmp_path):
    old = tafa.Fingerprint.load(dataclasses.replace(fp, features=None).save(tmp_path / "old.tafa"))
    assert old.features is None
    report = tafa.verify(old, owner)
    assert "head_fit" not in report.features
    assert report.score == pytest.approx(tafa.verify(fp, owner).score)


def test_no_head_features_for_a_model_whose_output_layer_reads_a_whole_feature_map():
    import keras

    from tafa_tf.heads import MAX_FEATURES, answering_model

    wide = keras.Sequential([keras.Input((64, 64, 8)), keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(1, 1)])  # its output layer reads 64 * 64 * 8 values per input
    assert 64 * 64 * 8 > MAX_FEATURES and answering_model(wide) is None
    narrow = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    assert answering_model(narrow) is not None
