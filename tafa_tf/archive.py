"""The .tafa file format: a zip of .npy arrays plus ``manifest.json``, read with suspicion.

The manifest holds the format name and version, the fingerprint's metadata, and the
sha256, shape and dtype of every array. Writing is atomic (temporary file, fsync,
rename). Reading never unpickles (``allow_pickle=False``), never inflates more bytes
than the manifest's shapes account for, and refuses any file that is truncated,
altered, of another version or shaped unlike its manifest with ``FingerprintFileError``.
This module knows the container, not what a fingerprint means: ``tafa_tf.record``
turns the arrays and manifest into a ``Fingerprint`` and checks their consistency.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf.errors import FingerprintFileError

FORMAT_NAME = "tafa-fingerprint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ALLOWED_DTYPES = {"float32", "float64", "int8", "int32", "int64"}
MAX_FILE_BYTES = 1 << 31  # 2 GiB: far above any real fingerprint, refuses zip bombs
MAX_MANIFEST_BYTES = 1 << 22
_NPY_HEADER_ROOM = 1 << 16  # .npy headers are padded to 64 bytes; 64 KiB is ample


def bad_file(path: Path, what: str) -> FingerprintFileError:
    """The error for a file that cannot be used, saying what is wrong and what to do."""
    return FingerprintFileError(
        f"{path} is not a usable tafa fingerprint: {what}. Re-create it with tafa.fingerprint(model).save(path) "
        "or restore it from your backup."
    )


def _npy_blob(arr: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    arr = np.ascontiguousarray(arr)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    blob = buf.getvalue()
    return blob, {"sha256": hashlib.sha256(blob).hexdigest(), "shape": list(arr.shape), "dtype": str(arr.dtype)}


def write_archive(path: str | os.PathLike, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``manifest`` (plus format, version and array specs) to ``path`` atomically."""
    path = Path(path)
    blobs, specs = {}, {}
    for name, arr in arrays.items():
        blobs[name], specs[name] = _npy_blob(arr)
    full = {**manifest, "format": FORMAT_NAME, "version": FORMAT_VERSION, "arrays": specs}
    text = json.dumps(full, indent=2, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, text)
                for name, blob in blobs.items():
                    zf.writestr(f"{name}.npy", blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_archive(
    path: str | os.PathLike, required: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a .tafa file: its manifest and every array it holds.

    Raises:
        FingerprintFileError: missing, too large, truncated, altered, of an unknown
            version, or with arrays unlike the manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise FingerprintFileError(f"No fingerprint file at {path}. Received: path={str(path)!r}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise bad_file(path, f"the file is {path.stat().st_size} bytes, over the {MAX_FILE_BYTES} byte limit")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            names = tuple(required) + tuple(n for n in optional if f"{n}.npy" in infos)
            _check_entries(path, infos, names)
            manifest = _read_manifest(path, zf, required)
            arrays = {name: _read_array(path, zf, infos, name, manifest["arrays"].get(name)) for name in names}
    except FingerprintFileError:
        raise
    except Exception as e:  # a hostile zip can fail in zlib, zipfile or numpy: all mean "refused"
        raise bad_file(path, f"{type(e).__name__}: {e}") from e
    return manifest, arrays


def _check_entries(path: Path, infos: dict[str, zipfile.ZipInfo], names: Sequence[str]) -> None:
    expected = {MANIFEST, *(f"{n}.npy" for n in names)}
    unknown = sorted(set(infos) - expected)
    if unknown:
        raise bad_file(path, f"unexpected entries {unknown[:5]}")
    missing = sorted(expected - set(infos))
    if missing:
        raise bad_file(path, f"missing entries {missing}")
    if infos[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise bad_file(path, "the manifest is implausibly large")
    total = sum(i.file_size for i in infos.values())
    if total > MAX_FILE_BYTES:
        raise bad_file(path, f"its entries unpack to {total} bytes, over the {MAX_FILE_BYTES} byte limit")


def _read_manifest(path: Path, zf: zipfile.ZipFile, required: Sequence[str]) -> dict[str, Any]:
    try:
        m = json.loads(zf.read(MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_file(path, f"the manifest is not valid JSON ({e})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise bad_file(path, "it has no tafa manifest")
    if m.get("version") != FORMAT_VERSION:
        raise bad_file(
            path,
            f"format version {m.get('version')!r}, but this tafa-tf reads version {FORMAT_VERSION}; "
            "use the tafa-tf release that wrote it",
        )
    arrays = m.get("arrays")
    if not isinstance(arrays, dict) or any(not isinstance(arrays.get(n), dict) for n in required):
        raise bad_file(path, "the manifest does not describe every array")
    return m


def _read_array(path: Path, zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str, spec: Any) -> np.ndarray:
    if not isinstance(spec, dict):
        raise bad_file(path, f"array {name!r} is not described by the manifest")
    # Never inflate more than the manifest's shape and dtype account for.
    limit = _declared_nbytes(path, name, spec) + _NPY_HEADER_ROOM
    if infos[f"{name}.npy"].file_size > limit:
        raise bad_file(path, f"array {name!r} unpacks to more bytes than its manifest declares")
    blob = zf.read(f"{name}.npy")
    if len(blob) > limit:
        raise bad_file(path, f"array {name!r} unpacks to more bytes than its manifest declares")
    if hashlib.sha256(blob).hexdigest() != spec.get("sha256"):
        raise bad_file(path, f"array {name!r} does not match its sha256 (altered or corrupted)")
    arr = _load_npy(path, name, blob, spec)
    if str(arr.dtype) not in ALLOWED_DTYPES or list(arr.shape) != list(spec.get("shape", [])):
        raise bad_file(path, f"array {name!r} is {arr.dtype}{list(arr.shape)}, unlike its manifest")
    return arr


def _declared_nbytes(path: Path, name: str, spec: dict[str, Any]) -> int:
    shape, dtype = spec.get("shape"), spec.get("dtype")
    if dtype not in ALLOWED_DTYPES:
        raise bad_file(path, f"array {name!r} has dtype {dtype!r}; allowed: {sorted(ALLOWED_DTYPES)}")
    if not isinstance(shape, list) or len(shape) > 8 or any(
        not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape
    ):
        raise bad_file(path, f"array {name!r} has a malformed shape {shape!r}")
    nbytes = int(np.dtype(dtype).itemsize)
    for d in shape:
        nbytes *= d
        if nbytes > MAX_FILE_BYTES:
            raise bad_file(path, f"array {name!r} declares more than {MAX_FILE_BYTES} bytes")
    return nbytes


def _load_npy(path: Path, name: str, blob: bytes, spec: dict[str, Any]) -> np.ndarray:
    """Parse one .npy entry after checking that its own header agrees with the manifest."""
    try:
        fh = io.BytesIO(blob)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as e:  # numpy parses headers with tokenize/ast: many ways to fail
        raise bad_file(path, f"array {name!r} has an unreadable header ({type(e).__name__}: {e})") from e
    if dtype.hasobject or str(dtype) != spec["dtype"] or list(shape) != list(spec["shape"]):
        raise bad_file(path, f"array {name!r} is {dtype}{list(shape)} in its header, unlike its manifest")
    if len(blob) - fh.tell() != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise bad_file(path, f"array {name!r} is truncated or padded")
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except Exception as e:
        raise bad_file(path, f"array {name!r} cannot be read ({type(e).__name__}: {e})") from e


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "MAX_FILE_BYTES", "bad_file", "read_archive", "write_archive"]
