"""Every error that tafa-tf raises on purpose.

Each class also inherits the built-in that fits, so callers may catch either
``tafa.errors.FingerprintFileError`` or plain ``ValueError``. Messages say what was
received and what to do about it.
"""

from __future__ import annotations


class TafaError(Exception):
    """Base class of all tafa-tf errors."""


class UnsupportedModelError(TafaError, ValueError):
    """The model cannot be fingerprinted (no ReLU units, unreadable graph, ...)."""


SAMPLES_HINT = (
    "Or pass samples=, a few public inputs of the kind the model works on, so that points start near them: a "
    "trained model can answer alike at every random input of a wide domain and differently near its data."
)
"""What to do when a model answers the same, or nearly, across the domain's random inputs."""


class DomainError(TafaError, ValueError):
    """An input domain does not fit the model or is malformed."""


class FingerprintFileError(TafaError, ValueError):
    """A .tafa file is missing, truncated, altered or of an unknown version."""


class SuspectError(TafaError, RuntimeError):
    """A suspect model could not be queried (it raised, or answered nonsense)."""


class SuspectShapeError(SuspectError, ValueError):
    """A suspect's input or output shape does not fit the fingerprint."""


class SuspectTimeoutError(SuspectError, TimeoutError):
    """A suspect took longer than the allowed time to answer."""


class CalibrationError(TafaError, ValueError):
    """Calibration got too few or unusable model pairs."""


class BackendError(TafaError, RuntimeError):
    """Keras is set to run on a backend other than TensorFlow (tafa-tf needs TensorFlow)."""
