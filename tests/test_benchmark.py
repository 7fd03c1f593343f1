"""The piracy benchmark runs from one command and prints its table (slow: it trains a zoo).

This runs the --quick zoo into a fresh cache; the full zoo (docs/results.md) takes
about 6 minutes to build and is not repeated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "piracy_suite.py"


@pytest.mark.slow
def test_piracy_suite_runs_from_one_command_and_prints_the_table(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--n", "64", "--cache", str(tmp_path / "cache"),
         "--out", str(tmp_path / "out"), "--no-progress"],
        check=False, capture_output=True, text=True, timeout=1800, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    result = json.loads((tmp_path / "out" / "piracy_suite.json").read_text())
    rows = {(r["task"], r["family"]): r for r in result["rows"]}
    assert {t for t, _ in rows} == {"classification", "regression", "generation"}
    for (task, family), row in rows.items():
        assert f"{task:<15} {family:<34}" in proc.stdout  # every row is in the printed table
        if family == "permute/rescale":  # the function is unchanged: any working method sees it
            assert row["tafa"]["auc"] == 1.0, (task, row)
    for task in ("classification", "regression", "generation"):
        assert (tmp_path / "out" / f"roc_{task}.png").stat().st_size > 0
    # every suspect's features are kept, and they give back its default score: a later change of
    # the score can be measured on them without verifying again
    from tafa_tf.verification import default_score

    for res in result["tasks"]:
        for method in ("tafa", "no base", "tafa+"):
            stored = {**res["scores"][method]["pos"], **res["scores"][method]["neg"]}
            assert set(res["features"][method]) == set(stored), (res["task"], method)
            for name, features in res["features"][method].items():
                assert default_score(features) == pytest.approx(stored[name], abs=1e-12), (res["task"], method, name)
        assert "no base cv" in rows[(res["task"], "fine-tune")]
    # the public base is what tells copies from other fine-tunes of that base
    hard = rows[("classification", "all pirated vs same-base fine-tune")]
    assert hard["tafa"]["auc"] > hard["no base"]["auc"], hard
    # the white-box ceiling: FTLL and RTLL keep every weight under the output layer as it is
    for task in ("classification", "regression", "generation"):
        for family in ("FTLL", "RTLL"):
            assert rows[(task, family)]["weights (wb)"]["auc"] == 1.0, (task, family, rows[(task, family)])
            assert rows[(task, family)]["cka (wb)"]["auc"] == 1.0, (task, family, rows[(task, family)])


@pytest.mark.slow
def test_piracy_suite_runs_the_classifier_as_a_cnn_with_every_baseline(tmp_path):
    # the IPGuard-like baseline once assumed flat inputs and failed on the CNN's 8x8x1 images
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--n", "64", "--tasks", "classification", "--classifier", "cnn",
         "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--no-progress", "--no-plot"],
        check=False, capture_output=True, text=True, timeout=1800, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "piracy_suite.json").read_text())
    assert result["classifier"] == "cnn"
    assert (tmp_path / "cache" / "digits_cnn").is_dir() and not (tmp_path / "cache" / "digits_mlp").exists()
    rows = {r["family"]: r for r in result["rows"]}
    assert rows["permute/rescale"]["tafa"]["auc"] == 1.0
    assert all(0.0 <= r["ipguard"]["auc"] <= 1.0 for r in rows.values())
