"""A Keras callback that fingerprints the model when training ends.

    model.fit(x, y, epochs=40, callbacks=[tafa_tf.callbacks.FingerprintCallback("owner.tafa")])

The fingerprint is written atomically (``Fingerprint.save``), so an interrupted save
never leaves a half-written .tafa where a good one stood.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import keras

from tafa_tf.outputs import TASKS

logger = logging.getLogger(__name__)

_TASKS = ("auto", *TASKS)


class FingerprintCallback(keras.callbacks.Callback):
    """Fingerprint the trained model at the end of ``fit`` and save the .tafa file.

    Args:
        path: where to write the fingerprint. An existing folder (or a path ending in
            a separator) gets ``<model name>.tafa`` inside it, so that the callback can
            sit beside a ModelCheckpoint writing to the same folder.
        n: boundary points (see ``tafa.fingerprint``).
        task: "auto", "classification", "regression" or "generation".
        domain: the input domain (``tafa.domains.Box``/``Gaussian`` or a (low, high)
            pair); None picks the documented default.
        seed: makes the fingerprint reproducible.

    Attributes:
        fingerprint_: the Fingerprint made at the end of training (None before).
        path_: the file it was written to (None before).

    Raises:
        ValueError: a bad argument (at construction, not after a long training).
        tafa_tf.errors.UnsupportedModelError: at the end of training, if the model
            cannot be fingerprinted (no ReLU units, ...).

    Examples:
        >>> cb = FingerprintCallback("models/owner.tafa", n=128, domain=tafa.domains.Box(0, 1))
        >>> model.fit(x, y, epochs=10, callbacks=[cb])
        >>> cb.fingerprint_.n_points
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        n: int = 128,
        task: str = "auto",
        domain: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ValueError(f"path must be a file or folder path. Received: path={path!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer. Received: n={n!r}")
        if task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}. Received: task={task!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
        if domain is not None:
            from tafa_tf.domains import as_domain

            domain = as_domain(domain)  # a malformed domain fails now, before training
        self.path = path
        self.n = n
        self.task = task
        self.domain = domain
        self.seed = seed
        self.fingerprint_: Any = None
        self.path_: Path | None = None

    def target_path(self) -> Path:
        """The file the fingerprint goes to (resolving a folder to ``<model name>.tafa``)."""
        p = Path(self.path).expanduser()
        if p.is_dir() or str(self.path).endswith((os.sep, "/")):
            return p / f"{self.model.name}.tafa"
        return p

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Fingerprint ``self.model`` and save it; errors propagate out of ``fit``."""
        import tafa_tf as tafa

        out = self.target_path()
        fp = tafa.fingerprint(self.model, task=self.task, n=self.n, domain=self.domain, seed=self.seed)
        fp.save(out)
        self.fingerprint_, self.path_ = fp, out
        logger.info("Fingerprinted %s: %d points written to %s", self.model.name, fp.n_points, out)


__all__ = ["FingerprintCallback"]
