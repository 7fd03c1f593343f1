"""Loading suspects from local files: every format, the safety checks and the errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from adapters_models import (
    FORMAT_NAMES,
    inputs,
    save_model_as,
    tf_ops_tflite,
    tflite_bytes,
    tiny_model,
    write_file_saved_model,
    write_file_tflite,
)

import adapters
from tafa_tf import adapters_check
from adapters import (
    MissingDependencyError,
    ModelLoadError,
    ModelTooLargeError,
    NoModelError,
    UnsafeModelError,
    load_suspect,
)
from adapters import safety as adapters_safety
from adapters.hub import parse_hub_ref
from adapters.safety import TFLITE_RUNTIMES
from adapters.scanning import HubQuery, list_hub_refs
from tafa_tf.errors import SuspectShapeError, TafaError

FORMATS = list(FORMAT_NAMES)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The tiny model saved in every format, plus Lambda and malicious variants."""
    root = tmp_path_factory.mktemp("models")
    model = tiny_model(0)
    lam = tiny_model(1, lambda_layer=True)
    out = {"model": model, "lambda_model": lam, "root": root}
    for fmt in FORMATS:
        out[fmt] = save_model_as(model, fmt, root / fmt)
        if fmt not in ("saved_model", "tflite"):  # neither keeps a Lambda's Python code
            out["lambda_" + fmt] = save_model_as(lam, fmt, root / ("lambda_" + fmt))
    out["pwned_target"] = root / "pwned.txt"
    out["evil_saved_model"] = write_file_saved_model(root / "evil_sm", out["pwned_target"])
    out["evil_tflite"] = write_file_tflite(root / "evil_tflite" / "model.tflite", out["pwned_target"])
    return out


@pytest.fixture(params=TFLITE_RUNTIMES)
def tflite_runtime(request, monkeypatch):
    """Each TensorFlow Lite runtime in turn, as the only one the loader may take (skipped where
    it is not installed: TensorFlow drops ``tf.lite.Interpreter`` after 2.21)."""
    monkeypatch.setattr("adapters.safety.TFLITE_RUNTIMES", (request.param,))
    try:
        runtime = adapters_safety.tflite_runtime()[2]
    except MissingDependencyError:
        pytest.skip(f"{request.param} provides no TensorFlow Lite interpreter here")
    return runtime


def test_tflite_loads_in_each_runtime_and_says_which(saved, tflite_runtime):
    suspect = load_suspect(saved["tflite"], modelscan=False)
    x = inputs(7)
    np.testing.assert_allclose(suspect(x), saved["model"](x).numpy(), rtol=1e-5, atol=1e-6)
    assert suspect.scan_report["tflite_runtime"] == tflite_runtime


def test_litert_comes_first_and_none_at_all_is_a_missing_dependency(monkeypatch):
    assert TFLITE_RUNTIMES[0] == "ai_edge_litert"
    monkeypatch.setattr("adapters.safety.TFLITE_RUNTIMES", ("no_such_runtime",))
    with pytest.raises(MissingDependencyError, match=r"pip install 'tafa-tf\[tflite\]'"):
        adapters_safety.tflite_runtime()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_loads_from_disk_and_answers_like_the_model(saved, fmt):
    suspect = load_suspect(saved[fmt])
    x = inputs(7)
    np.testing.assert_allclose(suspect(x), saved["model"](x).numpy(), rtol=1e-5, atol=1e-6)
    assert suspect.format == fmt
    assert suspect.input_shape == (4,) and suspect.output_shape == (3,)
    assert suspect.commit_sha is None
    assert all(len(f.sha256) == 64 and f.size > 0 for f in suspect.files)
    assert (suspect.model is None) == (fmt in ("saved_model", "tflite"))
    json.dumps(suspect.to_dict())


def test_a_folder_holding_one_model_file_is_found(saved):
    suspect = load_suspect(saved["keras"].parent)
    assert suspect.format == "keras" and [f.path for f in suspect.files] == ["model.keras"]


def test_large_batches_are_split_and_reassembled(saved):
    suspect = load_suspect(saved["keras"], batch_size=2)
    x = inputs(9)
    np.testing.assert_allclose(suspect(x), saved["model"](x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_model_with_several_outputs_loads_and_is_verified_on_the_fitting_one(tmp_path, owner):
    """A copy republished beside a second output (here a 1-value head) is loaded, answers a
    dict of outputs, and verify scores the one that fits the owner's."""
    import keras

    import tafa_tf as tafa

    inp = keras.Input((64,))
    two = keras.Model(inp, {"logits": keras.Sequential([owner], name="copy")(inp), "value": keras.layers.Dense(1)(inp)})
    suspect = load_suspect(save_model_as(two, "keras", tmp_path / "two"))
    answers = suspect(np.zeros((3, 64), "float32"))
    assert sorted(answers) == ["logits", "value"] and answers["logits"].shape == (3, 10)
    fp = tafa.fingerprint(owner, task="classification", n=16, domain=tafa.domains.Box(0.0, 1.0), seed=0)
    report = tafa.verify(fp, suspect)
    assert report.pirated is True and any("'logits' answer(s) like the owner's" in w for w in report.warnings)


def test_wrong_input_shape_is_a_suspect_shape_error(saved):
    suspect = load_suspect(saved["keras"])
    with pytest.raises(SuspectShapeError, match=r"Received: x.shape=\(2, 5\)"):
        suspect(np.zeros((2, 5), "float32"))


@pytest.mark.parametrize("fmt", ["keras", "keras_folder", "h5"])
def test_lambda_model_is_refused_by_default_and_loads_only_when_trusted(saved, fmt):
    with pytest.raises(UnsafeModelError, match=r"trust_code=True.*Received: layers=\['Lambda"):
        load_suspect(saved["lambda_" + fmt])
    suspect = load_suspect(saved["lambda_" + fmt], trust_code=True)
    x = inputs(3)
    np.testing.assert_allclose(suspect(x), saved["lambda_model"](x).numpy(), rtol=1e-5, atol=1e-6)
    assert [name.split("(")[0] for name in suspect.scan_report["code_layers"]] == ["Lambda"]


def test_lambda_model_is_refused_by_keras_safe_mode_even_without_our_scans(saved, monkeypatch):
    monkeypatch.setattr("adapters.load.check_keras_code", lambda *a, **k: [])
    with pytest.raises(UnsafeModelError, match="safe mode"):
        load_suspect(saved["lambda_keras"], modelscan=False)


def test_modelscan_alone_refuses_a_lambda_model(saved, monkeypatch):
    monkeypatch.setattr("adapters.load.check_keras_code", lambda *a, **k: [])
    with pytest.raises(UnsafeModelError, match=r"modelscan found.*'operator': 'Lambda'"):
        load_suspect(saved["lambda_keras"])


def test_saved_model_with_write_file_op_is_refused_and_never_runs(saved):
    with pytest.raises(UnsafeModelError, match=r"Received: unsafe_ops=\['WriteFile'\]"):
        load_suspect(saved["evil_saved_model"])
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        load_suspect(saved["evil_saved_model"], trust_code=True, modelscan=False)
    assert not saved["pwned_target"].exists()


def test_tflite_with_a_tensorflow_write_file_op_is_refused_and_never_runs(saved, tflite_runtime):
    """A .tflite file may carry TensorFlow ops (Flex ops) that a Flex delegate would run;
    WriteFile among them is refused as unsafe, whatever trust_code says."""
    for trust in (False, True):
        with pytest.raises(UnsafeModelError, match=r"Received: unsafe_ops=\['WriteFile'\]"):
            load_suspect(saved["evil_tflite"], trust_code=trust, modelscan=False)
    assert not saved["pwned_target"].exists()


def test_tflite_with_other_tensorflow_ops_is_a_load_error_naming_them(tmp_path, tflite_runtime):
    import tensorflow as tf

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            return tf.strings.to_number(tf.strings.as_string(x))

    path = tf_ops_tflite(Strings(), tmp_path / "flex.tflite")
    with pytest.raises(ModelLoadError, match=r"needs TensorFlow operators.*Received: tf_ops=\['AsString'"):
        load_suspect(path, modelscan=False)


def test_truncated_tflite_is_a_load_error(tmp_path, saved, tflite_runtime):
    path = tmp_path / "cut.tflite"
    path.write_bytes(saved["tflite"].read_bytes()[:300])
    with pytest.raises(ModelLoadError, match=r"Could not read the TensorFlow Lite model .*cut.tflite"):
        load_suspect(path, modelscan=False)


def test_tflite_converted_for_one_row_at_a_time_answers_whole_batches(tmp_path, tflite_runtime):
    """A model converted with a batch of 1 in its graph (here its Flatten becomes a
    reshape to [1, 4], which no larger batch fits) answers any batch, row by row."""
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Conv2D(3, 1, activation="relu"), keras.layers.Flatten(), keras.layers.Dense(3)]
    one_row = keras.Sequential([keras.Input(batch_shape=(1, 2, 2, 1)), *layers])
    path = tmp_path / "one_row.tflite"
    path.write_bytes(tflite_bytes(one_row))
    suspect = load_suspect(path, modelscan=False)
    x = np.random.default_rng(0).standard_normal((5, 2, 2, 1)).astype("float32")
    expected = keras.Sequential([keras.Input((2, 2, 1)), *layers])(x).numpy()
    np.testing.assert_allclose(suspect(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["digits_mlp", *(pytest.param(k, marks=pytest.mark.slow)
                                                   for k in ("diabetes_mlp", "digits_decoder", "friedman_mlp"))])
def test_an_int8_tflite_copy_is_scored_above_int8_innocents_and_no_innocent_is_accused(tmp_path, trained, kind):
    """The int8 model a pirate gets from TensorFlow's post-training quantization (weights,
    activations, input and output all int8) is loaded from its .tflite file. Its answers
    sit on the int8 grid, far coarser than the owner's probes, so its kinks cannot be
    read; in their place, its answers lie within two grid steps of the owner's
    (lattice_agreement), an independent model's do not, and no independent model is
    accused (make_friedman1's, whose outputs all but match the owner's, scored 0.95-0.98
    and were accused when the kinks were left out without a stand-in)."""
    import tafa_tf as tafa
    from tafa_tf import zoo

    task = zoo.TASK_OF_KIND[kind]
    data = zoo.data_for(kind)
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((200, zoo.LATENT_DIM)) if task == "generation" else data.x_train[:200])
    domain = tafa.domains.Box(0.0, 1.0) if kind in ("digits_mlp", "friedman_mlp") else None
    owner = trained(kind)
    fp = tafa.fingerprint(owner, task=task, n=32, domain=domain, seed=0)
    reports = {}
    for name, model in (("copy", owner), ("innocent", trained(kind, seed=1))):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(tflite_bytes(model, int8_samples=np.asarray(samples, "float32")))
        suspect = load_suspect(path, modelscan=False)
        assert suspect.format == "tflite" and suspect.input_shape == model.input_shape[1:]
        if task == "classification":
            accuracy = np.mean(suspect(data.x_test).argmax(axis=1) == data.y_test)
            assert accuracy > 0.9, f"the int8 conversion broke the model (accuracy {accuracy:.2f})"
        reports[name] = tafa.verify(fp, suspect)
        assert any("quantized" in w for w in reports[name].warnings), reports[name].warnings
    scores = {k: (r.score, r.features.get("lattice_agreement")) for k, r in reports.items()}
    assert reports["copy"].features["lattice_agreement"] > 0.8, scores
    assert reports["innocent"].features.get("lattice_agreement", 0.0) < 0.5, scores
    assert reports["innocent"].pirated is not True, scores
    assert reports["copy"].score > reports["innocent"].score + 0.15, scores
    if kind != "digits_decoder":
        assert reports["copy"].pirated is True, scores


def test_a_dynamic_range_tflite_copy_is_flagged(tmp_path, owner, fp, trained):
    """TensorFlow Lite's default optimization (int8 weights, each layer's inputs rounded
    to 8 bits as it runs) adds noise finer than the probes but coarser than the owner's
    bends: the copy's kink similarity falls under the 0.5 of a model with no bend there,
    which counts as no bend, not as evidence of innocence (it scored 0.84 before); and that
    noise is all that parts its answers from the owner's (noise_agreement), which an
    independent model converted the same way does not show."""
    import tafa_tf as tafa
    from tafa_tf import piracy

    reports = {}
    for name, model in (("copy", owner), ("innocent", trained("digits_mlp", 1))):
        path = tmp_path / f"dynamic-{name}.tflite"
        path.write_bytes(piracy.to_tflite(model, "dynamic"))
        reports[name] = tafa.verify(fp, load_suspect(path, modelscan=False))
    copy, innocent = reports["copy"], reports["innocent"]
    assert copy.features["kink_similarity"] < 0.5
    assert copy.features["noise_agreement"] > 0.5, copy.features
    assert copy.pirated is True and copy.score > 0.95, (copy.score, copy.features)
    assert innocent.features.get("noise_agreement", 0.0) < 0.2, innocent.features
    assert innocent.pirated is not True, (innocent.score, innocent.features)


def test_oversize_model_is_refused(saved):
    with pytest.raises(ModelTooLargeError, match=r"max_bytes=1000"):
        load_suspect(saved["keras_folder"], max_bytes=1000)


def test_corrupt_keras_file_is_a_load_error(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ModelLoadError, match="zip archive"):
        load_suspect(bad)


def test_truncated_h5_is_a_load_error(saved, tmp_path):
    bad = tmp_path / "cut.h5"
    bad.write_bytes(saved["h5"].read_bytes()[:2000])
    with pytest.raises(ModelLoadError, match="Received"):
        load_suspect(bad, modelscan=False)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Received: ref="):
        load_suspect(tmp_path / "nope.keras")
    (tmp_path / "README.md").write_text("no model here")
    with pytest.raises(NoModelError, match=r"Received: files=\['README.md'\]"):
        load_suspect(tmp_path)


def test_weights_only_h5_is_not_a_model(saved, tmp_path):
    saved["model"].save_weights(tmp_path / "only.weights.h5")
    with pytest.raises(NoModelError):
        load_suspect(tmp_path)


def test_several_models_need_a_filename(saved):
    two = saved["root"] / "two"
    two.mkdir(exist_ok=True)
    for name in ("a.keras", "b.keras"):
        (two / name).write_bytes(saved["keras"].read_bytes())
    with pytest.raises(NoModelError, match=r"pass filename=.*\['a.keras', 'b.keras'\]"):
        load_suspect(two)
    assert load_suspect(two, filename="b.keras").files[0].path == "b.keras"


@pytest.fixture
def without_modelscan(monkeypatch):
    """Make ``import modelscan`` fail, as on a machine without the [scan] extra."""
    monkeypatch.setitem(sys.modules, "modelscan", None)
    monkeypatch.setitem(sys.modules, "modelscan.modelscan", None)
    monkeypatch.setitem(sys.modules, "modelscan._version", None)


def test_missing_modelscan_names_the_extra(saved, without_modelscan):
    with pytest.raises(MissingDependencyError, match=r"tafa-tf\[scan\]"):
        load_suspect(saved["keras"])
    assert load_suspect(saved["keras"], modelscan=False).format == "keras"


def test_scan_is_a_deprecated_alias_of_modelscan(saved, without_modelscan):
    # without modelscan installed, only modelscan=True can fail: the alias must map onto it
    with pytest.warns(DeprecationWarning, match=r"pass modelscan=.*Received: scan=False"):
        assert load_suspect(saved["keras"], scan=False).format == "keras"
    with pytest.warns(DeprecationWarning), pytest.raises(MissingDependencyError):
        load_suspect(saved["keras"], scan=True)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        load_suspect(saved["keras"], scan=True, modelscan=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"batch_size": -1}, "batch_size"),
        ({"revision": "main"}, "hf://"),
    ],
)
def test_bad_arguments(saved, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_suspect(saved["keras"], **kwargs)


@pytest.mark.parametrize(
    "ref", ["hf://", "hf://org", "hf://org/name/extra", "hf://org/name@", "org/name"]
)
def test_malformed_hub_refs(ref):
    with pytest.raises(ValueError, match="hf://ORG/NAME"):
        parse_hub_ref(ref)


def test_hub_ref_revision_parses():
    ref = parse_hub_ref("hf://org/name@v1.0")
    assert (ref.repo_id, ref.revision, str(ref)) == ("org/name", "v1.0", "hf://org/name@v1.0")


def test_errors_are_tafa_errors_and_builtins():
    from adapters import errors

    pairs = {
        errors.RepoNotFoundError: FileNotFoundError,
        errors.RevisionNotFoundError: FileNotFoundError,
        errors.GatedRepoError: PermissionError,
        errors.NoModelError: FileNotFoundError,
        errors.ModelLoadError: ValueError,
        errors.UnsafeModelError: ValueError,
        errors.ModelTooLargeError: ValueError,
        errors.HubConnectionError: ConnectionError,
        errors.MissingDependencyError: ImportError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, TafaError) and issubclass(cls, builtin)


def test_package_carries_the_marker():
    assert adapters.__tafa_tf_adapters__ is True


_CLASH_PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("clash", sys.argv[1])
clash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clash)
try:
    module = clash.require_tafa_adapters()
except ImportError as e:
    print("ImportError:", e)
else:
    print("ours:", module.__tafa_tf_adapters__)
"""


def _probe_adapters(*path: Path) -> str:
    clash_file = Path(adapters_check.__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    out = subprocess.run(
        [sys.executable, "-c", _CLASH_PROBE, str(clash_file)],
        env=env,
        cwd=path[0],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip()


def test_another_adapters_package_shadowing_ours_is_explained(tmp_path):
    fake = tmp_path / "site" / "adapters"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("class AutoAdapterModel:\n    pass\n")
    ours = Path(adapters.__file__).parent.parent
    message = _probe_adapters(tmp_path / "site", ours)
    assert message.startswith("ImportError: Another package named 'adapters' shadows")
    assert "pip uninstall adapters" in message and str(fake) in message
    assert _probe_adapters(ours) == "ours: True"


def test_hub_listing_passes_the_filters():
    class FakeModel:
        def __init__(self, id):
            self.id = id

    class FakeApi:
        def list_models(self, **kwargs):
            self.kwargs = kwargs
            return [FakeModel("org/a"), FakeModel("org/b")]

    api = FakeApi()
    refs = list_hub_refs(
        HubQuery(library="keras", tags=("digits",), search="mlp", limit=5), api=api
    )
    assert refs == ["hf://org/a", "hf://org/b"]
    assert api.kwargs == {
        "filter": ["keras", "digits"],
        "search": "mlp",
        "author": None,
        "limit": 5,
    }
