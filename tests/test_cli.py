"""The ``tafa`` command as a user runs it: subprocesses, exit codes, one-line errors.

Models are real (tafa_tf.zoo, saved with model.save) and shared through the memoized
``trained`` fixture; each subprocess pays TensorFlow's import (~5 s), so the checks
are grouped into few invocations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tafa_tf.cli import _common as c

TIMEOUT = 300


def tafa_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m tafa_tf.cli ARGS`` as a user would, capturing text output."""
    full_env = {k: v for k, v in os.environ.items() if k != c.DEBUG_ENV}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tafa_tf.cli", *args], check=False, cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, command: str, code: int, match: str) -> None:
    """The failure is exactly one line on stderr, names the command, and has the documented code."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"tafa {command}: error: "), lines[0]
    assert match in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def models(trained, tmp_path_factory) -> dict[str, Path]:
    """owner.keras, a clearly pirated copy (float16), innocents (another seed, and a noised copy of it)."""
    from tafa_tf import piracy

    root = tmp_path_factory.mktemp("cli_models")
    owner = trained("digits_mlp", seed=0)
    innocent = trained("digits_mlp", seed=1)
    (root / "pirated").mkdir()
    (root / "innocent").mkdir()
    paths = {
        "owner": root / "owner.keras",
        "pirated": root / "pirated" / "f16.keras",
        "pirated2": root / "pirated" / "int8.keras",
        "innocent": root / "innocent" / "seed1.keras",
        "innocent2": root / "innocent" / "seed1_noised.keras",
    }
    owner.save(paths["owner"])
    piracy.quantize(owner, "float16").save(paths["pirated"])
    piracy.quantize(owner, "int8").save(paths["pirated2"])
    innocent.save(paths["innocent"])
    # a copy of an innocent model is still innocent with respect to the owner
    piracy.add_noise(innocent, 0.05, seed=3).save(paths["innocent2"])
    paths["root"] = root
    return paths


@pytest.fixture(scope="module")
def fingerprint_file(models) -> Path:
    """The owner's fingerprint, made through the CLI (this is also the fingerprint test)."""
    out = models["root"] / "owner.tafa"
    proc = tafa_cli("fingerprint", str(models["owner"]), "--task", "classification", "--domain", "box:0,1",
                    "--n", "64", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["out"] == str(out) and summary["task"] == "classification" and summary["points"] > 8
    return out


def test_help_lists_commands_exit_codes_and_examples():
    proc = tafa_cli("--help")
    assert proc.returncode == 0
    for command in ("inspect", "fingerprint", "verify", "calibrate", "scan", "demo"):
        assert command in proc.stdout
    for code, _ in c.EXIT_CODES:
        assert f"  {code:>3}  " in proc.stdout
    for command in ("inspect", "fingerprint", "verify", "calibrate", "scan", "demo"):
        sub = tafa_cli(command, "--help")
        assert sub.returncode == 0 and "examples:" in sub.stdout and "exit codes:" in sub.stdout, command


@pytest.mark.parametrize("argv, match", [
    (["demo", "--innocents", "11"], "argument --innocents: expected a whole number from 1 to 10. Received: '11'"),
    (["demo", "--n", "4"], "argument --n: expected a whole number of at least 8. Received: '4'"),
    (["calibrate", "fp.tafa", "--positives", "a", "--negatives", "b", "--cv", "1"],
     "argument --cv: expected a whole number of at least 2. Received: '1'"),
    (["scan", "fp.tafa", "--workers", "0"], "argument --workers: expected a whole number of at least 1"),
])
def test_number_arguments_are_checked_while_parsing(argv, match, capsys):
    from tafa_tf.cli import build_parser

    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == c.EXIT_USAGE
    assert match in capsys.readouterr().err


def test_console_script_is_installed_and_usage_errors_are_one_line(tmp_path):
    script = shutil.which("tafa")
    if script is None:
        pytest.skip("the tafa console script is not installed (pip install -e .)")
    proc = subprocess.run(check=False, args=[script, "fingerprint", "owner.keras", "--domain", "box:2,1"], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert_one_line_error(proc, "fingerprint", c.EXIT_USAGE, "Received: 'box:2,1'")
    proc = subprocess.run([script], check=False, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == c.EXIT_USAGE and "COMMAND" in proc.stderr


def test_help_and_missing_files_are_answered_without_importing_tensorflow(fingerprint_file, tmp_path):
    """`import tafa_tf` loads names on first use, so --help and a mistyped path are said at
    once, not after TensorFlow's import (seconds); the library's API is unchanged."""
    code = (
        "import sys, contextlib, io\n"
        "import tafa_tf\n"
        "from tafa_tf.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    codes = [main(['inspect', {str(tmp_path / 'x.keras')!r}]),\n"
        f"             main(['fingerprint', {str(tmp_path / 'a.keras')!r}, '--base', {str(tmp_path / 'b.keras')!r}]),\n"
        f"             main(['verify', {str(fingerprint_file)!r}, {str(tmp_path / 's.keras')!r}])]\n"
        "print(codes, 'tensorflow' in sys.modules, err.getvalue().count('does not exist'),\n"
        "      err.getvalue().count('No such model file'))\n"
        "print(tafa_tf.fingerprint.__module__, tafa_tf.domains.Box.__name__, tafa_tf.verification.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first == f"[{c.EXIT_INPUT}, {c.EXIT_INPUT}, {c.EXIT_SUSPECT}] False 2 1", proc.stdout
    assert second == "tafa_tf.creation Box tafa_tf.verification", proc.stdout  # names and submodules on use
    import tafa_tf

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tafa_tf.nope  # noqa: B018


def test_keras_set_to_another_backend_is_one_clear_line_before_keras_fails(tmp_path):
    # with KERAS_BACKEND=jax (and no jax installed) `tafa demo` ended in "internal error:
    # ModuleNotFoundError: No module named 'jax'"; with jax installed, the library's
    # TensorFlow passes would have met JAX arrays
    proc = tafa_cli("demo", env={"KERAS_BACKEND": "jax"})
    assert_one_line_error(proc, "demo", c.EXIT_INPUT, "Keras is set to the 'jax' backend (KERAS_BACKEND=jax)")
    assert "KERAS_BACKEND=tensorflow" in proc.stderr
    home = tmp_path / "keras_home"
    home.mkdir()
    (home / "keras.json").write_text('{"backend": "torch"}')
    settings = {"KERAS_BACKEND": "", "KERAS_HOME": str(home)}
    proc = tafa_cli("inspect", str(tmp_path / "x.keras"), env=settings)
    assert_one_line_error(proc, "inspect", c.EXIT_INPUT, f"'torch' backend (\"backend\" in {home / 'keras.json'})")
    code = (
        "import tafa_tf\n"
        "from adapters import load_suspect\n"
        "from tafa_tf.errors import BackendError\n"
        "print(tafa_tf.domains.Box(0.0, 1.0).low)\n"  # what needs no Keras still works
        "for use in (lambda: tafa_tf.fingerprint, lambda: load_suspect('x.keras')):\n"
        "    try:\n"
        "        use()\n"
        "    except BackendError as e:\n"
        "        print('torch' in str(e))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          env={**os.environ, **settings})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.0", "True", "True"], proc.stdout


def test_inspect_prints_sites_and_json_and_fails_on_a_missing_model(models, tmp_path):
    proc = tafa_cli("inspect", str(models["owner"]), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["coverage"]["n_units"] == 96 and info["coverage"]["complete"] is True
    assert_one_line_error(tafa_cli("inspect", str(tmp_path / "missing.keras")), "inspect", c.EXIT_INPUT,
                          "does not exist")

    import keras

    no_relu = tmp_path / "no_relu.keras"
    keras.Sequential([keras.Input((4,)), *[keras.layers.Dense(4, activation="tanh") for _ in range(3)],
                      keras.layers.Dense(4, activation="sigmoid"), keras.layers.Dense(2)]).save(no_relu)
    proc = tafa_cli("inspect", str(no_relu))
    assert_one_line_error(proc, "inspect", c.EXIT_INPUT, "not piecewise linear: 4 layers (3 tanh, 1 sigmoid)")
    assert "activation=tanh" not in proc.stderr  # the error counts kinds; stdout lists each layer
    assert sum(line.startswith("  dense") for line in proc.stdout.splitlines()) == 4, proc.stdout


def test_fingerprint_writes_a_loadable_file_and_refuses_to_overwrite(models, fingerprint_file):
    import tafa_tf as tafa

    fp = tafa.Fingerprint.load(fingerprint_file)
    assert fp.task == "classification" and fp.input_shape == (64,)
    proc = tafa_cli("fingerprint", str(models["owner"]), "--out", str(fingerprint_file))
    assert_one_line_error(proc, "fingerprint", c.EXIT_INPUT, "--force")


@pytest.mark.slow  # several TensorFlow-importing subprocesses; run by .ci/run
def test_fingerprint_with_a_public_base_asks_which_side_a_suspect_takes(models, tmp_path):
    import tafa_tf as tafa

    # the innocent model stands in for a public base the owner was fine-tuned from
    out = tmp_path / "owner_base.tafa"
    proc = tafa_cli("fingerprint", str(models["owner"]), "--base", str(models["innocent"]), "--domain", "box:0,1",
                    "--n", "32", "-o", str(out), "--json")  # -o: the short form of --out
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["base"] == str(models["innocent"])
    assert tafa.Fingerprint.load(out).yb is not None
    base_itself = tafa_cli("verify", str(out), str(models["innocent"]), "--json")
    assert base_itself.returncode == c.EXIT_OK, base_itself.stderr
    assert json.loads(base_itself.stdout)["report"]["features"]["owner_side"] == 0.0
    missing = tafa_cli("fingerprint", str(models["owner"]), "--base", str(tmp_path / "nope.keras"),
                       "--out", str(tmp_path / "x.tafa"))
    assert_one_line_error(missing, "fingerprint", c.EXIT_INPUT, "nope.keras")


@pytest.mark.slow
def test_fingerprint_grows_points_from_batchnorm_samples_or_says_why_not(models, tmp_path):
    import tafa_tf as tafa
    from test_inversion import _bn_cnn

    path = tmp_path / "bn_cnn.keras"
    _bn_cnn(epochs=2).save(path)
    out = tmp_path / "bn_cnn.tafa"
    proc = tafa_cli("fingerprint", str(path), "--batchnorm-samples", "--domain", "box:0,1", "--n", "16",
                    "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["batchnorm_samples"] is True
    fp = tafa.Fingerprint.load(out)
    assert fp.n_points == 16 and fp.input_shape == (8, 8, 1)
    plain = tafa_cli("fingerprint", str(models["owner"]), "--batchnorm-samples", "-o", str(tmp_path / "mlp.tafa"))
    assert_one_line_error(plain, "fingerprint", c.EXIT_INPUT, "no BatchNormalization layer")


def test_verify_exit_codes_tell_pirated_from_innocent(models, fingerprint_file):
    pirated = tafa_cli("verify", str(fingerprint_file), str(models["pirated"]), "--json")
    innocent = tafa_cli("verify", str(fingerprint_file), str(models["innocent"]), "--json")
    assert pirated.returncode == c.EXIT_PIRATED, pirated.stderr
    # an independently trained model is never accused; uncalibrated it is cleared or left uncertain
    assert innocent.returncode in (c.EXIT_OK, c.EXIT_NO_VERDICT), innocent.stderr
    p, i = json.loads(pirated.stdout), json.loads(innocent.stdout)
    assert p["verdict"] == "PIRATED"
    assert i["verdict"] == ("not pirated" if innocent.returncode == c.EXIT_OK else "uncertain")
    assert p["report"]["score"] > i["report"]["score"]
    assert p["report"]["source"]["format"] == "keras" and p["report"]["queries"] > 0
    human = tafa_cli("verify", str(fingerprint_file), str(models["pirated"]))
    assert human.returncode == c.EXIT_PIRATED and human.stdout.startswith("PIRATED (uncalibrated): score")


def test_verify_bad_inputs_are_one_line_with_their_codes(models, fingerprint_file, tmp_path):
    broken = tmp_path / "broken.tafa"
    broken.write_bytes(fingerprint_file.read_bytes()[:200])  # truncated
    assert_one_line_error(tafa_cli("verify", str(broken), str(models["pirated"])), "verify", c.EXIT_INPUT,
                          "Cannot read the fingerprint")
    missing = tafa_cli("verify", str(fingerprint_file), str(tmp_path / "nope.keras"))
    assert_one_line_error(missing, "verify", c.EXIT_SUSPECT, "Cannot load the suspect")
    debug = tafa_cli("verify", str(broken), str(models["pirated"]), env={c.DEBUG_ENV: "1"})
    assert debug.returncode == c.EXIT_INPUT and "Traceback" in debug.stderr


@pytest.mark.slow  # several TensorFlow-importing subprocesses; run by .ci/run
def test_scan_ranks_a_folder_and_flags_the_copy(models, fingerprint_file, tmp_path):
    proc = tafa_cli("scan", str(fingerprint_file), str(models["pirated"].parent), str(models["innocent"]),
                    str(tmp_path / "nope.keras"), "--json")
    assert proc.returncode == c.EXIT_PIRATED, proc.stderr
    result = json.loads(proc.stdout)
    entries = result["entries"]
    assert len(entries) == 4 and result["pirated"] >= 2 and result["errors"] == 1
    assert entries[-1]["ref"].endswith("nope.keras") and entries[-1]["status"] == "error"
    scores = [e["score"] for e in entries[:3]]
    assert scores == sorted(scores, reverse=True)
    assert entries[2]["ref"].endswith("seed1.keras") and entries[2]["pirated"] is not True  # cleared or uncertain
    table = tafa_cli("scan", str(fingerprint_file), str(models["pirated"]), str(models["innocent"]))
    assert table.returncode == c.EXIT_PIRATED and "judged pirated" in table.stdout.splitlines()[-1]
    (tmp_path / "empty").mkdir()
    assert_one_line_error(tafa_cli("scan", str(fingerprint_file), str(tmp_path / "empty")), "scan",
                          c.EXIT_USAGE, "holds no model")


def test_scan_reads_a_folder_of_tflite_files(trained, fingerprint_file, tmp_path):
    """A folder of TensorFlow Lite files (a float16 copy, as shipped to phones) is expanded and scanned."""
    from tafa_tf import piracy

    folder = tmp_path / "phones"
    folder.mkdir()
    (folder / "copy.tflite").write_bytes(piracy.to_tflite(trained("digits_mlp", seed=0), "float16"))
    proc = tafa_cli("scan", str(fingerprint_file), str(folder), "--json")
    assert proc.returncode == c.EXIT_PIRATED, proc.stderr
    (entry,) = json.loads(proc.stdout)["entries"]
    assert entry["ref"].endswith("copy.tflite") and entry["format"] == "tflite" and entry["pirated"] is True


@pytest.mark.slow  # several TensorFlow-importing subprocesses; run by .ci/run
def test_calibrate_stores_the_calibration_and_draws_the_roc(models, fingerprint_file, tmp_path):
    import tafa_tf as tafa

    out, plot = tmp_path / "calibrated.tafa", tmp_path / "roc.png"
    proc = tafa_cli("calibrate", str(fingerprint_file), "--positives", str(models["pirated"].parent),
                    "--negatives", str(models["innocent"].parent), "--cv", "2", "--target-fpr", "0.05",
                    "-o", str(out), "--plot", str(plot), "--json")  # -o: the short form of --out
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["positives"] == 2 and summary["negatives"] == 2 and 0 <= summary["auc"] <= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fp = tafa.Fingerprint.load(out)
    assert fp.calibration is not None and fp.calibration.threshold == pytest.approx(summary["threshold"])
    assert summary["combine"] == "score" and fp.calibration.feature_names_ == ["default_score"]
    assert summary["base_answers"] is False and fp.yb is None
    # --base: a fingerprint made without a base gets the base's answers (the innocent stands for the base)
    with_base = tafa_cli("calibrate", str(fingerprint_file), "--positives", str(models["pirated"].parent),
                         "--negatives", str(models["innocent"].parent), "--base", str(models["innocent"]),
                         "--combine", "features", "--cv", "2", "--no-plot", "-o", str(out), "--json")
    assert with_base.returncode == 0, with_base.stderr
    assert json.loads(with_base.stdout)["base_answers"] is True
    fp = tafa.Fingerprint.load(out)
    assert fp.yb is not None and "owner_side" in fp.calibration.feature_names_
    too_few = tafa_cli("calibrate", str(fingerprint_file), "--positives", str(models["pirated"]),
                       "--negatives", str(models["innocent"]), "--cv", "2", "--no-plot", "--out", str(out))
    assert_one_line_error(too_few, "calibrate", c.EXIT_INPUT, "Cannot calibrate")


@pytest.mark.slow
def test_demo_prints_a_table_of_suspects_and_a_final_line():
    proc = tafa_cli("demo", "--n", "64")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["suspect", "truth", "score", "verdict"]
    names = [line.split()[0] for line in lines[2:-2]]
    assert names == ["fine-tuned", "pruned", "int8", "noised", "permuted", "ensemble", "seed", "seed"]
    assert lines[-1].startswith("caught ") and "pirated copies, cleared " in lines[-1]
    rows = {line.split()[0]: line for line in lines[2:-2]}
    assert "PIRATED" in rows["int8"] and "PIRATED" in rows["permuted"]
