"""`tafa calibrate --model --data`: references built from the owner's assets, end to end, and cached.

Slow: each task trains a handful of small reference models (few epochs) in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import tafa_cli

from tafa_tf import piracy, zoo
from tafa_tf.cli import _common as c

CASES = {
    # kind: (task, domain, data as saved in train.npz)
    "digits_mlp": ("classification", "box:0,1", lambda d: {"x": d.x_train, "y": d.y_train}),
    "diabetes_mlp": ("regression", "gaussian:1.0", lambda d: {"x": d.x_train, "y": d.y_train}),
    "digits_decoder": ("generation", "gaussian:1.0", lambda d: {"x": d.x_train}),  # images alone
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CASES))
def test_calibrate_builds_references_from_model_and_data_and_reuses_them(kind, trained, tmp_path):
    task, domain, arrays = CASES[kind]
    owner = trained(kind, epochs=10)
    owner.save(tmp_path / "owner.keras")
    np.savez(tmp_path / "train.npz", **arrays(zoo.data_for(kind)))
    fp_path = tmp_path / "owner.tafa"
    made = tafa_cli("fingerprint", str(tmp_path / "owner.keras"), "--task", task, "--domain", domain, "--n", "32",
                    "--out", str(fp_path))
    assert made.returncode == 0, made.stderr

    args = ("calibrate", str(fp_path), "--model", str(tmp_path / "owner.keras"), "--data", str(tmp_path / "train.npz"),
            "--n-innocent", "4", "--n-pirated", "4", "--epochs", "3", "--cv", "2", "--target-fpr", "0.05",
            "--no-plot", "--json")
    first = tafa_cli(*args, "--progress")
    assert first.returncode == 0, first.stderr
    assert "reference models" in first.stderr  # the progress bar
    summary = json.loads(first.stdout)
    refs = summary["references"]
    assert refs["positives"] == 4 and refs["negatives"] == 4 and refs["built"] == 8 and refs["loaded"] == 0
    assert Path(refs["cache_dir"]).is_dir() and Path(refs["cache_dir"]).parent == tmp_path / "owner.refs"

    again = tafa_cli(*args)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)["references"]
    assert rerun["loaded"] == 8 and rerun["built"] == 0 and rerun["cache_dir"] == refs["cache_dir"]

    # the calibrated fingerprint states its error rates on a pirated copy
    piracy.quantize(owner, "float16").save(tmp_path / "copy.keras")
    verdict = tafa_cli("verify", str(fp_path), str(tmp_path / "copy.keras"), "--json")
    assert verdict.returncode in (c.EXIT_PIRATED, c.EXIT_OK), verdict.stderr
    report = json.loads(verdict.stdout)["report"]
    assert report["calibrated"] is True and report["n_negatives"] == 4 and report["n_positives"] == 4
    assert 0 < report["p_value"] <= 1 and 0 <= report["fpr"] <= report["fpr_upper"] <= 1
