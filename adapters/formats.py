"""Which files of a directory or Hub repository make up a loadable model.

The same rules apply to a local folder and to a Hub repository's file list, so a
model found on disk is found the same way on the Hub, and only the files its
format needs are downloaded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.errors import NoModelError

#: Formats in order of preference when a folder holds several models at one depth.
FORMATS = ("keras", "keras_folder", "h5", "saved_model", "tflite")

_SAVED_MODEL_PARTS = ("saved_model.pb", "fingerprint.pb")
_SAVED_MODEL_DIRS = ("variables/", "assets/")
_KERAS_FOLDER_PARTS = ("config.json", "model.weights.h5", "metadata.json")


@dataclass(frozen=True)
class ModelLayout:
    """A model found among files.

    Attributes:
        format: one of ``FORMATS``.
        root: the model's path relative to the base: the file for ``keras``, ``h5``
            and ``tflite``, the folder for ``keras_folder`` and ``saved_model`` ("" = base).
        files: every relative path the format needs (what to download and hash).
    """

    format: str
    root: str
    files: tuple[str, ...]


def find_model(paths: Iterable[str], *, where: str, filename: str | None = None) -> ModelLayout:
    """Pick the model among relative file paths.

    Candidates nearer the top win; at one depth ``FORMATS`` order decides, then a
    file or folder named ``model`` wins. Two candidates still tied are ambiguous.

    Args:
        paths: relative POSIX paths of every file (a repo listing or a folder walk).
        where: what the paths belong to, for messages.
        filename: restrict the search to this file or folder (relative path).

    Returns:
        The chosen ModelLayout.

    Raises:
        NoModelError: no candidate, or several equally good ones.
    """
    all_paths = sorted({p.strip("/") for p in paths})
    scoped = all_paths
    if filename:
        prefix = filename.strip("/")
        scoped = [p for p in all_paths if p == prefix or p.startswith(prefix + "/")]
    candidates = _candidates(scoped)
    if not candidates:
        shown = all_paths[:20] + (["..."] if len(all_paths) > 20 else [])
        raise NoModelError(
            f"No loadable model in {where}: expected a .keras file, a Keras folder "
            "(config.json + model.weights.h5), a full-model .h5 file, a SavedModel "
            "(saved_model.pb + variables/) or a TensorFlow Lite .tflite file"
            + (f" under {filename!r}" if filename else "")
            + f". Received: files={shown}"
        )
    ranked = sorted(candidates, key=_rank)
    if len(ranked) > 1 and _rank(ranked[0])[:3] == _rank(ranked[1])[:3]:
        raise NoModelError(
            f"Several models in {where} are equally likely; pass filename= to choose one. "
            f"Received: candidates={[c.root for c in ranked if _rank(c)[:3] == _rank(ranked[0])[:3]]}"
        )
    return ranked[0]


def _rank(layout: ModelLayout) -> tuple[int, int, int, str]:
    is_folder = layout.format in ("keras_folder", "saved_model")
    depth = layout.root.count("/") + (1 if layout.root and is_folder else 0)
    stem = posixpath.basename(layout.root).split(".")[0]
    return (depth, FORMATS.index(layout.format), 0 if stem in ("", "model") else 1, layout.root)


def _candidates(paths: list[str]) -> list[ModelLayout]:
    present = set(paths)
    found = []
    for path in paths:
        folder, name = posixpath.split(path)
        base = folder + "/" if folder else ""
        if name == "saved_model.pb":
            files = [base + p for p in _SAVED_MODEL_PARTS if base + p in present]
            files += [p for p in paths if any(p.startswith(base + d) for d in _SAVED_MODEL_DIRS)]
            found.append(ModelLayout("saved_model", folder, tuple(sorted(files))))
        elif name == "config.json" and base + "model.weights.h5" in present:
            files = [base + p for p in _KERAS_FOLDER_PARTS if base + p in present]
            found.append(ModelLayout("keras_folder", folder, tuple(files)))
        elif name.endswith(".keras"):
            found.append(ModelLayout("keras", path, (path,)))
        elif name.endswith(".tflite"):
            found.append(ModelLayout("tflite", path, (path,)))
        elif (
            name.endswith(".h5")
            and not name.endswith(".weights.h5")
            and not _in_saved_model(path, present)
        ):
            found.append(ModelLayout("h5", path, (path,)))
    return found


def _in_saved_model(path: str, present: set[str]) -> bool:
    parts = path.split("/")
    return any(
        "/".join(parts[:i] + ["saved_model.pb"]).lstrip("/") in present for i in range(len(parts))
    )
