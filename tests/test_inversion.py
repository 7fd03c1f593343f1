"""tafa.batchnorm_samples: inputs a trained model's BatchNormalization statistics describe,
found without data, on a small CNN trained on scikit-learn digits."""

from __future__ import annotations

import numpy as np
import pytest

import tafa_tf as tafa
from tafa_tf import piracy, zoo
from tafa_tf.domains import Box
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.inversion import statistics_gap


def _bn_cnn(seed: int = 0, epochs: int = 4):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.Conv2D(8, 3),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    if epochs:
        data = zoo.digits_data(image=True)
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def bn_owner():
    return _bn_cnn()


def test_batchnorm_samples_match_the_recorded_statistics_inside_the_domain(bn_owner):
    domain = Box(0.0, 1.0)
    x = tafa.batchnorm_samples(bn_owner, 32, domain, steps=100, seed=0)
    assert x.shape == (32, 8, 8, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    noise = domain.sample(np.random.default_rng(0), x.shape).astype("float32")
    digits = zoo.digits_data(image=True).x_test[:32]
    gaps = {"samples": statistics_gap(bn_owner, x), "noise": statistics_gap(bn_owner, noise),
            "digits": statistics_gap(bn_owner, digits)}
    print(gaps)
    # the domain's random inputs are far from what the layers saw in training, real digits
    # near it; the found inputs nearer still (they are fitted to it)
    assert gaps["samples"] < 0.25 * gaps["noise"], gaps
    assert gaps["samples"] < gaps["digits"] < gaps["noise"], gaps
    np.testing.assert_array_equal(x, tafa.batchnorm_samples(bn_owner, 32, domain, steps=100, seed=0))


def test_points_grown_from_batchnorm_samples_fingerprint_the_owner(bn_owner):
    domain = Box(0.0, 1.0)
    x = tafa.batchnorm_samples(bn_owner, 16, domain, steps=60, seed=1)
    fp = tafa.fingerprint(bn_owner, task="classification", n=32, domain=domain, samples=x, sample_fraction=1.0)
    assert fp.n_points == 32
    copy = tafa.verify(fp, piracy.quantize(bn_owner, "float16"))
    other = tafa.verify(fp, _bn_cnn(seed=5))
    assert copy.score > other.score + 0.3, (copy.score, other.score)


def test_a_model_without_recorded_statistics_is_refused_with_what_to_do():
    import keras

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match="no BatchNormalization layer") as err:
        tafa.batchnorm_samples(plain)
    assert "samples=" in str(err.value)
    with pytest.raises(UnsupportedModelError, match="2 BatchNormalization layers, all at their initial"):
        tafa.batchnorm_samples(_bn_cnn(epochs=0))


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"steps": 0}])
def test_batchnorm_samples_refuses_a_batch_without_statistics(bn_owner, kwargs):
    with pytest.raises(ValueError, match="Received"):
        tafa.batchnorm_samples(bn_owner, **kwargs)
