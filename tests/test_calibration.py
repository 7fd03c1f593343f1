"""Calibration: the combiner, the threshold at a target FPR, cross-validated numbers,
a JSON round trip, clear errors; and end to end, a threshold that holds on held-out
innocent models."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from tafa_tf.batch import calibrate, calibrate_reports
from tafa_tf.calibration import Calibration, threshold_at_fpr
from tafa_tf.errors import CalibrationError


def synthetic(n_pos: int, n_neg: int, *, gap: float = 2.0, seed: int = 0) -> tuple[list[dict], list[int]]:
    """Feature dicts where pirated models score higher on average on "fidelity" and
    "kink", "noise" carries nothing and "constant" never changes."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in [1] * n_pos + [0] * n_neg:
        rows.append(
            {
                "fidelity": float(rng.normal(gap * label)),
                "kink": float(rng.normal(gap * label / 2)),
                "noise": float(rng.normal()),
                "constant": 1.0,
            }
        )
    return rows, [1] * n_pos + [0] * n_neg


@pytest.fixture(scope="module")
def fitted() -> Calibration:
    X, y = synthetic(60, 200)
    return Calibration(target_fpr=0.05).fit(X, y)


# ----------------------------------------------------------------------------- threshold


def test_threshold_sits_between_top_innocent_and_next_score():
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert threshold_at_fpr(y, scores, 0.01) == pytest.approx(0.55)


def test_threshold_when_an_innocent_scores_highest():
    # roc_curve's first threshold is inf: the result must stay finite, above the innocent.
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.95, 0.2, 0.8, 0.9])
    t = threshold_at_fpr(y, scores, 0.01)
    assert math.isfinite(t) and 0.95 < t <= 1.0


def test_threshold_above_an_innocent_at_exactly_one():
    t = threshold_at_fpr(np.array([0, 1]), np.array([1.0, 0.5]), 0.01)
    assert t > 1.0 and math.isfinite(t)


def test_threshold_allows_the_target_share_of_innocents():
    # 100 innocents at 0.00..0.99, target 5%: (k + 1) / 101 <= 0.05 lets the top 4 through.
    y = np.array([0] * 100 + [1] * 10)
    scores = np.concatenate([np.arange(100) / 100, np.full(10, 0.999)])
    t = threshold_at_fpr(y, scores, 0.05)
    assert np.sum(scores[y == 0] >= t) == 4
    assert 0.95 < t <= 0.96


def test_threshold_counts_one_unseen_innocent():
    # 12 innocents at a 10% target: flagging even one would give 2/13 > 0.1.
    y = np.array([0] * 12 + [1] * 3)
    scores = np.concatenate([np.linspace(0.0, 0.3, 12), [0.9, 0.95, 0.99]])
    assert 0.3 < threshold_at_fpr(y, scores, 0.1) < 0.9


def test_fitted_threshold_meets_target_fpr_on_its_models(fitted):
    X, y = synthetic(60, 200)
    scores = np.array([fitted.score(r) for r in X])
    labels = np.array(y)
    fpr = np.mean(scores[labels == 0] >= fitted.threshold)
    assert fpr <= 0.05
    # Smallest such threshold: one more innocent flagged would exceed the target,
    # counting one unseen innocent: (k + 1) / 201 <= 0.05 gives k = 9.
    assert np.sum(scores[labels == 0] >= fitted.threshold) == 9


def test_few_innocents_put_the_threshold_above_all_of_them():
    X, y = synthetic(8, 8, gap=4.0)
    cal = Calibration(target_fpr=0.01).fit(X, y)
    innocents = [cal.score(r) for r, label in zip(X, y) if label == 0]
    assert cal.threshold > max(innocents)


# ----------------------------------------------------------------------------- learned attributes


def test_cross_validated_numbers_are_present(fitted):
    assert fitted.feature_names_ == ["constant", "fidelity", "kink", "noise"]
    assert 0.9 < fitted.auc <= 1.0
    assert 0.0 <= fitted.tpr_at_fpr <= 1.0 and 0.0 <= fitted.fpr_at_threshold_ <= 1.0
    assert fitted.n_positives_ == 60 and fitted.n_negatives_ == 200
    assert fitted.cv_scores_.shape == (260,)
    # The informative features get the large positive weights.
    coef = dict(zip(fitted.feature_names_, fitted.coef_))
    assert coef["fidelity"] > coef["kink"] > abs(coef["noise"])


def test_constant_feature_is_not_divided_by_zero(fitted):
    assert fitted.scale_[fitted.feature_names_.index("constant")] == 1.0
    assert np.all(np.isfinite(fitted.coef_))


def test_score_is_a_probability_and_ignores_extra_keys(fitted):
    row = {"fidelity": 3.0, "kink": 1.0, "noise": 0.0, "constant": 1.0, "unused": 5.0}
    s = fitted.score(row)
    assert isinstance(s, float) and 0.0 <= s <= 1.0
    assert fitted.predict(row) is (s >= fitted.threshold)
    assert fitted.score({**row, "fidelity": 1e6}) == 1.0


def test_fit_accepts_an_array_with_names():
    X, y = synthetic(20, 20)
    names = ["fidelity", "kink"]
    matrix = np.array([[r[n] for n in names] for r in X])
    from_array = Calibration().fit(matrix, y, feature_names=names)
    from_dicts = Calibration().fit(X, y, feature_names=names)
    np.testing.assert_allclose(from_array.coef_, from_dicts.coef_)
    assert from_array.threshold == from_dicts.threshold


def test_fit_is_deterministic():
    X, y = synthetic(20, 30)
    a, b = Calibration().fit(X, y), Calibration().fit(X, y)
    assert a.to_dict() == b.to_dict()


# ----------------------------------------------------------------------------- errors


def test_too_few_models_says_how_many_are_needed():
    X, y = synthetic(3, 10)
    with pytest.raises(CalibrationError, match=r"at least 5 pirated and 5 innocent.*Received: 3 pirated and 10"):
        Calibration(cv=5).fit(X, y)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"fidelity": 1.0, "kink": 0.0, "noise": 0.0}, r"lacks the feature\(s\) \['constant'\]"),
        ({"fidelity": float("nan"), "kink": 0.0, "noise": 0.0, "constant": 1.0}, r"non-finite .*\['fidelity'\]"),
        ({"fidelity": "high", "kink": 0.0, "noise": 0.0, "constant": 1.0}, "must map names to numbers"),
        ([1.0, 2.0], "must be a dict"),
    ],
)
def test_score_refuses_unusable_features(fitted, row, message):
    with pytest.raises(CalibrationError, match=message):
        fitted.score(row)


def test_fit_refuses_a_row_with_a_missing_feature():
    X, y = synthetic(10, 10)
    del X[4]["kink"]
    with pytest.raises(CalibrationError, match=r"X\[4\] lacks the feature"):
        Calibration().fit(X, y)


@pytest.mark.parametrize("y", [[2] * 20, [1] * 19])
def test_fit_refuses_bad_labels(y):
    X, _ = synthetic(10, 10)
    with pytest.raises(CalibrationError, match="y must"):
        Calibration().fit(X, y)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"target_fpr": 0.0}, "Received: target_fpr=0.0"),
        ({"target_fpr": 1.5}, "Received: target_fpr=1.5"),
        ({"cv": 1}, "Received: cv=1"),
        ({"C": -1.0}, "Received: C=-1.0"),
    ],
)
def test_bad_settings_raise_value_error(settings, message):
    X, y = synthetic(10, 10)
    with pytest.raises(ValueError, match=message):
        Calibration(**settings).fit(X, y)


def test_unfitted_calibration_says_so():
    with pytest.raises(CalibrationError, match="not fitted"):
        Calibration().threshold  # noqa: B018


# ----------------------------------------------------------------------------- persistence


def test_to_dict_round_trips_through_json(fitted):
    d = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    again = Calibration.from_dict(d)
    X, _ = synthetic(5, 5, seed=9)
    for row in X:
        assert again.score(row) == fitted.score(row)
    assert (again.threshold, again.auc, again.tpr_at_fpr) == (fitted.threshold, fitted.auc, fitted.tpr_at_fpr)
    assert again.to_dict() == fitted.to_dict()
    assert "threshold=" in repr(again)


def _mutations():
    yield "not a dict", lambda d: [d], "must be a dict"
    yield "format", lambda d: {**d, "format": "pickle"}, "Unknown calibration format"
    yield "version", lambda d: {**d, "version": 99}, "Unknown calibration format"
    yield "settings", lambda d: {**d, "settings": {"cv": 5}}, "settings are malformed"
    yield "bad setting", lambda d: {**d, "settings": {**d["settings"], "target_fpr": 2}}, "settings are malformed"
    yield "names", lambda d: {**d, "feature_names": []}, "feature_names"
    yield "duplicate names", lambda d: {**d, "feature_names": ["a", "a", "b", "c"]}, "duplicates"
    yield "coef length", lambda d: {**d, "coef": d["coef"][:-1]}, "'coef' must be 4 finite"
    yield "coef missing", lambda d: {k: v for k, v in d.items() if k != "coef"}, "'coef'"
    yield "coef nan", lambda d: {**d, "coef": [float("nan")] * 4}, "'coef' must be 4 finite"
    yield "zero scale", lambda d: {**d, "scale": [0.0] * 4}, "'scale' must be positive"
    yield "threshold inf", lambda d: {**d, "threshold": float("inf")}, "'threshold' must be a finite"
    yield "threshold range", lambda d: {**d, "threshold": 3.0}, "'threshold' must be in"
    yield "threshold text", lambda d: {**d, "threshold": "0.5"}, "'threshold' must be a finite"
    yield "auc", lambda d: {**d, "auc": 1.5}, "'auc' must be in"
    yield "count", lambda d: {**d, "n_negatives": 0}, "'n_negatives' must be a positive integer"
    yield "cv labels", lambda d: {**d, "cv_labels": [1] * len(d["cv_labels"])}, "'cv_labels' must list"
    yield "cv scores", lambda d: {**d, "cv_scores": d["cv_scores"][:-1]}, "'cv_scores'"


@pytest.mark.parametrize("name, mutate, message", list(_mutations()), ids=[m[0] for m in _mutations()])
def test_from_dict_refuses_malformed_descriptions(fitted, name, mutate, message):
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(mutate(fitted.to_dict()))


# ----------------------------------------------------------------------------- calibrate_reports(): what calibrate() fits on


@dataclass
class FakeReport:
    """The two fields of a tafa.Report that calibration reads (the reports are the input here)."""

    features: dict = field(default_factory=dict)
    status: str = "ok"


def reports(n_pos, n_neg, **kw):
    X, y = synthetic(n_pos, n_neg, **kw)
    return [FakeReport(r) for r, l in zip(X, y) if l == 1], [FakeReport(r) for r, l in zip(X, y) if l == 0]


def test_calibrate_reports_fits_on_the_features():
    pos, neg = reports(12, 30)
    cal = calibrate_reports(pos, neg, target_fpr=0.1, combine="features")
    assert isinstance(cal, Calibration) and cal.n_positives_ == 12 and cal.n_negatives_ == 30
    assert cal.target_fpr == 0.1
    assert list(cal.cv_labels_) == [1] * 12 + [0] * 30 and cal.cv_scores_.shape == (42,)


def test_calibrate_reports_skips_unusable_reports_with_a_warning():
    pos, neg = reports(6, 8)
    neg[2] = FakeReport({}, status="non_finite")
    with pytest.warns(UserWarning, match=r"Skipping negatives\[2\].*non_finite"):
        cal = calibrate_reports(pos, neg, target_fpr=0.1, combine="features")
    assert cal.n_negatives_ == 7


def test_calibrate_reports_drops_features_not_finite_everywhere():
    pos, neg = reports(6, 6)
    pos[0].features["kink"] = float("nan")
    with pytest.warns(UserWarning, match=r"without the feature\(s\) \['kink'\]"):
        cal = calibrate_reports(pos, neg, target_fpr=0.1, combine="features")
    assert "kink" not in cal.feature_names_


def scored_reports(n_pos, n_neg, seed=0):
    """Reports with the features the default score reads; pirated ones agree more with the owner."""
    rng = np.random.default_rng(seed)

    def row(label):
        level = 0.6 + 0.3 * label + 0.1 * rng.standard_normal()
        return FakeReport({"output_similarity": level, "diff_similarity": level + 0.05 * rng.standard_normal(),
                           "kink_similarity": float(rng.uniform(0.3, 0.7))})

    return [row(1) for _ in range(n_pos)], [row(0) for _ in range(n_neg)]


def test_calibrate_reports_by_default_places_the_threshold_on_the_default_score():
    from tafa_tf.verification import default_score

    pos, neg = scored_reports(12, 24)
    cal = calibrate_reports(pos, neg, target_fpr=0.05)
    assert cal.feature_names_ == ["default_score"]
    # one variable: the calibrated score keeps the default score's order
    plain = [default_score(r.features) for r in pos + neg]
    calibrated = [cal.score({"default_score": s}) for s in plain]
    assert np.array_equal(np.argsort(plain, kind="stable"), np.argsort(calibrated, kind="stable"))
    # the threshold sits above every innocent reference (24 innocents cannot show 5%)
    assert max(cal.score({"default_score": default_score(r.features)}) for r in neg) < cal.threshold
    learned = calibrate_reports(pos, neg, target_fpr=0.05, combine="features")
    assert learned.feature_names_ == ["diff_similarity", "kink_similarity", "output_similarity"]


def test_calibrate_reports_refuses_an_unknown_combiner():
    pos, neg = scored_reports(6, 6)
    with pytest.raises(ValueError, match=r"combine must be one of \('score', 'features'\). Received: combine='mean'"):
        calibrate_reports(pos, neg, combine="mean")


def test_calibrate_checks_counts_before_verifying(fp):
    # object() is no suspect: verifying any of them would raise a SuspectError
    with pytest.raises(CalibrationError, match="Received: 2 pirated and 20 innocent"):
        calibrate(fp, [object()] * 2, [object()] * 20)


def test_calibrate_reports_counts_again_after_skipping():
    pos, neg = reports(5, 5)
    pos[0] = FakeReport({}, status="non_finite")
    with pytest.warns(UserWarning), pytest.raises(CalibrationError, match="Received: 4 pirated"):
        calibrate_reports(pos, neg)


def test_calibration_keeps_its_cross_validated_scores_in_the_file(fitted):
    again = Calibration.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_allclose(again.cv_scores_, fitted.cv_scores_)
    assert list(again.cv_labels_) == list(fitted.cv_labels_)
    # a file written before the scores were kept still loads, without them
    older = {k: v for k, v in fitted.to_dict().items() if k not in ("cv_scores", "cv_labels")}
    assert Calibration.from_dict(older).cv_scores_.shape == (0,)


# ----------------------------------------------------------------------------- end to end


def innocent_models(seeds, *, epochs: int = 8):
    """Independent digits classifiers: other seeds, half of them on another data split."""
    from tafa_tf import zoo

    models = []
    for s in seeds:
        data = zoo.data_for("digits_mlp", seed=s) if s % 2 else zoo.data_for("digits_mlp")
        models.append(zoo.train("digits_mlp", seed=s, epochs=epochs, data=data))
    return models


def pirated_models(owner, seeds):
    """Pirated variants of many families, each seed drawing other settings."""
    from tafa_tf import piracy, zoo

    data = zoo.data_for("digits_mlp")
    out = []
    for s in seeds:
        out += [
            piracy.fine_tune(owner, data.x_train, data.y_train, epochs=2, learning_rate=(1e-3, 3e-3)[s % 2], seed=s),
            piracy.prune(owner, 0.2 + 0.1 * (s % 4)),
            piracy.add_noise(owner, 0.02 + 0.01 * (s % 3), seed=s),
            piracy.quantize(piracy.rescale_neurons(owner, seed=s), ("int8", "float16")[s % 2]),
        ]
    return out


@pytest.mark.slow
def test_calibrated_threshold_holds_on_held_out_innocents(trained, tmp_path):
    import tafa_tf as tafa
    from tafa_tf.domains import Box

    owner = trained("digits_mlp")
    fp = tafa.fingerprint(owner, task="classification", n=64, domain=Box(0.0, 1.0), seed=0)
    target = 0.1
    # Calibrate on one set of models, judge on models the calibration never saw.
    cal = tafa.calibrate(
        fp, pirated_models(owner, range(3)), innocent_models(range(1, 11)), target_fpr=target, cv=4
    )
    assert cal.auc > 0.9 and cal.tpr_at_fpr > 0.8 and cal.fpr_at_threshold_ <= target
    fp = fp.with_calibration(cal)
    path = tmp_path / "owner.tafa"
    fp.save(path)
    fp = tafa.Fingerprint.load(path)

    held_out_innocents = innocent_models(range(11, 21))
    flagged = [tafa.verify(fp, m).pirated for m in held_out_innocents]
    assert np.mean(flagged) <= target
    caught = [tafa.verify(fp, m).pirated for m in pirated_models(owner, range(3, 5))]
    assert np.mean(caught) >= 0.8


@pytest.mark.slow
def test_calibrating_with_distilled_students_catches_held_out_students(trained):
    """owner_pull (public samples + base) is left out of the default score; calibration uses it.

    Students distilled on data score like independent models by default. With students
    among the positives, a calibration flags held-out students and clears held-out
    innocents, same-base fine-tunes included.
    """
    import tafa_tf as tafa
    from tafa_tf import piracy, zoo
    from tafa_tf.domains import Box

    data = zoo.data_for("digits_mlp")
    half = len(data.x_train) // 2
    own = (data.x_train[:half], data.y_train[:half])
    base = trained("digits_mlp", 7)
    owner = piracy.fine_tune(base, *own, epochs=8, learning_rate=2e-3, seed=0)
    fp = tafa.fingerprint(owner, task="classification", n=64, domain=Box(0.0, 1.0), seed=0, base=base,
                          samples=data.x_test[:32])

    def other_half(s):
        idx = np.random.default_rng(100 + s).permutation(len(data.x_train))[:half]
        return data.x_train[idx], data.y_train[idx]

    students = [piracy.distill(owner, x=np.concatenate([own[0], data.x_test]), epochs=30, seed=s) for s in range(7)]
    copies = [piracy.fine_tune(owner, *own, epochs=6, learning_rate=3e-3, seed=s) for s in range(3)]
    copies.append(piracy.prune(owner, 0.5, fine_tune_data=own, epochs=3))
    same_base = [piracy.fine_tune(base, *other_half(s), epochs=8, learning_rate=2e-3, seed=20 + s) for s in range(7)]
    independent = [trained("digits_mlp", s) for s in range(1, 7)]

    cal = tafa.calibrate(fp, students[:5] + copies, same_base[:5] + independent[:4], target_fpr=0.1, cv=3,
                         combine="features")
    calibrated = fp.with_calibration(cal)
    held_students, held_innocents = students[5:], same_base[5:] + independent[4:]
    default = [tafa.verify(fp, m).score for m in held_students]
    caught = [tafa.verify(calibrated, m) for m in held_students]
    cleared = [tafa.verify(calibrated, m) for m in held_innocents]
    print(f"\nheld-out students: default {np.round(default, 3)}, calibrated {[round(r.score, 3) for r in caught]}; "
          f"innocents calibrated {[round(r.score, 3) for r in cleared]}; weights "
          f"{dict(zip(cal.feature_names_, np.round(cal.coef_, 2)))}")
    assert "owner_pull" in cal.feature_names_
    assert all(r.pirated for r in caught)
    assert not any(r.pirated for r in cleared)


@pytest.mark.slow
def test_a_calibration_pooled_over_other_releases_judges_a_new_release(trained):
    """Reports verified against two owners' fingerprints calibrate a third owner's
    (README: pooling the references of releases). The third owner's copies and four of
    its innocents are in no report of the calibration; the other two owners are, but as
    innocents of each other's fingerprint, not of the third's."""
    import tafa_tf as tafa
    from tafa_tf.domains import Box

    owners = [trained("digits_mlp", s) for s in (0, 1, 2)]
    fps = [tafa.fingerprint(o, task="classification", n=32, domain=Box(0.0, 1.0), seed=0) for o in owners]
    innocents = innocent_models(range(11, 21))  # trained from other seeds than the three owners
    pos, neg = [], []
    for owner, fp, shown in zip(owners[:2], fps[:2], (innocents[:3], innocents[3:6])):
        pos += tafa.verify_many(fp, pirated_models(owner, range(2)))
        neg += tafa.verify_many(fp, shown + [o for o in owners if o is not owner])
    cal = calibrate_reports(pos, neg, target_fpr=0.1, cv=4, combine="features")
    judged = fps[2].with_calibration(cal)
    caught = [tafa.verify(judged, m).pirated for m in pirated_models(owners[2], range(2, 4))]
    flagged = [tafa.verify(judged, m).pirated for m in innocents[6:] + owners[:2]]
    assert np.mean(caught) >= 0.75, caught
    assert not any(flagged), flagged


def test_features_measured_only_for_some_suspects_are_left_out_quietly_the_rest_with_a_warning():
    import warnings

    from tafa_tf.batch import _shared_features

    rows = [{"output_similarity": 0.9, "kink_similarity": 0.4, "noise_agreement": 0.7},
            {"output_similarity": 0.5, "kink_similarity": 0.5, "lattice_agreement": 0.1},
            {"output_similarity": 0.4, "kink_similarity": 0.6}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _shared_features(rows) == ["kink_similarity", "output_similarity"]
    rows[2] = {"output_similarity": 0.4}
    with pytest.warns(UserWarning, match=r"without the feature\(s\) \['kink_similarity'\]"):
        assert _shared_features(rows) == ["output_similarity"]


def test_an_accusation_by_too_few_innocents_says_so(fitted):
    from tafa_tf.judge import decide

    X, y = synthetic(8, 3)  # three innocents: a 5% target needs 19
    few = Calibration(target_fpr=0.05, cv=2).fit(X, y)
    high = decide(None, 1.0, calibration=few)
    assert high["pirated"] is True
    assert len(high["warnings"]) == 1 and "rests on 3 innocent reference model(s)" in high["warnings"][0]
    assert "up to 0.25" in high["warnings"][0] and "at least 19 innocent models" in high["warnings"][0]
    assert decide(None, 0.0, calibration=few)["warnings"] == ()  # a clearance needs no such warning
    assert decide(None, 1.0, calibration=fitted)["warnings"] == ()  # 200 innocents show 5%
