"""Scan throughput: the local (threads) engine against Ray on the same cores, and two fault runs.

200 suspects: 150 local .keras files and 50 repositories on a loopback olah hub
(tests/hub_server.py), a mix of copies of the owner (weight noise), innocents, broken,
unsafe (Lambda), oversize and other-shape models (tests/adapters_models.digits_suspects),
against 3 fingerprints (the owner's, a second of the owner with other points, and one
of a 4-input model that fits only the other-shape suspects). Each engine scans into a
fresh SQLite store; the time is split into fetch, load and verify (worker seconds,
summed over suspects), and the store is checked: 600 rows, one load per suspect.

Fault runs (Ray): (a) a Ray worker running a scan task is killed (SIGKILL) mid-scan:
Ray retries the task, and the results must equal the threads run's; (b) the driver
(``tafa scan --engine ray --store``) is killed (SIGKILL) mid-scan and restarted with the
same --store: no pair done before the kill may be redone.

    python benchmarks/bench_scan.py [--suspects 200] [--hub 50] [--cpus 2] [--seed 0]
                                    [--json benchmarks/results/scan.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def build_suspects(work: Path, n: int, n_hub: int, hub, seed: int = 0) -> tuple[list, dict[str, str], dict[str, str]]:
    """Fingerprints, local suspect paths -> kind, and hf:// refs -> kind."""
    from adapters_models import digits_suspects, tiny_model

    import tafa_tf as tafa
    from tafa_tf import zoo

    owner = zoo.train("digits_mlp", seed=0)
    innocents = [zoo.train("digits_mlp", seed=1), zoo.build("digits_mlp", seed=7)]
    box = tafa.domains.Box(0.0, 1.0)
    fps = [
        tafa.fingerprint(owner, task="classification", n=64, domain=box, seed=seed),
        tafa.fingerprint(owner, task="classification", n=32, domain=box, seed=seed + 1),
        tafa.fingerprint(tiny_model(0), task="classification", n=16, domain=box, seed=seed),
    ]
    files = digits_suspects(work / "suspects", owner, innocents, n, seed=seed)
    local, remote = {}, {}
    for i, (path, kind) in enumerate(files.items()):
        if i < n_hub:
            repo = f"bench/{Path(path).stem}"
            hub.add_repo(repo, {"README.md": f"# {repo}\n", "model.keras": Path(path)})
            remote[f"hf://{repo}"] = kind
        else:
            local[path] = kind
    return fps, local, remote


def split_of(store: Path) -> dict[str, float]:
    """Rows, loads and the summed fetch/load/verify seconds in a store."""
    from adapters import ScanStore

    with ScanStore(store) as db:
        rows = db.rows()
    loads = {r["load_id"]: r for r in rows}
    return {
        "rows": len(rows),
        "suspects": len({r["ref"] for r in rows}),
        "loads": len(loads),
        "fetch_s": sum(r["fetch_seconds"] for r in loads.values()),
        "load_s": sum(r["load_seconds"] for r in loads.values()),
        "verify_s": sum(r["verify_seconds"] for r in rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "not_applicable": sum(r["status"] == "not_applicable" for r in rows),
    }


def timed_scan(fps, refs, store: Path, engine, **kw) -> dict[str, float]:
    from adapters import scan
    from adapters_models import SUSPECT_MAX_BYTES

    start = time.perf_counter()
    result = scan(fps, refs, store=store, engine=engine, progress=False, max_bytes=SUSPECT_MAX_BYTES, **kw)
    wall = time.perf_counter() - start
    out = {"wall_s": wall, "suspects_per_min": 60 * len(refs) / wall, **split_of(store)}
    out["scores"] = {f"{e.fingerprint[:8]} {e.ref}": e.score for e in result.entries}
    return out


def driver_kill_run(fp_files: list[str], refs: list[str], store: Path, cpus: int, env: dict) -> dict:
    """Run `tafa scan --engine ray --store`, SIGKILL it once a third of the rows are in, rerun it."""
    import sqlite3

    from adapters import ScanStore
    from adapters_models import SUSPECT_MAX_BYTES

    listing = store.with_suffix(".refs")
    argv = [sys.executable, "-c", _DRIVER, str(listing), str(store), str(cpus), str(SUSPECT_MAX_BYTES), *fp_files]
    listing.write_text("\n".join(refs))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    target = len(refs) * len(fp_files) // 3
    rows = 0
    while proc.poll() is None and rows < target and time.perf_counter() - start < 900:
        time.sleep(0.1)
        if store.exists():
            try:
                with sqlite3.connect(store, timeout=1) as db:
                    rows = db.execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                rows = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The killed driver's local Ray (raylet, agents) ran in its session: stop what is left of it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with ScanStore(store) as db:
        before = {(r["fp_sha256"], r["ref"]): r["load_id"] for r in db.rows()}
    restart = time.perf_counter()
    second = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    end = time.perf_counter()
    with ScanStore(store) as db:
        after = {(r["fp_sha256"], r["ref"]): r["load_id"] for r in db.rows()}
        runs = db.runs()
    return {
        "rows_at_kill": len(before),
        "rows_after_restart": len(after),
        "pairs_redone": sum(after[k] != v for k, v in before.items()),
        "runs": [(r["engine"], bool(r["finished_at"])) for r in runs],
        "first_run_s": restart - start,
        "restart_s": end - restart,
        "restart_exit_code": second.returncode,
    }


# The driver of fault run (b): a scan with the Ray engine on a local Ray, in its own process.
_DRIVER = """
import sys
from pathlib import Path
import tafa_tf as tafa
from adapters import scan
from adapters.ray_engine import RayEngine
listing, store, cpus, max_bytes, *fp_files = sys.argv[1:]
fps = [tafa.Fingerprint.load(f) for f in fp_files]
refs = Path(listing).read_text().split()
scan(fps, refs, store=store, engine=RayEngine(num_cpus=int(cpus)), progress=False, max_bytes=int(max_bytes),
     fingerprint_names=[Path(f).name for f in fp_files])
"""


def _table(runs: dict[str, dict]) -> str:
    cols = ("engine", "suspects/min", "wall s", "fetch s", "load s", "verify s", "rows", "loads", "errors", "n/a")
    lines = ["  ".join(f"{c:>12}" for c in cols)]
    for name, r in runs.items():
        cells = (name, f"{r['suspects_per_min']:.0f}", f"{r['wall_s']:.1f}", f"{r['fetch_s']:.1f}",
                 f"{r['load_s']:.1f}", f"{r['verify_s']:.1f}", r["rows"], r["loads"], r["errors"], r["not_applicable"])
        lines.append("  ".join(f"{str(c):>12}" for c in cells))
    return "\n".join(lines)


def _same_scores(a: dict, b: dict) -> tuple[bool, float]:
    keys = a["scores"].keys() == b["scores"].keys()
    diffs = [abs(a["scores"][k] - b["scores"][k]) for k in a["scores"] if a["scores"][k] is not None]
    return keys and all(b["scores"][k] is None for k in a["scores"] if a["scores"][k] is None), max(diffs or [0.0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suspects", type=int, default=200)
    parser.add_argument("--hub", type=int, default=50, help="how many of the suspects are served by the loopback hub")
    parser.add_argument("--cpus", type=int, default=2, help="threads of the local engine and CPUs of the local Ray")
    parser.add_argument("--seed", type=int, default=0, help="seeds the suspects' noise and the fingerprints' points")
    parser.add_argument("--json", default="benchmarks/results/scan.json")
    args = parser.parse_args(argv)

    from adapters_models import kill_a_busy_ray_worker
    from hub_server import LoopbackHub

    from adapters import LocalEngine
    from adapters.ray_engine import RayEngine

    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        work = Path(tmp)
        hub = LoopbackHub(work / "hub")
        os.environ.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(work / "hf"))
        for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_CACHE"):
            os.environ.pop(name, None)
        t = time.perf_counter()
        fps, local, remote = build_suspects(work, args.suspects, args.hub, hub, args.seed)
        hub.start()
        print(f"built {len(local)} local and {len(remote)} hub suspects, 3 fingerprints in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        refs = list(remote) + list(local)
        runs: dict[str, dict] = {}
        try:
            runs["threads"] = timed_scan(fps, refs, work / "threads.db", LocalEngine(args.cpus))
            os.environ["HF_HOME"] = str(work / "hf-ray")  # a cold download cache for Ray too
            engine = RayEngine(num_cpus=args.cpus)
            t = time.perf_counter()
            engine.connect()
            ray_start = time.perf_counter() - t
            runs["ray"] = timed_scan(fps, refs, work / "ray.db", engine)
            killed: list[int] = []
            os.environ["HF_HOME"] = str(work / "hf-ray-kill")
            runs["ray, worker killed"] = timed_scan(fps, refs, work / "ray-kill.db", engine,
                                                    on_result=lambda entry: kill_a_busy_ray_worker(killed))
            import ray

            ray.shutdown()
            fp_files = [str(fp.save(work / f"fp{i}.tafa")) for i, fp in enumerate(fps)]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(work / "hf-driver")}
            driver = driver_kill_run(fp_files, refs, work / "driver.db", args.cpus, env)
        finally:
            hub.stop()
    same, max_diff = _same_scores(runs["threads"], runs["ray"])
    same_kill, max_diff_kill = _same_scores(runs["threads"], runs["ray, worker killed"])
    print(_table(runs))
    print("(fetch/load/verify: worker seconds summed over suspects; Ray's load time includes each new "
          "worker's first TensorFlow/Keras import)")
    print(f"\nray start-up (not in its wall time): {ray_start:.1f} s")
    print(f"ray vs threads: same pairs and statuses {same}, largest score difference {max_diff:.2e}")
    print(f"worker killed (pid {killed[0] if killed else None}): same results {same_kill}, "
          f"largest score difference {max_diff_kill:.2e}")
    print(f"driver killed at {driver['rows_at_kill']} of {len(refs) * 3} rows, restarted with the same --store: "
          f"{driver['rows_after_restart']} rows, {driver['pairs_redone']} pairs redone, runs {driver['runs']}, "
          f"{driver['first_run_s']:.0f} s before the kill + {driver['restart_s']:.0f} s after")
    report = {
        "seed": args.seed, "suspects": len(refs), "hub_suspects": len(remote), "fingerprints": 3, "cpus": args.cpus,
        "runs": {k: {n: v for n, v in r.items() if n != "scores"} for k, r in runs.items()},
        "ray_start_s": ray_start, "ray_same_as_threads": same, "ray_max_score_diff": max_diff,
        "worker_killed": bool(killed), "worker_killed_same": same_kill, "driver_kill": driver,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
