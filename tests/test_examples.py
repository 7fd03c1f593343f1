"""Every script in examples/ runs as a user would run it (slow: each trains models).

check_hf_repo.py, and `tafa verify`/`tafa scan` on hf:// refs, run against the
loopback hub (olah) from tests/hub_server.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import LoopbackHub, point_hf_at

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 600


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "out"),
    [
        ("classifier.py", "owner_classifier.tafa"),
        ("regressor.py", "owner_regressor.tafa"),
        ("generator.py", "owner_generator.tafa"),
        ("calibration.py", "owner_calibrated.tafa"),
    ],
)
def test_example_runs_and_ranks_the_pirate_above_the_innocent(script, out, tmp_path):
    import tafa_tf as tafa

    proc = run_script(script, "--n", "64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the scripts exit 0 when the pirate outranks
    verdicts = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith(("pirated", "innocent"))}
    assert set(verdicts) == {"pirated", "innocent"}, proc.stdout
    # the verdict never accuses the innocent nor clears the copy; uncalibrated, a copy may get no verdict
    assert "PIRATED" not in verdicts["innocent"] and "not pirated" not in verdicts["pirated"], proc.stdout
    if script == "calibration.py":
        assert "PIRATED" in verdicts["pirated"], proc.stdout
    fp = tafa.Fingerprint.load(tmp_path / out)
    assert (fp.calibration is not None) == (script == "calibration.py")


@pytest.fixture(scope="module")
def hub_with_suspects(trained, tmp_path_factory):
    """A loopback hub with a pirated copy and an innocent model, and the owner's fingerprint."""
    import tafa_tf as tafa
    from tafa_tf import piracy

    root = tmp_path_factory.mktemp("examples_hub")
    owner, innocent = trained("digits_mlp", seed=0), trained("digits_mlp", seed=1)
    piracy.quantize(owner, "float16").save(root / "copy.keras")
    innocent.save(root / "seed1.keras")
    fp_path = root / "owner.tafa"
    tafa.fingerprint(owner, task="classification", n=64, domain=tafa.domains.Box(0.0, 1.0)).save(fp_path)
    server = LoopbackHub(root / "hub")
    server.add_repo("pirate/copy", {"model.keras": root / "copy.keras", "README.md": "totally original\n"})
    server.add_repo("indep/seed1", {"model.keras": root / "seed1.keras"})
    server.start()
    yield server, fp_path
    server.stop()


@pytest.mark.slow
@pytest.mark.hub
def test_check_hf_repo_example_and_cli_against_the_loopback_hub(hub_with_suspects, tmp_path, monkeypatch):
    server, fp_path = hub_with_suspects
    point_hf_at(monkeypatch, server, tmp_path / "hf_home")
    proc = run_script("check_hf_repo.py", str(fp_path), "hf://pirate/copy", "hf://indep/seed1", cwd=tmp_path)
    assert proc.returncode == 10, proc.stdout + proc.stderr  # a copy was found: tafa scan's exit code
    lines = proc.stdout.splitlines()
    assert "hf://pirate/copy" in lines[1] and "PIRATED" in lines[1]
    assert "hf://indep/seed1" in lines[2] and "PIRATED" not in lines[2]

    cli = [sys.executable, "-m", "tafa_tf.cli"]
    verify = subprocess.run([*cli, "verify", str(fp_path), "hf://pirate/copy@main", "--json"], check=False,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert verify.returncode == 10, verify.stderr
    assert '"commit_sha"' in verify.stdout and '"verdict": "PIRATED"' in verify.stdout
    missing = subprocess.run([*cli, "verify", str(fp_path), "hf://nobody/nothing"], check=False,
                             capture_output=True, text=True, timeout=TIMEOUT)
    assert missing.returncode == 4 and missing.stderr.strip().startswith("tafa verify: error: Cannot load")
