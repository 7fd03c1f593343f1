"""Small reference models on data that ships with scikit-learn.

The demo, the tests, the examples and the benchmarks all need the same owner
models: a digits classifier (an MLP and a small CNN), a diabetes regressor and a
digits decoder (a generator from a Gaussian latent to 8x8 images). Nothing here
downloads anything: the data come from ``sklearn.datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("digits_mlp", "digits_cnn", "diabetes_mlp", "digits_decoder", "synthetic_mlp", "friedman_mlp", "cancer_mlp")
TASK_OF_KIND = {
    "digits_mlp": "classification",
    "digits_cnn": "classification",
    "diabetes_mlp": "regression",
    "digits_decoder": "generation",
    "synthetic_mlp": "classification",  # held-out zoos: data and shapes no constant was measured on
    "cancer_mlp": "classification",
    "friedman_mlp": "regression",
}
LATENT_DIM = 8


@dataclass(frozen=True)
class Data:
    """Train/test arrays of one scenario (``y`` is None for the generator's images)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _split(n: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]


def digits_data(*, image: bool = False, seed: int = 0, test_fraction: float = 0.3) -> Data:
    """scikit-learn's 8x8 digits with pixels scaled to [0, 1].

    ``image=True`` gives shape (n, 8, 8, 1) for convolutional models, else (n, 64).
    """
    from sklearn.datasets import load_digits

    ds = load_digits()
    x = (ds.data / 16.0).astype("float32")
    if image:
        x = x.reshape(-1, 8, 8, 1)
    y = ds.target.astype("int64")
    tr, te = _split(len(x), seed, test_fraction)
    return Data(x[tr], y[tr], x[te], y[te])


def diabetes_data(*, seed: int = 0, test_fraction: float = 0.3) -> Data:
    """scikit-learn's diabetes data, features and target standardized on the train split."""
    from sklearn.datasets import load_diabetes

    ds = load_diabetes()
    x = ds.data.astype("float32")
    y = ds.target.astype("float32")
    tr, te = _split(len(x), seed, test_fraction)
    mu, sd = x[tr].mean(0), x[tr].std(0)
    ymu, ysd = y[tr].mean(), y[tr].std()
    x = (x - mu) / sd
    y = ((y - ymu) / ysd).reshape(-1, 1)
    return Data(x[tr], y[tr], x[te], y[te])


def synthetic_data(*, seed: int = 0, test_fraction: float = 0.3) -> Data:
    """A fixed draw of scikit-learn's make_classification: 2000 points, 20 features (12
    informative, 4 redundant), 5 classes of 2 clusters each, features standardized on the
    train split; ``seed`` picks the split."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=2000, n_features=20, n_informative=12, n_redundant=4, n_classes=5,
                               n_clusters_per_class=2, class_sep=1.5, random_state=0)
    return _standardized_classes(x, y, seed, test_fraction)


def cancer_data(*, seed: int = 0, test_fraction: float = 0.3) -> Data:
    """scikit-learn's breast cancer data (569 tumours, 30 features, 2 classes), features
    standardized on the train split; ``seed`` picks the split."""
    from sklearn.datasets import load_breast_cancer

    return _standardized_classes(*load_breast_cancer(return_X_y=True), seed, test_fraction)


def _standardized_classes(x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float) -> Data:
    """Features and class labels split by ``seed``, the features standardized on the train split."""
    x, y = x.astype("float32"), y.astype("int64")
    tr, te = _split(len(x), seed, test_fraction)
    x = (x - x[tr].mean(0)) / x[tr].std(0)
    return Data(x[tr], y[tr], x[te], y[te])


def friedman_data(*, seed: int = 0, test_fraction: float = 0.3) -> Data:
    """A fixed draw of scikit-learn's make_friedman1 (1500 points, 10 features in [0, 1], 5
    of them used, noise 1), the target standardized on the train split."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=1500, n_features=10, noise=1.0, random_state=0)
    x, y = x.astype("float32"), y.astype("float32")
    tr, te = _split(len(x), seed, test_fraction)
    y = ((y - y[tr].mean()) / y[tr].std()).reshape(-1, 1)
    return Data(x[tr], y[tr], x[te], y[te])


def data_for(kind: str, *, seed: int = 0) -> Data:
    """The data set a reference model of ``kind`` is trained on."""
    _check_kind(kind)
    if kind == "digits_cnn":
        return digits_data(image=True, seed=seed)
    if kind == "diabetes_mlp":
        return diabetes_data(seed=seed)
    if kind == "synthetic_mlp":
        return synthetic_data(seed=seed)
    if kind == "friedman_mlp":
        return friedman_data(seed=seed)
    if kind == "cancer_mlp":
        return cancer_data(seed=seed)
    return digits_data(seed=seed)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind. Expected one of {KINDS}. Received: kind={kind!r}")


def build(kind: str, *, seed: int = 0):
    """An untrained reference model of ``kind`` with weights drawn from ``seed``."""
    import keras
    from keras import layers

    _check_kind(kind)
    keras.utils.set_random_seed(seed)
    if kind == "digits_mlp":
        return keras.Sequential(
            [
                keras.Input((64,)),
                layers.Dense(64, activation="relu"),
                layers.Dense(32, activation="relu"),
                layers.Dense(10),
            ],
            name="digits_mlp",
        )
    if kind == "digits_cnn":
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                layers.Conv2D(8, 3, padding="same", activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(16, 3, padding="same", activation="relu"),
                layers.Flatten(),
                layers.Dense(32, activation="relu"),
                layers.Dense(10),
            ],
            name="digits_cnn",
        )
    if kind in ("diabetes_mlp", "friedman_mlp", "synthetic_mlp", "cancer_mlp"):
        inputs, outputs = {"synthetic_mlp": (20, 5), "cancer_mlp": (30, 2)}.get(kind, (10, 1))
        return keras.Sequential(
            [
                keras.Input((inputs,)),
                layers.Dense(64, activation="relu"),
                layers.Dense(32, activation="relu"),
                layers.Dense(outputs),
            ],
            name=kind,
        )
    return keras.Sequential(
        [
            keras.Input((LATENT_DIM,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="sigmoid"),
        ],
        name="digits_decoder",
    )


def _compile(model, kind: str, learning_rate: float) -> None:
    import keras

    opt = keras.optimizers.Adam(learning_rate)
    if TASK_OF_KIND[kind] == "classification":
        model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    elif kind == "digits_decoder":
        model.compile(opt, "binary_crossentropy")
    else:
        model.compile(opt, "mse")


def train(
    kind: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    data: Data | None = None,
    learning_rate: float = 3e-3,
):
    """Train a fresh reference model of ``kind``; ``seed`` sets both weights and batches.

    The decoder is trained as the decoding half of a small noisy autoencoder whose code
    is pushed towards N(0, 1), so it generates digits from Gaussian latents.
    """
    _check_kind(kind)
    data = data if data is not None else data_for(kind)
    model = build(kind, seed=seed)
    if kind == "digits_decoder":
        return _train_decoder(model, data, seed=seed, epochs=epochs or 60, lr=learning_rate)
    _compile(model, kind, learning_rate)
    model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs or 40,
        batch_size=64,
        verbose=0,
        shuffle=True,
    )
    return model


def _train_decoder(decoder, data: Data, *, seed: int, epochs: int, lr: float):
    """The decoding half of a small noisy autoencoder on the images (see references.train_decoder)."""
    from tafa_tf.references import train_decoder

    return train_decoder(decoder, data.x_train, seed=seed, epochs=epochs, learning_rate=lr)


def fine_tune(model, kind: str, data: Data, *, epochs: int = 5, learning_rate: float = 1e-3, seed: int = 0):
    """Continue training a copy of ``model`` on ``data`` (the owner's model is untouched).

    Classifiers and regressors: ``tafa_tf.piracy.fine_tune`` on (x_train, y_train). The
    decoder is tuned as the decoding half of an autoencoder on images; training it on
    its own outputs would have zero gradient and change nothing.
    """
    from tafa_tf import piracy

    _check_kind(kind)
    if kind == "digits_decoder":
        return _train_decoder(piracy.copy_model(model), data, seed=seed, epochs=epochs, lr=learning_rate)
    return piracy.fine_tune(model, data.x_train, data.y_train, epochs=epochs, learning_rate=learning_rate, seed=seed)
