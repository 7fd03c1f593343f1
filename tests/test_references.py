"""tafa.references.build on real small models, and the verdict statistics of tafa_tf.judge."""

from __future__ import annotations

import numpy as np
import pytest

from tafa_tf import judge, piracy, references, zoo


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _saved_groups(path) -> list[str]:
    """The top-level groups of a .keras file's weights (layers, vars, and optimizer if saved)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h:
        return list(h.keys())


def test_build_makes_references_from_the_owner_and_never_changes_it(owner, tmp_path):
    data = zoo.digits_data()
    x, y = data.x_train[:300], data.y_train[:300]
    before = _weights(owner)
    base = zoo.train("digits_mlp", seed=5, epochs=2)
    refs = references.build(owner, (x, y), base=base, n_innocent=3, n_pirated=4, epochs=2, cache_dir=tmp_path,
                            progress=False)
    assert len(refs.negatives) == 3 and len(refs.positives) == 4
    assert refs.names == refs.positive_names + refs.negative_names
    assert refs.negative_names[0].startswith("base-ft-0") and refs.negative_names[2].startswith("reinit-1")
    assert refs.positive_names == ["ft-small-0", "ft-large-0", "prune-50-ft-0", "noise-2-0"]
    assert all(np.array_equal(a, b) for a, b in zip(before, owner.get_weights()))
    # every reference is another model than the owner, with its shapes
    for m in refs.positives + refs.negatives:
        assert m is not owner and tuple(m.outputs[0].shape[1:]) == (10,)
        assert not all(np.array_equal(a, b) for a, b in zip(m.get_weights(), owner.get_weights()))

    files = {p.name: p.stat().st_mtime_ns for p in refs.cache_dir.glob("*.keras")}
    assert len(files) == 4 + 4  # two runs of (final, half-way checkpoint), four transforms
    # what training left (the optimizer's state: two more copies of every weight) is neither kept nor saved
    assert not any(m.compiled for m in refs.positives + refs.negatives)
    assert not [p.name for p in refs.cache_dir.glob("*.keras") if "optimizer" in _saved_groups(p)]
    again = references.build(owner, (x, y), base=base, n_innocent=3, n_pirated=4, epochs=2, cache_dir=tmp_path,
                             progress=False)
    assert again.names == refs.names and again.cache_dir == refs.cache_dir
    assert {p.name: p.stat().st_mtime_ns for p in again.cache_dir.glob("*.keras")} == files  # loaded, not rebuilt
    for a, b in zip(again.positives + again.negatives, refs.positives + refs.negatives):
        assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_with_a_base_most_innocent_runs_fine_tune_it(owner):
    base = zoo.train("digits_mlp", seed=5, epochs=1)
    recipe = references._Recipe(owner, (np.zeros((4, 64)), np.zeros(4)), base, None, 0, 30, 2e-3, None)
    names = [job.names[0].rsplit("-", 1)[0] if job.names[0].startswith("base-ft") else job.names[0]
             for job in recipe.innocent_jobs(12)]
    assert names == ["base-ft-0", "base-ft-1", "base-ft-2", "base-ft-3", "base-ft-4", "reinit-5"]
    alone = references._Recipe(owner, (np.zeros((4, 64)), np.zeros(4)), None, None, 0, 30, 2e-3, None)
    assert [job.names[0] for job in alone.innocent_jobs(4)] == ["reinit-0", "reinit-1"]


def test_build_trains_a_generator_from_images_alone(trained, tmp_path):
    decoder = trained("digits_decoder", epochs=2)
    images = zoo.digits_data().x_train[:200]
    refs = references.build(decoder, images, n_innocent=2, n_pirated=2, epochs=1, cache_dir=tmp_path, progress=False)
    assert refs.negative_names == ["reinit-0", "reinit-0-half"]
    z = np.random.default_rng(0).standard_normal((4, zoo.LATENT_DIM)).astype("float32")
    for m in refs.positives + refs.negatives:
        out = np.asarray(m(z))
        assert out.shape == (4, 64) and np.all(np.isfinite(out))


def test_build_uses_a_given_fit(owner):
    seen = []

    def fit(model, data, seed):
        seen.append((len(data[0]), seed))
        return model  # an untrained re-initialisation is still a valid innocent

    x, y = zoo.digits_data().x_train[:100], zoo.digits_data().y_train[:100]
    refs = references.build(owner, (x, y), n_innocent=2, n_pirated=1, fit=fit, progress=False)
    assert len(refs.negatives) == 2 and len(refs.positives) == 1
    assert seen and all(n == 50 for n, _ in seen)  # subsets of half the data


def _functional_cnn(seed: int = 0):
    """A small residual CNN on 8x8 digits, Functional as keras.applications backbones are."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = keras.layers.Add()([h, keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)])
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_build_makes_references_for_a_functional_cnn(tmp_path):
    # permute_neurons and rescale_neurons need a Sequential chain; a Functional owner's
    # references used to stop at the sixth transform with UnsupportedModelError
    data = zoo.digits_data()
    x, y = data.x_train[:200].reshape(-1, 8, 8, 1), data.y_train[:200]
    owner = _functional_cnn()
    owner.fit(x, y, epochs=2, verbose=0)
    refs = references.build(owner, (x, y), n_innocent=2, n_pirated=6, epochs=1, cache_dir=tmp_path, progress=False)
    assert refs.positive_names[5] == "noise-1-0" and len(refs.positives) == 6 and len(refs.negatives) == 2
    probe = x[:16]
    moved = np.abs(np.asarray(refs.positives[5](probe)) - np.asarray(owner(probe))).max()
    assert 0 < moved < 0.5  # the owner under 1% weight noise: near it, not it


def test_references_much_worse_than_the_owner_are_warned_about(owner):
    data = zoo.digits_data()
    pairs = (data.x_train[:400], data.y_train[:400])
    # trained like the owner (here: the owner's own weights): nothing to say
    assert references.quality_warnings(owner, pairs, [piracy.copy_model(owner)]) == []
    # fresh weights, never trained: chance accuracy against the owner's
    fresh = [piracy.fresh_model(owner, seed) for seed in (1, 2)]
    (message,) = references.quality_warnings(owner, pairs, fresh)
    assert "accuracy" in message and "fit=" in message
    # regressors and generators are not judged by accuracy
    assert references.quality_warnings(owner, (pairs[0], pairs[1].astype("float32")), fresh) == []
    assert references.quality_warnings(owner, (pairs[0], None), fresh) == []
    assert references.quality_warnings(owner, (pairs[0], np.stack([pairs[1]] * 2, axis=1)), fresh) == []


def test_reparametrizable_says_which_models_permute_and_rescale_take(owner):
    import keras

    assert piracy.reparametrizable(owner)  # the digits MLP: a Sequential chain of Dense ReLU layers
    assert not piracy.reparametrizable(_functional_cnn())
    bn = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    assert not piracy.reparametrizable(bn)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_innocent": 0}, "n_innocent must be a positive integer"),
        ({"data": "train.npz"}, "data must be the owner's training pairs"),
        ({"data": (np.zeros((5, 64)), np.zeros(4))}, "same length"),
        ({"base": "base.keras"}, "base must be a keras.Model"),
    ],
)
def test_build_refuses_bad_input_clearly(owner, kwargs, message):
    args = {"data": (np.zeros((5, 64), "float32"), np.zeros(5, "int64")), **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        references.build(owner, **args, progress=False)


def test_clopper_pearson_upper_bound():
    assert judge.clopper_pearson_upper(0, 20) == pytest.approx(1 - 0.05 ** (1 / 20), rel=1e-6)  # 0.139
    assert judge.clopper_pearson_upper(3, 3) == 1.0
    assert judge.clopper_pearson_upper(1, 100) > 0.01
    with pytest.raises(ValueError, match="0 <= k <= n"):
        judge.clopper_pearson_upper(5, 4)


def test_empirical_p_value_counts_the_suspect_as_one_more_innocent():
    innocent = [0.1, 0.2, 0.3, 0.9]
    assert judge.empirical_p_value(0.95, innocent) == pytest.approx(1 / 5)
    assert judge.empirical_p_value(0.3, innocent) == pytest.approx(3 / 5)
    assert judge.empirical_p_value(0.0, innocent) == 1.0


def test_uncalibrated_rule_is_relative_to_the_references_with_an_uncertain_band():
    clear, accuse = judge.uncalibrated_thresholds({"shuffled-0": 0.2, "base": 0.4})
    assert clear == pytest.approx(0.4 + 0.2 * 0.6) and accuse == pytest.approx(0.4 + 0.85 * 0.6)
    low_clear, low_accuse = judge.uncalibrated_thresholds({"shuffled-0": 0.0})
    assert low_accuse == judge.UNCALIBRATED_FLOOR  # the floor holds whatever the references
    assert judge.uncalibrated_verdict(0.95, clear, accuse) is True
    assert judge.uncalibrated_verdict(0.8, clear, accuse) is None
    assert judge.uncalibrated_verdict(0.5, clear, accuse) is False
    assert judge.uncalibrated_verdict(float("nan"), clear, accuse) is None


def test_the_perturbed_owner_caps_the_accusation_threshold_but_not_under_the_floor():
    refs = {"shuffled-0": 0.4}
    _, rule = judge.uncalibrated_thresholds(refs)
    assert rule == pytest.approx(0.4 + 0.85 * 0.6)
    # a copy made by rounding-level weight noise scores 0.87: the rule's 0.91 would never accuse such copies
    clear, accuse = judge.uncalibrated_thresholds({**refs, judge.PERTURBED_REFERENCE: 0.87})
    assert accuse == pytest.approx(0.87) and clear == pytest.approx(0.4 + 0.2 * 0.6)
    assert judge.uncalibrated_verdict(0.88, clear, accuse) is True
    # it is no innocent reference: a high one does not raise the line, a low one stops at the floor
    assert judge.uncalibrated_thresholds({**refs, judge.PERTURBED_REFERENCE: 0.99})[1] == pytest.approx(rule)
    assert judge.uncalibrated_thresholds({**refs, judge.PERTURBED_REFERENCE: 0.5})[1] == judge.UNCALIBRATED_FLOOR
    # nor does it let a fingerprint accuse when an innocent reference answers as well as the owner
    assert judge.uncalibrated_thresholds({"shuffled-0": 1.0, judge.PERTURBED_REFERENCE: 0.9})[1] > 1.0


def test_no_accusation_when_a_reference_scores_as_high_as_the_owner():
    # e.g. a model that answers the same everywhere: its shuffled answers are its answers
    clear, accuse = judge.uncalibrated_thresholds({"shuffled-0": 1.0})
    assert judge.uncalibrated_verdict(1.0, clear, accuse) is None
    assert judge.uncalibrated_verdict(0.4, clear, accuse) is False


def test_reference_scores_come_from_the_fingerprint_alone(fp):
    from tafa_tf.verification import compute_features, default_score, reference_score

    refs = judge.reference_scores(fp, lambda a: reference_score(fp, a))
    assert len(refs) == judge.N_SHUFFLES and "base" not in refs
    owner_score = default_score(compute_features(fp, fp.owner_outputs())[0])
    assert owner_score == pytest.approx(1.0)
    assert all(0.0 <= v < 0.6 for v in refs.values())  # shuffled answers look nothing like the owner here
