"""scan: one or more fingerprints against many suspects (a list of refs or a Hub listing).

Each suspect is fetched and loaded once and verified against every fingerprint whose
input and output shapes fit it (the others get a "not_applicable" entry saying why).
An engine runs that work: :class:`adapters.engines.LocalEngine` (a bounded pool of
threads or processes, the default) or :class:`adapters.ray_engine.RayEngine` (one Ray
task per suspect). Each suspect's entries are handed over as soon as they are ready
(``iter_scan`` yields them, ``scan`` passes them to ``on_result``) and, with a
``store``, written to the SQLite scan store (:mod:`adapters.store`) in one
transaction, so a rerun with the same store skips every pair already done. A suspect
that fails to fetch, load or answer becomes an "error" entry with its reason and
never stops the others. The finished ScanResult ranks the entries by score and
renders as a table or JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.engines import Engine, LocalEngine
from adapters.errors import HubConnectionError, first_line
from adapters.scan_task import STATUS_ERROR, STATUS_NOT_APPLICABLE, ScanEntry, fingerprint_sha256, job_for
from adapters.store import ScanStore
from tafa_tf.progress import progress_bar
from tafa_tf.verdicts import verdict_word

__all__ = [
    "STATUS_ERROR", "STATUS_NOT_APPLICABLE", "HubQuery", "ScanEntry", "ScanResult", "iter_scan",
    "list_hub_refs", "make_engine", "scan",
]


@dataclass(frozen=True)
class HubQuery:
    """A Hub model listing to scan (``HfApi.list_models`` filters).

    Attributes:
        library: a library tag, e.g. ``"keras"`` or ``"tf-keras"``.
        tags: more tags every model must carry.
        search: a substring of the repository name.
        author: a user or organization.
        limit: the most repositories to list.
    """

    library: str | None = None
    tags: tuple[str, ...] = ()
    search: str | None = None
    author: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class ScanResult:
    """Every (fingerprint, suspect) outcome, ranked: scored pairs by score, then the others.

    Attributes:
        entries: the ranked entries.
        seconds: wall time of the whole scan.
    """

    entries: tuple[ScanEntry, ...]
    seconds: float = 0.0

    @property
    def errors(self) -> tuple[ScanEntry, ...]:
        """The entries whose suspect could not be fetched, loaded or queried."""
        return tuple(e for e in self.entries if e.status == STATUS_ERROR)

    @property
    def not_applicable(self) -> tuple[ScanEntry, ...]:
        """The pairs whose shapes do not fit (the fingerprint is for another kind of model)."""
        return tuple(e for e in self.entries if e.status == STATUS_NOT_APPLICABLE)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: counts and the ranked entries."""
        return {
            "scanned": len({e.ref for e in self.entries}),
            "results": len(self.entries),
            "pirated": sum(1 for e in self.entries if e.pirated),
            "errors": len(self.errors),
            "not_applicable": len(self.not_applicable),
            "seconds": self.seconds,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """The ranked result as a plain-text table, one pair a line (a fingerprint column if several)."""
        several = len({e.fingerprint for e in self.entries}) > 1
        header = ("#", "score", "verdict", "status", *(("fingerprint",) if several else ()), "suspect", "commit",
                  "note")
        rows = [header]
        for rank, e in enumerate(self.entries, 1):
            note = f"{e.error_type}: {e.error}" if e.error_type else (e.format or "")
            rows.append((
                str(rank),
                "-" if e.score is None else f"{e.score:.3f}",
                verdict_word(e.pirated),
                e.status,
                *((e.fingerprint_name or e.fingerprint[:12],) if several else ()),
                e.ref,
                (e.commit_sha or "-")[:10],
                " ".join(note.split())[:100] + ("..." if len(" ".join(note.split())) > 100 else ""),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
        return "\n".join(line.rstrip() for line in lines)


def list_hub_refs(query: HubQuery, *, token: str | None = None, api: Any = None) -> list[str]:
    """The ``hf://`` refs of the Hub's models that match ``query``.

    Args:
        query: the listing filters.
        token: a Hub token (default: HF_TOKEN).
        api: an ``HfApi``-like object (default: one for HF_ENDPOINT).

    Returns:
        ``hf://ORG/NAME`` refs, in the Hub's order.

    Raises:
        adapters.errors.HubConnectionError: the Hub cannot be listed.
    """
    from adapters.hub import HubRef, hub_settings, translate_hub_errors

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=hub_settings()["endpoint"], token=token)  # type: ignore[arg-type]
    filters = [t for t in (query.library, *query.tags) if t]
    with translate_hub_errors(HubRef("*/*")):
        try:
            models = api.list_models(
                filter=filters or None, search=query.search, author=query.author, limit=query.limit
            )
            return [f"hf://{m.id}" for m in models]
        except ValueError as e:  # not JSON: the server does not implement the listing
            raise HubConnectionError(
                "The Hub server did not answer the model listing (some mirrors, such as "
                "olah, do not implement it); pass a list of hf:// refs instead. "
                f"Received: {type(e).__name__}: {first_line(e)}"
            ) from e




def make_engine(engine: str | Engine | None = None, *, max_workers: int = 4, address: str | None = None) -> Engine:
    """An engine by name: ``"threads"`` (default, also ``"local"``), ``"processes"`` or ``"ray"``.

    Args:
        engine: a name, or an engine object (returned as is).
        max_workers: suspects at once for the local engines.
        address: the Ray cluster to join (``"auto"``, ``"ray://HOST:10001"``); only for ``"ray"``.

    Raises:
        ValueError: an unknown name, or an address without the Ray engine.
        adapters.errors.MissingDependencyError: ``"ray"`` without Ray installed.
    """
    if engine is not None and not isinstance(engine, str):
        return engine
    name = engine or "threads"
    if address is not None and name != "ray":
        raise ValueError(f"address= is for the Ray engine only. Received: engine={name!r}, address={address!r}")
    if name in ("threads", "local"):
        return LocalEngine(max_workers)
    if name == "processes":
        return LocalEngine(max_workers, processes=True)
    if name == "ray":
        from adapters.ray_engine import RayEngine, import_ray

        import_ray()
        return RayEngine(address)
    raise ValueError(f"engine must be 'threads', 'processes' or 'ray'. Received: engine={engine!r}")


def _refs_to_scan(refs: Iterable[str] | HubQuery, token: str | None) -> list[str]:
    if isinstance(refs, str):
        raise TypeError(f"refs must be a list of references, not one string. Received: refs={refs!r}")
    if isinstance(refs, HubQuery):
        return list_hub_refs(refs, token=token)
    return list(dict.fromkeys(str(r) for r in refs))


def _fingerprint_list(fps: Any) -> list[Any]:
    from tafa_tf.record import Fingerprint

    listed = [fps] if isinstance(fps, Fingerprint) else list(fps)
    bad = [type(f).__name__ for f in listed if not isinstance(f, Fingerprint)]
    if not listed or bad:
        raise TypeError(
            "scan needs a tafa.Fingerprint or a list of them. "
            f"Received: {type(fps).__name__}" + (f" holding {bad}" if bad else " (empty)")
        )
    return listed


def iter_scan(
    fps: Any,
    refs: Iterable[str] | HubQuery,
    *,
    max_workers: int = 4,
    progress: bool = True,
    timeout: float | None = None,
    store: ScanStore | str | os.PathLike[str] | None = None,
    engine: str | Engine | None = None,
    retry_errors: bool = False,
    fingerprint_names: Sequence[str] | None = None,
    **load_options: Any,
) -> Iterator[ScanEntry]:
    """Verify every fingerprint against every suspect, yielding entries as each suspect is done.

    Args:
        fps: the owner's ``tafa_tf.Fingerprint``, or a list of them.
        refs: suspect references (paths or ``hf://`` refs), or a HubQuery to list.
        max_workers: how many suspects the local engine loads and queries at once.
        progress: show a tqdm progress bar (one step per suspect).
        timeout: seconds each suspect may take to answer (``tafa_tf.verify``).
        store: a ScanStore or the path of one: results are written there as they
            arrive, and pairs already there are skipped.
        engine: ``"threads"`` (default), ``"processes"``, ``"ray"``, or an engine
            object such as ``RayEngine(address="auto")``.
        retry_errors: with a store, redo the pairs that ended in an error.
        fingerprint_names: readable names for ``fps`` (e.g. their file names).
        **load_options: passed to :func:`adapters.load_suspect` (``trust_code``,
            ``max_bytes``, ``token``, ``modelscan`` ...).

    Yields:
        ScanEntry, one per (fingerprint, suspect) pair checked in this run, a
        suspect's entries together, suspects in completion order.

    Raises:
        ValueError, TypeError: a bad argument.
        adapters.store.StoreError: the store file cannot be used.
    """
    fingerprints = _fingerprint_list(fps)
    job = job_for(fingerprints, fingerprint_names, timeout, load_options)
    runner = make_engine(engine, max_workers=max_workers)
    refs = _refs_to_scan(refs, load_options.get("token"))
    owned = store is not None and not isinstance(store, ScanStore)
    db = ScanStore(store) if owned else store
    try:
        work = [(r, job.shas) for r in refs] if db is None else list(_pending(db, job, refs, retry_errors).items())
        run_id = None if db is None else db.start_run(runner.name)
        bar = progress_bar(total=len(work), desc="tafa scan", unit="model", enabled=progress)
        try:
            for entries in runner.run(job, work):
                if db is not None:
                    db.record(entries, run_id)
                bar.update(1)
                yield from entries
        finally:
            bar.close()
        if db is not None and run_id is not None:
            db.finish_run(run_id)
    finally:
        if owned and db is not None:
            db.close()


def _pending(db: ScanStore, job: Any, refs: list[str], retry_errors: bool) -> dict[str, tuple[str, ...]]:
    db.add_fingerprints(job.fingerprints)
    return db.pending(refs, job.shas, retry_errors=retry_errors)


def scan(
    fps: Any,
    refs: Iterable[str] | HubQuery,
    *,
    max_workers: int = 4,
    on_result: Callable[[ScanEntry], None] | None = None,
    progress: bool = True,
    timeout: float | None = None,
    store: ScanStore | str | os.PathLike[str] | None = None,
    engine: str | Engine | None = None,
    retry_errors: bool = False,
    fingerprint_names: Sequence[str] | None = None,
    **load_options: Any,
) -> ScanResult:
    """Verify one or more fingerprints against many suspects and rank the results.

    Args:
        fps: the owner's ``tafa_tf.Fingerprint``, or a list of them.
        refs: suspect references (paths or ``hf://`` refs), or a HubQuery to list.
        max_workers: how many suspects the local engine loads and queries at once.
        on_result: called with each ScanEntry checked in this run as soon as it is done.
        progress: show a tqdm progress bar.
        timeout: seconds each suspect may take to answer.
        store: a scan store (path or ScanStore): written as the scan goes; pairs
            already there are skipped, and the result holds them too.
        engine: ``"threads"`` (default), ``"processes"``, ``"ray"`` or an engine object.
        retry_errors: with a store, redo the pairs that ended in an error.
        fingerprint_names: readable names for ``fps``.
        **load_options: passed to :func:`adapters.load_suspect`.

    Returns:
        The ScanResult: ``.entries`` ranked, ``.table()``, ``.to_json()``. With a
        store: every stored pair of these fingerprints and suspects.

    Raises:
        ValueError, TypeError: a bad argument.

    Examples:
        >>> result = scan([fp_a, fp_b], ["hf://org/a", "hf://org/b"], store="scans.db")  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
    """
    start = time.monotonic()
    owned = store is not None and not isinstance(store, ScanStore)
    db = ScanStore(store) if owned else store
    try:
        entries = []
        refs = _refs_to_scan(refs, load_options.get("token"))
        for entry in iter_scan(
            fps, refs, max_workers=max_workers, progress=progress, timeout=timeout, store=db, engine=engine,
            retry_errors=retry_errors, fingerprint_names=fingerprint_names, **load_options,
        ):
            entries.append(entry)
            if on_result is not None:
                on_result(entry)
        if db is not None:
            entries = db.entries(refs, [fingerprint_sha256(f) for f in _fingerprint_list(fps)])
    finally:
        if owned and db is not None:
            db.close()
    return ranked(entries, time.monotonic() - start)


def ranked(entries: Iterable[ScanEntry], seconds: float = 0.0) -> ScanResult:
    """A ScanResult of ``entries``: scored ones by score (highest first), then the others."""
    return ScanResult(tuple(sorted(entries, key=_rank)), seconds)


def _rank(entry: ScanEntry) -> tuple[int, float, str, str]:
    if entry.ok and entry.score is not None:
        return (0, -entry.score, entry.ref, entry.fingerprint_name)
    return (1 if entry.status == STATUS_ERROR else 2, 0.0, entry.ref, entry.fingerprint_name)
