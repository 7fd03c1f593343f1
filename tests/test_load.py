"""Load: many verifications in one process, and verifications from several threads.

A service that screens uploads verifies for days in one process: memory must not creep,
and concurrent verifications must not see each other's state. The figures measured here
(RSS before and after, growth per verification, timing) go to load.json in the
``results_dir`` folder (see conftest.py; benchmarks/results holds the committed run).
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import tafa_tf as tafa
from tafa_tf import piracy

N_VERIFICATIONS = 200
WARM_UP = 20
# Generous: Python's and TF's allocators keep freed arenas; a leak of one copy of the
# queries (192 x 64 float32 = 48 KiB) per verification would already add ~10 MiB.
MAX_GROWTH_MIB = 64.0


@pytest.fixture(scope="module")
def suspects(owner, trained):
    return {
        "owner": owner,
        "noised copy": piracy.add_noise(owner, 0.05, seed=0),
        "innocent (seed 1)": trained("digits_mlp", seed=1),
        "callable copy": lambda x: np.asarray(owner(x, training=False)),
    }


def _rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def _write(results_dir: Path, key: str, figures: dict) -> None:
    path = results_dir / "load.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = figures
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n{key}:", json.dumps(figures, indent=2, sort_keys=True))


def test_200_verifications_without_memory_growth(fp, suspects, results_dir):
    order = list(suspects.values())
    for i in range(WARM_UP):
        tafa.verify(fp, order[i % len(order)])
    before = _rss_mib()
    start = time.monotonic()
    scores = []
    for i in range(N_VERIFICATIONS):
        scores.append(tafa.verify(fp, order[i % len(order)]).score)
    elapsed = time.monotonic() - start
    after = _rss_mib()
    growth = after - before
    _write(
        results_dir,
        "sequential",
        {
            "verifications": N_VERIFICATIONS,
            "warm_up": WARM_UP,
            "queries_each": fp.n_queries,
            "rss_before_mib": round(before, 1),
            "rss_after_mib": round(after, 1),
            "rss_growth_mib": round(growth, 2),
            "growth_per_verification_kib": round(growth * 1024 / N_VERIFICATIONS, 2),
            "bound_mib": MAX_GROWTH_MIB,
            "seconds": round(elapsed, 2),
            "ms_per_verification": round(1000 * elapsed / N_VERIFICATIONS, 1),
        },
    )
    # the same suspect gets the same score every time
    for k in range(len(order)):
        assert len(set(scores[k :: len(order)])) == 1
    assert growth < MAX_GROWTH_MIB


def test_concurrent_verifications_match_sequential(fp, suspects, results_dir):
    names = list(suspects)
    jobs = [names[i % len(names)] for i in range(48)]
    sequential = {name: tafa.verify(fp, suspects[name]) for name in names}
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(pool.map(lambda name: tafa.verify(fp, suspects[name]), jobs))
    elapsed = time.monotonic() - start
    mismatches = []
    for name, report in zip(jobs, reports):
        ref = sequential[name]
        same = (
            report.pirated == ref.pirated
            and report.status == ref.status
            and np.isclose(report.score, ref.score, rtol=1e-6, atol=1e-9)
            and report.features.keys() == ref.features.keys()
            and all(np.isclose(report.features[k], ref.features[k], rtol=1e-6, atol=1e-9) for k in ref.features)
        )
        if not same:
            mismatches.append(name)
    _write(
        results_dir,
        "concurrent",
        {
            "threads": 8,
            "verifications": len(jobs),
            "seconds": round(elapsed, 2),
            "mismatches_with_sequential": len(mismatches),
            "scores": {name: round(r.score, 4) for name, r in sequential.items()},
            "verdicts": {name: r.pirated for name, r in sequential.items()},
        },
    )
    assert not mismatches, mismatches


def test_concurrent_timeouts_do_not_leak_into_other_verifications(fp, owner):
    """Hung suspects time out in their own thread while honest ones are scored as usual."""
    import threading

    release = threading.Event()

    def hangs(x):
        release.wait(30)
        return np.zeros((len(x), 10))

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(tafa.verify, fp, hangs if i % 2 else owner, timeout=2.0) for i in range(8)]
            outcomes = []
            for f in futures:
                try:
                    outcomes.append(f.result().pirated)
                except tafa.errors.SuspectTimeoutError:
                    outcomes.append("timeout")
    finally:
        release.set()
    assert outcomes == [True, "timeout"] * 4
