"""One unit of scan work: fetch and load one suspect once, verify it against every fingerprint.

This is what every scan engine runs (a thread, a process, a Ray task): it must be
picklable, must never raise for a bad suspect, and answers one :class:`ScanEntry`
per fingerprint. Fingerprints whose input or output shape does not fit the suspect
get a ``"not_applicable"`` entry that says why; a suspect that cannot be fetched,
loaded or queried gets an ``"error"`` entry per fingerprint with the same reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from adapters.hub import fetch, is_hub_ref, parse_hub_ref
from adapters.load import DEFAULT_MAX_BYTES, load_suspect

STATUS_ERROR = "error"
STATUS_NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class ScanEntry:
    """The outcome of one (fingerprint, suspect) pair.

    Attributes:
        ref: the reference scanned.
        status: the verification status (``"ok"``, ``"non_finite"``,
            ``"nondeterministic"``), ``"not_applicable"`` when the fingerprint's input
            or output shape does not fit the suspect, or ``"error"`` if the suspect
            could not be fetched, loaded or queried.
        score: the verification score (None on error or when not finite).
        pirated: the verdict (None on error).
        features: the verification features.
        queries: inputs the suspect was asked about.
        commit_sha: the commit a Hub ref resolved to.
        format: the model format found.
        error_type: the exception class on error (e.g. ``"UnsafeModelError"``).
        error: the error message on error, or why the pair was not applicable.
        seconds: wall time spent on this suspect (fetch + load + this verification).
        fingerprint: the sha256 of the fingerprint ("" for a single unnamed one).
        fingerprint_name: a readable name for the fingerprint (its file name).
        content_sha: what was verified: the Hub commit sha, or a sha256 over the
            local model files ("" when nothing was loaded).
        load_id: one id per load of the suspect, shared by its entries of one pass.
        fetch_seconds: time spent downloading (Hub refs).
        load_seconds: time spent checking and loading the model.
        verify_seconds: time spent verifying against this fingerprint.
    """

    ref: str
    status: str
    score: float | None = None
    pirated: bool | None = None
    features: dict[str, float] = field(default_factory=dict)
    queries: int = 0
    commit_sha: str | None = None
    format: str | None = None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0
    fingerprint: str = ""
    fingerprint_name: str = ""
    content_sha: str = ""
    load_id: str = ""
    fetch_seconds: float = 0.0
    load_seconds: float = 0.0
    verify_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the suspect was loaded and scored."""
        return self.status not in (STATUS_ERROR, STATUS_NOT_APPLICABLE) and self.score is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def fingerprint_sha256(fp: Any) -> str:
    """A stable sha256 of a fingerprint's manifest and arrays (the same for a saved and loaded copy).

    Args:
        fp: a ``tafa_tf.Fingerprint``.

    Returns:
        64 hex digits.
    """
    import numpy as np

    digest = hashlib.sha256()
    manifest = {k: v for k, v in fp.manifest().items() if k != "library"}
    digest.update(json.dumps(manifest, sort_keys=True, default=str).encode())
    for name in fp.array_names():
        array = np.ascontiguousarray(getattr(fp, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ScanJob:
    """What every suspect of a scan is checked against, and how: picklable, sent to workers.

    Calling the job with a ref (and optionally the sha256s of the only fingerprints
    still to check) runs :func:`scan_suspect`.

    Attributes:
        fingerprints: ``(sha256, name, Fingerprint)`` triples.
        timeout: seconds each verification may take.
        load_options: keyword arguments for :func:`adapters.load_suspect`.
    """

    fingerprints: tuple[tuple[str, str, Any], ...]
    timeout: float | None = None
    load_options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, ref: str, only: Sequence[str] | None = None) -> list[ScanEntry]:
        job = self if only is None else replace(self, fingerprints=tuple(t for t in self.fingerprints if t[0] in only))
        return scan_suspect(job, ref)

    @property
    def shas(self) -> tuple[str, ...]:
        """The fingerprints' sha256s, in order."""
        return tuple(t[0] for t in self.fingerprints)


def scan_suspect(job: ScanJob, ref: str) -> list[ScanEntry]:
    """Fetch and load ``ref`` once and verify it against each of the job's fingerprints.

    Args:
        job: the fingerprints and options.
        ref: a path or ``hf://`` ref.

    Returns:
        One ScanEntry per fingerprint, in the job's order; never raises for a bad suspect.
    """
    base = {"ref": str(ref), "load_id": uuid.uuid4().hex}
    start = time.monotonic()
    suspect = None
    try:
        load_ref, base["fetch_seconds"] = _prefetch(ref, job.load_options)
        loaded_at = time.monotonic()
        suspect = load_suspect(load_ref, **{"progress": False, **job.load_options})
        base["load_seconds"] = time.monotonic() - loaded_at
    except Exception as e:  # noqa: BLE001 - one suspect's failure must not stop the scan
        base["seconds"] = time.monotonic() - start
        return [_failed(base, fp_sha, name, suspect, e) for fp_sha, name, _ in job.fingerprints]
    base.update(
        commit_sha=suspect.commit_sha, format=suspect.format, content_sha=content_sha(suspect)
    )
    loaded = time.monotonic() - start
    return [
        _verify_one(base, fp_sha, name, fp, suspect, job.timeout, loaded)
        for fp_sha, name, fp in job.fingerprints
    ]


def _prefetch(ref: str, load_options: dict[str, Any]) -> tuple[str, float]:
    """Download a Hub suspect first (timed apart from loading) and pin it to the commit found."""
    if not (isinstance(ref, str) and is_hub_ref(ref)):
        return ref, 0.0
    start = time.monotonic()
    hub_ref = parse_hub_ref(ref)
    snapshot = fetch(
        hub_ref,
        max_bytes=load_options.get("max_bytes", DEFAULT_MAX_BYTES),
        token=load_options.get("token"),
        filename=load_options.get("filename"),
        progress=False,
    )
    return f"hf://{hub_ref.repo_id}@{snapshot.commit_sha}", time.monotonic() - start


def content_sha(suspect: Any) -> str:
    """The Hub commit of a suspect, or a sha256 over its files' paths and sha256s."""
    if suspect.commit_sha:
        return str(suspect.commit_sha)
    digest = hashlib.sha256()
    for record in sorted(suspect.files, key=lambda r: r.path):
        digest.update(f"{record.path}\0{record.sha256}\n".encode())
    return digest.hexdigest()


def _failed(base: dict[str, Any], fp_sha: str, name: str, suspect: Any, e: Exception) -> ScanEntry:
    return ScanEntry(
        **base,
        status=STATUS_ERROR,
        fingerprint=fp_sha,
        fingerprint_name=name,
        commit_sha=getattr(suspect, "commit_sha", None),
        format=getattr(suspect, "format", None),
        error_type=type(e).__name__,
        error=str(e).strip() or type(e).__name__,
    )


def shape_mismatch(fp: Any, suspect: Any) -> str | None:
    """Why ``fp`` cannot be verified on ``suspect`` (input or output shape), or None if it fits.

    Unknown dimensions fit anything; verification checks them again on the answers. An
    input fits where verification can give the owner's queries to it
    (``tafa_tf.asking.could_take``: in another layout, or to the suspect rebuilt at their
    size, which verification may still find it cannot be). An output of another size
    fits a fingerprint that keeps the owner's penultimate features: the suspect may be
    the owner's network under a new output layer, and verification reads it so
    (``tafa_tf.verification``, mode "new_head").
    """
    from tafa_tf.asking import could_take

    checks = [("input", suspect.input_shape, fp.input_shape)]
    if getattr(fp, "features", None) is None:
        checks.append(("output", suspect.output_shape, fp.output_shape))
    for what, theirs, ours in checks:
        if theirs is None or any(d is None for d in theirs):
            continue
        fits = could_take(tuple(ours), tuple(theirs)) if what == "input" else math.prod(theirs) == math.prod(ours)
        if not fits:
            return (
                f"The suspect's {what} shape {tuple(theirs)} does not fit the fingerprint's "
                f"{tuple(ours)}; this fingerprint is for another kind of model. "
                f"Received: {what}_shape={tuple(theirs)}"
            )
    return None


def _verify_one(
    base: dict[str, Any], fp_sha: str, name: str, fp: Any, suspect: Any, timeout: float | None, loaded: float
) -> ScanEntry:
    import tafa_tf
    from tafa_tf.errors import SuspectShapeError

    entry = ScanEntry(**base, status=STATUS_NOT_APPLICABLE, fingerprint=fp_sha, fingerprint_name=name)
    start = time.monotonic()
    mismatch = shape_mismatch(fp, suspect)
    if mismatch:
        return replace(entry, error_type=SuspectShapeError.__name__, error=mismatch, seconds=loaded)
    try:
        report = tafa_tf.verify(fp, suspect, timeout=timeout)
    except SuspectShapeError as e:
        return replace(entry, error_type=type(e).__name__, error=str(e), seconds=time.monotonic() - start + loaded)
    except Exception as e:  # noqa: BLE001 - one suspect's failure must not stop the scan
        failed = _failed(base, fp_sha, name, suspect, e)
        return replace(failed, verify_seconds=time.monotonic() - start, seconds=time.monotonic() - start + loaded)
    spent = time.monotonic() - start
    score = float(report.score)
    return replace(
        entry,
        status=report.status,
        score=score if math.isfinite(score) else None,
        pirated=report.pirated,
        features={k: float(v) for k, v in report.features.items()},
        queries=int(report.queries),
        verify_seconds=spent,
        seconds=loaded + spent,
    )


def job_for(
    fingerprints: Sequence[Any], names: Sequence[str] | None, timeout: float | None, load_options: dict[str, Any]
) -> ScanJob:
    """A ScanJob over ``fingerprints`` (named ``names``, default ``fp1``, ``fp2`` ...)."""
    if "revision" in load_options:
        raise ValueError(
            "A scan takes each suspect's revision from its ref (hf://ORG/NAME@REVISION), not "
            f"revision=. Received: revision={load_options['revision']!r}"
        )
    names = list(names) if names is not None else [f"fp{i + 1}" for i in range(len(fingerprints))]
    if len(names) != len(fingerprints):
        raise ValueError(
            f"fingerprint_names must name each fingerprint once. Received: {len(names)} names "
            f"for {len(fingerprints)} fingerprints"
        )
    triples = tuple((fingerprint_sha256(fp), os.fspath(n), fp) for fp, n in zip(fingerprints, names))
    shas = [t[0] for t in triples]
    if len(set(shas)) != len(shas):
        raise ValueError("The same fingerprint was given twice; give each once. Received: duplicate fingerprints")
    return ScanJob(triples, timeout, dict(load_options))
