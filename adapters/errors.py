"""Every error that the adapters raise on purpose.

Each class inherits both :class:`tafa_tf.errors.TafaError` and the built-in that fits,
so callers may catch ``adapters.errors.RepoNotFoundError`` or plain
``FileNotFoundError``. The underlying cause (a huggingface_hub, Keras or TensorFlow
error) is always chained with ``raise ... from e``.
"""

from __future__ import annotations

from tafa_tf.errors import TafaError


class AdapterError(TafaError):
    """Base class of the errors raised while finding, fetching or loading a suspect."""


class RepoNotFoundError(AdapterError, FileNotFoundError):
    """The Hub repository does not exist (or is private and no token grants access)."""


class RevisionNotFoundError(AdapterError, FileNotFoundError):
    """The repository exists but the requested branch, tag or commit does not."""


class GatedRepoError(AdapterError, PermissionError):
    """The repository is gated or private and the token does not grant access."""


class NoModelError(AdapterError, FileNotFoundError):
    """No loadable model file (.keras, Keras folder, .h5, SavedModel) was found."""


class ModelLoadError(AdapterError, ValueError):
    """A model file was found but is corrupt or not a model this library can query."""


class UnsafeModelError(AdapterError, ValueError):
    """The model carries code or unsafe operators and was refused before loading."""


class ModelTooLargeError(AdapterError, ValueError):
    """The model's files exceed the configured byte limit."""


class HubConnectionError(AdapterError, ConnectionError):
    """The Hub could not be reached (network down, server error, or offline mode)."""


class MissingDependencyError(AdapterError, ImportError):
    """An optional dependency needed for this operation is not installed."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
