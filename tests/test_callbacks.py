"""FingerprintCallback: a real (short) fit writes a fingerprint that verifies its model."""

from __future__ import annotations

import pytest

import tafa_tf as tafa
from tafa_tf import zoo
from tafa_tf.callbacks import FingerprintCallback


def _fit_with(callback, epochs: int = 3):
    data = zoo.data_for("digits_mlp")
    model = zoo.build("digits_mlp", seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    # a few epochs give a model with live ReLU units, enough to fingerprint
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=128, verbose=0, callbacks=[callback])
    return model


def test_fit_writes_a_fingerprint_of_the_trained_model(tmp_path):
    cb = FingerprintCallback(tmp_path / "owner.tafa", n=32, domain=tafa.domains.Box(0.0, 1.0), seed=1)
    model = _fit_with(cb)
    assert cb.path_ == tmp_path / "owner.tafa" and cb.path_.is_file()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # written atomically, nothing left over
    fp = tafa.Fingerprint.load(cb.path_)
    assert fp.owner == cb.fingerprint_.owner and fp.task == "classification"
    report = tafa.verify(fp, model)
    assert report.pirated is True and report.score > 0.99


def test_a_folder_path_gets_the_model_name(tmp_path):
    cb = FingerprintCallback(tmp_path, n=16, domain=(0.0, 1.0))
    _fit_with(cb, epochs=2)
    assert cb.path_ == tmp_path / "digits_mlp.tafa" and cb.path_.is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "Received: n=0"),
        ({"task": "ranking"}, "Received: task='ranking'"),
        ({"seed": 1.5}, "Received: seed=1.5"),
        ({"domain": "pixels"}, "Received: domain='pixels'"),
    ],
)
def test_bad_arguments_fail_before_training(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        FingerprintCallback(tmp_path / "x.tafa", **kwargs)
