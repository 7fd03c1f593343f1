"""Owner models that TAFA cannot (fully) fingerprint: a clear error or documented behaviour.

Every case goes through the public ``tafa.fingerprint``; the outcome of each is written to
models.json in the ``results_dir`` folder (see conftest.py; benchmarks/results holds the
committed run). Models are small and untrained (a random ReLU network
bends as well as a trained one), so the file runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import tafa_tf as tafa
from tafa_tf import piracy
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.probes import KIND_DECISION

_OUTCOMES: dict[str, str] = {}
BOX = tafa.domains.Box(0.0, 1.0)


@pytest.fixture(scope="module", autouse=True)
def _write_outcomes(results_dir: Path):
    yield
    (results_dir / "models.json").write_text(json.dumps(_OUTCOMES, indent=2, sort_keys=True) + "\n")


def record(case: str, outcome: str) -> None:
    _OUTCOMES[case] = outcome


def mlp(*hidden: str, seed: int = 0, d: int = 8, out: int = 3, out_activation: str | None = None):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((d,)), *[layers.Dense(16, activation=a) for a in hidden], layers.Dense(out, activation=out_activation)]
    )


def refused(case: str, model, match: str, **kwargs) -> UnsupportedModelError:
    with pytest.raises(UnsupportedModelError, match=match) as info:
        tafa.fingerprint(model, n=16, domain=BOX, **kwargs)
    record(case, f"refused: {str(info.value)[:160]}")
    return info.value


def test_a_model_partly_not_piecewise_linear_is_fingerprinted_and_says_what_is_left_out(caplog):
    # MobileNetV3's hard-swish (a product) and a GELU layer alike: the ReLU units are
    # fingerprinted, and the user is told which layers are not
    model = mlp("relu", "gelu")
    with caplog.at_level("WARNING", logger="tafa_tf"):
        fp = tafa.fingerprint(model, n=8, domain=BOX)
    assert "not piecewise linear: 1 layer (1 gelu)" in caplog.text
    assert "covers its 16 ReLU-family units only" in caplog.text
    assert fp.coverage["complete"] is False and len(fp.coverage["non_piecewise_linear"]) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="tafa_tf"):
        tafa.fingerprint(mlp("relu", "relu"), n=8, domain=BOX)
    assert "not piecewise linear" not in caplog.text


@pytest.mark.parametrize("nested", [False, True])
def test_relu_layers_inside_time_distributed_are_fingerprinted(nested):
    # a video model's pattern: one frame network applied to every frame. Its ReLUs were
    # missed, and the model refused as having none
    def model(seed):
        keras.utils.set_random_seed(seed)
        conv = layers.Conv2D(4, 3, padding="same", activation="relu")
        frame = keras.Sequential([keras.Input((6, 6, 1)), conv, layers.GlobalAveragePooling2D()]) if nested else conv
        return keras.Sequential([keras.Input((3, 6, 6, 1)), layers.TimeDistributed(frame), layers.Flatten(),
                                 layers.Dense(16, activation="relu"), layers.Dense(3)])

    owner = model(0)
    coverage = tafa.introspection.inspect_model(owner)
    assert coverage.complete and coverage.n_units == 3 * 6 * 6 * 4 + 16
    assert coverage.sites[0].shape == (3, 6, 6, 4) and "time_distributed" in coverage.sites[0].name
    fp = tafa.fingerprint(owner, n=12, domain=BOX, progress=False)
    record(f"TimeDistributed({'Sequential' if nested else 'Conv2D'})", f"fingerprinted: {fp.n_points} points")
    assert fp.n_points == 12 and fp.coverage["complete"] is True
    assert tafa.verify(fp, owner).score > 0.99
    assert tafa.verify(fp, piracy.add_noise(owner, 0.01, seed=1)).score > tafa.verify(fp, model(1)).score


@pytest.mark.parametrize(
    "recurrent", [layers.LSTM, *(pytest.param(r, marks=pytest.mark.slow) for r in (layers.GRU, layers.SimpleRNN))]
)
def test_relu_convolutions_under_a_recurrent_layer_are_fingerprinted(recurrent):
    # forward-mode autodiff cannot pass a recurrent layer's while loop: the probe steps
    # were sized with it, and the fingerprint crashed with a TypeError from inside Keras
    def model(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((16, 1)), layers.Conv1D(8, 3, activation="relu"), recurrent(8),
                                 layers.Dense(3)])

    owner = model(0)
    fp = tafa.fingerprint(owner, n=8, domain=BOX, progress=False)
    record(f"Conv1D under {recurrent.__name__}", f"fingerprinted: {fp.n_points} points, coverage partial")
    assert fp.n_points == 8 and fp.coverage["complete"] is False
    assert tafa.verify(fp, owner).score > 0.99
    assert tafa.verify(fp, piracy.add_noise(owner, 0.01, seed=1)).score > tafa.verify(fp, model(1)).score


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "silu", "softplus", "elu"])
def test_no_relu_is_refused_naming_what_it_has(activation):
    err = refused(f"{activation} only", mlp(activation, activation), "no ReLU-family unit")
    assert f"not piecewise linear: 2 layers (2 {activation})" in str(err)


def test_gelu_layers_only_is_refused():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(16), layers.Activation("gelu"), layers.Dense(3)])
    err = refused("GELU Activation layers only", model, "no ReLU-family unit")
    assert "gelu" in str(err)


def test_mixed_relu_and_gelu_is_fingerprinted_with_the_gap_reported():
    model = mlp("relu", "gelu")
    fp = tafa.fingerprint(model, n=16, domain=BOX)
    gaps = fp.coverage["non_piecewise_linear"]
    assert fp.coverage["complete"] is False and any("gelu" in g for g in gaps)
    assert fp.n_points >= 4
    record("ReLU then GELU", f"fingerprinted ({fp.n_points} points), coverage gap reported: {gaps}")


def test_all_units_dead_is_refused():
    model = mlp("relu", "relu")
    for layer in model.layers[:-1]:
        kernel, bias = layer.get_weights()
        layer.set_weights([np.abs(kernel), np.full_like(bias, -1e3)])  # never reaches zero on [0, 1]^8
    refused("every ReLU unit dead", model, "dead or always on")


def test_all_units_always_on_is_refused():
    model = mlp("relu", "relu")
    for layer in model.layers[:-1]:
        kernel, bias = layer.get_weights()
        layer.set_weights([np.abs(kernel), np.full_like(bias, 1e3)])
    refused("every ReLU unit always on (a linear model)", model, "dead or always on")


def dark_image_model(seed: int = 0, quiet: int = 0):
    """A model alive only on dark 8x8 images: its 16 ReLU units are relu(t - sum of pixels)
    (t from 6 to 20, each normal tilted a little). Uniform draws of 64 pixels sum to 32
    +- 2.3, where every unit is dead, as a CNN trained on black-background digits was all
    but constant on uniform grey noise (ResNet50 at 224x224, docs/results.md).

    ``quiet``: that many more units alive at uniform draws (relu(sum of pixels - t), t from
    29 to 35) whose output weights are 1e-3 against an output of 1000 (the dark units'
    weights then 10x): the answers move at uniform seeds (not refused as constant), but no
    bend there stands above float32 rounding, as a trained ResNet50 at 224x224 heard 2 of
    its first 26 candidates (docs/results.md)."""
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(16 + quiet, activation="relu"),
                              layers.Dense(3)])
    kernel = [-(1.0 + 0.3 * rng.standard_normal((64, 16)))]
    bias = [np.linspace(6.0, 20.0, 16)]
    if quiet:
        kernel.append(1.0 + 0.3 * rng.standard_normal((64, quiet)))
        bias.append(-np.linspace(29.0, 35.0, quiet))
    out, out_bias = [rng.standard_normal((16, 3)) * (10.0 if quiet else 1.0)], np.full(3, 1000.0 if quiet else 0.0)
    if quiet:
        out.append(1e-3 * rng.standard_normal((quiet, 3)))
    model.layers[1].set_weights([np.concatenate(kernel, 1).astype("float32"), np.concatenate(bias).astype("float32")])
    model.layers[2].set_weights([np.concatenate(out).astype("float32"), out_bias.astype("float32")])
    return model


def test_a_model_dead_at_uniform_seeds_is_fingerprinted_from_seeds_of_varied_brightness():
    model = dark_image_model()
    x = BOX.sample(np.random.default_rng(1), (512, 8, 8, 1))
    assert np.ptp(model.predict(x, verbose=0), axis=0).max() == 0.0  # constant at uniform draws
    fp = tafa.fingerprint(model, task="regression", n=16, domain=BOX, seed=0)
    assert fp.n_points == 16 and fp.synthesis["stats"]["varied_seed_rounds"] >= 1
    assert fp.x.min() >= 0.0 and fp.x.max() <= 1.0  # in the box
    assert tafa.verify(fp, piracy.add_noise(model, 0.01, seed=1)).score > tafa.verify(fp, dark_image_model(1)).score
    record("dead at uniform seeds, alive on dark images", f"fingerprinted from varied seeds: {fp.n_points} points")
    # without them the model is refused, as before
    err = refused("dead at uniform seeds, varied seeds off", model, "dead or always on", task="regression",
                  varied_seeds=False)
    assert "uniform, then" not in str(err)


def test_seeds_that_hear_too_few_bends_are_left_for_seeds_of_varied_brightness_without_finishing_the_round():
    model = dark_image_model(quiet=8)
    x = BOX.sample(np.random.default_rng(1), (512, 8, 8, 1))
    assert np.ptp(model.predict(x, verbose=0), axis=0).max() > 1e-3  # alive at uniform draws
    one_chunk = tafa.fingerprint(model, task="regression", n=16, domain=BOX, seed=0)
    # a tiny memory budget: batches of a few inputs, so a round runs in several chunks
    chunks = tafa.fingerprint(model, task="regression", n=16, domain=BOX, seed=0, memory_budget_gib=1e-6)
    for fp in (one_chunk, chunks):
        assert fp.n_points == 16 and fp.synthesis["stats"]["varied_seed_rounds"] >= 1
        assert tafa.verify(fp, piracy.add_noise(model, 0.01, seed=1)).score > tafa.verify(fp, dark_image_model(1, quiet=8)).score
    # a round in one chunk runs to its end; in chunks it stops once the uniform seeds are a clear miss
    spent = [fp.synthesis["stats"]["uniform_seed_candidates"] for fp in (one_chunk, chunks)]
    assert spent[1] < spent[0] / 2, spent
    record("alive but inaudible at uniform seeds", f"uniform candidates spent {spent[0]} in one chunk, {spent[1]} in chunks")
    # uniform seeds alone hear nothing: refused, as before
    refused("alive but inaudible at uniform seeds, varied seeds off", model,
            "change the model's output by more than float32 rounding", task="regression", varied_seeds=False)


def test_a_model_that_answers_the_same_everywhere_is_refused_and_told_why():
    # live hidden units, but a zero output kernel: every answer is the output bias
    model = mlp("relu", "relu", out_activation="softmax")
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.zeros_like(kernel), bias])
    err = refused("constant outputs (live units, zero output layer)", model, "answers the same, to float32 rounding, at all")
    assert "nothing to fingerprint" in str(err)


def test_a_model_that_varies_only_by_float32_rounding_is_refused_as_constant():
    # a network at chance accuracy (MobileNet v1 trained two epochs at 32x32 did this):
    # its outputs move a few float32 roundings across the box, never bit for bit the same
    model = mlp("relu", "relu", out_activation="softmax")
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 3e-7, np.ones_like(bias)])
    x = np.random.default_rng(0).uniform(0.0, 1.0, (256, 8)).astype("float32")
    spread = np.ptp(model.predict(x, verbose=0), axis=0).max()
    assert 0.0 < spread < 1e-6  # not constant, and no bend could be told from rounding
    err = refused("outputs within float32 rounding", model, "answers the same, to float32 rounding, at all")
    assert "chance accuracy" in str(err) and "pass samples=" in str(err)


SOFTMAX_HEADS = {
    "fused": lambda: [layers.Dense(3, activation="softmax")],
    "Activation": lambda: [layers.Dense(3), layers.Activation("softmax")],
    "Softmax": lambda: [layers.Dense(3), layers.Softmax()],
}


def _saturated_classifier(head: str = "fused"):
    """Softmax 1.0 for class 0 at every random input of [0, 1]^64; class 1 only where the
    mean pixel passes 0.7 (4 standard deviations above a random input's), as a trained
    CNN answered uniform noise images (InceptionV3 on digits). ``head``: how the softmax
    is written (a key of SOFTMAX_HEADS)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), layers.Dense(16, activation="relu"), *SOFTMAX_HEADS[head]()])
    hidden, out = model.layers[:2]
    kernel = np.random.default_rng(0).normal(0.0, 0.125, (64, 16)).astype("float32")
    kernel[:, 0] = 1.0 / 64  # unit 0: the mean pixel
    hidden.set_weights([kernel, np.r_[0.0, -kernel[:, 1:].sum(axis=0) / 2].astype("float32")])  # others switch mid-box
    w = np.zeros((16, 3), "float32")
    w[0, 1], w[1:, :] = 2000.0, 0.01
    out.set_weights([w, np.array([0.0, -1400.0, -1000.0], "float32")])  # class 1 ahead where mean > 0.7
    return model


@pytest.mark.parametrize("head", list(SOFTMAX_HEADS))
def test_a_softmax_saturated_at_every_random_input_is_fingerprinted_through_its_logits(head):
    model = _saturated_classifier(head)
    assert tafa.inspect_model(model).non_piecewise_linear == ()  # a softmax at the output is allowed
    x = np.random.default_rng(1).uniform(0.0, 1.0, (1024, 64)).astype("float32")
    p = model.predict(x, verbose=0)
    # every random input: one class, to float32 rounding (1.0 or 1 - 2**-24, as the CPU's kernels round)
    assert np.all(p[:, 0] >= 1.0 - 8 * np.finfo(np.float32).eps)
    corner = np.full((1, 64), 0.9, "float32")
    assert model.predict(corner, verbose=0).argmax() == 1
    fp = tafa.fingerprint(model, n=16, domain=BOX)
    assert fp.n_points == 16
    queries = fp.queries()
    labels = model.predict(queries, verbose=0).argmax(axis=1)
    assert {0, 1} <= set(labels)  # probes on both sides of the boundary the softmax hides
    assert tafa.verify(fp, piracy.quantize(model, "float16")).score > 0.9
    innocent = _saturated_classifier(head)
    innocent.layers[0].set_weights([np.random.default_rng(5).normal(0.0, 0.125, (64, 16)).astype("float32"),
                                    np.zeros(16, "float32")])
    assert tafa.verify(fp, innocent).score < tafa.verify(fp, piracy.quantize(model, "float16")).score


def test_a_model_whose_bends_drown_in_float32_rounding_is_refused_and_told_why():
    # its output changes across the box (1e6 + sum(x)), but every bend is far smaller than
    # the rounding of an output near 1e6: a fingerprint of rounding noise would fit any model
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,))
    linear, bent = layers.Dense(1, name="linear"), layers.Dense(1, name="bent")
    hidden = layers.Dense(16, activation="relu")(inp)
    model = keras.Model(inp, layers.Add()([linear(inp), bent(hidden)]))
    linear.set_weights([np.ones((8, 1), "float32"), np.array([1e6], "float32")])
    kernel, bias = bent.get_weights()
    bent.set_weights([kernel * 1e-4, bias])
    err = refused("bends below float32 rounding (outputs near 1e6)", model, "float32 rounding", task="regression")
    assert "change the model's output by more than float32 rounding" in str(err)


def _two_live_units():
    """One hidden ReLU layer of 16 units of which only 2 can ever switch on [0, 1]^8."""
    model = mlp("relu")
    first = model.layers[0]
    kernel, bias = first.get_weights()
    bias[:-2] = -1e3
    kernel[:, -2:] = np.abs(kernel[:, -2:])
    bias[-2:] = -0.5 * kernel[:, -2:].sum(axis=0)  # switches halfway across the box
    first.set_weights([kernel, bias])
    return model


def _bend_units(fp) -> set[int]:
    """Units whose boundaries the points sit on (decision points hold a class pair instead)."""
    t = fp.targets[fp.kind != KIND_DECISION]
    return set(t[t >= 0].tolist())


@pytest.mark.timeout(15)
def test_few_live_units_fingerprint_the_live_ones():
    fp = tafa.fingerprint(_two_live_units(), n=16, domain=BOX)
    live = _bend_units(fp)
    record("14 of 16 units dead", f"fingerprinted ({fp.n_points} points) on units {sorted(live)}")
    assert live <= {14, 15}, "a point claims to sit on a dead unit's boundary"


def test_few_live_units_with_single_unit_points_only():
    """Without intersections (multi_fraction=0) the two live units are fingerprinted."""
    fp = tafa.fingerprint(_two_live_units(), n=16, domain=BOX, multi_fraction=0.0)
    live = _bend_units(fp)
    record("14 of 16 units dead, multi_fraction=0", f"fingerprinted ({fp.n_points} points) on units {sorted(live)}")
    assert live <= {14, 15}


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(16, activation="relu")
            self.b = layers.Dense(3)

        def call(self, x):
            return self.b(self.a(x))

    net = Net()
    net(np.zeros((1, 8), "float32"))
    refused("subclassed keras.Model", net, "subclassed keras.Model.*Rebuild it as a Sequential or Functional")


def test_several_inputs_or_outputs_are_refused():
    a, b = keras.Input((8,)), keras.Input((4,))
    h = layers.Dense(16, activation="relu")(layers.Concatenate()([a, b]))
    refused("two inputs", keras.Model([a, b], layers.Dense(3)(h)), "one input and one output.*2 inputs and 1 outputs")
    x = keras.Input((8,))
    h = layers.Dense(16, activation="relu")(x)
    refused("two outputs", keras.Model(x, [layers.Dense(3)(h), layers.Dense(1)(h)]),
            r"1 inputs and 2 outputs.*keras.Model\(model.inputs, model.outputs\[k\]\)")


def test_a_one_score_binary_classifier_is_fingerprinted_as_a_value_not_crashed_on():
    """A sigmoid binary classifier called a classifier had crashed with an IndexError (the
    decision points' top-2 classes of one column); it is refused with the task that works."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1, activation="sigmoid")])
    refused("one sigmoid output as a classifier", model, r"sigmoid output.*task='regression'.*Received: output shape \(1,\)",
            task="classification")
    fp = tafa.fingerprint(model, n=16, domain=BOX, seed=0)
    assert fp.task == "regression" and tafa.verify(fp, model).score > 0.99


def test_integer_inputs_are_refused():
    tokens = keras.Input((6,), dtype="int32")
    h = layers.Flatten()(layers.Embedding(50, 4)(tokens))
    model = keras.Model(tokens, layers.Dense(3)(layers.Dense(16, activation="relu")(h)))
    refused("Embedding on int32 tokens", model, "integer inputs.*Fingerprint the sub-model after the embedding")


def test_the_sub_model_after_an_embedding_can_be_fingerprinted():
    """What the integer-input error advises: fingerprint the float part."""
    keras.utils.set_random_seed(0)
    head = keras.Sequential([keras.Input((24,)), layers.Dense(16, activation="relu"), layers.Dense(3)])
    fp = tafa.fingerprint(head, n=16, domain=tafa.domains.Gaussian(1.0))
    record("the float head after an Embedding", f"fingerprinted ({fp.n_points} points)")
    assert fp.input_shape == (24,)


def test_not_a_model_and_an_unbuilt_model_are_refused():
    refused("a plain function", lambda x: x, "needs a keras.Model")
    unbuilt = keras.Sequential([layers.Dense(16, activation="relu"), layers.Dense(3)])
    with pytest.raises(UnsupportedModelError, match="no known input shape|build it first"):
        tafa.fingerprint(unbuilt, n=16, domain=BOX)
    record("unbuilt Sequential", "refused: no known input shape")


def test_nan_weights_are_refused_not_fingerprinted():
    model = mlp("relu", "relu")
    weights = model.get_weights()
    weights[0][0, 0] = np.nan
    model.set_weights(weights)
    with pytest.raises(UnsupportedModelError, match="NaN|finite") as info:
        tafa.fingerprint(model, n=16, domain=BOX)
    record("a NaN weight", f"refused: {str(info.value)[:160]}")


@pytest.mark.parametrize(
    "hidden",
    [
        lambda: [layers.Dense(16), layers.LeakyReLU(negative_slope=0.1)],
        lambda: [layers.Dense(16, activation="relu6")],
        lambda: [layers.Dense(16), layers.BatchNormalization(), layers.ReLU()],
        lambda: [layers.Dense(16, activation="relu"), layers.Dropout(0.5)],
        lambda: [layers.Dense(16, activation="hard_tanh")],
        lambda: [layers.Dense(16, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0)),
                 layers.Activation("hard_sigmoid")],
    ],
    ids=["LeakyReLU", "relu6", "BatchNorm+ReLU", "Dropout", "hard_tanh", "hard_sigmoid"],
)
def test_piecewise_linear_variants_are_fingerprinted(hidden, request):
    # the layers are made here, after the seed: made at collection, an initializer without a
    # seed drew one from Python's random state then, and the weights changed from run to run
    # (hard_tanh's units came out all saturated in Box(0, 1) in one full run of the suite)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), *hidden(), layers.Dense(3)])
    fp = tafa.fingerprint(model, n=16, domain=BOX)
    assert fp.coverage["complete"] is True
    assert tafa.verify(fp, model).pirated is True
    record(f"{request.node.callspec.id} hidden layer", f"fingerprinted ({fp.n_points} points), owner verifies")


def test_softmax_output_is_fine_and_nested_models_are_walked():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu")], name="inner")
    x = keras.Input((8,))
    model = keras.Model(x, layers.Dense(3, activation="softmax")(inner(x)))
    fp = tafa.fingerprint(model, n=16, domain=BOX)
    assert fp.task == "classification" and fp.coverage["complete"] is True
    record("nested Sequential in a Functional, softmax output", f"fingerprinted ({fp.n_points} points), task auto=classification")


def test_a_classifier_with_fewer_hidden_units_than_classes_is_fingerprinted():
    # decision points carry class indices where bends carry unit indices: class 8 of a
    # 4-unit network once went out of range in the Newton step (InvalidArgumentError)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation="relu"), layers.Dense(10)])
    fp = tafa.fingerprint(model, n=16, domain=BOX, task="classification")
    assert fp.n_points == 16 and (fp.kind == tafa.verification.KIND_DECISION).any()
    assert tafa.verify(fp, piracy.quantize(model, "float16")).score > 0.9


@pytest.mark.parametrize("front", ["Rescaling", "preprocess_input"])
def test_data_augmentation_in_front_is_inference_identity_and_the_rescaling_behind_sets_the_domain(front):
    """Keras's transfer-learning guide puts RandomFlip/RandomRotation/... and a Rescaling (or
    keras.applications' preprocess_input, arithmetic ops on the tensor) in front of the
    model. The augmentation ran in training mode inside the synthesis's passes (it crashed
    with a ValueError, no point found), was reported as not piecewise linear, and hid the
    Rescaling from the default domain; preprocess_input was not seen at all (Box(0, 1) for
    0-255 pixels)."""
    from sklearn.datasets import load_digits

    from tafa_tf import piracy

    x, y = load_digits(return_X_y=True)
    x = (x.reshape(-1, 8, 8, 1) * 16).astype("float32")  # raw pixels, 0..255

    def model(seed):
        keras.utils.set_random_seed(seed)
        augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.1),
                                    layers.RandomContrast(0.1)], name="augment")
        inputs = keras.Input((8, 8, 1))
        h = augment(inputs)
        h = layers.Rescaling(1 / 255.0)(h) if front == "Rescaling" else keras.applications.mobilenet_v2.preprocess_input(h)
        h = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, activation="relu")(h))
        m = keras.Model(inputs, layers.Dense(10)(h))
        m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        m.fit(x, y, epochs=8, verbose=0)
        return m

    owner = model(0)
    fp = tafa.fingerprint(owner, task="classification", n=32, seed=0)
    assert fp.domain.to_dict()["kind"] == "box" and float(np.max(fp.domain.high)) == pytest.approx(255.0)
    assert fp.coverage["non_piecewise_linear"] == [] and fp.n_points == 32
    copy, innocent = tafa.verify(fp, piracy.quantize(owner, "float16")), tafa.verify(fp, model(1))
    record(f"augmentation and {front} in front", f"copy {copy.score:.3f}, innocent {innocent.score:.3f}")
    assert copy.pirated is True and innocent.score < copy.score - 0.3


def _digits_mlp(seed: int, policy: str):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), layers.Dense(64, activation="relu", dtype=policy),
                              layers.Dense(32, activation="relu", dtype=policy), layers.Dense(10, dtype=policy)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((x / 16).astype("float32"), y, epochs=5, verbose=0)
    return model, (x / 16).astype("float32"), y


def test_a_model_in_mixed_or_half_precision_is_fingerprinted_and_verified_as_its_weights_compute(owner, fp, tmp_path):
    # every layer's output rounded to 8 bits (bfloat16) drowned the bends: a fine-tuned copy
    # of a mixed_bfloat16 owner scored 0.14, "not pirated", and a copy served in half
    # precision was read on its labels only
    bf16_owner, x, y = _digits_mlp(0, "mixed_bfloat16")
    bf16_fp = tafa.fingerprint(bf16_owner, task="classification", n=32, domain=BOX, seed=0)
    assert bf16_owner.layers[0].compute_dtype == "bfloat16"  # the owner itself is left as it was
    copy = piracy.fine_tune(bf16_owner, x[:300], y[:300], epochs=1)
    innocent, _, _ = _digits_mlp(1, "mixed_bfloat16")
    r_copy, r_innocent = tafa.verify(bf16_fp, copy), tafa.verify(bf16_fp, innocent)
    assert r_copy.mode != "labels" and "diff_similarity" in r_copy.features
    assert r_copy.pirated is not False and r_copy.score > r_innocent.score + 0.2, (r_copy.score, r_innocent.score)
    from adapters import load_suspect

    copy.save(tmp_path / "copy.keras")  # as a pirate would upload it: loaded and verified the same
    assert tafa.verify(bf16_fp, load_suspect(tmp_path / "copy.keras", progress=False)).score == pytest.approx(r_copy.score)

    def in_float16(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float16"})

    served = keras.models.clone_model(owner, clone_function=in_float16)  # the float32 owner served in float16
    served.set_weights(owner.get_weights())
    report = tafa.verify(fp, served)
    assert report.mode != "labels" and report.pirated and report.score > 0.99, (report.mode, report.score)
