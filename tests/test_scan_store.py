"""The scan store: many fingerprints per pass, resume, --retry-errors and export, on real small models.

Suspects are digits MLPs saved as .keras files (copies of the owner with a little weight
noise, independent models, broken, unsafe, oversize and other-shape files); the
fingerprints are the shared digits owner's, a second one of the same owner (another
seed, fewer points) and one of a 4-input model that fits none of the digits suspects.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from adapters_models import SUSPECT_MAX_BYTES, digits_suspects, tiny_model

import tafa_tf as tafa
from adapters import ScanStore, StoreError, iter_scan, scan
from adapters.store import SCHEMA_VERSION, export_rows
from tafa_tf import zoo

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ERROR = {"broken": "ModelLoadError", "unsafe": "UnsafeModelError", "oversize": "ModelTooLargeError"}


@pytest.fixture(scope="module")
def fingerprints(owner, fp):
    second = tafa.fingerprint(owner, task="classification", n=12, domain=tafa.domains.Box(0.0, 1.0), seed=1)
    other = tafa.fingerprint(tiny_model(0), task="classification", n=8, domain=tafa.domains.Box(0.0, 1.0), seed=0)
    return [fp, second, other]


@pytest.fixture(scope="module")
def suspects(tmp_path_factory, owner):
    innocents = [zoo.build("digits_mlp", seed=s) for s in (11, 12)]
    return digits_suspects(tmp_path_factory.mktemp("suspects"), owner, innocents, 10)


def _scan(fingerprints, refs, store, **kw):
    return scan(fingerprints, refs, store=store, progress=False, max_workers=2, max_bytes=SUSPECT_MAX_BYTES,
                fingerprint_names=["owner", "owner-b", "tiny"], **kw)


def test_each_suspect_is_loaded_once_for_all_fingerprints_and_every_pair_is_stored(fingerprints, suspects, tmp_path):
    store = tmp_path / "scans.db"
    result = _scan(fingerprints, list(suspects), store)
    assert len(result.entries) == 3 * len(suspects)
    with ScanStore(store) as db:
        rows = db.rows()
        runs = db.runs()
    assert len(rows) == 3 * len(suspects) and len(runs) == 1 and runs[0]["finished_at"]
    by_ref: dict[str, list[dict]] = {}
    for r in rows:
        by_ref.setdefault(r["ref"], []).append(r)
    for ref, kind in suspects.items():
        pair_rows = {r["fingerprint_name"]: r for r in by_ref[ref]}
        assert len({r["load_id"] for r in by_ref[ref]}) == 1, ref  # loaded once for the three
        if kind in EXPECTED_ERROR:
            assert {(r["status"], r["error_type"]) for r in by_ref[ref]} == {("error", EXPECTED_ERROR[kind])}
            assert all("Received" in r["error"] for r in by_ref[ref])
        elif kind == "other_shape":
            assert pair_rows["tiny"]["status"] == "ok"
            assert {pair_rows[n]["status"] for n in ("owner", "owner-b")} == {"not_applicable"}
        else:
            assert pair_rows["tiny"]["status"] == "not_applicable"
            assert "input shape (64,)" in pair_rows["tiny"]["error"]
            for name in ("owner", "owner-b"):
                assert pair_rows[name]["status"] == "ok" and pair_rows[name]["pirated"] is (kind == "copy"), (
                    ref, name, pair_rows[name]["score"])
                assert pair_rows[name]["load_seconds"] > 0 and pair_rows[name]["verify_seconds"] > 0
    copies = [e.score for e in result.entries if "copy" in e.ref and e.fingerprint_name == "owner"]
    innocent = [e.score for e in result.entries if "innocent" in e.ref and e.fingerprint_name == "owner"]
    assert min(copies) > max(innocent)
    assert result.entries[0].pirated is True and "fingerprint" in result.table().splitlines()[0]


def test_a_rerun_skips_every_done_pair_and_retry_errors_redoes_only_the_errors(fingerprints, suspects, tmp_path):
    store = tmp_path / "scans.db"
    refs = list(suspects)
    _scan(fingerprints, refs, store)
    with ScanStore(store) as db:
        first = {(r["fp_sha256"], r["ref"]): r for r in db.rows()}
    assert list(iter_scan(fingerprints, refs, store=store, progress=False, max_bytes=SUSPECT_MAX_BYTES)) == []

    broken = next(r for r, k in suspects.items() if k == "broken")
    fixed_copy = tmp_path / "fixed"
    fixed_copy.mkdir()
    os.replace(broken, fixed_copy / "broken.keras")  # keep the module's file for the other tests
    try:
        zoo.build("digits_mlp", seed=21).save(broken)
        again = list(iter_scan(fingerprints, refs, store=store, progress=False, max_bytes=SUSPECT_MAX_BYTES,
                               retry_errors=True))
    finally:
        os.replace(fixed_copy / "broken.keras", broken)
    errors_before = {k for k, r in first.items() if r["status"] == "error"}
    assert {(e.fingerprint, e.ref) for e in again} == errors_before  # only the errors were redone
    with ScanStore(store) as db:
        after = {(r["fp_sha256"], r["ref"]): r for r in db.rows()}
        runs = db.runs()
    assert len(after) == len(first) and len(runs) == 3
    for key, row in first.items():
        if key in errors_before:
            continue
        assert (after[key]["load_id"], after[key]["run_id"]) == (row["load_id"], row["run_id"])
    redone = [after[k] for k in errors_before if k[1] == broken]
    assert {r["status"] for r in redone} == {"ok", "not_applicable"} and all(r["run_id"] == 3 for r in redone)


def test_export_as_json_and_csv_and_with_the_results_command(fingerprints, suspects, tmp_path):
    store = tmp_path / "scans.db"
    refs = list(suspects)[:4]
    _scan(fingerprints, refs, store)
    with ScanStore(store) as db:
        rows = db.rows()
    as_json = json.loads(export_rows(rows, "json"))
    as_csv = list(csv.DictReader(io.StringIO(export_rows(rows, "csv"))))
    assert len(as_json) == len(as_csv) == 12
    assert {r["ref"] for r in as_csv} == set(refs)
    assert all(isinstance(r["features"], dict) for r in as_json)
    for j, c in zip(as_json, as_csv):
        assert c["status"] == j["status"] and json.loads(c["features"]) == j["features"]
        assert c["pirated"] == ("" if j["pirated"] is None else str(j["pirated"]).lower())
    with pytest.raises(ValueError, match="'json' or 'csv'"):
        export_rows(rows, "xml")

    out = tmp_path / "out" / "scans.csv"
    proc = _tafa("results", str(store), "--format", "csv", "--output", str(out))
    assert proc.returncode == 10, proc.stderr  # the copy is judged pirated
    exported = list(csv.DictReader(out.open()))
    assert len(exported) == 12 and exported[0]["pirated"] == "true"
    table = _tafa("results", str(store), "--fingerprint", "tiny")
    assert table.returncode == 4  # no digits suspect fits the 4-input fingerprint: nothing scored
    assert "judged pirated" in table.stdout and all(ref in table.stdout for ref in refs)
    assert _tafa("results", str(tmp_path / "missing.db")).returncode == 2


def test_a_file_that_is_not_a_store_or_of_a_newer_schema_is_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a tafa scan store"):
        ScanStore(junk)
    newer = tmp_path / "newer.db"
    ScanStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version"):
        ScanStore(newer)
    assert _tafa("results", str(junk)).returncode == 3


def _tafa(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "tafa_tf.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT, **kw)


def test_a_scan_killed_midway_resumes_without_verifying_any_pair_twice(fingerprints, suspects, tmp_path):
    """SIGKILL a `tafa scan --store` subprocess midway, rerun it: the done pairs stay as they were."""
    folder = tmp_path / "many"
    folder.mkdir()
    copy_src = next(r for r, k in suspects.items() if k == "copy")
    for i in range(40):
        (folder / f"m{i:02d}.keras").write_bytes(Path(copy_src).read_bytes())
    fp_files = []
    for i, f in enumerate(fingerprints[:2]):
        fp_files.append(str(f.save(tmp_path / f"fp{i}.tafa")))
    store = tmp_path / "scans.db"
    argv = [sys.executable, "-m", "tafa_tf.cli", "scan", *fp_files, str(folder), "--store", str(store),
            "--workers", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _count(store) < 6 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with ScanStore(store) as db:
        killed = {(r["fp_sha256"], r["ref"]): r for r in db.rows()}
        assert [r["finished_at"] for r in db.runs()] == [None]
    assert 6 <= len(killed) < 80 and len(killed) % 2 == 0  # a suspect's two rows are written together
    refs = sorted(str(p) for p in folder.iterdir())
    rerun = list(iter_scan(fingerprints[:2], refs, store=store, progress=False))
    assert {e.ref for e in rerun}.isdisjoint({ref for _, ref in killed})
    with ScanStore(store) as db:
        after = {(r["fp_sha256"], r["ref"]): r for r in db.rows()}
    assert len(after) == 80
    for key, row in killed.items():
        assert (after[key]["load_id"], after[key]["run_id"]) == (row["load_id"], 1)


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is being created
        return 0


@pytest.mark.slow
def test_200_suspects_against_3_fingerprints_load_each_suspect_once_and_store_600_results(
    fingerprints, owner, tmp_path
):
    innocents = [zoo.build("digits_mlp", seed=s) for s in (11, 12, 13)]
    suspects = digits_suspects(tmp_path / "suspects", owner, innocents, 200)
    store = tmp_path / "scans.db"
    result = _scan(fingerprints, list(suspects), store)
    with ScanStore(store) as db:
        rows = db.rows()
    assert len(rows) == 600 == len(result.entries)
    loads: dict[str, set[str]] = {}
    for r in rows:
        loads.setdefault(r["ref"], set()).add(r["load_id"])
    assert len(loads) == 200 and all(len(ids) == 1 for ids in loads.values())
    statuses = {kind: {r["status"] for r in rows if suspects[r["ref"]] == kind} for kind in set(suspects.values())}
    assert statuses["copy"] == statuses["innocent"] == {"ok", "not_applicable"}
    assert statuses["broken"] == statuses["unsafe"] == statuses["oversize"] == {"error"}
    assert statuses["other_shape"] == {"ok", "not_applicable"}
    flagged = {r["ref"] for r in rows if r["pirated"]}
    assert flagged == {ref for ref, kind in suspects.items() if kind == "copy"}


def test_scan_arguments_are_checked_before_any_work(fingerprints, tmp_path):
    with pytest.raises(ValueError, match="'threads', 'processes' or 'ray'"):
        scan(fingerprints, ["x.keras"], engine="spark", progress=False)
    with pytest.raises(ValueError, match="revision"):
        scan(fingerprints, ["x.keras"], revision="main", progress=False)
    with pytest.raises(ValueError, match="given twice"):
        scan([fingerprints[0], fingerprints[0]], ["x.keras"], progress=False)
    with pytest.raises(TypeError, match="Fingerprint or a list"):
        scan([], ["x.keras"], progress=False)
    with pytest.raises(ValueError, match="name each fingerprint once"):
        scan(fingerprints, ["x.keras"], fingerprint_names=["a"], progress=False)
    with pytest.raises(StoreError, match="must be a file"):
        scan(fingerprints, ["x.keras"], store=tmp_path, progress=False)
    missing = scan(fingerprints[:1], [str(tmp_path / "nope.keras")], progress=False)
    assert [(e.status, e.error_type) for e in missing.entries] == [("error", "FileNotFoundError")]


@pytest.mark.slow
def test_the_process_engine_gives_the_thread_engines_results(fingerprints, suspects, tmp_path):
    refs = list(suspects)
    threads = {(e.fingerprint, e.ref): e for e in _scan(fingerprints, refs, tmp_path / "t.db").entries}
    processes = _scan(fingerprints, refs, tmp_path / "p.db", engine="processes").entries
    assert len(processes) == len(threads)
    for e in processes:
        ref = threads[(e.fingerprint, e.ref)]
        assert (e.status, e.error_type, e.score, e.content_sha) == (ref.status, ref.error_type, ref.score,
                                                                    ref.content_sha)


def test_an_output_of_another_size_is_verified_as_a_new_head_where_the_fingerprint_can(fp):
    # a suspect with five outputs for the owner's ten (the owner's network under a new head)
    # was recorded "not_applicable" without being asked; an input of another shape still is
    from types import SimpleNamespace

    from adapters.scan_task import shape_mismatch

    assert fp.features is not None
    assert shape_mismatch(fp, SimpleNamespace(input_shape=(64,), output_shape=(5,))) is None
    assert "input shape (32,)" in shape_mismatch(fp, SimpleNamespace(input_shape=(32,), output_shape=(10,)))
    featureless = dataclasses.replace(fp, features=None)
    assert "output shape (5,)" in shape_mismatch(featureless, SimpleNamespace(input_shape=(64,), output_shape=(5,)))
