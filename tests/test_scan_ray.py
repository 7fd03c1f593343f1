"""The Ray scan engine on a local Ray with 2 CPUs: the local engine's scores, and a killed worker loses nothing.

Slow: starting Ray and a TensorFlow in each Ray worker takes tens of seconds.
"""

from __future__ import annotations

import pytest
from adapters_models import SUSPECT_MAX_BYTES, digits_suspects, kill_a_busy_ray_worker

import tafa_tf as tafa
from adapters import ScanStore, scan
from tafa_tf import zoo

ray = pytest.importorskip("ray", reason='the Ray engine needs pip install -e ".[ray]"')
psutil = pytest.importorskip("psutil")

from adapters.ray_engine import RayEngine  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    engine = RayEngine(num_cpus=2)
    started = engine.connect()
    yield engine
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def fingerprints(owner, fp):
    return [fp, tafa.fingerprint(owner, task="classification", n=12, domain=tafa.domains.Box(0.0, 1.0), seed=1)]


@pytest.fixture(scope="module")
def suspects(tmp_path_factory, owner):
    innocents = [zoo.build("digits_mlp", seed=s) for s in (11, 12)]
    return digits_suspects(tmp_path_factory.mktemp("ray_suspects"), owner, innocents, 30)


def _by_pair(result):
    return {(e.fingerprint, e.ref): e for e in result.entries}


def test_ray_gives_the_local_engines_scores_and_errors(local_ray, fingerprints, suspects, tmp_path):
    refs = list(suspects)[:10]
    local = _by_pair(scan(fingerprints, refs, progress=False, max_bytes=SUSPECT_MAX_BYTES))
    store = tmp_path / "ray.db"
    on_ray = _by_pair(scan(fingerprints, refs, progress=False, max_bytes=SUSPECT_MAX_BYTES, engine=local_ray,
                           store=store))
    assert on_ray.keys() == local.keys() and len(local) == 20
    for key, entry in local.items():
        other = on_ray[key]
        assert (other.status, other.error_type, other.pirated) == (entry.status, entry.error_type, entry.pirated)
        assert other.score == pytest.approx(entry.score, abs=1e-9) if entry.score is not None else other.score is None
        assert other.content_sha == entry.content_sha
    with ScanStore(store) as db:
        assert db.runs()[0]["engine"] == "ray" and len(db.rows()) == 20


def test_a_worker_killed_mid_scan_is_retried_and_nothing_is_lost(local_ray, fingerprints, suspects, tmp_path):
    refs = list(suspects)
    killed: list[int] = []

    store = tmp_path / "killed.db"
    result = scan(fingerprints, refs, progress=False, max_bytes=SUSPECT_MAX_BYTES, engine=local_ray, store=store,
                  on_result=lambda entry: kill_a_busy_ray_worker(killed))
    assert killed, "no Ray worker was running a scan task to kill"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    assert len(result.entries) == 2 * len(refs)
    reference = _by_pair(scan(fingerprints, refs, progress=False, max_bytes=SUSPECT_MAX_BYTES))
    for key, entry in _by_pair(result).items():
        assert (entry.status, entry.error_type) == (reference[key].status, reference[key].error_type), entry.error
        if entry.score is not None:
            assert entry.score == pytest.approx(reference[key].score, abs=1e-9)
    assert not [e for e in result.errors if e.error_type not in ("ModelLoadError", "UnsafeModelError",
                                                                 "ModelTooLargeError")]
