"""scan: one fingerprint against many suspects (a list of refs or a Hub listing).

Suspects are loaded and verified concurrently by a bounded thread pool. Each result
is handed over as soon as it is ready (``iter_scan`` yields it, ``scan`` passes it to
``on_result``); a suspect that fails to load or to answer becomes an "error" entry
with its reason and never stops the others. The finished ScanResult ranks the
suspects by score and renders as a table or JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from adapters.errors import HubConnectionError, first_line
from adapters.load import load_suspect
from tafa_tf.progress import progress_bar
from tafa_tf.verdicts import verdict_word

STATUS_ERROR = "error"


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
class ScanEntry:
    """The outcome for one suspect.

    Attributes:
        ref: the reference scanned.
        status: the verification status (``"ok"``, ``"non_finite"``,
            ``"nondeterministic"``) or ``"error"`` if it could not be loaded or queried.
        score: the verification score (None on error or when not finite).
        pirated: the verdict (None on error).
        features: the verification features.
        queries: inputs the suspect was asked about.
        commit_sha: the commit a Hub ref resolved to.
        format: the model format found.
        error_type: the exception class on error (e.g. ``"UnsafeModelError"``).
        error: the error message on error.
        seconds: wall time spent on this suspect.
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

    @property
    def ok(self) -> bool:
        """Whether the suspect was loaded and scored."""
        return self.status != STATUS_ERROR and self.score is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    """Every suspect's outcome, ranked: scored suspects by score, then errors.

    Attributes:
        entries: the ranked entries.
        seconds: wall time of the whole scan.
    """

    entries: tuple[ScanEntry, ...]
    seconds: float = 0.0

    @property
    def errors(self) -> tuple[ScanEntry, ...]:
        """The entries that could not be loaded or scored."""
        return tuple(e for e in self.entries if not e.ok)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: counts and the ranked entries."""
        return {
            "scanned": len(self.entries),
            "pirated": sum(1 for e in self.entries if e.pirated),
            "errors": len(self.errors),
            "seconds": self.seconds,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """The ranked result as a plain-text table, one suspect a line."""
        header = ("#", "score", "verdict", "status", "suspect", "commit", "note")
        rows = [header]
        for rank, e in enumerate(self.entries, 1):
            verdict = verdict_word(e.pirated)
            note = f"{e.error_type}: {e.error}" if e.error_type else (e.format or "")
            rows.append(
                (
                    str(rank),
                    "-" if e.score is None else f"{e.score:.3f}",
                    verdict,
                    e.status,
                    e.ref,
                    (e.commit_sha or "-")[:10],
                    note if len(note) <= 100 else note[:97] + "...",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows
        ]
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


def iter_scan(
    fp: Any,
    refs: Iterable[str] | HubQuery,
    *,
    max_workers: int = 4,
    progress: bool = True,
    timeout: float | None = None,
    **load_options: Any,
) -> Iterator[ScanEntry]:
    """Verify ``fp`` against every suspect, yielding each entry as soon as it is done.

    Args:
        fp: the owner's ``tafa_tf.Fingerprint``.
        refs: suspect references (paths or ``hf://`` refs), or a HubQuery to list.
        max_workers: how many suspects are loaded and queried at once.
        progress: show a tqdm progress bar.
        timeout: seconds each suspect may take to answer (``tafa_tf.verify``).
        **load_options: passed to :func:`adapters.load_suspect` (``trust_code``,
            ``max_bytes``, ``token``, ``modelscan`` ...).

    Yields:
        ScanEntry, in completion order.

    Raises:
        ValueError: a bad argument.
    """
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(
            f"max_workers must be a positive int. Received: max_workers={max_workers!r}"
        )
    if isinstance(refs, str):
        raise TypeError(
            f"refs must be a list of references, not one string. Received: refs={refs!r}"
        )
    if isinstance(refs, HubQuery):
        refs = list_hub_refs(refs, token=load_options.get("token"))
    pending: list[str] = list(refs)
    bar = progress_bar(total=len(pending), desc="tafa scan", unit="model", enabled=progress)
    running: set[Future[ScanEntry]] = set()
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tafa-scan") as pool:
        try:
            while pending or running:
                # Keep a bounded window of submitted work so a long listing is not
                # queued all at once.
                while pending and len(running) < 2 * max_workers:
                    running.add(pool.submit(_scan_one, fp, pending.pop(0), timeout, load_options))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    entry = future.result()
                    bar.update(1)
                    yield entry
        finally:
            for future in running:
                future.cancel()
            bar.close()


def scan(
    fp: Any,
    refs: Iterable[str] | HubQuery,
    *,
    max_workers: int = 4,
    on_result: Callable[[ScanEntry], None] | None = None,
    progress: bool = True,
    timeout: float | None = None,
    **load_options: Any,
) -> ScanResult:
    """Verify ``fp`` against many suspects and rank them.

    Args:
        fp: the owner's ``tafa_tf.Fingerprint``.
        refs: suspect references (paths or ``hf://`` refs), or a HubQuery to list.
        max_workers: how many suspects are loaded and queried at once.
        on_result: called with each ScanEntry as soon as it is done.
        progress: show a tqdm progress bar.
        timeout: seconds each suspect may take to answer.
        **load_options: passed to :func:`adapters.load_suspect`.

    Returns:
        The ScanResult: ``.entries`` ranked, ``.table()``, ``.to_json()``.

    Raises:
        ValueError: a bad argument.

    Examples:
        >>> result = scan(fp, ["hf://org/a", "hf://org/b"])  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
    """
    start = time.monotonic()
    entries = []
    for entry in iter_scan(
        fp, refs, max_workers=max_workers, progress=progress, timeout=timeout, **load_options
    ):
        entries.append(entry)
        if on_result is not None:
            on_result(entry)
    return ScanResult(tuple(sorted(entries, key=_rank)), time.monotonic() - start)


def _rank(entry: ScanEntry) -> tuple[int, float, str]:
    if entry.ok and entry.score is not None:
        return (0, -entry.score, entry.ref)
    return (1, 0.0, entry.ref)


def _scan_one(fp: Any, ref: str, timeout: float | None, load_options: dict[str, Any]) -> ScanEntry:
    import tafa_tf

    start = time.monotonic()
    suspect = None
    try:
        suspect = load_suspect(ref, **{"progress": False, **load_options})
        report = tafa_tf.verify(fp, suspect, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - one suspect's failure must not stop the scan
        return ScanEntry(
            ref=str(ref),
            status=STATUS_ERROR,
            commit_sha=getattr(suspect, "commit_sha", None),
            format=getattr(suspect, "format", None),
            error_type=type(e).__name__,
            error=str(e).strip() or type(e).__name__,
            seconds=time.monotonic() - start,
        )
    score = float(report.score)
    return ScanEntry(
        ref=str(ref),
        status=report.status,
        score=score if math.isfinite(score) else None,
        pirated=report.pirated,
        features={k: float(v) for k, v in report.features.items()},
        queries=int(report.queries),
        commit_sha=suspect.commit_sha,
        format=suspect.format,
        seconds=time.monotonic() - start,
    )
