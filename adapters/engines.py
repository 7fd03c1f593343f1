"""Scan engines: where the per-suspect work of a scan runs.

An engine takes a :class:`adapters.scan_task.ScanJob` and a list of work items
``(ref, fingerprint sha256s still to check)`` and yields each suspect's entries as
soon as they are ready, in completion order; the scan's driver writes them to the
store. :class:`LocalEngine` (threads, or processes) is the default and needs nothing
more; :class:`adapters.ray_engine.RayEngine` spreads the work over a Ray cluster.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Protocol

from adapters.scan_task import ScanEntry, ScanJob

WorkItem = tuple[str, tuple[str, ...]]


class Engine(Protocol):
    """What a scan engine provides (see the module docstring)."""

    name: str

    def run(self, job: ScanJob, work: Sequence[WorkItem]) -> Iterator[list[ScanEntry]]:
        """Yield the entries of each work item as soon as they are ready."""
        ...


class LocalEngine:
    """Suspects checked on this machine by a bounded pool of threads (or processes).

    Args:
        max_workers: suspects loaded and queried at once.
        processes: run each suspect in a worker process (spawned; each imports
            TensorFlow once) instead of a thread: loading is partly Python-bound, so
            processes use several cores better, at the cost of start-up time and memory.

    Raises:
        ValueError: ``max_workers`` is not a positive int.
    """

    def __init__(self, max_workers: int = 4, *, processes: bool = False) -> None:
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int. Received: max_workers={max_workers!r}")
        self.max_workers = max_workers
        self.processes = processes
        self.name = "processes" if processes else "threads"

    def _executor(self) -> Executor:
        if self.processes:
            return ProcessPoolExecutor(self.max_workers, mp_context=multiprocessing.get_context("spawn"))
        return ThreadPoolExecutor(self.max_workers, thread_name_prefix="tafa-scan")

    def run(self, job: ScanJob, work: Sequence[WorkItem]) -> Iterator[list[ScanEntry]]:
        """Yield each suspect's entries in completion order, with at most 2 x max_workers queued."""
        pending = iter(work)
        running: set[Future[list[ScanEntry]]] = set()
        pool = self._executor()
        try:
            for item in pending:
                running.add(pool.submit(job, *item))
                if len(running) < 2 * self.max_workers:
                    continue
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in running:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
