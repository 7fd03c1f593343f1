"""The Fingerprint: boundary points of an owner's model, and the .tafa file that keeps them.

A .tafa file is a zip of .npy arrays plus ``manifest.json`` (format version, task,
domain, owner-model digest, synthesis settings, calibration, and the sha256, shape and
dtype of every array). It is read with ``allow_pickle=False``, written atomically
(temporary file, fsync, rename), and any file that is truncated, altered, of another
version or shaped unlike its manifest is refused with ``FingerprintFileError``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tafa_tf.domains import Domain, as_domain, default_domain
from tafa_tf.errors import FingerprintFileError, UnsupportedModelError
from tafa_tf.outputs import TASKS, canonical, model_outputs, output_kind

if TYPE_CHECKING:
    from tafa_tf.calibration import Calibration

logger = logging.getLogger("tafa_tf")

FORMAT_NAME = "tafa-fingerprint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAY_NAMES = ("x", "u", "delta", "kind", "targets", "y0", "yp", "ym", "kink")
OPTIONAL_ARRAYS = ("yb", "seeded")  # present only with a public base model / public samples
_ALLOWED_DTYPES = {"float32", "float64", "int8", "int32", "int64"}
MAX_FILE_BYTES = 1 << 31  # 2 GiB: far above any real fingerprint, refuses zip bombs
MAX_MANIFEST_BYTES = 1 << 22


@dataclass(frozen=True)
class Fingerprint:
    """A secret set of boundary points of the owner's model, with the owner's answers.

    Arrays (N points): ``x`` the points, ``u`` unit probe directions, ``delta`` probe
    steps, ``kind`` (0 one unit's boundary, 1 an intersection, 2 the decision
    boundary), ``targets`` the unit columns (or class pair) each point sits on,
    ``y0``/``yp``/``ym`` the owner's raw outputs at x, x+delta*u and x-delta*u, and
    ``kink`` the owner's canonical second difference there. Optional: ``yb`` the
    public base model's raw outputs at the 3N queries (``base=``), and ``seeded``
    (1 where a point started from a public sample, ``samples=``).

    Create one with ``tafa.fingerprint(model)``; keep the file secret: a pirate who
    knows the points can tune against them.
    """

    x: np.ndarray
    u: np.ndarray
    delta: np.ndarray
    kind: np.ndarray
    targets: np.ndarray
    y0: np.ndarray
    yp: np.ndarray
    ym: np.ndarray
    kink: np.ndarray
    task: str
    output_kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    domain: Domain
    owner: dict[str, Any] = field(default_factory=dict)
    synthesis: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    created: str = ""
    yb: np.ndarray | None = None
    seeded: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return int(len(self.x))

    @property
    def n_queries(self) -> int:
        """How many inputs verification asks a suspect about (3 per point)."""
        return 3 * self.n_points

    def queries(self) -> np.ndarray:
        """The inputs a suspect is asked about: x, then x + delta*u, then x - delta*u."""
        from tafa_tf.synthesis import probe_inputs

        return probe_inputs(self.x, self.u, self.delta)

    def array_names(self) -> tuple[str, ...]:
        """The arrays this fingerprint holds: the required ones and any optional present."""
        return ARRAY_NAMES + tuple(n for n in OPTIONAL_ARRAYS if getattr(self, n) is not None)

    def owner_outputs(self) -> np.ndarray:
        """The owner's raw outputs at ``queries()``, flattened per query."""
        return np.concatenate([self.y0, self.yp, self.ym])

    def with_calibration(self, calibration: Calibration | None) -> Fingerprint:
        """A copy whose verdicts use ``calibration``'s combiner and threshold."""
        return replace(self, calibration=calibration)

    def __repr__(self) -> str:
        cal = "calibrated" if self.calibration is not None else "uncalibrated"
        return (
            f"Fingerprint(task={self.task!r}, points={self.n_points}, input_shape={self.input_shape}, "
            f"domain={self.domain!r}, {cal})"
        )

    # -- file format -------------------------------------------------------------------------

    def manifest(self, arrays: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        from tafa_tf import __version__

        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "library": f"tafa-tf {__version__}",
            "created": self.created,
            "task": self.task,
            "output_kind": self.output_kind,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "domain": self.domain.to_dict(),
            "owner": self.owner,
            "synthesis": self.synthesis,
            "coverage": self.coverage,
            "calibration": self.calibration.to_dict() if self.calibration is not None else None,
            "arrays": arrays or {},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fingerprint to ``path`` atomically; an existing file is replaced whole.

        Returns:
            The path written.
        """
        path = Path(path)
        blobs: dict[str, bytes] = {}
        arrays: dict[str, dict[str, Any]] = {}
        for name in self.array_names():
            arr = np.ascontiguousarray(getattr(self, name))
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            blobs[name] = buf.getvalue()
            arrays[name] = {
                "sha256": hashlib.sha256(blobs[name]).hexdigest(),
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
            }
        manifest = json.dumps(self.manifest(arrays), indent=2, sort_keys=True).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                    zf.writestr(MANIFEST, manifest)
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

    @classmethod
    def load(cls, path: str | os.PathLike) -> Fingerprint:
        """Read and check a .tafa file.

        Raises:
            FingerprintFileError: missing, truncated, altered, of an unknown version,
                or with arrays unlike the manifest.
        """
        return _read(Path(path))


def _bad(path: Path, what: str) -> FingerprintFileError:
    return FingerprintFileError(
        f"{path} is not a usable tafa fingerprint: {what}. Re-create it with tafa.fingerprint(model).save(path) "
        "or restore it from your backup."
    )


def _read(path: Path) -> Fingerprint:
    if not path.is_file():
        raise FingerprintFileError(f"No fingerprint file at {path}. Received: path={str(path)!r}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _bad(path, f"the file is {path.stat().st_size} bytes, over the {MAX_FILE_BYTES} byte limit")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            names = ARRAY_NAMES + tuple(n for n in OPTIONAL_ARRAYS if f"{n}.npy" in infos)
            expected = {MANIFEST, *(f"{n}.npy" for n in names)}
            unknown = sorted(set(infos) - expected)
            if unknown:
                raise _bad(path, f"unexpected entries {unknown[:5]}")
            missing = sorted(expected - set(infos))
            if missing:
                raise _bad(path, f"missing entries {missing}")
            if infos[MANIFEST].file_size > MAX_MANIFEST_BYTES:
                raise _bad(path, "the manifest is implausibly large")
            total = sum(i.file_size for i in infos.values())
            if total > MAX_FILE_BYTES:
                raise _bad(path, f"its entries unpack to {total} bytes, over the {MAX_FILE_BYTES} byte limit")
            try:
                manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise _bad(path, f"the manifest is not valid JSON ({e})") from e
            _check_manifest(path, manifest)
            arrays = {}
            for name in names:
                spec = manifest["arrays"].get(name)
                if not isinstance(spec, dict):
                    raise _bad(path, f"array {name!r} is not described by the manifest")
                # Never inflate more than the manifest's shape and dtype account for.
                limit = _declared_nbytes(path, name, spec) + _NPY_HEADER_ROOM
                if infos[f"{name}.npy"].file_size > limit:
                    raise _bad(path, f"array {name!r} unpacks to more bytes than its manifest declares")
                blob = zf.read(f"{name}.npy")
                if len(blob) > limit:
                    raise _bad(path, f"array {name!r} unpacks to more bytes than its manifest declares")
                if hashlib.sha256(blob).hexdigest() != spec.get("sha256"):
                    raise _bad(path, f"array {name!r} does not match its sha256 (altered or corrupted)")
                arr = _load_npy(path, name, blob, spec)
                if str(arr.dtype) not in _ALLOWED_DTYPES or list(arr.shape) != list(spec.get("shape", [])):
                    raise _bad(path, f"array {name!r} is {arr.dtype}{list(arr.shape)}, unlike its manifest")
                arrays[name] = arr
    except FingerprintFileError:
        raise
    except Exception as e:  # a hostile zip can fail in zlib, zipfile or numpy: all mean "refused"
        raise _bad(path, f"{type(e).__name__}: {e}") from e
    try:
        fp = _from_manifest(manifest, arrays)
    except FingerprintFileError:
        raise
    except Exception as e:  # any malformed manifest value, e.g. Infinity in a shape
        raise _bad(path, f"the manifest is inconsistent ({type(e).__name__}: {e})") from e
    _check_consistency(path, fp)
    return fp


_NPY_HEADER_ROOM = 1 << 16  # .npy headers are padded to 64 bytes; 64 KiB is ample


def _declared_nbytes(path: Path, name: str, spec: dict[str, Any]) -> int:
    shape, dtype = spec.get("shape"), spec.get("dtype")
    if dtype not in _ALLOWED_DTYPES:
        raise _bad(path, f"array {name!r} has dtype {dtype!r}; allowed: {sorted(_ALLOWED_DTYPES)}")
    if not isinstance(shape, list) or len(shape) > 8 or any(
        not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape
    ):
        raise _bad(path, f"array {name!r} has a malformed shape {shape!r}")
    nbytes = int(np.dtype(dtype).itemsize)
    for d in shape:
        nbytes *= d
        if nbytes > MAX_FILE_BYTES:
            raise _bad(path, f"array {name!r} declares more than {MAX_FILE_BYTES} bytes")
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
        raise _bad(path, f"array {name!r} has an unreadable header ({type(e).__name__}: {e})") from e
    if dtype.hasobject or str(dtype) != spec["dtype"] or list(shape) != list(spec["shape"]):
        raise _bad(path, f"array {name!r} is {dtype}{list(shape)} in its header, unlike its manifest")
    if len(blob) - fh.tell() != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise _bad(path, f"array {name!r} is truncated or padded")
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except Exception as e:
        raise _bad(path, f"array {name!r} cannot be read ({type(e).__name__}: {e})") from e


def _check_manifest(path: Path, m: Any) -> None:
    if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
        raise _bad(path, "it has no tafa manifest")
    if m.get("version") != FORMAT_VERSION:
        raise _bad(
            path,
            f"format version {m.get('version')!r}, but this tafa-tf reads version {FORMAT_VERSION}; "
            "use the tafa-tf release that wrote it",
        )
    if m.get("task") not in TASKS:
        raise _bad(path, f"unknown task {m.get('task')!r}")
    arrays = m.get("arrays")
    if not isinstance(arrays, dict) or any(not isinstance(arrays.get(n), dict) for n in ARRAY_NAMES):
        raise _bad(path, "the manifest does not describe every array")


def _from_manifest(m: dict[str, Any], arrays: dict[str, np.ndarray]) -> Fingerprint:
    cal = m.get("calibration")
    if cal is not None:
        from tafa_tf.calibration import Calibration

        cal = Calibration.from_dict(cal)
    return Fingerprint(
        **arrays,
        task=str(m["task"]),
        output_kind=str(m["output_kind"]),
        input_shape=tuple(int(d) for d in m["input_shape"]),
        output_shape=tuple(int(d) for d in m["output_shape"]),
        domain=Domain.from_dict(m["domain"]),
        owner=dict(m.get("owner") or {}),
        synthesis=dict(m.get("synthesis") or {}),
        coverage=dict(m.get("coverage") or {}),
        calibration=cal,
        created=str(m.get("created", "")),
    )


def _check_consistency(path: Path, fp: Fingerprint) -> None:
    n = fp.n_points
    if n == 0:
        raise _bad(path, "it holds no points")
    out_dim = int(np.prod(fp.output_shape)) if fp.output_shape else 1
    expect = {
        "x": (n, *fp.input_shape), "u": (n, *fp.input_shape), "delta": (n,), "kind": (n,),
        "y0": (n, out_dim), "yp": (n, out_dim), "ym": (n, out_dim), "kink": (n, out_dim),
    }
    for name, shape in expect.items():
        if tuple(getattr(fp, name).shape) != shape:
            raise _bad(path, f"array {name!r} has shape {getattr(fp, name).shape}, expected {shape}")
    if fp.targets.ndim != 2 or len(fp.targets) != n:
        raise _bad(path, "array 'targets' has the wrong shape")
    if fp.yb is not None and tuple(fp.yb.shape) != (3 * n, out_dim):
        raise _bad(path, f"array 'yb' has shape {fp.yb.shape}, expected {(3 * n, out_dim)}")
    if fp.seeded is not None and (tuple(fp.seeded.shape) != (n,) or not np.isin(fp.seeded, (0, 1)).all()):
        raise _bad(path, f"array 'seeded' must hold {n} values of 0 or 1, one per point")
    for name in ("x", "u", "delta", "y0", "yp", "ym", "kink", *(["yb"] if fp.yb is not None else [])):
        if not np.all(np.isfinite(getattr(fp, name))):
            raise _bad(path, f"array {name!r} holds NaN or inf")
    if np.any(fp.delta <= 0):
        raise _bad(path, "a probe step is not positive")


# -- creating a fingerprint ------------------------------------------------------------------


def model_digest(model: Any) -> str:
    """sha256 over the model's weights, in order: names the exact owner model."""
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def infer_task(coverage_output_activation: str, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
    """Guess the task of a model (what task="auto" does; the choice is logged).

    softmax output -> classification; a single output -> regression; an output larger
    than the input (a latent decoded to an image) -> generation; any other vector
    output -> classification.
    """
    n_in, n_out = int(np.prod(input_shape)), int(np.prod(output_shape))
    if coverage_output_activation in ("softmax", "log_softmax"):
        return "classification"
    if n_out == 1:
        return "regression"
    if n_out > n_in or len(output_shape) > 1:
        return "generation"
    return "classification"


def fingerprint(
    model: Any,
    task: str = "auto",
    n: int = 128,
    domain: Any = None,
    seed: int = 0,
    *,
    samples: Any = None,
    base: Any = None,
    progress: bool = False,
    **synthesis_options: Any,
) -> Fingerprint:
    """Fingerprint a trained Keras ReLU model without any data.

    Args:
        model: a built Sequential or Functional keras.Model with ReLU-family units.
        task: "classification", "regression", "generation" or "auto" (inferred from
            the output layer; see ``infer_task``).
        n: number of boundary points; verification asks a suspect 3*n questions.
        domain: where inputs live: ``tafa.domains.Box(low, high)``,
            ``tafa.domains.Gaussian(std)`` or a (low, high) pair. None picks the
            documented default (``tafa.domains.default_domain``) and logs it.
        seed: makes the fingerprint reproducible.
        base: optional, recommended when ``model`` was fine-tuned from a public
            model: that base model. Points are then chosen where the owner departs
            from the base (``base_candidates`` candidates per point), the base's
            answers are stored, and verification asks whether the suspect sides
            with the owner or with the base there (``owner_side``, weighted most in
            the score): what tells a copy from another fine-tune of the same base.
        samples: optional: a few public inputs (never the training data needed). A
            share of the points (``sample_fraction``, 0.5) then starts from jittered
            samples, so they lie on boundaries near real inputs, where a copy distilled
            or tuned on data keeps the owner's behaviour best.
        progress: show a progress bar.
        **synthesis_options: fields of ``tafa_tf.synthesis.SynthesisConfig``.

    Returns:
        A Fingerprint; ``fp.save("owner.tafa")`` writes it.

    Raises:
        UnsupportedModelError: no ReLU unit, subclassed model, several inputs/outputs,
            integer inputs, or no boundary inside the domain.
        ValueError: a bad argument.

    Examples:
        >>> fp = tafa.fingerprint(model, task="classification", n=128,
        ...                       domain=tafa.domains.Box(0.0, 1.0))
        >>> fp.save("owner.tafa")
    """
    from tafa_tf.introspection import ReluNetwork
    from tafa_tf.synthesis import SynthesisConfig, kinks, probe_inputs, select, select_owner_specific, synthesize

    if task not in (*TASKS, "auto"):
        raise ValueError(f"task must be one of {(*TASKS, 'auto')}. Received: task={task!r}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= 100_000:
        raise ValueError(f"n must be a whole number from 1 to 100000. Received: n={n!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    unknown = set(synthesis_options) - set(SynthesisConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"Unknown synthesis options {sorted(unknown)}; see tafa_tf.synthesis.SynthesisConfig. "
            f"Received: {sorted(synthesis_options)}"
        )
    bar = _progress(progress, total=4, desc="fingerprint")
    net = ReluNetwork(model)
    bad = [w.name for w in model.weights if not np.all(np.isfinite(np.asarray(w)))]
    if bad:
        raise UnsupportedModelError(
            f"The model has NaN or inf weights, so it has no usable boundaries. Received: non-finite values in {bad[:5]}"
        )
    bar.update(1)
    if task == "auto":
        task = infer_task(net.coverage.output_activation, net.input_shape, net.output_shape)
        logger.info("task='auto' resolved to %r", task)
    if domain is None:
        domain = default_domain(task, net.input_shape)
        logger.warning("No domain given: using %r for %s inputs of shape %s (pass domain= to choose).",
                       domain, task, net.input_shape)
    domain = as_domain(domain)
    domain.sample(np.random.default_rng(0), (1, *net.input_shape))  # shape check, clear error

    config = SynthesisConfig(n=int(n), seed=int(seed), **synthesis_options)
    probe = np.asarray(model(domain.sample(np.random.default_rng(seed), (8, *net.input_shape)), training=False))
    out_kind = output_kind(probe, task, int(np.prod(net.output_shape)))
    if out_kind == "labels":
        raise UnsupportedModelError("The owner's model must output scores or probabilities, not labels.")
    _check_base(base, net)
    # With a base, synthesize more candidates and keep those where the owner departs from it.
    pool_config = config if base is None else replace(config, oversample=config.oversample * config.base_candidates)
    points = synthesize(net, domain, task, out_kind, pool_config, samples=_check_samples(samples, net.input_shape))
    bar.update(1)

    queries = probe_inputs(points.x, points.u, points.delta)
    raw = model_outputs(model, queries).reshape(len(queries), -1).astype("float64")
    raw_base = None if base is None else model_outputs(base, queries).reshape(len(queries), -1).astype("float64")
    m = len(points.x)
    y0, yp, ym = raw[:m], raw[m : 2 * m], raw[2 * m :]
    canon = [canonical(y, out_kind) for y in (y0, yp, ym)]
    kink = kinks(*canon, points.delta.astype("float64"))
    slope = np.linalg.norm(canon[1] - canon[2], axis=1) / (2 * points.delta)
    kink_norm = np.linalg.norm(kink, axis=1)
    # A bend that the rest of the network silences leaves no trace in the output: drop it.
    audible = (kink_norm > 1e-3 * np.maximum(slope, 1e-12)) & (kink_norm > 1e-7)
    audible |= points.kind == 2  # decision points are kept for their label flips
    bar.update(1)
    if raw_base is None:
        keep = select(points, audible, int(n), np.random.default_rng(seed + 1))
    else:
        owner_canon, base_canon = np.concatenate(canon), canonical(raw_base, out_kind)
        keep = select_owner_specific(owner_canon, base_canon, audible, int(n), task,
                                     groups=points.seeded, group_share=config.sample_fraction)
        if np.allclose(owner_canon, base_canon, rtol=0.0, atol=1e-6):
            logger.warning("The base answers exactly as the owner at every candidate point, so owner_side will "
                           "carry no evidence. Check that base= is the public model you fine-tuned, not the owner.")
    if len(keep) < max(8, int(n) // 4):
        raise UnsupportedModelError(
            f"Only {len(keep)} usable boundary points of {n} wanted were found in {domain!r} "
            f"(synthesis: {points.stats}). Check that the domain is where the model works, or lower n."
        )
    if len(keep) < n:
        logger.warning("Only %d of the %d points asked for are usable; the fingerprint has %d.", len(keep), n, len(keep))
    bar.update(1)
    bar.close()
    stats = dict(points.stats, silent_dropped=int((~audible).sum()), kept=int(len(keep)))
    return Fingerprint(
        x=points.x[keep].astype("float32"),
        u=points.u[keep].astype("float32"),
        delta=points.delta[keep].astype("float32"),
        kind=points.kind[keep].astype("int8"),
        targets=points.targets[keep].astype("int32"),
        y0=y0[keep].astype("float32"),
        yp=yp[keep].astype("float32"),
        ym=ym[keep].astype("float32"),
        yb=None if raw_base is None else raw_base[np.concatenate([keep, m + keep, 2 * m + keep])].astype("float32"),
        seeded=None if points.seeded is None else points.seeded[keep].astype("int8"),
        kink=kink[keep].astype("float32"),
        task=task,
        output_kind=out_kind,
        input_shape=net.input_shape,
        output_shape=net.output_shape,
        domain=domain,
        owner={"name": model.name, "digest": model_digest(model), "params": int(model.count_params()),
               **({"base_digest": model_digest(base)} if base is not None else {})},
        synthesis={**config.to_dict(), "stats": stats},
        coverage=net.coverage.to_dict(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def _check_base(base: Any, net: Any) -> None:
    """Refuse a base that is not a Keras model taking and giving the owner's shapes."""
    if base is None:
        return
    import keras

    if not isinstance(base, keras.Model):
        raise ValueError(f"base must be a keras.Model (the public model you fine-tuned). Received: {type(base).__name__}")
    shapes = (tuple(base.inputs[0].shape[1:]), tuple(base.outputs[0].shape[1:])) if base.inputs else None
    if shapes != (net.input_shape, net.output_shape):
        raise ValueError(
            f"base must take and give the owner's shapes {net.input_shape} -> {net.output_shape}. "
            f"Received: base with shapes {shapes}"
        )


def _check_samples(samples: Any, input_shape: tuple[int, ...]) -> np.ndarray | None:
    if samples is None:
        return None
    try:
        arr = np.asarray(samples, dtype="float32")
    except (TypeError, ValueError) as e:
        raise ValueError(f"samples must be a numeric array of inputs. Received: {type(samples).__name__}") from e
    if arr.ndim != len(input_shape) + 1 or tuple(arr.shape[1:]) != tuple(input_shape) or len(arr) == 0:
        raise ValueError(
            f"samples must be a non-empty batch of inputs of shape (k, *{tuple(input_shape)}). "
            f"Received: samples of shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("samples must be finite. Received: samples with NaN or inf")
    return arr


class _NoBar:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def _progress(enabled: bool, **kwargs: Any) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


__all__ = ["Fingerprint", "fingerprint", "model_digest", "infer_task", "UnsupportedModelError"]
