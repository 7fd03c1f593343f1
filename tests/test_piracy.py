"""Piracy transforms on the zoo's real models: new models, owner untouched, function
kept where it must be, accuracy kept where a pirate would keep it."""

from __future__ import annotations

from functools import partial

import keras
import numpy as np
import pytest

from tafa_tf import piracy, zoo
from tafa_tf.domains import Box
from tafa_tf.errors import UnsupportedModelError


@pytest.fixture(scope="module")
def digits():
    return zoo.data_for("digits_mlp")


@pytest.fixture(scope="module")
def digits_images():
    return zoo.data_for("digits_cnn")


@pytest.fixture(scope="module")
def mlp(trained):
    return trained("digits_mlp")


@pytest.fixture(scope="module")
def cnn(trained):
    return trained("digits_cnn")


def accuracy(model, data) -> float:
    return float(np.mean(np.argmax(np.asarray(model(data.x_test)), axis=1) == data.y_test))


def outputs(model, x) -> np.ndarray:
    return np.asarray(model(x, training=False))


def assert_new_and_owner_untouched(owner, make):
    """Run ``make()`` and check that it returned a new model and left the owner's weights alone."""
    before = [w.copy() for w in owner.get_weights()]
    pirate = make()
    assert isinstance(pirate, keras.Model) and pirate is not owner
    for a, b in zip(before, owner.get_weights()):
        np.testing.assert_array_equal(a, b)
    return pirate


def max_weight_change(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a.get_weights(), b.get_weights()))


# ----------------------------------------------------------------------------- every transform

TRANSFORMS = {
    "fine_tune": lambda m, d: piracy.fine_tune(m, d.x_train, d.y_train, epochs=2, learning_rate=1e-3),
    "fine_tune_large_lr": lambda m, d: piracy.fine_tune(m, d.x_train, d.y_train, epochs=2, learning_rate=1e-2),
    "fine_tune_data_free": lambda m, d: piracy.fine_tune(m, domain=Box(0.0, 1.0), n=1024, epochs=2),
    "prune": lambda m, d: piracy.prune(m, 0.3),
    "prune_fine_tuned": lambda m, d: piracy.prune(m, 0.7, fine_tune_data=(d.x_train, d.y_train), epochs=2),
    "float16": lambda m, d: piracy.quantize(m, "float16"),
    "int8": lambda m, d: piracy.quantize(m, "int8"),
    "int8_per_tensor": lambda m, d: piracy.quantize(m, "int8", per_channel=False),
    "noise": lambda m, d: piracy.add_noise(m, 0.02, seed=1),
    "permute": lambda m, d: piracy.permute_neurons(m, seed=1),
    "rescale": lambda m, d: piracy.rescale_neurons(m, seed=1),
    "distill": lambda m, d: piracy.distill(m, x=d.x_train, epochs=15),
    "compose": lambda m, d: piracy.compose(
        m, partial(piracy.prune, fraction=0.3), partial(piracy.quantize, dtype="int8")
    ),
}
# How much test accuracy a pirate may lose (the owner is ~0.96 on digits).
MAX_DROP = {"fine_tune_data_free": 0.1, "prune_fine_tuned": 0.08, "distill": 0.1}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_is_new_model_keeps_owner_and_accuracy(name, mlp, digits):
    pirate = assert_new_and_owner_untouched(mlp, lambda: TRANSFORMS[name](mlp, digits))
    assert max_weight_change(pirate, mlp) > 1e-4, "a pirated copy must have other weights"
    assert accuracy(pirate, digits) >= accuracy(mlp, digits) - MAX_DROP.get(name, 0.04)


def test_copies_of_a_trained_owner_leave_its_training_state_behind(mlp, digits):
    # Keras's clone_model compiles the clone of a compiled model, building its optimizer's
    # variables (two more copies of every weight with Adam), kept in memory and saved with it
    assert mlp.compiled and mlp.optimizer.variables  # zoo.train compiled and fitted it
    copies = {"copy": piracy.copy_model(mlp), "int8": piracy.quantize(mlp, "int8"),
              "noise": piracy.add_noise(mlp, 0.02, seed=1), "prune": piracy.prune(mlp, 0.3)}
    assert [name for name, m in copies.items() if m.compiled] == []
    np.testing.assert_array_equal(np.asarray(copies["copy"](digits.x_test[:8])), np.asarray(mlp(digits.x_test[:8])))


# ----------------------------------------------------------------------------- equivalent reparametrizations


@pytest.mark.parametrize("transform", [piracy.permute_neurons, piracy.rescale_neurons])
@pytest.mark.parametrize("kind", ["digits_mlp", "digits_cnn", "diabetes_mlp"])
def test_reparametrization_keeps_function_changes_weights(transform, kind, trained):
    owner = trained(kind)
    x = zoo.data_for(kind).x_test
    pirate = assert_new_and_owner_untouched(owner, lambda: transform(owner, seed=7))
    np.testing.assert_allclose(outputs(pirate, x), outputs(owner, x), atol=1e-4, rtol=1e-4)
    # Every layer but the output's bias moves: hidden units are permuted/rescaled, and
    # the layers reading them have their input rows changed accordingly.
    changed = [not np.allclose(a, b) for a, b in zip(pirate.get_weights(), owner.get_weights())]
    assert sum(changed) >= len(changed) - 1


def test_rescale_factors_stay_in_range(mlp):
    pirate = piracy.rescale_neurons(mlp, seed=0, low=0.5, high=2.0)
    # Column norms of the first kernel: a bias may be exactly zero, a column never is.
    ratio = np.linalg.norm(pirate.layers[0].kernel, axis=0) / np.linalg.norm(mlp.layers[0].kernel, axis=0)
    assert np.all((ratio > 0.5 - 1e-6) & (ratio < 2.0 + 1e-6))


def test_permute_and_rescale_are_seeded(mlp):
    for transform in (piracy.permute_neurons, piracy.rescale_neurons):
        a, b, c = transform(mlp, seed=1), transform(mlp, seed=1), transform(mlp, seed=2)
        assert max_weight_change(a, b) == 0.0
        assert max_weight_change(a, c) > 0.0


def small_model(*middle, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8), *middle, keras.layers.Dense(5), keras.layers.Dense(3)]
    )


@pytest.mark.parametrize(
    "middle",
    [
        [keras.layers.ReLU()],
        [keras.layers.LeakyReLU(negative_slope=0.1), keras.layers.Dropout(0.5)],
        [keras.layers.Activation("relu")],
    ],
    ids=["relu_layer", "leaky_dropout", "activation_layer"],
)
def test_separate_activation_layers(middle):
    model = small_model(*middle)
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    for transform in (piracy.permute_neurons, piracy.rescale_neurons):
        np.testing.assert_allclose(outputs(transform(model, seed=3), x), outputs(model, x), atol=1e-5)


def test_nested_sequential_is_handled():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu")])
    model = keras.Sequential([keras.Input((6,)), inner, keras.layers.Dense(3)])
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    np.testing.assert_allclose(outputs(piracy.rescale_neurons(model), x), outputs(model, x), atol=1e-5)


def test_tanh_units_are_permuted_but_not_rescaled():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    np.testing.assert_allclose(outputs(piracy.permute_neurons(model), x), outputs(model, x), atol=1e-5)
    with pytest.raises(UnsupportedModelError, match="positively homogeneous"):
        piracy.rescale_neurons(model)


def test_unsupported_layer_between_dense_layers_is_named():
    model = small_model(keras.layers.BatchNormalization())
    with pytest.raises(UnsupportedModelError, match="BatchNormalization"):
        piracy.permute_neurons(model)


def test_functional_model_is_refused():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3, activation="relu")(inputs)))
    with pytest.raises(UnsupportedModelError, match="Sequential"):
        piracy.rescale_neurons(model)


def test_model_without_hidden_layer_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="relu")])
    with pytest.raises(UnsupportedModelError, match="no hidden"):
        piracy.permute_neurons(model)


def test_rescale_range_is_checked(mlp):
    with pytest.raises(ValueError, match="Received: low=2.0, high=1.0"):
        piracy.rescale_neurons(mlp, low=2.0, high=1.0)


# ----------------------------------------------------------------------------- pruning


def kernel_zero_shares(model) -> list[float]:
    return [float(np.mean(np.asarray(layer.kernel) == 0)) for layer in model.layers if hasattr(layer, "kernel")]


def test_global_pruning_zeroes_the_fraction(mlp):
    pirate = piracy.prune(mlp, 0.5)
    total = sum(np.asarray(l.kernel).size for l in pirate.layers)
    zeros = sum(int(np.sum(np.asarray(l.kernel) == 0)) for l in pirate.layers)
    assert zeros == round(0.5 * total)
    # Biases are not pruned.
    for a, b in zip(pirate.layers, mlp.layers):
        np.testing.assert_array_equal(np.asarray(a.bias), np.asarray(b.bias))


def test_per_layer_pruning_zeroes_the_fraction_of_every_kernel(cnn):
    pirate = piracy.prune(cnn, 0.4, scope="layer")
    assert kernel_zero_shares(pirate) == pytest.approx([0.4] * 4, abs=0.01)


def test_pruned_fine_tune_keeps_the_mask_and_recovers(mlp, digits):
    pruned = piracy.prune(mlp, 0.9)
    tuned = piracy.prune(mlp, 0.9, fine_tune_data=(digits.x_train, digits.y_train), epochs=3, learning_rate=3e-3)
    for a, b in zip(pruned.layers, tuned.layers):
        np.testing.assert_array_equal(np.asarray(a.kernel) == 0, np.asarray(b.kernel) == 0)
    assert accuracy(tuned, digits) > accuracy(pruned, digits)


def test_pruned_fine_tune_on_unlabeled_inputs(mlp, digits):
    tuned = piracy.prune(mlp, 0.8, fine_tune_data=digits.x_train, epochs=3, learning_rate=3e-3)
    # Global pruning: the large first kernel loses most, the small output kernel least.
    assert kernel_zero_shares(tuned)[0] > 0.8
    assert accuracy(tuned, digits) > accuracy(piracy.prune(mlp, 0.8), digits)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, "half", True])
def test_prune_fraction_is_checked(mlp, fraction):
    with pytest.raises(ValueError, match=f"Received: fraction={fraction!r}"):
        piracy.prune(mlp, fraction)


def test_prune_scope_is_checked(mlp):
    with pytest.raises(ValueError, match="Received: scope='neuron'"):
        piracy.prune(mlp, 0.5, scope="neuron")


# ----------------------------------------------------------------------------- quantization


def test_float16_rounds_every_weight(mlp):
    pirate = piracy.quantize(mlp, "float16")
    for q, w in zip(pirate.get_weights(), mlp.get_weights()):
        assert q.dtype == np.float32
        np.testing.assert_array_equal(q, w.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_has_at_most_255_levels_and_keeps_biases(cnn, digits_images, per_channel):
    pirate = piracy.quantize(cnn, "int8", per_channel=per_channel)
    for q, w in zip(pirate.get_weights(), cnn.get_weights()):
        assert q.dtype == np.float32
        if w.ndim == 1:
            np.testing.assert_array_equal(q, w)
            continue
        columns = q.reshape(-1, q.shape[-1]).T if per_channel else [q.ravel()]
        assert all(len(np.unique(c)) <= 255 for c in columns)
        # Rounding error is at most half a quantization step.
        step = np.max(np.abs(w), axis=tuple(range(w.ndim - 1)) if per_channel else None) / 127
        assert np.all(np.abs(q - w) <= step / 2 + 1e-7)
    assert accuracy(pirate, digits_images) >= accuracy(cnn, digits_images) - 0.03


def test_quantize_dtype_is_checked(mlp):
    with pytest.raises(ValueError, match="Received: dtype='int4'"):
        piracy.quantize(mlp, "int4")


# ----------------------------------------------------------------------------- noise


def test_noise_is_relative_and_seeded(mlp):
    a, b = piracy.add_noise(mlp, 0.05, seed=3), piracy.add_noise(mlp, 0.05, seed=3)
    assert max_weight_change(a, b) == 0.0
    kernel, noisy = mlp.get_weights()[0], a.get_weights()[0]
    rms = np.sqrt(np.mean(kernel**2))
    assert np.std(noisy - kernel) == pytest.approx(0.05 * rms, rel=0.1)
    assert max_weight_change(piracy.add_noise(mlp, 0.0), mlp) == 0.0


def test_noise_leaves_batchnorm_statistics_and_keeps_the_copy_finite(digits_images):
    """Moving statistics are state, not parameters: noise relative to a moving-variance
    tensor's RMS would drive its small channels negative and the copy to NaN. A frozen
    backbone's kernels are still parameters and get noise."""
    keras.utils.set_random_seed(0)
    x = digits_images.x_test[:32]
    backbone = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Conv2D(8, 3), keras.layers.BatchNormalization(),
                                 keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D()], name="backbone")
    owner = keras.Sequential([keras.Input(x.shape[1:]), backbone, keras.layers.Dense(10)])
    backbone.trainable = False
    bn = backbone.layers[1]
    bn.moving_variance.assign(np.array([1e-3] * 4 + [10.0] * 4, dtype="float32"))
    bn.moving_mean.assign(np.linspace(-1, 1, 8).astype("float32"))
    pirate = assert_new_and_owner_untouched(owner, lambda: piracy.add_noise(owner, 0.2, seed=0))
    copy_bn = pirate.layers[0].layers[1]
    np.testing.assert_array_equal(copy_bn.moving_variance.numpy(), bn.moving_variance.numpy())
    np.testing.assert_array_equal(copy_bn.moving_mean.numpy(), bn.moving_mean.numpy())
    assert np.max(np.abs(copy_bn.gamma.numpy() - bn.gamma.numpy())) > 0  # scales are parameters
    conv, copy_conv = backbone.layers[0].kernel.numpy(), pirate.layers[0].layers[0].kernel.numpy()
    assert np.max(np.abs(copy_conv - conv)) > 0
    assert np.isfinite(outputs(pirate, x)).all()


def test_noise_scale_is_checked(mlp):
    with pytest.raises(ValueError, match="Received: scale=-1"):
        piracy.add_noise(mlp, -1)


# ----------------------------------------------------------------------------- fine-tuning and distillation


def test_data_free_fine_tune_of_a_regressor_moves_weights(trained):
    owner = trained("diabetes_mlp")
    pirate = assert_new_and_owner_untouched(
        owner, lambda: piracy.fine_tune(owner, domain=tafa_gaussian(), n=512, epochs=2)
    )
    assert max_weight_change(pirate, owner) > 1e-3
    x = zoo.data_for("diabetes_mlp").x_test
    assert np.mean(np.abs(outputs(pirate, x) - outputs(owner, x))) < 0.3


def tafa_gaussian():
    from tafa_tf.domains import Gaussian

    return Gaussian(1.0)


def test_fine_tune_arguments_are_checked(mlp, digits):
    with pytest.raises(ValueError, match="Received: x=None, domain=None"):
        piracy.fine_tune(mlp)
    with pytest.raises(ValueError, match="Received: len"):
        piracy.fine_tune(mlp, digits.x_train, digits.y_train[:10])
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        piracy.fine_tune(mlp, digits.x_train, digits.y_train, learning_rate=0)
    with pytest.raises(ValueError, match="Received: targets='soft'"):
        piracy.fine_tune(mlp, digits.x_train, targets="soft")
    with pytest.raises(ValueError, match="Received: batchnorm='freeze'"):
        piracy.fine_tune(mlp, digits.x_train, digits.y_train, batchnorm="freeze")


def test_fine_tune_batchnorm_frozen_keeps_statistics_train_rewrites_them(digits_images):
    """A random backbone's BatchNormalization statistics are the initial ones (0, 1):
    Keras's plain fit moves them to the data's, the transfer-learning guide's recipe
    ("frozen") keeps them, and the scales and offsets, while the convolutions train."""
    keras.utils.set_random_seed(0)
    x, y = digits_images.x_train[:256], digits_images.y_train[:256]
    backbone = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Conv2D(8, 3), keras.layers.BatchNormalization(),
                                 keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D()], name="backbone")
    owner = keras.Sequential([keras.Input(x.shape[1:]), backbone, keras.layers.Dense(10)])

    def bn_and_conv(model):
        bn = model.layers[0].layers[1]
        return [w.copy() for w in bn.get_weights()], model.layers[0].layers[0].get_weights()[0].copy()

    (bn0, conv0) = bn_and_conv(owner)
    for mode in ("train", "frozen"):
        pirate = assert_new_and_owner_untouched(
            owner, lambda m=mode: piracy.fine_tune(owner, x, y, epochs=2, learning_rate=1e-3, batchnorm=m))
        bn, conv = bn_and_conv(pirate)
        assert np.max(np.abs(conv - conv0)) > 1e-4  # the convolution trained either way
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(bn, bn0))
        if mode == "frozen":
            assert moved == 0.0
        else:
            assert moved > 1e-3


def test_distill_default_student_is_fresh_same_architecture(mlp, digits):
    student = piracy.distill(mlp, x=digits.x_train, epochs=1, seed=5)
    assert [w.shape for w in student.get_weights()] == [w.shape for w in mlp.get_weights()]
    # Fresh init: far from the teacher's weights even after a little training.
    assert max_weight_change(student, mlp) > 0.1


def test_distill_into_another_architecture_data_free(mlp, digits):
    keras.utils.set_random_seed(1)
    other = keras.Sequential([keras.Input((64,)), keras.layers.Dense(48, activation="relu"), keras.layers.Dense(10)])
    before = [w.copy() for w in other.get_weights()]
    student = piracy.distill(mlp, student=other, domain=Box(0.0, 1.0), n=4096, epochs=10)
    assert student is not other
    for a, b in zip(before, other.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Uniform noise is far from digits, yet the student picks up much of the teacher.
    assert accuracy(student, digits) > 0.7


def test_distill_checks_student_output_shape(mlp, digits):
    wrong = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="student output shape"):
        piracy.distill(mlp, student=wrong, x=digits.x_train[:64], epochs=1)


# ----------------------------------------------------------------------------- composition


def test_compose_applies_steps_in_order(mlp):
    steps = (partial(piracy.prune, fraction=0.5), partial(piracy.quantize, dtype="float16"))
    composed = piracy.compose(mlp, *steps)
    by_hand = steps[1](steps[0](mlp))
    assert max_weight_change(composed, by_hand) == 0.0
    assert piracy.compose(mlp) is not mlp


def test_compose_checks_steps(mlp):
    with pytest.raises(TypeError, match="steps\\[1\\]"):
        piracy.compose(mlp, piracy.permute_neurons, "quantize")
    with pytest.raises(TypeError, match="must return a keras.Model"):
        piracy.compose(mlp, lambda m: None)


def test_non_model_is_refused():
    with pytest.raises(TypeError, match="Expected a keras.Model"):
        piracy.add_noise(lambda x: x, 0.1)


def test_copies_of_a_model_with_an_adapted_normalization_normalize_as_it_does():
    """Keras copies an adapted Normalization's mean and variance into constants when it
    loads a file, not on set_weights: copies normalized with 0 and 1 and answered nothing
    like the owner (a float16 copy of a diabetes regressor scored 0.50 and was cleared)."""
    from sklearn.datasets import load_diabetes

    import tafa_tf as tafa

    x, y = load_diabetes(return_X_y=True)
    x, y = x.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    owner = keras.Sequential([keras.Input((10,)), norm, keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    owner.compile(keras.optimizers.Adam(3e-3), "mse")
    owner.fit(x, y, epochs=10, verbose=0)
    expected = outputs(owner, x)
    np.testing.assert_allclose(outputs(piracy.copy_model(owner), x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs(piracy.quantize(owner, "float16"), x), expected, atol=0.02)
    fresh = piracy.fresh_model(owner, seed=1)
    np.testing.assert_allclose(outputs(fresh.layers[0], x), outputs(owner.layers[0], x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(fresh.layers[1].kernel.numpy(), owner.layers[1].kernel.numpy())
    fp = tafa.fingerprint(owner, n=16, task="regression")
    assert tafa.verify(fp, piracy.quantize(owner, "float16")).score > 0.9


@pytest.mark.parametrize(
    "tail, expected",
    [
        ([keras.layers.Dense(3, activation="softmax")], "softmax"),
        ([keras.layers.Dense(3), keras.layers.Softmax()], "softmax"),
        ([keras.layers.Dense(3), keras.layers.Activation("softmax")], "softmax"),
        ([keras.layers.Dense(4, activation="sigmoid"), keras.layers.Reshape((2, 2))], "sigmoid"),
        ([keras.layers.Dense(3), keras.layers.Dropout(0.2)], "linear"),
    ],
    ids=["fused", "Softmax", "Activation", "sigmoid-then-Reshape", "logits-then-Dropout"],
)
def test_the_head_activation_is_read_past_nesting_and_shape_only_layers(tail, expected):
    """The pirates' default losses follow it: a Softmax() head or a sigmoid decoder ending
    in a Reshape was read as logits, or as no activation, from model.layers[-1]."""
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"), *tail])
    x = keras.Input((5,))
    assert piracy.head_activation(keras.Model(x, inner(x))) == expected


# ----------------------------------------------------------------------------- ensembles

@pytest.mark.parametrize("space", piracy.ENSEMBLE_SPACES)
def test_an_ensemble_mixes_the_members_answers_by_their_shares_and_saves(mlp, trained, digits, space, tmp_path):
    others = [trained("digits_mlp", seed=s) for s in (1, 2)]
    pirate = assert_new_and_owner_untouched(mlp, lambda: piracy.ensemble(mlp, others, weight=0.5, space=space))
    x = digits.x_test[:50]
    answers = [outputs(m, x) for m in (mlp, *others)]
    if space == "probabilities":
        answers = [np.exp(a - a.max(axis=1, keepdims=True)) / np.exp(a - a.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
                   for a in answers]
    expected = 0.5 * answers[0] + 0.25 * answers[1] + 0.25 * answers[2]
    np.testing.assert_allclose(outputs(pirate, x), expected, rtol=1e-5, atol=1e-6)
    path = tmp_path / "ensemble.keras"
    pirate.save(path)  # members under names of their own: a pirate can publish it, and it loads safely
    np.testing.assert_allclose(outputs(keras.saving.load_model(path, safe_mode=True), x), expected, rtol=1e-5, atol=1e-6)
    assert accuracy(pirate, digits) > 0.9


@pytest.mark.parametrize("kwargs, message", [
    ({"others": []}, "at least one other model"),
    ({"weight": 1.0}, "weight must be a number in \\(0, 1\\).*weight=1.0"),
    ({"weight": 0}, "weight=0"),
    ({"space": "logits"}, "space must be one of.*space='logits'"),
])
def test_ensemble_arguments_are_checked(mlp, trained, kwargs, message):
    args = {"others": [trained("digits_mlp", seed=1)], **kwargs}
    with pytest.raises(ValueError, match=message):
        piracy.ensemble(mlp, **args)


def test_an_ensemble_of_regressors_averages_values_and_refuses_probabilities(trained):
    owner, other = trained("diabetes_mlp"), trained("diabetes_mlp", seed=1)
    x = zoo.data_for("diabetes_mlp").x_test[:20]
    np.testing.assert_allclose(outputs(piracy.ensemble(owner, [other], weight=0.25), x),
                               0.25 * outputs(owner, x) + 0.75 * outputs(other, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs a classifier with an output per class.*answers 1 value"):
        piracy.ensemble(owner, [other], space="probabilities")
