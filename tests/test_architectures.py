"""Real model shapes: a Rescaling front end, a keras.applications backbone under a new head.

The fast tests use a small Keras CNN with Rescaling(1/255) in front, trained on
scikit-learn digits in raw 0..255 pixels; the slow test trains MobileNetV2 (alpha 0.35,
32x32) nested under a GlobalAveragePooling + Dense head, as transfer learning does.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

import tafa_tf as tafa
from tafa_tf import piracy, zoo
from tafa_tf.domains import Box, default_domain


def _rescaling_cnn(seed: int, epochs: int = 12):
    import keras

    data = zoo.digits_data(image=True)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Rescaling(1.0 / 255.0),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train * 255.0, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def rescaling_owner():
    return _rescaling_cnn(0)


def test_default_domain_of_a_rescaling_model_is_the_raw_pixel_range(rescaling_owner):
    dom = default_domain("classification", (8, 8, 1), rescaling_owner)
    assert isinstance(dom, Box) and float(dom.low) == 0.0 and float(dom.high) == pytest.approx(255.0)
    fp = tafa.fingerprint(rescaling_owner, n=32, seed=0)  # no domain: the default says Box(0, 255)
    assert isinstance(fp.domain, Box) and float(fp.domain.high) == pytest.approx(255.0)
    assert fp.n_points == 32 and fp.x.max() <= 255.0 and fp.x.max() > 1.0


def test_rescaling_model_copies_outscore_an_independent_model(rescaling_owner):
    fp = tafa.fingerprint(rescaling_owner, n=64, seed=0)
    reports = [tafa.verify(fp, piracy.quantize(rescaling_owner, d)) for d in ("float16", "int8")]
    innocent = tafa.verify(fp, _rescaling_cnn(1))
    assert min(r.score for r in reports) > innocent.score, ([r.score for r in reports], innocent.score)
    assert all(r.pirated is True for r in reports) and innocent.pirated is not True


def test_the_traced_engine_is_kept_with_the_model_and_reused(rescaling_owner):
    from tafa_tf.introspection import ReluNetwork
    from tafa_tf.synthesis import engine_for

    tafa.fingerprint(rescaling_owner, n=16, seed=0)
    engine = engine_for(ReluNetwork(rescaling_owner))
    traces = {k: f.experimental_get_tracing_count() for k, f in engine._traced.items()}
    tafa.fingerprint(rescaling_owner, n=16, seed=1)
    assert engine_for(ReluNetwork(rescaling_owner)) is engine
    assert {k: f.experimental_get_tracing_count() for k, f in engine._traced.items()} == traces


def test_stable_probe_steps_keep_the_owners_kinks_under_weight_noise(rescaling_owner):
    from tafa_tf.outputs import canonical, model_outputs
    from tafa_tf.probes import KIND_DECISION

    def survival(fp, model) -> float:
        """Share of the bend points where ``model``'s kink is within 50% of the owner's."""
        n, q = fp.n_points, fp.queries()
        o, s = (canonical(model_outputs(m, q).astype("float64"), fp.output_kind) for m in (rescaling_owner, model))
        kink = lambda y: y[n : 2 * n] + y[2 * n :] - 2 * y[:n]  # noqa: E731
        close = np.linalg.norm(kink(s) - kink(o), axis=1) <= 0.5 * np.linalg.norm(kink(o), axis=1)
        return float(close[fp.kind != KIND_DECISION].mean())

    # noise draws the synthesis never saw (its own perturbation is seeded from the fingerprint's seed)
    noisy = [piracy.add_noise(rescaling_owner, 0.05, seed=s) for s in (11, 12)]
    plain = tafa.fingerprint(rescaling_owner, n=64, seed=0, stability_noise=0.0)
    stable = tafa.fingerprint(rescaling_owner, n=64, seed=0, stability_noise=0.05)
    assert np.all(stable.delta >= 0) and np.median(stable.delta) > np.median(plain.delta)
    kept_plain = np.mean([survival(plain, m) for m in noisy])
    kept_stable = np.mean([survival(stable, m) for m in noisy])
    assert kept_stable > kept_plain + 0.05, (kept_plain, kept_stable)


def test_a_tiny_memory_budget_still_fingerprints(rescaling_owner):
    fp = tafa.fingerprint(rescaling_owner, n=16, seed=0, memory_budget_gib=1e-4, pool=64)
    assert fp.n_points == 16


def _bench(name: str = "bench_architectures"):
    """The benchmark script ``benchmarks/<name>.py`` as a module."""
    import importlib.util
    import pathlib
    import sys

    if name in sys.modules:
        return sys.modules[name]
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_boundaries_kept_finds_the_owners_boundaries_in_a_copy_and_not_in_an_independent_model(rescaling_owner):
    """benchmarks/boundaries_kept.py reads a suspect's own units at the fingerprint's bends:
    the owner crosses at every one, a 2%-noise copy at most, an independent model at few."""
    kept = _bench("boundaries_kept").kept_boundaries
    fp = tafa.fingerprint(rescaling_owner, n=32, seed=0)
    own, noisy, other = (kept(fp, m) for m in (rescaling_owner, piracy.add_noise(rescaling_owner, 0.02, seed=3),
                                                  _rescaling_cnn(1)))
    assert own["bends"] == len(fp.bend_points()) > 0 and own["crossed_share"] == 1.0, own
    assert noisy["crossed_share"] >= 0.5 > other["crossed_share"], (noisy, other)


def test_a_random_mobilenetv2_answers_the_same_everywhere_and_is_refused_before_synthesis():
    """MobileNetV2 with its initial BatchNormalization statistics answers bit for bit the
    same at every input (benchmarks: 25 minutes of synthesis rounds at 224x224 before the
    refusal); the seed pool's outputs tell at once."""
    import keras

    from tafa_tf.errors import UnsupportedModelError

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    model = keras.Sequential([keras.Input((32, 32, 3)), backbone, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(UnsupportedModelError, match="answers the same, to float32 rounding, at all") as err:
        tafa.fingerprint(model, task="classification", n=32, domain=Box(0.0, 1.0), seed=0)
    assert "a trained model" in str(err.value)


@pytest.fixture(scope="module")
def mobilenet_pair():
    """A trained MobileNetV2 (alpha 0.35, 32x32) under a head, an independent one, their data."""
    bench = _bench()
    row = bench.ROWS["mnv2_035_32_trained"]
    data = bench.digits_images(row.size, 768)
    return bench.make_model(row, 0, data), bench.make_model(row, 1, data), data


@pytest.mark.slow
def test_trained_mobilenetv2_under_a_head_copies_outscore_independent_models(mobilenet_pair):
    owner, other, data = mobilenet_pair
    fp = tafa.fingerprint(owner, task="classification", n=96, domain=Box(0.0, 1.0), seed=0)
    assert fp.n_points == 96
    reports = {d: tafa.verify(fp, piracy.quantize(owner, d)) for d in ("float16", "int8")}
    # the default (uncalibrated) verdict accuses both. Before stability was judged by margins
    # at decision points and needed 8 stable points per feature, this owner's int8 copy scored
    # 0.82-0.88 at n = 48-96 (uncertain); now 0.872 / 0.931 / 0.930 / 0.904 at n = 48 / 64 /
    # 96 / 128 against lines of 0.870 / 0.882 / 0.872 / 0.874 (docs/results.md).
    for d, r in reports.items():
        assert r.pirated is True, (d, r.score, r.threshold)
    pirated = {d: r.score for d, r in reports.items()}
    pirated["noise 2%"] = tafa.verify(fp, piracy.add_noise(owner, 0.02, seed=3)).score
    innocent = tafa.verify(fp, other)
    assert min(pirated.values()) > innocent.score, (pirated, innocent.score)
    assert innocent.pirated is not True
    # the head's 1280 inputs at the 3N queries, kept (compressed) for head_fit: a new output
    # layer retrained on the owner's frozen backbone (RTLL) is explained by them better than
    # the independently trained model is. Not near 1 as on the MLPs: 1280 features against
    # the 216 training rows of a fold (measured 0.82 against -0.64; 0.67 against -0.88 at n=48)
    assert fp.features is not None and fp.features.shape[0] == 3 * fp.n_points
    rtll = piracy.rtll(owner, data[0][:300], data[1][:300], epochs=10, seed=1)
    fits = {"rtll": tafa.verify(fp, rtll).features["head_fit"], "innocent": innocent.features["head_fit"]}
    print("\nhead_fit", fits)
    assert fits["rtll"] > fits["innocent"] + 0.5, fits
    # the backbone under a new head of five classes (verification mode "new_head"): the copy
    # with the owner's backbone frozen reads its features far better than the independent
    # model does, though (as RTLL above) not near 1 with 1280 features: measured 0.65
    # (uncertain) against 0.00; the new head is never cleared, nor accused on this much
    few = data[1][:600] < 5
    heads = {name: tafa.verify(fp, piracy.new_head(model, data[0][:600][few], data[1][:600][few], 5, epochs=5, seed=2))
             for name, model in (("copy", owner), ("other", other))}
    print("new heads", {k: (round(r.score, 3), r.verdict) for k, r in heads.items()})
    assert heads["copy"].mode == "new_head" and heads["copy"].pirated is not False, heads["copy"].features
    assert heads["copy"].score > heads["other"].score + 0.4, (heads["copy"].features, heads["other"].features)
    assert heads["other"].pirated is None, heads["other"].features
    # re-exported at 64x64 (the same weights in the same architecture built at another size,
    # which a backbone with global pooling takes): rebuilt at the fingerprint's 32x32
    row = dataclasses.replace(_bench().ROWS["mnv2_035_32_trained"], size=64)
    resized = {}
    for name, model in (("copy", owner), ("other", other)):
        at_64 = _bench().build(row, 0)
        at_64.set_weights(model.get_weights())
        resized[name] = tafa.verify(fp, at_64)
    print("re-exported at 64x64", {k: (round(r.score, 3), r.verdict) for k, r in resized.items()})
    assert resized["copy"].pirated is True and resized["copy"].score > 0.99, resized["copy"].score
    assert resized["other"].score == pytest.approx(innocent.score, abs=1e-6)
    # the backbone alone, published as a feature extractor (include_top=False, no pooling):
    # its feature maps pooled over positions are the owner's penultimate features
    backbones = {name: next(layer for layer in model.layers if isinstance(layer, keras.Model))
                 for name, model in (("copy", owner), ("other", other))}
    extracted = {name: tafa.verify(fp, backbone) for name, backbone in backbones.items()}
    print("backbones", {k: (round(r.score, 3), r.verdict) for k, r in extracted.items()})
    assert extracted["copy"].pirated is True and extracted["other"].pirated is None, extracted["other"].features


@pytest.mark.slow
def test_points_from_batchnorm_statistics_keep_a_full_int8_tflite_mobilenetv2_copy_off_the_cleared_side(
        mobilenet_pair, tmp_path):
    """A full-int8 TensorFlow Lite copy, its 8-bit ranges calibrated on data, clips at the
    data-free points (benchmark: 0.23 / 0.31, cleared); points grown from inputs fitted to
    the owner's BatchNormalization statistics keep more of its answers (0.64 / 0.80)."""
    from adapters import load_suspect

    owner, other, data = mobilenet_pair
    paths = {}
    for name, model in (("copy", owner), ("other", other)):
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(piracy.to_tflite(model, "int8", samples=data[0][:200]))
    suspects = {name: load_suspect(path, modelscan=False) for name, path in paths.items()}
    domain = Box(0.0, 1.0)
    plain = tafa.fingerprint(owner, task="classification", n=96, domain=domain, seed=0)
    grown = tafa.fingerprint(owner, task="classification", n=96, domain=domain, seed=0,
                             samples=tafa.batchnorm_samples(owner, 32, domain), sample_fraction=1.0)
    scores = {(fp_name, name): tafa.verify(fp, s).score for fp_name, fp in (("plain", plain), ("grown", grown))
              for name, s in suspects.items()}
    print("\n", scores)
    # measured: 0.18 -> 0.44 (this owner, trained on 768 images; session 40's machine), the
    # independent int8 model 0.01 -> 0.00. On session 41's machine (another CPU: another
    # owner, another converter's rounding) only 0.14-0.18 -> 0.20 against 0.01, and the
    # independent model as it is (not converted) 0.15: the gain is the owner's, not assured.
    # Still short of the accusation line, as on the benchmark rows
    assert scores[("grown", "copy")] > scores[("plain", "copy")], scores
    assert scores[("grown", "copy")] > scores[("grown", "other")] + 0.15, scores
    assert tafa.verify(grown, other).score < scores[("grown", "copy")]  # the independent model as it is


@pytest.mark.slow
def test_calibration_on_references_built_for_a_mobilenetv2_owner_accuses_its_fine_tune(mobilenet_pair, tmp_path):
    """The README sends a CNN's owner to calibration, where the uncalibrated verdict leaves
    fine-tuned copies uncertain: references.build must work on a Functional
    keras.applications owner (it stopped at permute-rescale before), the calibrated verdict
    must accuse the copy, and an accusation resting on two innocents must say so."""
    import keras

    owner, other, (x, y) = mobilenet_pair

    def fit(model, data, seed):
        # about the owner's own number of steps (bench_architectures.make_model: 72), as the
        # README asks; at 24-48 steps a fresh MobileNetV2 is still at chance in inference
        # mode, and build says so (refs.warnings)
        keras.utils.set_random_seed(seed)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        model.fit(data[0], data[1], epochs=4, batch_size=16, verbose=0)
        return model

    fp = tafa.fingerprint(owner, task="classification", n=64, domain=Box(0.0, 1.0), seed=0)
    refs = tafa.references.build(owner, (x, y), n_innocent=2, n_pirated=6, fit=fit, cache_dir=tmp_path,
                                 progress=False)
    assert "noise-1-0" in refs.positive_names  # in place of permute-rescale, which needs a Sequential chain
    assert refs.warnings == []  # trained like the owner: no warning about their accuracy
    # two innocent references (one training run and its half-way checkpoint): two folds
    calibrated = fp.with_calibration(tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=0.05, cv=2))
    copy = piracy.ftal(owner, x[:256], y[:256], epochs=1, learning_rate=1e-4, seed=5)
    reports = {"copy": tafa.verify(calibrated, copy), "other": tafa.verify(calibrated, other)}
    print("\ncalibrated", {k: (round(r.score, 3), r.verdict) for k, r in reports.items()}, calibrated.calibration.threshold_)
    assert reports["copy"].pirated is True and reports["copy"].score > reports["other"].score
    # Two innocents cannot show a 5% false-positive rate, and every accusation says so. On
    # one machine (session 49) the independent model scored 0.498 uncalibrated, above both
    # innocent references (0.38, 0.39) and past the threshold's midpoint towards the
    # weakest reference copy (0.518): accused, at p-value 0.33. Elsewhere it was cleared.
    too_few = [w for w in reports["copy"].warnings if "too few to show the calibration's target" in w]
    assert too_few and "at least 19 innocent models" in too_few[0], reports["copy"].warnings
    if reports["other"].pirated:
        assert reports["other"].p_value >= 1 / 3 and any("too few to show" in w for w in reports["other"].warnings)
