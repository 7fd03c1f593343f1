"""The Suspect: a loaded model seen as a black box, with where it came from.

The core (``tafa_tf.verify``) only ever calls ``suspect(x)``; everything else on a
Suspect is provenance for the report: the reference it was loaded from, the commit
it was resolved to, its format and a sha256 of every file that was read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf.asking import batched_outputs
from tafa_tf.outputs import inference_batch_size

DEFAULT_BATCH_SIZE = 1024


@dataclass(frozen=True)
class FileRecord:
    """One file of a suspect model: path relative to the model root, size, sha256."""

    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, file: Path, root: Path) -> FileRecord:
        """Hash ``file`` in chunks and record it relative to ``root``.

        Args:
            file: the file to record.
            root: the directory that paths are made relative to.

        Returns:
            A FileRecord.
        """
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        rel = file.relative_to(root).as_posix() if file != root else file.name
        return cls(rel, file.stat().st_size, digest.hexdigest())


@dataclass
class Suspect:
    """A model to verify, callable as ``suspect(x) -> np.ndarray``.

    Args:
        predict: the underlying function from a float32 batch to outputs.
        source: the reference the suspect was loaded from (a path or ``hf://`` URI).
        format: one of ``"keras"``, ``"keras_folder"``, ``"h5"``, ``"saved_model"``,
            ``"tflite"``.
        files: the files read, with size and sha256.
        commit_sha: for Hub suspects, the full commit sha the revision resolved to.
        revision: for Hub suspects, the revision that was asked for (None: default).
        input_shape: the model's input shape without the batch axis, if known.
        output_shape: the model's output shape without the batch axis, if known.
        model: the Keras model when there is one, else None (SavedModel, TensorFlow Lite).
        batch_size: the largest batch sent to the model in one call.
        scan_report: a summary of the static safety checks that were run.
    """

    predict: Callable[[np.ndarray], Any] = field(repr=False)
    source: str
    format: str
    files: tuple[FileRecord, ...] = ()
    commit_sha: str | None = None
    revision: str | None = None
    input_shape: tuple[int | None, ...] | None = None
    output_shape: tuple[int | None, ...] | None = None
    model: Any = field(default=None, repr=False)
    batch_size: int = DEFAULT_BATCH_SIZE
    scan_report: dict[str, Any] = field(default_factory=dict, repr=False)

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """Query the suspect on a batch.

        Args:
            x: inputs with a leading batch axis; cast to float32.

        Returns:
            The suspect's outputs as a numpy array with the same leading axis; for a
            model with several outputs, a dict of such arrays by output name
            (``tafa.verify`` scores those that fit the owner's).

        Raises:
            tafa_tf.errors.SuspectShapeError: ``x`` does not fit the model's input shape.
        """
        from tafa_tf.errors import SuspectShapeError

        x = np.asarray(x, dtype=np.float32)
        if self.input_shape is not None and (
            x.ndim != len(self.input_shape) + 1
            or any(d is not None and d != s for d, s in zip(self.input_shape, x.shape[1:]))
        ):
            raise SuspectShapeError(
                f"The suspect {self.source} expects inputs of shape (batch, "
                f"{', '.join('None' if d is None else str(d) for d in self.input_shape)}). "
                f"Received: x.shape={x.shape}"
            )
        size = inference_batch_size(x.shape[1:], cap=self.batch_size)  # large images: smaller batches
        outputs = batched_outputs(self.predict, x, size)
        return outputs[0][1] if len(outputs) == 1 else dict(outputs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary of the suspect's provenance.

        Returns:
            A dict with source, format, commit_sha, revision, shapes and files.
        """
        return {
            "source": self.source,
            "format": self.format,
            "commit_sha": self.commit_sha,
            "revision": self.revision,
            "input_shape": _shape_list(self.input_shape),
            "output_shape": _shape_list(self.output_shape),
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "scan": dict(self.scan_report),
        }


def _shape_list(shape: tuple[int | None, ...] | None) -> list[int | None] | None:
    return None if shape is None else list(shape)
