"""ReLU-site discovery, pre-activations and coverage on real Keras models."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tafa_tf.errors import UnsupportedModelError
from tafa_tf.introspection import ReluNetwork, inspect_model


def _functional_mixed():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    h = keras.layers.Dense(5)(inp)
    h = keras.layers.ReLU(max_value=6.0)(h)
    inner = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="relu6"), keras.layers.Dense(4), keras.layers.LeakyReLU()],
        name="inner",
    )
    a = inner(h)
    b = keras.layers.Dense(4, activation="tanh", name="squash")(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Add()([a, b]))
    return keras.Model(inp, out)


def test_sequential_fused_relu_sites_and_exact_preactivations():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2, activation="relu"),
         keras.layers.Dense(1)]
    )
    net = ReluNetwork(model)
    assert [s.layer_class for s in net.sites] == ["Dense", "Dense"]
    assert net.n_units == 5
    x = np.random.default_rng(0).normal(size=(7, 4)).astype("float32")
    out, z = net(tf.constant(x))
    k1, b1 = model.layers[0].get_weights()
    np.testing.assert_allclose(z.numpy()[:, :3], x @ k1 + b1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    # the fused activation is restored after the walk
    assert model.layers[0].activation.__name__ == "relu"


def test_functional_nested_relu6_leaky_and_coverage():
    model = _functional_mixed()
    net = ReluNetwork(model)
    names = [s.name for s in net.sites]
    assert names[0].startswith("re_lu")
    assert any(n.startswith("inner/") for n in names), names
    # ReLU(max_value=6) and relu6 bend twice: at 0 and at 6
    assert net.sites[0].breakpoints == (0.0, 6.0)
    assert net.sites[1].breakpoints == (0.0, 6.0)
    assert net.n_units == 5 * 2 + 4 * 2 + 4
    cov = net.coverage
    assert not cov.complete
    assert any("squash" in o and "tanh" in o for o in cov.non_piecewise_linear)
    assert cov.output_activation == "softmax"
    assert "not piecewise linear" in cov.summary()
    x = tf.random.normal((5, 6), seed=0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out, z = net(x)
        target = tf.reduce_sum(z[:, 2])
    grad = tape.gradient(target, x)
    assert grad.shape == (5, 6) and np.any(grad.numpy() != 0)
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_cnn_sites_cover_conv_layers(trained):
    cov = inspect_model(trained("digits_cnn"))
    assert [s.layer_class for s in cov.sites] == ["Conv2D", "Conv2D", "Dense"]
    assert cov.complete
    assert cov.to_dict()["n_units"] == 8 * 8 * 8 + 4 * 4 * 16 + 32


def test_model_without_relu_is_refused_with_what_it_has():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match=r"no ReLU-family unit.*gelu"):
        ReluNetwork(model)


def _squeeze_excite_stack(blocks: int, *, relu: bool = False) -> keras.Model:
    """EfficientNet's pattern in small: silu units gated by a sigmoid through Multiply."""
    x = inputs = keras.Input((6,))
    if relu:
        x = keras.layers.Dense(6, activation="relu")(x)
    for _ in range(blocks):
        a = keras.layers.Dense(6, activation="silu")(x)
        x = keras.layers.Multiply()([a, keras.layers.Dense(6, activation="sigmoid")(a)])
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_many_layers_that_are_not_piecewise_linear_are_counted_by_kind_in_the_error():
    with pytest.raises(UnsupportedModelError) as caught:
        ReluNetwork(_squeeze_excite_stack(30))
    message = str(caught.value)
    assert "not piecewise linear: 90 layers (30 silu, 30 sigmoid, 30 Multiply), listed by `tafa inspect`" in message
    assert len(message) < 600 and "multiply_" not in message
    # the full list travels with the error, for `tafa inspect` to print one per line
    listing = caught.value.coverage.summary().splitlines()
    assert sum(line.startswith("  ") and "(Multiply)" in line for line in listing) == 30


def test_inception_resnet_residual_scaling_counts_as_affine_but_a_lookalike_does_not():
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    class Lookalike(keras.layers.Layer):  # same job, but not Keras's own: not trusted by name
        def call(self, inputs):
            return inputs[0] + inputs[1] * 0.2

    Lookalike.__name__ = Lookalike.__qualname__ = "CustomScaleLayer"
    for scale_layer, complete in ((CustomScaleLayer(0.2), True), (Lookalike(), False)):
        x = inputs = keras.Input((6,))
        a = keras.layers.Dense(6, activation="relu")(x)
        b = keras.layers.Dense(6, activation="relu")(a)
        model = keras.Model(inputs, keras.layers.Dense(2)(scale_layer([a, b])))
        cov = inspect_model(model)
        assert cov.complete is complete, cov.non_piecewise_linear
        assert len(cov.sites) == 2


def test_a_softmax_layer_counts_as_the_output_squash_only_at_the_output_over_the_class_axis():
    def model_with(*tail):
        inputs = keras.Input((4, 6))
        return keras.Model(inputs, keras.Sequential([keras.layers.Dense(6, activation="relu"), *tail])(inputs))

    cov = inspect_model(model_with(keras.layers.Dense(3), keras.layers.Softmax()))
    assert cov.complete and cov.output_activation == "softmax"
    over_rows = inspect_model(model_with(keras.layers.Dense(3), keras.layers.Softmax(axis=1, name="rows")))
    assert [entry.split("/")[-1] for entry in over_rows.non_piecewise_linear] == ["rows (Softmax)"]
    assert over_rows.output_activation == "linear"
    inside = inspect_model(model_with(keras.layers.Softmax(), keras.layers.Dense(3)))
    assert not inside.complete  # in the middle it bends the features: not piecewise linear
    # a squash before a trailing Reshape (a decoder's sigmoid pixels, flattened) is still the
    # output's; it was reported as not piecewise linear
    decoder = inspect_model(model_with(keras.layers.Dense(3, activation="sigmoid"), keras.layers.Reshape((12,)),
                                       keras.layers.Dropout(0.1)))
    assert decoder.complete and decoder.output_activation == "sigmoid"


def test_summary_counts_by_kind_then_lists_each_layer_on_its_own_line():
    summary = inspect_model(_squeeze_excite_stack(3, relu=True)).summary().splitlines()
    at = summary.index("not piecewise linear (bends there are not fingerprinted): 9 layers (3 silu, 3 sigmoid, 3 Multiply)")
    assert len(summary) == at + 1 + 9 and all(line.startswith("  ") for line in summary[at + 1:])


@pytest.mark.slow
def test_efficientnet_error_names_kinds_not_every_layer():
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3))
    with pytest.raises(UnsupportedModelError, match=r"81 layers \(49 silu, 16 sigmoid, 16 Multiply\)") as caught:
        inspect_model(model)
    assert len(str(caught.value)) < 600


def test_subclassed_model_is_refused():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3, activation="relu")

        def call(self, x):
            return self.d(x)

    m = Custom()
    m(np.zeros((1, 2), "float32"))
    with pytest.raises(UnsupportedModelError, match="subclassed"):
        ReluNetwork(m)


def test_several_inputs_and_integer_inputs_are_refused():
    a, b = keras.Input((2,)), keras.Input((2,))
    two = keras.Model([a, b], keras.layers.Dense(1, activation="relu")(keras.layers.Concatenate()([a, b])))
    with pytest.raises(UnsupportedModelError, match="2 inputs"):
        ReluNetwork(two)
    tok = keras.Input((5,), dtype="int32")
    emb = keras.layers.Flatten()(keras.layers.Embedding(10, 3)(tok))
    with pytest.raises(UnsupportedModelError, match=r"integer inputs \(tokens into Embedding\)"):
        ReluNetwork(keras.Model(tok, keras.layers.Dense(2, activation="relu")(emb)))
    # integer pixels, no lookup: the message's fix (the same layers on a float input) works
    pixels = keras.Sequential([keras.Input((4, 4, 1), dtype="uint8"), keras.layers.Rescaling(1 / 255),
                               keras.layers.Flatten(), keras.layers.Dense(3, activation="relu")])
    with pytest.raises(UnsupportedModelError, match=r"uint8 inputs \(integer pixels\?\).*Rebuild it on a float input"):
        ReluNetwork(pixels)
    fixed = keras.Sequential([keras.Input(pixels.input_shape[1:]), *pixels.layers])
    assert ReluNetwork(fixed).input_shape == (4, 4, 1)
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 1))
    assert np.allclose(fixed(x.astype("float32")), pixels(x.astype("uint8")))  # the same function on whole pixels


def test_not_a_model_is_refused():
    with pytest.raises(UnsupportedModelError, match="Received: model of type function"):
        ReluNetwork(lambda x: x)


def test_hard_sigmoid_and_hard_tanh_bend_where_keras_clips_them():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="hard_sigmoid"),
                              keras.layers.Dense(4), keras.layers.Activation("hard_tanh"), keras.layers.Dense(1)])
    net = ReluNetwork(model)
    assert [(s.mode, s.breakpoints) for s in net.sites] == [("fused", (-3.0, 3.0)), ("layer", (-1.0, 1.0))]
    z = np.linspace(-5.0, 5.0, 101, dtype="float32")
    for name, (low, high) in (("hard_sigmoid", (-3.0, 3.0)), ("hard_tanh", (-1.0, 1.0))):
        slope = np.diff(keras.activations.get(name)(z).numpy())
        flat = np.isclose(slope, 0.0)
        assert flat[z[1:] <= low].all() and flat[z[:-1] >= high].all() and not flat[(z[:-1] > low) & (z[1:] < high)].any()


def test_a_free_input_length_is_refused_with_how_to_fix_it_and_the_fix_works():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 1)), keras.layers.Conv1D(4, 3, activation="relu"),
                              keras.layers.GlobalMaxPooling1D(), keras.layers.Dense(3)])
    with pytest.raises(UnsupportedModelError, match=r"input shape \(None, None, 1\)") as caught:
        ReluNetwork(model)
    assert "keras.Model(x, model(x))" in str(caught.value)
    x = keras.Input((16, 1))
    fixed = ReluNetwork(keras.Model(x, model(x)))
    assert fixed.input_shape == (16, 1) and fixed.n_units == 14 * 4
