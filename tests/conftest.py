"""Shared fixtures: real Keras models trained on scikit-learn data, built once per run."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tafa_tf import zoo

_TRAINED: dict[tuple[str, int, int | None], object] = {}


def trained_model(kind: str, seed: int = 0, epochs: int | None = None):
    """A reference model of ``kind`` trained from ``seed``; memoized for the whole run.

    Callers must not change the returned model: copy it (keras.models.clone_model and
    set_weights) before training or editing.
    """
    key = (kind, seed, epochs)
    if key not in _TRAINED:
        _TRAINED[key] = zoo.train(kind, seed=seed, epochs=epochs)
    return _TRAINED[key]


@pytest.fixture(scope="session")
def trained():
    """``trained(kind, seed=0, epochs=None)`` -> a memoized trained reference model."""
    return trained_model


@pytest.fixture(scope="session")
def owner(trained):
    """The reference owner: the digits MLP, seed 0. Suites that need another override it."""
    return trained("digits_mlp")


@pytest.fixture(scope="session")
def fp(owner):
    """The reference owner's fingerprint (64 points in Box(0, 1), seed 0), made once per run.

    Shared by the suites that only need *a* real fingerprint, so it is synthesized once;
    suites that need another fingerprint override it.
    """
    import tafa_tf as tafa

    return tafa.fingerprint(owner, task="classification", n=64, domain=tafa.domains.Box(0.0, 1.0), seed=0)



@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """Where suites write the figures they measure: a temporary folder by default, so that
    a test run leaves the tree clean (the figures depend on the machine).

    To refresh the committed figures on purpose, point TAFA_RESULTS_DIR at them:
    ``TAFA_RESULTS_DIR=benchmarks/results python -m pytest tests/test_load.py`` (run whole
    files: a suite writes only the cases it ran).
    """
    chosen = os.environ.get("TAFA_RESULTS_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
