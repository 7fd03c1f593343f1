"""Suspects that misbehave: each gets a clear outcome, never a confident verdict on garbage.

A suspect is untrusted: it may take the wrong inputs, answer in the wrong shape, answer
NaN, raise, hang, or answer at random (dropout left on at inference). verify() must
either raise one of the library's SuspectError types with a message that says what
happened, or return a Report whose status and verdict say what it can support.
The outcome of every case is written to suspects.json in the ``results_dir`` folder (see
conftest.py; benchmarks/results holds the committed run).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import tafa_tf as tafa
from tafa_tf.errors import SuspectError, SuspectShapeError, SuspectTimeoutError

_OUTCOMES: dict[str, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_outcomes(results_dir: Path):
    yield
    (results_dir / "suspects.json").write_text(json.dumps(_OUTCOMES, indent=2, sort_keys=True, default=str) + "\n")


def record(case: str, **outcome) -> None:
    _OUTCOMES[case] = outcome


def record_report(case: str, report: tafa.Report) -> None:
    record(case, status=report.status, pirated=report.pirated,
           score=None if not np.isfinite(report.score) else round(report.score, 4),
           warnings=list(report.warnings))


@pytest.fixture(scope="module")
def fp(owner):
    return tafa.fingerprint(owner, task="classification", n=48, domain=tafa.domains.Box(0.0, 1.0), seed=0)


def predict(model):
    return lambda x: np.asarray(model(x, training=False))


def test_the_owner_itself_is_a_confident_ok_verdict(fp, owner):
    report = tafa.verify(fp, owner)
    record_report("owner itself (control)", report)
    assert report.status == "ok" and report.pirated is True and report.score > 0.9


# -- shapes ------------------------------------------------------------------------------------


def test_keras_suspect_with_other_input_shape(fp):
    other = keras.Sequential([keras.Input((32,)), keras.layers.Dense(10)])
    with pytest.raises(SuspectShapeError, match=r"takes inputs of shape \(32,\).*made for \(64,\)"):
        tafa.verify(fp, other)
    record("keras suspect, input (32,) for (64,)", raised="SuspectShapeError")


def test_callable_that_rejects_the_input_shape(fp):
    def picky(x):
        return np.asarray(x).reshape(len(x), 8, 4)  # 64 values do not fit 32 per row

    with pytest.raises(SuspectError, match="raised ValueError when asked about a batch of shape"):
        tafa.verify(fp, picky)
    record("callable rejecting the input shape", raised="SuspectError")


@pytest.mark.parametrize(
    "answer, error, message",
    [
        (lambda x: np.zeros((len(x), 5)), SuspectShapeError, "answers 5 values per input.*answered 10.*do not vary"),
        (lambda x: np.zeros((len(x) - 1, 10)), SuspectShapeError, r"answered \d+ rows for \d+ inputs"),
        (lambda x: np.float32(0.5), SuspectShapeError, "answered 0 rows"),
        (lambda x: {"a": np.zeros((len(x), 5)), "b": np.zeros((len(x), 3))}, SuspectShapeError,
         "answers 3 values per input.*answered 10.*do not vary"),  # each read under a new head
        (lambda x: [[0.0] * 10] * (len(x) - 1) + [[0.0] * 3], SuspectError, "not a numeric array"),
        (lambda x: None, SuspectShapeError, "answered 0 rows"),
        (lambda x: np.array(["cat"] * len(x)), SuspectError, "not a numeric array"),
    ],
    ids=["5 outputs for 10", "one row short", "a scalar", "a dict of misfits", "ragged rows", "None", "strings"],
)
def test_answers_of_the_wrong_shape_or_type(fp, answer, error, message, request):
    with pytest.raises(error, match=message):
        tafa.verify(fp, answer)
    record(f"answers: {request.node.callspec.id}", raised=error.__name__)


def test_keras_suspect_with_a_decoy_output_is_scored_on_the_copy(fp, owner, trained):
    """A second output beside the copy (an innocent model's answers, a regressor's) costs a
    pirate nothing; each output that fits the owner's is scored and the closest one counts."""
    def named(model, name):  # the zoo's models share one name, and a model's layers may not
        return keras.Sequential([model], name=name)

    inp = keras.Input((64,))
    two = keras.Model(inp, {"decoy": named(trained("digits_mlp", seed=3), "decoy")(inp),
                            "logits": named(owner, "copy")(inp), "value": keras.layers.Dense(1)(inp)})
    report = tafa.verify(fp, two)
    record_report("keras suspect: copy beside a decoy and a regressor head", report)
    assert report.pirated is True and report.score > 0.9
    assert any("3 outputs; 'decoy', 'logits'" in w for w in report.warnings)
    assert any("output 'logits' answers most like the owner" in w for w in report.warnings)
    innocent = keras.Model(inp, [named(trained("digits_mlp", seed=3), "a")(inp), named(trained("digits_mlp", seed=4), "b")(inp)])
    assert tafa.verify(fp, innocent).pirated is not True


def test_answers_wrapped_in_a_dict_or_tuple_are_read(fp, owner):
    for wrap in (lambda y: {"probabilities": y}, lambda y: (y,)):
        report = tafa.verify(fp, lambda x, wrap=wrap: wrap(np.asarray(owner(x, training=False))))
        assert report.pirated is True and report.score > 0.9


def test_a_copy_taking_its_inputs_in_another_layout_is_verified(fp, owner, trained):
    """Flattened or reshaped inputs change nothing of the function: the queries are given
    in the suspect's layout (the same values, row-major), and the report says so."""
    reshaped = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Reshape((64,)), owner])
    report = tafa.verify(fp, reshaped)
    record_report("copy taking (8, 8, 1) inputs for (64,)", report)
    assert report.pirated is True and report.score > 0.9
    assert any("reshaped in row-major order" in w for w in report.warnings)
    innocent = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Reshape((64,)), trained("digits_mlp", seed=3)])
    assert tafa.verify(fp, innocent).pirated is not True


def test_channels_first_copy_of_an_image_model(trained):
    keras.utils.set_random_seed(0)
    image = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])
    other = keras.models.clone_model(image)  # fresh weights: an independent model
    f = tafa.fingerprint(image, task="classification", n=16, domain=tafa.domains.Box(0.0, 1.0), seed=0)

    def channels_first(model):
        return keras.Sequential([keras.Input((3, 6, 6)), keras.layers.Permute((2, 3, 1)), model])

    report = tafa.verify(f, channels_first(image))
    assert report.score > 0.99 and report.pirated is True
    assert any("given channels first" in w for w in report.warnings)
    assert tafa.verify(f, channels_first(other)).score < 0.5  # 0.22 measured


def _digit_images(size: int, seed: int, flatten: bool = False) -> keras.Model:
    """A small CNN on 8x8 digits: convolutions then global pooling (takes any size) or Flatten (does not)."""
    keras.utils.set_random_seed(seed)
    pool = keras.layers.Flatten() if flatten else keras.layers.GlobalAveragePooling2D()
    return keras.Sequential([keras.Input((size, size, 1)), keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(16, 3, padding="same", activation="relu"), pool,
                             keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])


def test_a_copy_re_exported_at_another_image_size_is_rebuilt_at_the_owners(tmp_path):
    # a fully convolutional network with global pooling takes any image size: a pirate who
    # re-exported the owner's at 16x16 was refused ("takes inputs of shape (16, 16, 1), but
    # the fingerprint was made for (8, 8, 1)"), and a scan marked it not applicable
    from sklearn.datasets import load_digits

    from adapters import load_suspect, scan

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")

    def trained_at(size: int, seed: int, flatten: bool = False) -> keras.Model:
        model = _digit_images(8, seed, flatten)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=3, batch_size=64, verbose=0)
        if size == 8:
            return model
        at = _digit_images(size, seed, flatten)
        at.set_weights(model.get_weights())  # fails for Flatten: the weights depend on the size
        return at

    owner = trained_at(8, seed=0)
    f = tafa.fingerprint(owner, n=24, domain=tafa.domains.Box(0.0, 1.0), seed=0)
    copy = _digit_images(16, seed=0)
    copy.set_weights(owner.get_weights())
    copy.save(tmp_path / "copy.keras")
    behind_resizing = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Resizing(8, 8), owner])  # an app's front
    for suspect in (copy, load_suspect(str(tmp_path / "copy.keras")), behind_resizing):
        report = tafa.verify(f, suspect)
        assert report.score > 0.99 and report.pirated is True, report.score
        assert any("rebuilt at the fingerprint's with its own weights" in w for w in report.warnings)
    assert copy.input_shape == (None, 16, 16, 1)  # the suspect itself is left as it was
    [entry] = scan(f, [str(tmp_path / "copy.keras")], progress=False).entries
    assert (entry.status, entry.pirated) == ("ok", True), entry.error
    innocent = tafa.verify(f, trained_at(16, seed=1))
    assert innocent.pirated is not True and innocent.score < 0.9, innocent.score
    sized = _digit_images(16, seed=0, flatten=True)  # Flatten + Dense: its weights are for 16x16 inputs
    with pytest.raises(SuspectShapeError, match=r"\(16, 16, 1\), but the fingerprint was made for \(8, 8, 1\)\. Its layers need"):
        tafa.verify(f, sized)
    record("keras image suspect re-exported at 16x16 for 8x8", score=report.score, innocent=innocent.score)


def test_the_owners_backbone_published_as_a_feature_extractor_is_accused():
    # keras.applications' include_top=False without pooling answers the feature maps the
    # owner's global pooling head read; flattened, an affine map of the owner's features
    # explained them no better than an independent model's (R^2 -1.97 against -2.11), and
    # the copy scored 0.00. Pooled over positions, they are the owner's features.
    import dataclasses

    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")

    def classifier(seed: int, pool: type) -> tuple[keras.Model, keras.Model]:
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((8, 8, 1))
        maps = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(
            keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10)(pool()(maps)))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=3, batch_size=64, verbose=0)
        return model, keras.Model(inputs, maps)

    for pool in (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D):
        owner, backbone = classifier(0, pool)
        f = tafa.fingerprint(owner, n=24, domain=tafa.domains.Box(0.0, 1.0), seed=0)
        report = tafa.verify(f, backbone)
        assert report.mode == "new_head" and report.pirated is True and report.score > 0.99, report.features
        assert any("answers feature maps ((8, 8, 16))" in w for w in report.warnings)
        others = [tafa.verify(f, classifier(seed, pool)[1]) for seed in (1, 2)]
        assert all(r.pirated is None and r.score < 0.5 for r in others), [r.features for r in others]
    with pytest.raises(SuspectShapeError, match="keeps no penultimate features"):
        tafa.verify(dataclasses.replace(f, features=None), backbone)
    record("the owner's backbone as a feature extractor (maps)", score=report.score,
           innocents=[r.score for r in others])


def test_a_scan_asks_what_verify_can_give_the_owners_queries_to():
    from adapters.scan_task import shape_mismatch
    from tafa_tf.asking import could_take

    assert could_take((8, 8, 1), (16, 16, 1)) and could_take((8, 8, 3), (3, 8, 8)) and could_take((8, 8, 1), (64,))
    assert not could_take((64,), (32,)) and not could_take((8, 8, 1), (16, 16, 3)) and not could_take((8, 8, 1), (4, 4))
    fp = type("Fp", (), {"input_shape": (8, 8, 3), "output_shape": (10,), "features": None})()
    for theirs in ((3, 8, 8), (32, 32, 3), (192,)):
        assert shape_mismatch(fp, type("S", (), {"input_shape": theirs, "output_shape": (10,)})()) is None
    assert "input shape (8, 8, 1)" in shape_mismatch(fp, type("S", (), {"input_shape": (8, 8, 1), "output_shape": (10,)})())


def test_a_copy_that_scales_its_inputs_otherwise_is_asked_the_owners_points(owner, fp, trained):
    # a pirate who put Rescaling(1/16) in front (the copy now takes raw 0-16 digits) scored
    # 0.59, and one who stripped the owner's own Rescaling fared the same: the same points,
    # given in the suspect's own input scale, are asked now where its Keras layers say it
    def behind(front, model, shape=(64,)):
        return keras.Sequential([keras.Input(shape), *front, model])

    for front in ([keras.layers.Rescaling(1 / 16)], [keras.layers.Rescaling(0.5, offset=0.5)]):
        report = tafa.verify(fp, behind(front, owner))
        assert report.score > 0.99 and report.pirated is True, report.score
        assert any("scales its inputs unlike the owner" in w for w in report.warnings)
    other = tafa.verify(fp, behind([keras.layers.Rescaling(1 / 16)], trained("digits_mlp", seed=1)))
    assert other.score == pytest.approx(tafa.verify(fp, trained("digits_mlp", seed=1)).score, abs=1e-6)
    copy = behind([keras.layers.Rescaling(1 / 16)], owner)
    assert tafa.verify(fp, lambda x: copy(x).numpy()).score < 0.9  # a black box's front cannot be read

    keras.utils.set_random_seed(0)  # an owner that takes 0-255 pixels, and its copy without its Rescaling
    image = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])
    f = tafa.fingerprint(image, task="classification", n=16, seed=0)
    assert f.domain.high == pytest.approx(255.0)
    stripped = keras.Sequential([keras.Input((6, 6, 3)), *image.layers[1:]])
    channels_first = keras.Sequential([keras.Input((3, 6, 6)), keras.layers.Rescaling(1 / 255),
                                       keras.layers.Permute((2, 3, 1)), stripped])
    for copy in (stripped, channels_first):
        assert tafa.verify(f, copy).score > 0.99


def test_a_black_box_that_rounds_its_inputs_to_8_bits_is_not_lifted_by_its_rounding(owner, fp, trained):
    # an image service rounds every input to 8-bit pixels; the rounding curves every probe,
    # and an independent model behind it read 0.69 on bend_presence (0.41 without it)
    def pixels(model):
        return lambda x: np.asarray(model(np.round(np.clip(x, 0.0, 1.0) * 255) / 255, training=False))

    innocent = trained("digits_mlp", seed=1)
    rounded, plain = tafa.verify(fp, pixels(innocent)), tafa.verify(fp, innocent)
    assert rounded.features["kink_similarity"] < 0.5  # the rounding's noise, in the kinks
    assert rounded.features.get("bend_presence", 0.0) < 0.2, rounded.features
    assert rounded.score < plain.score + 0.05, (rounded.score, plain.score)
    copy = tafa.verify(fp, pixels(owner))
    assert copy.score > 0.95 and copy.pirated is True, copy.score


def test_a_copy_under_a_new_head_for_another_task_is_accused_and_an_unrelated_one_never_cleared(owner, fp, trained):
    # a pirate keeps the owner's network and trains a new output layer for a task of its
    # own (digits 0-4: five outputs where the owner has ten); it was refused with "the
    # suspect answers 5 values per input", as was any model of another width
    from tafa_tf import piracy, zoo

    data = zoo.data_for("digits_mlp", seed=3)
    few = data.y_test < 5
    x, y = data.x_test[few], data.y_test[few]
    copy = tafa.verify(fp, piracy.new_head(owner, x, y, 5, seed=1))
    assert copy.mode == "new_head" and copy.pirated is True and copy.score > 0.95, copy.features
    assert any("new output layer" in w for w in copy.warnings)
    other = tafa.verify(fp, piracy.new_head(trained("digits_mlp", seed=1), x, y, 5, seed=1))
    # little of the owner is left in a copy retrained for a new task, so a low score clears nothing
    assert other.mode == "new_head" and other.pirated is None and other.clear_threshold is None
    assert other.score < 0.5, other.features
    parity = tafa.verify(fp, piracy.new_head(owner, data.x_test, data.y_test % 2, 2, epochs=10, seed=2))
    assert parity.pirated is True, parity.features
    with pytest.raises(SuspectShapeError, match="answers 3 values per input.*do not vary"):
        tafa.verify(fp, lambda x: np.zeros((len(x), 3)))


@pytest.mark.slow
def test_a_new_head_on_the_public_backbone_the_owner_froze_is_not_accused_given_the_base(trained):
    # an owner that trained only a head on a frozen public backbone shares every hidden
    # layer with anyone else's new head on that backbone: nothing tells the two apart
    from tafa_tf import piracy, zoo

    data = zoo.data_for("digits_mlp", seed=4)
    public = trained("digits_mlp", seed=1)
    owner = piracy.new_head(public, data.x_train, data.y_train, 10, seed=0, epochs=10)
    few = data.y_test < 5
    other = piracy.new_head(public, data.x_test[few], data.y_test[few], 5, seed=1)
    box = tafa.domains.Box(0.0, 1.0)
    with_base = tafa.fingerprint(owner, task="classification", n=32, domain=box, seed=0, base=public)
    report = tafa.verify(with_base, other)
    assert report.mode == "new_head" and report.pirated is not True, report.features
    assert report.score < 0.6 and report.features["head_closeness"] < 0.3, report.features
    alone = tafa.fingerprint(owner, task="classification", n=32, domain=box, seed=0)
    assert tafa.verify(alone, other).pirated is True  # why such an owner must pass base=


@pytest.mark.parametrize("weight, space", [(0.5, "outputs"), (0.5, "probabilities"), (1 / 3, "outputs")],
                         ids=["half logits", "half probabilities", "a third logits"])
def test_an_ensemble_that_averages_the_owner_with_other_models_is_accused(owner, fp, trained, weight, space):
    # the owner's answers averaged with independently trained models': the output features
    # fall with the owner's share, and it scored 0.48-0.67 (uncertain) on the digits MLP;
    # the owner's kinks stay in it, scaled by the share
    from tafa_tf import piracy

    others = [trained("digits_mlp", seed=s) for s in (1, 2)][: 1 if weight == 0.5 else 2]
    report = tafa.verify(fp, piracy.ensemble(owner, others, weight=weight, space=space))
    record_report(f"ensemble: owner at {weight:.2f} of {space}", report)
    assert report.features["output_similarity"] < 0.9  # the output features alone do not see it
    if space == "outputs":  # logits averaged: the owner's kinks, scaled
        assert report.pirated is True and report.features["mixture_kinks"] > 0.95, report.features
    else:  # probabilities averaged: the softmax's own curvature blurs them (0.89-0.91 at n=48-128)
        assert report.pirated is not False and report.features["mixture_kinks"] > 0.8, report.features


@pytest.mark.parametrize("space", ["outputs", "probabilities"])
def test_an_ensemble_of_innocent_models_is_not_accused(fp, trained, space):
    from tafa_tf import piracy

    report = tafa.verify(fp, piracy.ensemble(trained("digits_mlp", seed=1), [trained("digits_mlp", seed=2)], space=space))
    record_report(f"ensemble of two innocent models ({space})", report)
    assert report.pirated is not True and report.features["mixture_kinks"] < 0.5, report.features


def test_input_layouts():
    from tafa_tf.asking import input_layout

    x = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3)
    how, move = input_layout((4, 5, 3), (3, 4, 5))
    assert how == "channels first" and np.array_equal(move(x)[1, 2], x[1, :, :, 2])
    how, move = input_layout((3, 4, 5), (4, 5, 3))
    assert how == "channels last" and np.array_equal(move(x.reshape(2, 3, 4, 5))[0, :, :, 1], x.reshape(2, 3, 4, 5)[0, 1])
    how, move = input_layout((4, 5, 3), (60,))
    assert how == "reshaped in row-major order" and np.array_equal(move(x), x.reshape(2, 60))
    assert input_layout((4, 5, 3), (59,)) is None


def test_one_column_for_a_classifier_is_labels_if_whole_numbers_else_a_new_head(fp, owner):
    """Whole numbers in one column are labels, scored on labels alone; any other single
    output is the suspect's own (a sigmoid or regression head on the owner's network?)."""
    report = tafa.verify(fp, lambda x: np.full((len(x), 1), 3.0))
    record_report("constant single label", report)
    assert report.mode == "labels" and report.pirated is False
    assert any("Label-only" in w for w in report.warnings)
    with pytest.raises(SuspectShapeError, match="answers 1 values per input.*do not vary"):
        tafa.verify(fp, lambda x: np.full((len(x), 1), 0.3))
    # a binary head of the owner's own network, through a sigmoid: it was read as labels
    # (its probabilities rounded to 0 and 1), agreed with no owner label, and was cleared
    from tafa_tf import piracy, zoo

    data = zoo.data_for("digits_mlp", seed=3)
    keras.utils.set_random_seed(0)
    binary = piracy.new_head(owner, data.x_test, (data.y_test % 2).astype("float32"), 1, seed=3,
                             loss=keras.losses.BinaryCrossentropy(from_logits=True))
    sigmoid = keras.Sequential([binary, keras.layers.Activation("sigmoid")])
    copy = tafa.verify(fp, sigmoid)
    record_report("a binary sigmoid head on the owner's network", copy)
    assert copy.mode == "new_head" and copy.pirated is True, copy.features


# -- non-finite answers --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["all", "one row", "one value"])
def test_non_finite_answers_give_no_verdict(fp, owner, bad, where):
    def answer(x):
        y = np.array(owner(x, training=False), dtype="float64")
        if where == "all":
            y[:] = bad
        elif where == "one row":
            y[len(y) // 2] = bad
        else:
            y[3, 7] = bad
        return y

    report = tafa.verify(fp, answer)
    record_report(f"answers {bad} in {where}", report)
    assert report.status == "non_finite" and report.pirated is None and np.isnan(report.score)
    assert "NaN or inf" in report.warnings[0]
    assert report.to_dict()["score"] is None
    assert "no verdict" in str(report)


def test_non_finite_only_when_asked_again_gives_no_verdict(fp, owner):
    calls = {"n": 0}

    def answer(x):
        calls["n"] += 1
        y = np.array(owner(x, training=False), dtype="float64")
        y[-1] = np.nan  # the last rows are the repeated queries
        return y

    report = tafa.verify(fp, answer)
    assert report.status == "non_finite" and report.pirated is None


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_huge_but_finite_answers_do_not_crash(fp, owner):
    """Answers near float64's limit overflow the output features (they read 0); the labels
    still agree. Documented outcome: a score from what survives, no exception."""
    report = tafa.verify(fp, lambda x: np.array(owner(x, training=False), dtype="float64") * 1e305)
    record_report("owner's logits times 1e305", report)
    assert report.features["label_agreement"] == 1.0 and report.features["output_similarity"] == 0.0
    assert 0.0 <= report.score <= 1.0


def test_random_and_constant_answers_are_never_pirated(fp):
    rng = np.random.default_rng(0)
    noisy = tafa.verify(fp, lambda x: rng.standard_normal((len(x), 10)))
    const = tafa.verify(fp, lambda x: np.zeros((len(x), 10)))
    record_report("random logits", noisy)
    record_report("constant zero logits", const)
    # answering at random: never pirated, and (below the threshold) not cleared either
    assert noisy.pirated is None and noisy.status == "nondeterministic"
    assert const.pirated is False


# -- raising and hanging -----------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("CUDA out of memory"), KeyError("logits"), ZeroDivisionError()])
def test_a_suspect_that_raises(fp, exc):
    def broken(x):
        raise exc

    with pytest.raises(SuspectError, match=f"raised {type(exc).__name__}") as info:
        tafa.verify(fp, broken)
    assert info.value.__cause__ is exc
    record(f"suspect raising {type(exc).__name__}", raised="SuspectError")


def test_a_suspect_that_hangs_times_out(fp):
    release = threading.Event()

    def hangs(x):
        release.wait(60)
        return np.zeros((len(x), 10))

    start = time.monotonic()
    try:
        with pytest.raises(SuspectTimeoutError, match=r"did not answer \d+ queries within timeout=0.5 s"):
            tafa.verify(fp, hangs, timeout=0.5)
        elapsed = time.monotonic() - start
    finally:
        release.set()
    record("suspect hanging, timeout=0.5 s", raised="SuspectTimeoutError", seconds=round(elapsed, 2))
    assert elapsed < 5


def test_a_slow_but_timely_suspect_is_scored(fp, owner):
    def slow(x):
        time.sleep(0.2)
        return np.asarray(owner(x, training=False))

    report = tafa.verify(fp, slow, timeout=30)
    assert report.status == "ok" and report.pirated is True


@pytest.mark.parametrize("timeout", [0, -1, "5", float("nan")])
def test_bad_timeouts_are_refused(fp, owner, timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        tafa.verify(fp, owner, timeout=timeout)


def test_not_a_suspect_at_all(fp):
    with pytest.raises(SuspectError, match="must be a keras.Model or a callable.*Received: str"):
        tafa.verify(fp, "model.keras")


# -- non-deterministic --------------------------------------------------------------------------


def _with_dropout(owner, rate: float):
    """The owner's own layers and weights with Dropout in front of each hidden layer."""
    layers = [keras.Input((64,))]
    for layer in owner.layers:
        clone = layer.__class__.from_config(layer.get_config())
        if layers[1:]:
            layers.append(keras.layers.Dropout(rate, seed=1))
        layers.append(clone)
    model = keras.Sequential(layers)
    model.set_weights(owner.get_weights())
    return model


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_dropout_left_on_is_flagged(fp, owner, rate):
    copy = _with_dropout(owner, rate)
    # in inference mode it is exactly the owner
    assert tafa.verify(fp, copy).status == "ok"
    report = tafa.verify(fp, lambda x: np.asarray(copy(x, training=True)))
    record_report(f"owner copy with dropout {rate} left on", report)
    assert report.status == "nondeterministic"
    assert any("dropout" in w for w in report.warnings)


def test_an_innocent_model_with_dropout_on_is_not_pirated(fp, trained):
    innocent = _with_dropout(trained("digits_mlp", seed=1), 0.2)
    report = tafa.verify(fp, lambda x: np.asarray(innocent(x, training=True)))
    record_report("innocent model (seed 1) with dropout 0.2 left on", report)
    assert report.status == "nondeterministic" and report.pirated is not True


def test_a_copy_with_dropout_on_is_never_cleared(fp, owner):
    copy = _with_dropout(owner, 0.05)
    report = tafa.verify(fp, lambda x: np.asarray(copy(x, training=True)))
    assert report.status == "nondeterministic"
    assert report.pirated is not False


def test_nondeterminism_beyond_the_repeated_points_is_caught(fp, owner):
    """A suspect that only randomizes large batches still answers its repeats alike only by chance."""
    rng = np.random.default_rng(1)

    def flaky(x):
        y = np.array(owner(x, training=False), dtype="float64")
        return y + rng.normal(0, 0.5, y.shape)

    report = tafa.verify(fp, flaky)
    assert report.status == "nondeterministic"
