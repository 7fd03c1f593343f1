"""Creating a fingerprint: ``tafa.fingerprint(model)``, from a model to a Fingerprint.

The steps: check the arguments; walk the model (tafa_tf.introspection); pick the task
and the domain; synthesize candidate boundary points (tafa_tf.synthesis); ask the
owner (and its public base, if given) about the probes; drop the points whose bend
the rest of the network silences; keep ``n`` (the most owner-specific ones when a base
is given); and record everything in a Fingerprint (tafa_tf.record).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tafa_tf.bends import constant_to_rounding, rounding_noise
from tafa_tf.domains import Domain, as_domain, default_domain, input_front
from tafa_tf.errors import SAMPLES_HINT, UnsupportedModelError
from tafa_tf.heads import compress, outputs_and_features
from tafa_tf.outputs import TASKS, canonical, output_kind
from tafa_tf.probes import KIND_DECISION, by_query, kinks, probe_inputs, query_rows
from tafa_tf.progress import progress_bar
from tafa_tf.record import Fingerprint

logger = logging.getLogger("tafa_tf")


def model_digest(model: Any) -> str:
    """sha256 over the model's weights, in order: names the exact owner model."""
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def infer_task(coverage_output_activation: str, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
    """Guess the task of a model (what task="auto" does; the choice is logged).

    softmax output -> classification; a single output -> regression; an output larger
    than the input (a latent decoded to an image) -> generation; any other vector
    output -> classification.
    """
    n_in, n_out = int(np.prod(input_shape)), int(np.prod(output_shape))
    if coverage_output_activation in ("softmax", "log_softmax"):
        return "classification"
    if n_out == 1:
        return "regression"
    if n_out > n_in or len(output_shape) > 1:
        return "generation"
    return "classification"


@dataclass
class _Answers:
    """The owner's (and the base's) answers at the candidates' probes, and which candidates count."""

    y0: np.ndarray
    yp: np.ndarray
    ym: np.ndarray
    kink: np.ndarray
    audible: np.ndarray
    canon: np.ndarray  # the owner's canonical answers at all 3m queries
    base: np.ndarray | None  # the base's raw answers at all 3m queries
    base_canon: np.ndarray | None  # and canonical
    features: np.ndarray | None = None  # the owner's penultimate features at all 3m queries (tafa_tf.heads)
    base_features: np.ndarray | None = None  # and the base's


def fingerprint(
    model: Any,
    task: str = "auto",
    n: int = 128,
    domain: Any = None,
    seed: int = 0,
    *,
    samples: Any = None,
    base: Any = None,
    progress: bool = False,
    **synthesis_options: Any,
) -> Fingerprint:
    """Fingerprint a trained Keras ReLU model without any data.

    Args:
        model: a built Sequential or Functional keras.Model with ReLU-family units.
        task: "classification", "regression", "generation" or "auto" (inferred from
            the output layer; see ``infer_task``).
        n: number of boundary points; verification asks a suspect 3*n questions
            (plus a few repeats: ``tafa_tf.probes.query_budget``).
        domain: where inputs live: ``tafa.domains.Box(low, high)``,
            ``tafa.domains.Gaussian(std)`` or a (low, high) pair. None picks the
            documented default (``tafa.domains.default_domain``) and logs it.
        seed: makes the fingerprint reproducible.
        base: optional, recommended when ``model`` was fine-tuned from a public
            model: that base model. Points are then chosen where the owner departs
            from the base (``base_candidates`` candidates per point), the base's
            answers are stored, and verification asks whether the suspect sides
            with the owner or with the base there (``owner_side``, weighted most in
            the score): what tells a copy from another fine-tune of the same base.
        samples: optional: a few public inputs (never the training data needed). A
            share of the points (``sample_fraction``, 0.5) then starts from jittered
            samples, so they lie on boundaries near real inputs, where a copy distilled
            or tuned on data keeps the owner's behaviour best.
        progress: show a progress bar.
        **synthesis_options: fields of ``tafa_tf.synthesis.SynthesisConfig``.

    Returns:
        A Fingerprint; ``fp.save("owner.tafa")`` writes it.

    Raises:
        UnsupportedModelError: no ReLU unit, subclassed model, several inputs/outputs,
            integer inputs, or no boundary inside the domain.
        ValueError: a bad argument.

    Examples:
        >>> fp = tafa.fingerprint(model, task="classification", n=128,
        ...                       domain=tafa.domains.Box(0.0, 1.0))
        >>> fp.save("owner.tafa")
    """
    from tafa_tf.introspection import ReluNetwork, full_precision
    from tafa_tf.synthesis import SynthesisConfig, synthesize

    _check_arguments(task, n, seed, synthesis_options)
    # a model in mixed or half precision is fingerprinted as its weights compute exactly
    model, base = full_precision(model), None if base is None else full_precision(base)
    with progress_bar(total=4, enabled=progress, desc="fingerprint") as bar:
        net = ReluNetwork(model)
        _check_finite_weights(model)
        _warn_partial(net)
        bar.update(1)
        task, domain = _resolve_task_and_domain(net, task, domain)
        config = SynthesisConfig(n=int(n), seed=int(seed), **synthesis_options)
        out_kind = _owner_output_kind(model, net, task, domain, seed)
        _check_base(base, net)
        # With a base, synthesize more candidates and keep those where the owner departs from it.
        pool_config = config if base is None else replace(config, oversample=config.oversample * config.base_candidates,
                                                          stop_at_n=False)
        points = synthesize(net, domain, task, out_kind, pool_config, samples=_check_samples(samples, net.input_shape))
        if not len(points.x):
            raise UnsupportedModelError(
                f"No boundary point was found in {domain!r} (synthesis: {points.stats}). Check that the domain "
                "is where the model works. " + SAMPLES_HINT)
        bar.update(1)
        answers = _ask_owner(model, base, points, out_kind)
        bar.update(1)
        keep = _keep(points, answers, int(n), task, config, seed, domain, out_kind)
        bar.update(1)
    fp = _record(model, base, net, points, answers, keep, task, out_kind, domain, config)
    return replace(fp, fresh=_fresh_answers(model, fp, config.seed))


def _check_arguments(task: Any, n: Any, seed: Any, synthesis_options: dict[str, Any]) -> None:
    from tafa_tf.synthesis import SynthesisConfig

    if task not in (*TASKS, "auto"):
        raise ValueError(f"task must be one of {(*TASKS, 'auto')}. Received: task={task!r}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= 100_000:
        raise ValueError(f"n must be a whole number from 1 to 100000. Received: n={n!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    unknown = set(synthesis_options) - set(SynthesisConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"Unknown synthesis options {sorted(unknown)}; see tafa_tf.synthesis.SynthesisConfig. "
            f"Received: {sorted(synthesis_options)}"
        )


def _warn_partial(net: Any) -> None:
    """Say so when part of the model is not piecewise linear: its fingerprint is partial."""
    from tafa_tf.introspection import count_kinds

    gaps = net.coverage.non_piecewise_linear
    if gaps:
        logger.warning(
            "Part of %r is not piecewise linear: %s. The fingerprint covers its %d ReLU-family units only; "
            "bends of those layers are not fingerprinted (fp.coverage lists them, `tafa inspect` prints them).",
            net.model.name, count_kinds(gaps), net.n_units)


def _check_finite_weights(model: Any) -> None:
    bad = [w.name for w in model.weights if not np.all(np.isfinite(np.asarray(w)))]
    if bad:
        raise UnsupportedModelError(
            f"The model has NaN or inf weights, so it has no usable boundaries. Received: non-finite values in {bad[:5]}"
        )


def _resolve_task_and_domain(net: Any, task: str, domain: Any) -> tuple[str, Domain]:
    if task == "auto":
        task = infer_task(net.coverage.output_activation, net.input_shape, net.output_shape)
        logger.info("task='auto' resolved to %r", task)
    if task == "classification" and int(np.prod(net.output_shape)) == 1:
        raise UnsupportedModelError(
            "task='classification' needs one output per class, and this model answers a single "
            f"value ({net.coverage.output_activation} output: a binary classifier's score). "
            "Fingerprint it with task='regression' (or task='auto'): its score is then compared as a "
            "value, which tells its copies from other models as well. "
            f"Received: output shape {tuple(net.output_shape)}"
        )
    if domain is None:
        domain = default_domain(task, net.input_shape, net.model)
        logger.warning("No domain given: using %r for %s inputs of shape %s (pass domain= to choose).",
                       domain, task, net.input_shape)
    domain = as_domain(domain)
    domain.sample(np.random.default_rng(0), (1, *net.input_shape))  # shape check, clear error
    return task, domain


def _owner_output_kind(model: Any, net: Any, task: str, domain: Domain, seed: int) -> str:
    """What the owner answers, from 8 random inputs, asked through the synthesis engine's traced
    pass that synthesis reuses (an eager call of ResNet50 at 224x224 took 3.3 s)."""
    from tafa_tf.synthesis import _raw_outputs, engine_for

    x = domain.sample(np.random.default_rng(seed), (8, *net.input_shape)).reshape(8, -1).astype("float32")
    probe = _raw_outputs(engine_for(net), x, 8)
    out_kind = output_kind(probe, task, int(np.prod(net.output_shape)))
    if out_kind == "labels":
        raise UnsupportedModelError("The owner's model must output scores or probabilities, not labels.")
    return out_kind


def _ask_owner(model: Any, base: Any, points: Any, out_kind: str) -> _Answers:
    """The owner's answers at every candidate's probes, its kinks, and which bends are heard."""
    queries = probe_inputs(points.x, points.u, points.delta)
    raw, features = _owner_answers(model, points, queries)
    raw_base, base_features = (None, None) if base is None else outputs_and_features(base, queries)
    m = len(points.x)
    y0, yp, ym = raw[:m], raw[m : 2 * m], raw[2 * m :]
    canon = [canonical(y, out_kind) for y in (y0, yp, ym)]
    kink = kinks(*canon, points.delta.astype("float64"))
    slope = np.linalg.norm(canon[1] - canon[2], axis=1) / (2 * points.delta)
    kink_norm = np.linalg.norm(kink, axis=1)
    # A bend that the rest of the network silences leaves no trace in the output: drop it.
    audible = (kink_norm > 1e-3 * np.maximum(slope, 1e-12)) & (kink_norm > 1e-7)
    # decision points are kept for their label flips, when the owner's label does flip across the probe
    audible |= (points.kind == KIND_DECISION) & (yp.argmax(axis=1) != ym.argmax(axis=1))
    base_canon = None if raw_base is None else canonical(raw_base, out_kind)
    return _Answers(y0, yp, ym, kink, audible, np.concatenate(canon), raw_base, base_canon, features, base_features)


def _owner_answers(model: Any, points: Any, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The owner's raw answers at ``queries`` and its penultimate features there (None where
    the model does not expose them): those the synthesis saw, the rest asked now."""
    seen = getattr(points, "seen", None)
    if seen is None:
        return outputs_and_features(model, queries)
    raw = by_query(seen)
    h = None if points.seen_features is None else by_query(points.seen_features)
    no_raw = np.isnan(raw).any(axis=1)
    ask = no_raw | (np.isnan(h).any(axis=1) if h is not None else False)
    if ask.any():
        raw_ask, h_ask = outputs_and_features(model, queries[ask])
        raw[no_raw] = raw_ask[no_raw[ask]]  # answers the synthesis saw stay as they were
        if h is not None and h_ask is not None:
            h[ask] = h_ask
    return raw, h


def _keep(points: Any, answers: _Answers, n: int, task: str, config: Any, seed: int, domain: Domain,
          out_kind: str) -> np.ndarray:
    """Indices of the candidates the fingerprint keeps; refuses when too few are usable."""
    from tafa_tf.synthesis import select, select_owner_specific

    if answers.base_canon is None:
        rng = np.random.default_rng(seed + 1)

        def choose(usable, k):
            return select(points, usable, k, rng)
    else:
        def choose(usable, k):
            return select_owner_specific(answers.canon, answers.base_canon, usable, k, task,
                                         groups=points.seeded, group_share=config.sample_fraction)
    # Stable points first (no base; with one, where the owner departs from it comes first:
    # preferring stable points there took the regressor's RTAL AUC from 0.69 to 0.59).
    stable = _stable(points, config) if answers.base_canon is None else answers.audible
    keep = choose(answers.audible & stable, n)
    if len(keep) < n:  # then the points whose evidence a small weight change may erase
        keep = np.sort(np.concatenate([keep, choose(answers.audible & ~stable, n - len(keep))]))
    if answers.base_canon is not None:
        # the same to float32 rounding (bends.rounding_noise): asked in other batches, the
        # same model's logits differed by 3.4e-6 where the largest were near 10
        apart = np.linalg.norm(answers.canon - answers.base_canon, axis=1)
        if np.all(apart <= rounding_noise(answers.canon, answers.canon, answers.canon)):
            logger.warning("The base answers as the owner (to float32 rounding) at every candidate point, so "
                           "owner_side will carry no evidence. Check that base= is the public model you fine-tuned, "
                           "not the owner.")
    heard = int(points.stats.get("audible", len(keep)))
    if heard < max(8, n // 4) <= len(keep):
        raise UnsupportedModelError(
            f"Only {heard} of the {points.stats.get('candidates')} boundary points found in {domain!r} change the "
            f"model's output by more than float32 rounding (synthesis: {points.stats}); the other points' bends "
            "are rounding noise, alike for any model, so a fingerprint of them could not tell a copy from an "
            "innocent model (measured: MobileNetV2 at 224x224, trained to chance accuracy). The model's output "
            "hardly changes in this domain: check that the domain is where the model works and that it is "
            "trained (a model at chance accuracy is nearly constant), or lower n. " + SAMPLES_HINT
        )
    if len(keep) < max(8, n // 4):
        constant = constant_to_rounding(np.concatenate([answers.y0, answers.yp, answers.ym]), out_kind)
        why = (" The model answers the same at every query (its outputs do not change in this domain to float32 "
               "precision: a randomly initialised network in inference mode often does), so there is nothing "
               "to fingerprint." if constant else "")
        raise UnsupportedModelError(
            f"Only {len(keep)} usable boundary points of {n} wanted were found in {domain!r} "
            f"(synthesis: {points.stats}).{why} Check that the domain is where the model works, or lower n. "
            + SAMPLES_HINT
        )
    if len(keep) < n:
        logger.warning("Only %d of the %d points asked for are usable; the fingerprint has %d.", len(keep), n, len(keep))
    return keep


def _stable(points: Any, config: Any) -> np.ndarray:
    """Per candidate, whether the owner under the step search's stability noise keeps its
    evidence there (tafa_tf.synthesis); all False when not preferred or not known.

    The step search grows each probe until its bend survives that noise, but only up to a
    cap, and keeps the points that never get there: their kinks are lost to any rounding
    of the weights (float16, int8), so they count for a copy no more than for an innocent.
    """
    stable = getattr(points, "stable", None)
    if not config.counts_stable() or stable is None:
        return np.zeros(len(points.x), dtype=bool)
    return np.asarray(stable, dtype=bool)


def _record(
    model: Any, base: Any, net: Any, points: Any, answers: _Answers, keep: np.ndarray, task: str, out_kind: str,
    domain: Domain, config: Any,
) -> Fingerprint:
    """The kept candidates, the owner's answers and the settings, as a Fingerprint."""
    m = len(points.x)
    stats = dict(points.stats, silent_dropped=int((~answers.audible).sum()), kept=int(len(keep)))
    background = _background(model, points, answers, keep, task, out_kind, domain)
    rows = query_rows(keep, m)
    yb = None if answers.base is None else answers.base[rows]
    return Fingerprint(
        x=points.x[keep].astype("float32"),
        u=points.u[keep].astype("float32"),
        delta=points.delta[keep].astype("float32"),
        kind=points.kind[keep].astype("int8"),
        targets=points.targets[keep].astype("int32"),
        y0=answers.y0[keep].astype("float32"),
        yp=answers.yp[keep].astype("float32"),
        ym=answers.ym[keep].astype("float32"),
        yb=None if yb is None else yb.astype("float32"),
        seeded=None if points.seeded is None else points.seeded[keep].astype("int8"),
        kink=answers.kink[keep].astype("float32"),
        background=background.astype("float32"),
        features=None if answers.features is None else compress(answers.features[rows]),
        base_features=None if answers.base_features is None else compress(answers.base_features[rows]),
        perturbed=_perturbed_answers(model, points, keep, config),
        task=task,
        output_kind=out_kind,
        input_shape=net.input_shape,
        output_shape=net.output_shape,
        domain=domain,
        owner={"name": model.name, "digest": model_digest(model), "params": int(model.count_params()),
               **({"base_digest": model_digest(base)} if base is not None else {}), **_front_record(model, net.input_shape)},
        synthesis={**config.to_dict(), "stats": stats},
        coverage=net.coverage.to_dict(),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def _front_record(model: Any, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """``{"input_front": {"scale": ..., "offset": ...}}``: the affine map the owner's leading
    Rescaling/Normalization layers apply (tafa_tf.domains.input_front; scale 1, offset 0
    where none), so that a Keras suspect that scales its inputs otherwise is asked the
    same points (tafa_tf.asking); empty where it cannot be read."""
    front = input_front(model, input_shape)
    return {} if front is None else {"input_front": {"scale": front[0].tolist(), "offset": front[1].tolist()}}


def _perturbed_answers(model: Any, points: Any, keep: np.ndarray, config: Any) -> np.ndarray | None:
    """The perturbed owner's raw answers at the kept points' queries (None without stability
    noise): those the step search saw at the final steps, the rest asked now, under the
    same seeded weights (tafa_tf.synthesis.perturbed_weights)."""
    from tafa_tf.synthesis import owner_outputs, perturbed_weights, weights_swapped

    if config.stability_noise <= 0:
        return None
    seen = getattr(points, "seen_perturbed", None)
    k = len(keep)
    raw = (np.full((3 * k, int(np.prod(model.outputs[0].shape[1:]))), np.nan) if seen is None
           else by_query(seen[keep]))
    ask = np.isnan(raw).any(axis=1)
    if ask.any():
        queries = probe_inputs(points.x[keep], points.u[keep], points.delta[keep])[ask]
        with weights_swapped(model, perturbed_weights(model, config)):
            raw[ask] = owner_outputs(model, queries)
    return raw.astype("float32")


def _fresh_answers(model: Any, fp: Fingerprint, seed: int) -> np.ndarray | None:
    """The raw answers, stacked, of ``FRESH_MODELS`` models of the owner's architecture with
    fresh weights (seeded from ``seed``) at the queries of ``fp.bend_points()``; None where ``bend_presence``
    is not measured for this owner (its bends do not stand out, or it has none), so no
    level by chance is needed (tafa_tf.bends.beyond_fresh). The models are made one at a
    time (tafa_tf.piracy.fresh_model) for their weights only and dropped: the owner answers
    with those weights swapped in, through the inference it has already traced (ResNet50 at
    224x224: each fresh model's own trace cost about 3 s). Python's and NumPy's global
    random states are restored after (Keras's seeds them)."""
    import random

    from tafa_tf.bends import FRESH_MODELS
    from tafa_tf.piracy import fresh_model
    from tafa_tf.synthesis import owner_outputs, weights_swapped
    from tafa_tf.verification import bend_presence_at

    bends = fp.bend_points()
    if not len(bends):  # every point on the decision boundary: no bend presence
        return None
    owner = tuple(canonical(y.astype("float64"), fp.output_kind) for y in (fp.y0, fp.yp, fp.ym))
    if not np.isfinite(bend_presence_at(fp, owner, owner)):
        return None
    queries = fp.queries()[query_rows(bends, fp.n_points)]
    states = random.getstate(), np.random.get_state()
    original = model.get_weights()
    raw = []
    try:
        for i in range(FRESH_MODELS):
            with weights_swapped(model, fresh_model(model, FRESH_SEED + FRESH_MODELS * int(seed) + i).get_weights(),
                                 original):
                raw.append(owner_outputs(model, queries))
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    return np.concatenate(raw).astype("float32")


FRESH_SEED = 7_000
"""Fresh models for ``Fingerprint.fresh`` are drawn from seeds FRESH_SEED + 3 * seed + i."""


def _background(model: Any, points: Any, answers: _Answers, keep: np.ndarray, task: str, out_kind: str,
                domain: Domain) -> np.ndarray:
    """The owner's background curvature at the kept bends (tafa_tf.bends.background_curvature;
    NaN at decision points and where neither side fits in the domain): 2 more owner
    queries per bend, none for the suspect."""
    from tafa_tf.bends import background_curvature, control_queries
    from tafa_tf.synthesis import owner_outputs

    background = np.full(len(keep), np.nan)
    idx = keep[points.kind[keep] != KIND_DECISION]
    if not len(idx):
        return background
    x, u, delta = points.x[idx], points.u[idx], points.delta[idx]
    bounds = domain.bounds(tuple(x.shape[1:]))
    side = np.ones(len(idx))
    if bounds is not None:  # the side whose control queries (the farther lies past the nearer) stay in the box
        fits = [np.all((q >= bounds[0]) & (q <= bounds[1]), axis=tuple(range(1, x.ndim)))
                for q in (control_queries(x, u, delta, np.full(len(idx), s))[len(idx):] for s in (1.0, -1.0))]
        side = np.where(fits[0], 1.0, np.where(fits[1], -1.0, 0.0))
    on = side != 0
    curvature = np.full(len(idx), np.nan)
    if on.any():
        controls = control_queries(x[on], u[on], delta[on], side[on]).astype("float32")
        raw = owner_outputs(model, controls).astype("float64")
        probes = tuple(canonical(y[idx[on]], out_kind) for y in (answers.y0, answers.yp, answers.ym))
        curvature[on] = background_curvature(probes, canonical(raw, out_kind), side[on],
                                             sigmoid_head=task == "generation")
    background[points.kind[keep] != KIND_DECISION] = curvature
    return background


def _check_base(base: Any, net: Any) -> None:
    """Refuse a base that is not a Keras model taking and giving the owner's shapes."""
    if base is None:
        return
    import keras

    if not isinstance(base, keras.Model):
        raise ValueError(f"base must be a keras.Model (the public model you fine-tuned). Received: {type(base).__name__}")
    shapes = (tuple(base.inputs[0].shape[1:]), tuple(base.outputs[0].shape[1:])) if base.inputs else None
    if shapes != (net.input_shape, net.output_shape):
        raise ValueError(
            f"base must take and give the owner's shapes {net.input_shape} -> {net.output_shape}. "
            f"Received: base with shapes {shapes}"
        )


def _check_samples(samples: Any, input_shape: tuple[int, ...]) -> np.ndarray | None:
    if samples is None:
        return None
    try:
        arr = np.asarray(samples, dtype="float32")
    except (TypeError, ValueError) as e:
        raise ValueError(f"samples must be a numeric array of inputs. Received: {type(samples).__name__}") from e
    if arr.ndim != len(input_shape) + 1 or tuple(arr.shape[1:]) != tuple(input_shape) or len(arr) == 0:
        raise ValueError(
            f"samples must be a non-empty batch of inputs of shape (k, *{tuple(input_shape)}). "
            f"Received: samples of shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("samples must be finite. Received: samples with NaN or inf")
    return arr


__all__ = ["fingerprint", "model_digest", "infer_task"]
