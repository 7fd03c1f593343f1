"""The Ray scan engine: one Ray task per suspect, on this machine or a Ray cluster.

Ray is an optional extra: ``pip install -e ".[ray]"`` (or ``pip install "tafa-tf[ray]"``).
Each task fetches and loads one suspect and verifies it against every fingerprint
still to check (the same :func:`adapters.scan_task.scan_suspect` that the local engine
runs, so the scores are the same). The driver keeps a bounded number of tasks in
flight and hands each result over as it arrives, so the scan's store is written as
the scan goes and a killed driver resumes from it. A worker that dies (killed, out of
memory, its node lost) has its task retried by Ray (``max_retries``); a task that
still fails becomes an error entry for that suspect, and the scan goes on.

Without an address, a local Ray is started with this machine's cores and stopped at
the end; with one (``"auto"`` for a cluster started with ``ray start`` on this machine,
``"ray://HOST:10001"`` for a remote cluster's Ray Client server) the scan joins it.
The cluster's workers must be able to import tafa-tf and its dependencies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adapters.errors import MissingDependencyError
from adapters.scan_task import STATUS_ERROR, ScanEntry, ScanJob

WorkItem = tuple[str, tuple[str, ...]]

#: Bytes of memory each task reserves from Ray's scheduler (a tiny Keras model and
#: TensorFlow take a few hundred MB; raise it for big suspects).
DEFAULT_TASK_MEMORY = 1024**3
#: Bytes of Ray's shared object store when a local Ray is started (results are small).
DEFAULT_OBJECT_STORE_MEMORY = 200 * 1024**2


def import_ray() -> Any:
    """The ``ray`` module, or an error that names the extra to install.

    Raises:
        MissingDependencyError: Ray is not installed.
    """
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError(
            'The Ray scan engine needs Ray: pip install "tafa-tf[ray]" (in a checkout: '
            f'pip install -e ".[ray]"), or scan with the local engine. Received: {e}'
        ) from e
    return ray


def _scan_task(job: ScanJob, ref: str, only: tuple[str, ...]) -> list[ScanEntry]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return job(ref, only)


class RayEngine:
    """Scan with one Ray task per suspect.

    Args:
        address: a Ray cluster to join (``"auto"``, ``"ray://HOST:10001"``); None
            starts a local Ray for the scan (or uses one this process already started).
        num_cpus: CPUs of a local Ray (default: all of this machine's).
        max_in_flight: tasks submitted and not yet collected (default: twice the
            cluster's CPUs).
        max_retries: times Ray reruns a task whose worker died.
        task_memory: bytes each task reserves from Ray's scheduler (None: no reservation).
        object_store_memory: bytes of object store for a local Ray.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
        max_retries: int = 3,
        task_memory: int | None = DEFAULT_TASK_MEMORY,
        object_store_memory: int = DEFAULT_OBJECT_STORE_MEMORY,
    ) -> None:
        for name, value in (("num_cpus", num_cpus), ("max_in_flight", max_in_flight), ("task_memory", task_memory)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None. Received: {name}={value!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int of at least 0. Received: max_retries={max_retries!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.task_memory = task_memory
        self.object_store_memory = object_store_memory

    def connect(self) -> bool:
        """Start or join Ray unless this process is connected already; returns whether it did."""
        ray = import_ray()
        if ray.is_initialized():
            return False
        if self.address is not None:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
            return True
        # Workers import the same tafa-tf as this driver (a checkout need not be installed).
        source = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
        ray.init(
            num_cpus=self.num_cpus or os.cpu_count() or 1,
            object_store_memory=self.object_store_memory,
            include_dashboard=False,
            logging_level="ERROR",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}},
        )
        return True

    def run(self, job: ScanJob, work: Sequence[WorkItem]) -> Iterator[list[ScanEntry]]:
        """Yield each suspect's entries as its task finishes (see the module docstring)."""
        ray = import_ray()
        started = self.connect()
        try:
            options: dict[str, Any] = {"num_cpus": 1, "max_retries": self.max_retries, "retry_exceptions": False}
            if self.task_memory is not None:
                options["memory"] = self.task_memory
            task = ray.remote(_scan_task).options(**options)
            limit = self.max_in_flight or 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
            job_ref = ray.put(job)
            in_flight: dict[Any, WorkItem] = {}
            for item in work:
                in_flight[task.remote(job_ref, *item)] = item
                if len(in_flight) >= limit:
                    yield self._next(ray, job, in_flight)
            while in_flight:
                yield self._next(ray, job, in_flight)
        finally:
            if started:
                ray.shutdown()

    @staticmethod
    def _next(ray: Any, job: ScanJob, in_flight: dict[Any, WorkItem]) -> list[ScanEntry]:
        """Wait for one task; a task that failed for good becomes error entries for its suspect."""
        [done], _ = ray.wait(list(in_flight), num_returns=1)
        ref, only = in_flight.pop(done)
        try:
            return list(ray.get(done))
        except Exception as e:  # noqa: BLE001 - a lost task must not stop the scan
            message = " ".join(str(e).split())[:2000] or type(e).__name__
            return [
                ScanEntry(ref=ref, status=STATUS_ERROR, fingerprint=sha, fingerprint_name=name,
                          error_type=type(e).__name__, error=f"The Ray task for {ref} failed: {message}")
                for sha, name, _ in job.fingerprints if sha in only
            ]
