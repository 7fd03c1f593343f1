"""Data-free synthesis of boundary points: TAFA's fingerprint inputs.

From random seeds in the input domain, each candidate is pulled onto the zero set of
one or several ReLU pre-activations of the owner's model (or onto a classifier's
decision boundary) by least-norm Newton steps,

    x <- x - J^T (J J^T)^-1 c(x),

which are exact inside one linear region. Each point then gets a probe direction
across its boundary and a probe step, and the owner's second difference there.

Built for networks of 10^2 to 10^7 units in bounded memory and time:

- Unit statistics (active share, spread, influence on the output) are accumulated
  over mini-batches of the seed pool; nothing of size (seeds x all units) is kept.
  Only the targeted units' pre-activations are gathered, for choosing start seeds.
- Batch sizes follow ``SynthesisConfig.memory_budget_gib`` and the model's
  activation size; the pool shrinks for very large models (``pool_unit_budget``).
- Targets are the eligible units (sign changes in the domain) whose bend leaves the
  largest mark on the output: mean |d output / d z_k| where active, times the spread
  of z_k (``influence``), spread over layers.
- Probe steps start at half the distance to the owner's next boundary and grow (x10,
  up to ``max_delta``) until the second difference stands ``noise_ratio`` times above
  float32 rounding of the outputs: in a deep network the next boundary is so close
  that a step that crosses nothing else leaves a kink below rounding noise. Points
  whose kink stays silent are dropped; more candidates are drawn (``rounds``) until
  ``n`` points are audible. Then each step grows (x3) until the bend is stable: the
  owner under 0.5% relative weight noise shows nearly the same kink there
  (``stability_noise``), so that a quantized or slightly tuned copy still does.
- The tf.functions are traced once per model and kept on the model object itself
  (a reference cycle the garbage collector frees with the model), so repeated
  fingerprints of one model do not retrace. Each Newton loop stops per point when it
  has converged (converged rows leave the batch); one-constraint rows use one
  gradient, only intersections of k boundaries take k backward passes.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tafa_tf.bends import audible, constant_to_rounding
from tafa_tf.domains import Box, Domain, Gaussian
from tafa_tf.errors import SAMPLES_HINT, UnsupportedModelError
from tafa_tf.introspection import ReluNetwork, _linear_activation, column_pieces, leaf_layers, output_squash
from tafa_tf.outputs import canonical, inference_batch_size, model_outputs, trace_per_model
from tafa_tf.probes import KIND_DECISION, KIND_MULTI, KIND_UNIT, by_query, probe_step, side_margins, stable_under, survives
MAX_TARGETS = 4
CHUNKS = 8
"""A round's candidates run in up to this many chunks (never smaller than a batch), so that
a large model stops once it has its points instead of synthesizing the whole oversample."""
ACTIVATION_BYTES_PER_UNIT = 64
"""Working memory of one input's forward+backward pass, in bytes per ReLU coordinate.

Measured (fingerprint peak resident memory less ~1.5 GiB of runtime and weights, per input
of the batch): ResNet50 60-61 bytes per ReLU unit at 96 and 224, VGG16 68, DenseNet121 77
(its concatenations hold more than the ReLUs), MobileNetV2 at 224 39. 64 keeps the working memory
near ``memory_budget_gib`` (at 48, DenseNet121 at 96x96 peaked at 8.0 GiB with a 4 GiB
budget); the batch size hardly changes the time (ResNet50 at 224: 230 s at 9 and at 7)."""


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of boundary synthesis (stored in the fingerprint's manifest)."""

    n: int = 128
    seed: int = 0
    multi_fraction: float = 0.35  # share of points on intersections of 2-4 boundaries
    decision_fraction: float = 0.25  # classifiers: share of points on the decision boundary
    newton_steps: int = 30  # at most; each point stops when it has converged
    pool: int = 1024  # random seeds used to find dead/always-on units and near seeds
    pool_unit_budget: float = 2e9  # at most pool x units coordinates evaluated: fewer seeds for huge models
    influence_unit_budget: float = 5e8  # ... of them with gradients, for the units' influence (at least 64 seeds)
    oversample: float = 1.6  # candidates per wanted point, the rest absorb failures
    delta_fraction: float = 0.5  # first probe step: this fraction of the distance to the next boundary
    max_delta: float = 0.05  # probe step cap, in domain scales (x sqrt(inputs / 64) above 64 inputs)
    decision_margin: float = 0.25  # decision probes reach this share of the median top-2 margin
    sample_fraction: float = 0.5  # with public samples: share of points seeded from them
    sample_noise: float = 0.05  # jitter added to public samples, in units of the domain's scale
    base_candidates: float = 4.0  # with a public base: candidates per kept point (the most owner-specific stay)
    memory_budget_gib: float = 4.0  # working memory for batched passes; sane for a 24 GB machine
    influence_top: float = 8.0  # targets come from the (influence_top x candidates) most influential units
    noise_ratio: float = 30.0  # a kept probe's second difference exceeds float32 rounding this many times
    rounds: int = 3  # synthesis rounds at most, while fewer than n points are usable (stable, when preferred)
    stability_noise: float = 0.005  # probe steps grow until the bend survives this relative weight noise (0: off)
    stability_error: float = 0.5  # ... i.e. until the noisy owner's kink is within this share of the owner's
    stability_growth: float = 3.0  # step growth factor of that search
    prefer_stable: bool = True  # keep points whose evidence survives the stability noise first (tafa_tf.creation)
    stop_at_n: bool = True  # large models: stop a round's chunks once n points are audible (False: run them all)
    varied_seeds: bool = True  # a box's later rounds, if the first heard under n/2: seeds of varied brightness/contrast

    def counts_stable(self) -> bool:
        """Whether points are judged by their stability (``prefer_stable``, with stability noise on)."""
        return self.prefer_stable and self.stability_noise > 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BoundaryPoints:
    """The synthesized points, all arrays indexed by point."""

    x: np.ndarray  # (N, *input_shape)
    u: np.ndarray  # (N, *input_shape), unit probe directions
    delta: np.ndarray  # (N,)
    kind: np.ndarray  # (N,) int8: KIND_UNIT / KIND_MULTI / KIND_DECISION
    targets: np.ndarray  # (N, MAX_TARGETS) int32 unit columns (or classes for decision), -1 padded
    residual: np.ndarray  # (N,) |c(x)| relative to the constraint's scale
    stats: dict[str, Any]
    seeded: np.ndarray | None = None  # (N,) bool: started from a public sample (None without samples)
    seen: np.ndarray | None = None  # (N, 3, outputs) the owner's raw answers at x, x+du, x-du where known, else NaN
    seen_features: np.ndarray | None = None  # (N, 3, features) its penultimate features there (tafa_tf.heads), or None
    seen_perturbed: np.ndarray | None = None  # (N, 3, outputs) the perturbed owner's (stable_steps) raw answers, or NaN
    stable: np.ndarray | None = None  # (N,) bool: audible, and the perturbed owner keeps the evidence (_stable_points)


# ----------------------------------------------------------------------------------- engine


_ENGINE_ATTR = "_tafa_synthesis_engine"


def engine_for(net: ReluNetwork, logits: bool = False) -> _Engine:
    """The traced engine of ``net``'s model, built once and kept on the model object.

    The model and its engine reference each other, so the engine lives exactly as long
    as the model (no global cache keeps models alive). Weights may change between
    calls: the traced functions read the model's variables when they run.
    ``logits``: the engine that sees through the output softmax (:func:`softmax_layer`).
    """
    model = net.model
    attr = _ENGINE_ATTR + ("_logits" if logits else "")
    engine = model.__dict__.get(attr)
    if engine is None or engine.net.input_shape != net.input_shape:
        engine = _Engine(net, softmax_layer(net) if logits else None)
        object.__setattr__(model, attr, engine)  # plain attribute: not tracked or saved by Keras
    return engine


def softmax_layer(net: ReluNetwork) -> Any:
    """The model's output layer when it applies a softmax over a vector of classes (fused in
    a kernel layer, ``Activation("softmax")`` or ``Softmax()``), else None."""
    leaves = leaf_layers(net.model)
    last = leaves[-1] if leaves else None
    one_vector = len(tuple(net.output_shape)) == 1
    return last if last is not None and one_vector and output_squash(last) == "softmax" else None


_UNSET = object()


class _Engine:
    """Traced passes over one network: statistics, Newton steps, probe geometry."""

    def __init__(self, net: ReluNetwork, softmax: Any = None):
        import tensorflow as tf

        self.tf = tf
        self.net = net
        self.softmax = softmax  # the output softmax layer to see through: outputs are then its logits
        self.d = int(np.prod(net.input_shape))
        self._traced: dict[Any, Any] = {}
        self._answering: Any = _UNSET  # the model giving outputs and penultimate features (tafa_tf.heads)
        self._forward_mode = True  # False once a layer has refused forward-mode autodiff (:meth:`region`)

    def _function(self, key: Any, fn: Any, *specs: tuple[tuple[int | None, ...], str]) -> Any:
        """``fn`` traced once for any batch size (the signature leaves the batch free), kept."""
        if key not in self._traced:
            tf = self.tf
            signature = [tf.TensorSpec(shape, dtype) for shape, dtype in specs]
            self._traced[key] = trace_per_model(fn, signature)
        return self._traced[key]

    def stats(self, probs: bool, grads: bool = True) -> Any:
        """Per-coordinate batch sums (:meth:`_stats`); without ``grads`` a forward pass only,
        the gradient sums then 0."""
        n_out = int(np.prod(self.net.output_shape))
        return self._function(("stats", probs, grads), lambda x, r: self._stats(x, r, probs, grads),
                              ((None, self.d), "float32"), ((None, n_out), "float32"))

    def gather(self) -> Any:
        return self._function("gather", self._gather, ((None, self.d), "float32"), ((None,), "int32"))

    def step(self, m: int, probs: bool) -> Any:
        """The Newton step for rows of ``m`` constraints (1, or MAX_TARGETS padded with -1)."""
        return self._function(
            ("step", m, probs), lambda x, idx, dec, low, high, shell: self._step(x, idx, dec, low, high, shell, probs, m),
            ((None, self.d), "float32"), ((None, max(m, 2)), "int32"), ((None,), "bool"),
            ((self.d,), "float32"), ((self.d,), "float32"), ((3,), "float32"))

    def region(self) -> Any:
        """:meth:`_region`, traced. Forward-mode autodiff cannot pass some layers (a
        recurrent layer's while loop raises at tracing); from the first such failure on,
        the directional derivatives are central differences instead (:meth:`_region`)."""
        specs = (((None, self.d), "float32"), ((None, self.d), "float32"), ((None, MAX_TARGETS), "int32"))
        differences = self._function(("region", False), lambda x, u, idx: self._region(x, u, idx, False), *specs)
        if not self._forward_mode:
            return differences
        forward = self._function(("region", True), lambda x, u, idx: self._region(x, u, idx, True), *specs)

        def call(x, u, idx):
            try:
                return forward(x, u, idx)
            except (TypeError, ValueError, NotImplementedError) as error:
                if "Exception encountered when calling" not in str(error):
                    raise  # not a layer refusing forward mode
                self._forward_mode = False
                return differences(x, u, idx)
        return call

    def outputs(self) -> Any:
        """The owner's outputs and its penultimate features (tafa_tf.heads; 0 of them where
        the model does not expose them), both flattened per input, in one traced pass."""
        return self._function("outputs", self._outputs, ((None, self.d), "float32"))

    def batch_size(self, budget_gib: float, cap: int = 512) -> int:
        per_input = ACTIVATION_BYTES_PER_UNIT * max(self.net.n_units, 1) + 16 * self.d
        return int(max(1, min(cap, budget_gib * 2**30 // per_input)))

    def _forward(self, x):
        """Outputs, the stacked coordinates, and the raw pre-activation tensors on the path."""
        tf = self.tf
        raw: list[Any] = []

        def record(name, layer, z, points, mode):
            raw.append((z, points))

        # a fused softmax runs without its activation; an Activation or Softmax layer is skipped
        fused = self.softmax is not None and type(self.softmax).__name__ not in ("Activation", "Softmax")
        skip = self.softmax if self.softmax is not None and not fused else None
        with _linear_activation(self.softmax) if fused else contextlib.nullcontext():
            out = self.net._run(self.net.model, tf.reshape(x, (-1, *self.net.input_shape)), record, "", skip)
        out = tf.reshape(tf.cast(out, tf.float32), (tf.shape(out)[0], -1))
        return out, raw

    def _columns(self, pieces, idx):
        """The columns ``idx`` (batch, k) of every row; 0 where an index is outside
        0..n_units-1. The passes reduce and gather piece by piece (``column_pieces``):
        concatenating all 9e6 columns of ResNet50 at 224x224 first, and splitting the
        gradient back, made each pass up to twice as slow (same results). Each piece is
        read as one flat vector: ``tf.gather(..., batch_dims=1)`` builds a dozen ops a
        call, and with its gradients, once per piece, it doubled the tracing of the
        intersections' Newton step on ResNet50 at 224x224 (16 s against 7 s)."""
        tf = self.tf
        out = tf.zeros(tf.shape(idx), tf.float32)
        rows = tf.range(tf.shape(idx, out_type=tf.int64)[0])[:, None]  # int64: rows x size may pass 2^31
        for flat, offset, size in pieces:
            local = idx - offset
            inside = (local >= 0) & (local < size)
            at = rows * size + tf.cast(tf.clip_by_value(local, 0, size - 1), tf.int64)
            out = tf.where(inside, tf.gather(tf.reshape(flat, [-1]), at), out)
        return out

    def _canonical(self, out, probs: bool):
        tf = self.tf
        if self.softmax is not None:  # logits: log-probabilities that do not saturate
            return tf.nn.log_softmax(out, axis=-1)
        if probs:
            out = tf.math.log(tf.maximum(out, 1e-12))
        return out

    def _stats(self, x, r, probs: bool, grads: bool = True):
        """Batch sums per coordinate: active count, z, z^2 and |d(r . output)/dz| (0 without ``grads``)."""
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            out, raw = self._forward(x)
            y = self._canonical(out, probs)
            y = y - tf.reduce_mean(y, axis=1, keepdims=True)
            target = tf.reduce_sum(y * r)
        sums: list[list[Any]] = [[], [], [], []]
        if grads:  # one gradient per site, repeated for each of its breakpoints
            g = tape.gradient(target, [z for z, _ in raw], unconnected_gradients="zero")
            g_pieces = column_pieces([(tf.abs(gi), pts) for gi, (_, pts) in zip(g, raw)], shift=False)
        for flat, _, size in column_pieces(raw):
            sums[0].append(tf.reduce_sum(tf.cast(flat > 0, tf.float32), 0))
            sums[1].append(tf.reduce_sum(flat, 0))
            sums[2].append(tf.reduce_sum(flat * flat, 0))
            sums[3].append(tf.reduce_sum(next(g_pieces)[0], 0) if grads else tf.zeros((size,)))
        return (out, *(tf.concat(part, 0) for part in sums))

    def _gather(self, x, cols):
        tf = self.tf
        out, raw = self._forward(x)
        return out, self._columns(column_pieces(raw), tf.broadcast_to(cols[None, :], (tf.shape(x)[0], tf.size(cols))))

    def _constraints(self, x, idx, decision, probs: bool):
        tf = self.tf
        out, raw = self._forward(x)
        out = self._canonical(out, probs)
        safe = tf.maximum(idx, 0)
        # a decision row's idx holds classes, not units (_columns reads 0 past the last
        # unit); its unit values are discarded below
        units = self._columns(column_pieces(raw), safe)
        cls = tf.minimum(safe[:, :2], tf.shape(out)[1] - 1)  # only meaningful on decision rows
        margin = tf.gather(out, cls[:, :1], batch_dims=1) - tf.gather(out, cls[:, 1:2], batch_dims=1)
        margin = tf.pad(margin, [[0, 0], [0, tf.shape(idx)[1] - 1]])
        return tf.where(decision[:, None], margin, units) * tf.cast(idx >= 0, tf.float32)

    def _step(self, x, idx, decision, low, high, shell, probs: bool, m: int):
        """Constraints and their gradients at x, and x after one least-norm Newton step."""
        tf = self.tf
        with tf.GradientTape(persistent=m > 1) as tape:
            tape.watch(x)
            c = self._constraints(x, idx, decision, probs)[:, :m]  # idx has >= 2 columns: a class pair
            parts = [tf.reduce_sum(c[:, j]) for j in range(m)]
        free = tf.cast(tf.logical_and(x > low + 1e-6, x < high - 1e-6), tf.float32)
        jac = tf.stack([tape.gradient(p, x) for p in parts], axis=1) * free[:, None, :]
        del tape
        if m == 1:
            step = jac[:, 0, :] * (c / tf.maximum(tf.reduce_sum(jac * jac, axis=2), 1e-30))
        else:
            gram = tf.matmul(jac, jac, transpose_b=True)
            # relative ridge: frozen coordinates can leave target normals parallel or zero
            ridge = 1e-6 * (tf.linalg.trace(gram) / m)[:, None, None] + 1e-12
            lam = tf.linalg.solve(gram + ridge * tf.eye(m), c[:, :, None])
            step = tf.matmul(jac, lam, transpose_a=True)[:, :, 0]
        return c, jac, self._project(x - step, low, high, shell)

    def _project(self, x, low, high, shell):
        tf = self.tf
        x = tf.clip_by_value(x, low, high)
        mean, lo, hi = shell[0], shell[1], shell[2]
        centered = x - mean
        norm = tf.norm(centered, axis=1, keepdims=True)
        scaled = mean + centered * tf.clip_by_value(norm, lo, hi) / tf.maximum(norm, 1e-12)
        return tf.where(hi > 0, scaled, x)

    def _region(self, x, u, idx, forward_mode: bool = True):
        """Per row: the step along u to the nearest boundary other than the targets'. The
        slope of every coordinate along u comes from forward-mode autodiff, or without
        ``forward_mode`` from a central difference over a step of 1e-3 of the input's
        scale (exact wherever that step crosses no boundary)."""
        tf = self.tf
        if forward_mode:
            with tf.autodiff.ForwardAccumulator(x, u) as acc:
                _, raw = self._forward(x)
                pieces = list(column_pieces(raw))
            slopes = [acc.jvp(flat) for flat, _, _ in pieces]
        else:
            h = 1e-3 * tf.maximum(1.0, tf.reduce_max(tf.abs(x), axis=1, keepdims=True))
            pieces = list(column_pieces(self._forward(x)[1]))
            ahead, behind = (column_pieces(self._forward(x + sign * h * u)[1]) for sign in (1.0, -1.0))
            slopes = [(a[0] - b[0]) / (2.0 * h) for a, b in zip(ahead, behind)]
        nearest = tf.fill(tf.shape(x)[:1], np.inf)
        rows = tf.broadcast_to(tf.range(tf.shape(idx)[0])[:, None], tf.shape(idx))
        for (flat, offset, size), slope in zip(pieces, slopes):
            t = tf.abs(flat) / tf.abs(slope)
            t = tf.where(tf.math.is_finite(t) & (t >= 1e-9), t, np.inf)
            local = idx - offset
            hit = tf.stack([rows, local], axis=-1)[(idx >= 0) & (local >= 0) & (local < size)]
            t = tf.tensor_scatter_nd_update(t, hit, tf.fill(tf.shape(hit)[:1], np.inf))
            nearest = tf.minimum(nearest, tf.reduce_min(t, axis=1))
        return nearest

    def feature_width(self) -> int:
        """How many penultimate features :meth:`outputs` gives per input (0: none)."""
        two = self._answering_model()
        return 0 if two is None else int(np.prod(two.outputs[1].shape[1:]))

    def _answering_model(self) -> Any | None:
        if self._answering is _UNSET:
            from tafa_tf.heads import answering_model

            self._answering = answering_model(self.net.model)
        return self._answering

    def _outputs(self, x):
        tf = self.tf
        x = tf.reshape(x, (-1, *self.net.input_shape))
        flat = lambda t: tf.reshape(tf.cast(t, tf.float32), (tf.shape(t)[0], -1))  # noqa: E731
        two = self._answering_model()
        if two is None:
            return flat(self.net.model(x, training=False)), tf.zeros((tf.shape(x)[0], 0))
        out, h = two(x, training=False)
        return flat(out), flat(h)


# ----------------------------------------------------------------------------------- passes


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


@dataclass
class _UnitStats:
    out: np.ndarray  # (pool, outputs) raw outputs at the pool
    active: np.ndarray  # (units,) share of the pool where the coordinate is positive
    spread: np.ndarray  # (units,) standard deviation over the pool
    influence: np.ndarray  # (units,) mean |d output/dz| where active, times the spread
    logp: np.ndarray | None = None  # (pool, outputs) canonical outputs
    margin_scale: float = 1.0  # median top-2 margin of the canonical outputs over the pool
    audible_steps: list = field(default_factory=list)  # k of the audible probe steps d0 * 10^k found so far


def unit_statistics(engine: _Engine, pool: np.ndarray, probs: bool, batch: int, rng: np.random.Generator,
                    grad_seeds: int | None = None) -> _UnitStats:
    """Stream the pool through the network once; keep per-unit sums only (float32 per batch).
    The influence's gradients come from about ``grad_seeds`` seeds (None: all), whole
    batches spread over the pool; the other batches run forward only (ResNet50 at
    224x224: 0.04 s a seed instead of 0.145)."""
    tf = engine.tf
    n_out = int(np.prod(engine.net.output_shape))
    sums = [np.zeros(engine.net.n_units, "float64") for _ in range(4)]
    count_g = np.zeros(engine.net.n_units, "float64")  # active count over the seeds with gradients
    outs = []
    batches = list(_batches(len(pool), batch))
    with_grads = np.unique(np.linspace(0, len(batches) - 1, len(batches) if grad_seeds is None else
                                       min(len(batches), max(1, math.ceil(grad_seeds / batch)))).round().astype(int))
    for i, sl in enumerate(batches):
        r = rng.standard_normal((sl.stop - sl.start, n_out)).astype("float32")
        grads = i in with_grads
        out, *parts = engine.stats(probs, grads)(tf.constant(pool[sl]), tf.constant(r))
        outs.append(out.numpy())
        for acc, part in zip(sums, parts):
            acc += part.numpy()
        if grads:
            count_g += parts[0].numpy()
    count, s1, s2, sg = sums
    m = len(pool)
    spread = np.sqrt(np.maximum(s2 / m - (s1 / m) ** 2, 0.0)) + 1e-12
    influence = sg / np.maximum(count_g, 1.0) * spread
    return _UnitStats(np.concatenate(outs).astype("float64"), count / m, spread, influence)


def _grad_seeds(config: SynthesisConfig, n_units: int, pool: int) -> int | None:
    """Seeds whose gradients give the units' influence: all (None) unless the unit budget
    (``influence_unit_budget``) says fewer, never under 64."""
    wanted = int(max(64, config.influence_unit_budget // max(n_units, 1)))
    return None if wanted >= pool else wanted


def _gather_pool(engine: _Engine, pool: np.ndarray, cols: np.ndarray, batch: int) -> np.ndarray:
    tf = engine.tf
    cols_t = tf.constant(cols.astype("int32"))
    return np.concatenate(
        [engine.gather()(tf.constant(pool[sl]), cols_t)[1].numpy() for sl in _batches(len(pool), batch)]
    ).astype("float64")


@dataclass
class _Geometry:
    low: Any
    high: Any
    shell: Any
    out_kind: str  # the owner's output kind: the stability test compares as verification does
    _weights: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    def owner_weights(self, model, config: SynthesisConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The owner's weights and its perturbed ones (:func:`perturbed_weights`), read and
        drawn once per synthesis, not once per chunk (ResNet50 at 224x224: 0.7 s a draw)."""
        if self._weights is None:
            self._weights = (model.get_weights(), perturbed_weights(model, config))
        return self._weights

    @property
    def probs(self) -> bool:
        """Whether the owner answers probabilities (the traced passes work on their logs)."""
        return self.out_kind == "probabilities"

    @property
    def kind(self) -> str:
        """The output kind the audibility search compares in (tafa_tf.outputs.canonical)."""
        return "probabilities" if self.probs else "values"


def _geometry(engine: _Engine, domain: Domain, out_kind: str) -> _Geometry:
    tf = engine.tf
    d = engine.d
    bounds = domain.bounds(engine.net.input_shape)
    if bounds is None:
        low, high = np.full(d, -np.inf, "float32"), np.full(d, np.inf, "float32")
    else:
        low, high = (b.reshape(-1).astype("float32") for b in bounds)
    shell = np.zeros(3, "float32")
    if isinstance(domain, Gaussian) and domain.shell:
        spread = 3 * 0.71
        shell[:] = (domain.mean, max(domain.std * (math.sqrt(d) - spread), 0.0), domain.std * (math.sqrt(d) + spread))
    return _Geometry(tf.constant(low), tf.constant(high), tf.constant(shell), out_kind)


NEWTON_TOLERANCE = 1e-4
"""Newton steps stop when every |constraint| is under this share of its scale (the unit's
spread over the pool), unless the probe steps allow more (:func:`_looser_tolerance`)."""


def newton(engine: _Engine, geo: _Geometry, seeds, idx, decision, scales, steps: int, batch: int,
           tolerance: float = NEWTON_TOLERANCE):
    """Project every seed onto its constraints; rows leave the loop when converged (every
    |constraint| under ``tolerance`` times its scale) or stuck (:func:`stalled`).

    Returns the points, their residuals (|c| / scale, max over constraints), the probe
    directions (normalized sum of the constraint normals, at the last full pass: a row that
    landed keeps its last step's, :func:`_landed`) and, for decision rows, the
    margin's slope along that direction.
    """
    tf = engine.tf
    n = len(seeds)
    x = seeds.astype("float32").copy()
    residual = np.full(n, np.inf)
    u = np.zeros_like(x)
    slope = np.zeros(n)
    # one trace for single constraints, one for intersections (unused columns are -1: zero rows;
    # a trace per size was measured: its tracing cost what the padding did, ResNet50 at 224)
    m_of = np.where((idx >= 0).sum(axis=1) > 1, MAX_TARGETS, 1)
    m_of[decision] = 1
    for m in np.unique(m_of):
        todo = np.flatnonzero(m_of == m)
        for it in range(steps + 1):
            if not len(todo):
                break
            still = []
            for sl in _batches(len(todo), batch):
                rows = todo[sl]
                c, jac, x_new = engine.step(int(m), geo.probs)(
                    tf.constant(x[rows]), tf.constant(idx[rows, : max(m, 2)]), tf.constant(decision[rows]),
                    geo.low, geo.high, geo.shell)
                c, jac, x_new = c.numpy().astype("float64"), jac.numpy().astype("float64"), x_new.numpy()
                res = (np.abs(c) / scales[rows, :m]).max(axis=1)
                done = (res < tolerance) | (it == steps) | stalled(x[rows], x_new, res, residual[rows])
                residual[rows] = res
                norms = np.linalg.norm(jac, axis=2, keepdims=True)
                normal = (jac / np.maximum(norms, 1e-30)).sum(axis=1)
                x[rows[~done]] = x_new[~done]
                u[rows] = normal  # final for the rows done; the rows moved keep it if they land
                slope[rows] = np.abs((jac[:, 0, :] * normal).sum(axis=1))
                still.append(rows[~done])
            todo = np.concatenate(still)
            if it < steps:  # moved bend rows that landed keep their last step's normal: no full pass to confirm
                bends = todo[~decision[todo]]
                todo = np.setdiff1d(todo, bends[_landed(engine, x, bends, idx, scales, m, tolerance, batch, residual)])
    u_norm = np.linalg.norm(u, axis=1)
    u = u / np.maximum(u_norm, 1e-30)[:, None]
    slope = slope / np.maximum(u_norm, 1e-30)
    residual[u_norm <= 1e-8] = np.inf
    return x, residual, u.astype("float32"), slope


def _landed(engine: _Engine, x: np.ndarray, rows: np.ndarray, idx: np.ndarray, scales: np.ndarray, m: int,
            tolerance: float, batch: int, residual: np.ndarray) -> np.ndarray:
    """Which of ``rows`` (unit and intersection rows just moved) now lie on their
    boundaries, by a forward pass at their new points (the traced gather of their columns,
    all the rows of a Newton iteration at once: full batches); the residuals of those found
    there are updated. Such a row leaves the loop with the normal of the step that brought
    it, instead of paying one more Newton pass (a forward and m backward passes) to confirm
    it: ResNet50 at 224x224 took 2.4 passes a unit row and 3.2 an intersection row, the
    last of each only to stop."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    own = idx[rows, :m]
    cols = np.unique(own[own >= 0])
    values = _gather_pool(engine, x[rows], cols, batch)
    c = np.where(own >= 0, np.take_along_axis(values, np.searchsorted(cols, np.maximum(own, 0)), axis=1), 0.0)
    res = (np.abs(c) / scales[rows, :m]).max(axis=1)
    landed = res < tolerance
    residual[rows[landed]] = res[landed]
    return landed


STALL_ULPS = 8.0
"""A Newton step that moves a point by at most this many float32 rounding steps of its
largest coordinate, without lowering its residual, has stalled (:func:`stalled`)."""


def stalled(x: np.ndarray, x_new: np.ndarray, residual: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Rows whose Newton step is stuck: the point does not move (beyond float32 rounding,
    :data:`STALL_ULPS`) and its residual did not fall (by 0.1%). The next steps would
    repeat it, so the row leaves the loop unconverged now rather than after
    ``newton_steps``: a target that does not respond from there (a ReLU6 unit saturated
    upstream, a step the domain's faces push back). On MobileNetV2 (alpha 1, 32x32) such
    intersections moved 1e-8-1e-7 a step at a constant residual from their 4th-7th pass to their 31st,
    each a forward and four backward passes."""
    scale = np.maximum(np.abs(x).max(axis=1), 1.0)
    moved = np.abs(x_new.astype("float64") - x).max(axis=1)
    return (moved <= STALL_ULPS * float(np.finfo(np.float32).eps) * scale) & (residual > before * (1.0 - 1e-3))


def probe_steps(engine: _Engine, geo: _Geometry, domain: Domain, x, u, idx, decision, slope, margin_scale: float,
                config: SynthesisConfig, batch: int, audible_steps: list | None = None):
    """Probe step per point, and whether its bend is audible at the owner's output.

    Unit and intersection points start at ``delta_fraction`` of the distance to the
    next boundary along u (so the probe crosses only the targets) and grow by factors of
    10 up to ``max_delta`` (bisecting on the exponent) until the second difference
    |f(x+du) + f(x-du) - 2f(x)| exceeds ``noise_ratio`` times float32 rounding of the
    outputs, and the kink exceeds 2e-3 of the slope. Decision points reach
    ``decision_margin`` of the median top-2 margin. ``audible_steps`` (the k of the audible
    steps d0 * 10^k of earlier chunks, appended to) sets where the search starts
    (:func:`_smallest_audible`).
    Returns (u, delta, loud, the owner's answers seen at each point's queries: a ``_Seen``).
    """
    tf = engine.tf
    cap = max_step(config, domain, x.shape[1])
    caps = np.where(decision, 4 * cap, cap)
    u, slope = clear_of_faces(domain, engine.net.input_shape, x, u, slope, caps)
    bends = np.flatnonzero(~decision)  # decision points' steps come from the margin, not the region
    region = np.zeros(len(x))
    region[bends] = np.concatenate([
        engine.region()(tf.constant(x[bends[sl]]), tf.constant(u[bends[sl]]),
                        tf.constant(idx[bends[sl]].astype("int32"))).numpy()
        for sl in _batches(len(bends), batch)
    ]) if len(bends) else 0.0
    reach = _reach(domain, engine.net.input_shape, x, u)
    delta = np.minimum(np.minimum(config.delta_fraction * region, cap), reach)
    delta[decision] = np.minimum(np.minimum(config.decision_margin * margin_scale / (slope[decision] + 1e-12), 4 * cap),
                                 reach[decision])
    loud = decision.copy()
    seen = _Seen(len(x), int(np.prod(engine.net.output_shape)))
    todo = np.flatnonzero(~decision & (delta > 0))
    seen.at_x(todo, _raw_answers(engine, x[todo], batch))
    limit = np.minimum(cap, reach)

    def hear(rows: np.ndarray, steps: np.ndarray, keep=None) -> np.ndarray:
        """Whether each row's bend is audible at ``steps``. The owner's answers are kept for
        the rows whose step this will be (``keep(heard)``; all rows without ``keep``), so it
        is not asked about them again."""
        if not len(rows):  # a round of decision points only
            return np.zeros(0, dtype=bool)
        step = probe_step(steps, u[rows])
        pm = _raw_answers(engine, np.concatenate([x[rows] + step, x[rows] - step]), batch)
        yp, ym = np.split(pm[0], 2)
        y0c, ypc, ymc = (canonical(y, geo.kind) for y in (seen.y[0, rows], yp, ym))
        s2 = np.linalg.norm(ypc + ymc - 2 * y0c, axis=1)
        heard = audible(y0c, ypc, ymc, config.noise_ratio) & (s2 > 2e-3 * np.linalg.norm(ypc - ymc, axis=1) / 2)
        k = np.ones(len(rows), bool) if keep is None else keep(heard)
        seen.at_probes(rows[k], _pick(pm, k))
        return heard

    d0, room = delta[todo], limit[todo]
    top = np.where(room > d0 * (1 + 1e-6), np.ceil(np.log10(room / np.maximum(d0, 1e-300)) - 1e-9), 0).astype(int)
    hi = _smallest_audible(hear, todo, d0, room, top, int(np.median(audible_steps)) if audible_steps else 0)
    found = hi <= top
    delta[todo] = np.minimum(d0 * 10.0 ** np.minimum(hi, top), room)
    loud[todo[found]] = True
    if audible_steps is not None:
        audible_steps.extend(hi[found].tolist())
    loud &= delta > 1e-6 * domain.scale
    if config.stability_noise > 0 and loud.any():
        delta = stable_steps(engine, geo, x, u, delta, loud, decision, caps, reach, config, batch, domain.scale, seen)
    return u, delta, loud, seen


def _smallest_audible(hear, rows: np.ndarray, d0: np.ndarray, room: np.ndarray, top: np.ndarray,
                      prior: int = 0) -> np.ndarray:
    """Per row, the smallest k in 0..top whose step min(d0 * 10^k, room) is audible
    (``hear(rows, steps, keep)``; the bend grows with the step, float32 rounding does
    not), top + 1 where none is.

    The first k tried is ``prior`` (the median of the earlier chunks'), the second its
    neighbour, then bisection. Without a prior (0) the first step is d0 (half-way to the
    next boundary), heard on most small networks. ResNet50 at 224x224 needs k = 3-6,
    mostly 4-5, alike at most of its points (the step in absolute terms varies more):
    2 passes where the prior holds, against 3-4 bisecting from k = 0.
    """
    lo, hi = np.full(len(rows), -1), top + 1  # silent at 10^lo (-1: none tried); heard at 10^hi (top + 1: none)
    first = np.clip(prior, 0, top)
    tried = 0
    while (open_ := np.flatnonzero(hi - lo > 1)).size:
        if tried == 0:
            mid = first[open_]
        elif tried == 1 and prior > 0:  # the neighbour of the prior's k, on the open side
            mid = np.where(hi[open_] <= top[open_], hi[open_] - 1, lo[open_] + 1)
        else:
            mid = (lo[open_] + hi[open_]) // 2
        mid = np.clip(mid, lo[open_] + 1, hi[open_] - 1)
        heard = hear(rows[open_], np.minimum(d0[open_] * 10.0 ** mid, room[open_]),
                     lambda h: h | (mid == top[open_]))  # the step ends at the smallest heard, or at the cap
        hi[open_[heard]], lo[open_[~heard]] = mid[heard], mid[~heard]
        tried += 1
    return hi


@dataclass
class _Seen:
    """The owner's raw answers at each point and at its probes at the current step, as the
    step searches compute them, so the owner is not asked again about the same inputs
    (ResNet50 at 224x224: a tenth of the fingerprint's time). NaN: not asked."""

    n: int
    width: int
    h: np.ndarray | None = None  # (3, n, features) float32: the penultimate features at the same inputs

    def __post_init__(self):
        self.y = np.full((3, self.n, self.width), np.nan)
        self.perturbed = np.full((3, self.n, self.width), np.nan)  # the owner under stability noise (stable_steps)

    def at_x(self, rows: np.ndarray, answers: tuple[np.ndarray, np.ndarray | None]) -> None:
        self._put(0, rows, *answers)

    def at_probes(self, rows: np.ndarray, answers_pm: tuple[np.ndarray, np.ndarray | None]) -> None:
        """Answers at x + delta*u then x - delta*u (2 * len(rows) rows)."""
        raw, h = answers_pm
        for which, part in ((1, slice(0, len(rows))), (2, slice(len(rows), None))):
            self._put(which, rows, raw[part], None if h is None else h[part])

    def _put(self, which: int, rows: np.ndarray, raw: np.ndarray, h: np.ndarray | None) -> None:
        self.y[which, rows] = raw
        if h is not None:
            if self.h is None:
                self.h = np.full((3, self.n, h.shape[1]), np.nan, dtype="float32")
            self.h[which, rows] = h

    def moved(self, rows: np.ndarray) -> None:
        """These points' steps changed: their probe answers are stale."""
        self.y[1:, rows] = np.nan
        self.perturbed[1:, rows] = np.nan
        if self.h is not None:
            self.h[1:, rows] = np.nan

    def known(self, rows: np.ndarray, which: int) -> np.ndarray:
        return ~np.isnan(self.y[which, rows]).any(axis=1)

    def answers(self) -> np.ndarray:
        """(N, 3, outputs): per point, at x, x + delta*u and x - delta*u."""
        return self.y.transpose(1, 0, 2)

    def perturbed_answers(self) -> np.ndarray:
        """(N, 3, outputs): the perturbed owner's answers at the same inputs, NaN where not asked."""
        return self.perturbed.transpose(1, 0, 2)

    def features(self, d: int) -> np.ndarray:
        """(N, 3, d): the penultimate features at the same inputs, NaN where not seen."""
        return np.full((self.n, 3, d), np.nan, dtype="float32") if self.h is None else self.h.transpose(1, 0, 2)


def _pick(answers_pm: tuple[np.ndarray, np.ndarray | None], keep: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Of answers at x + delta*u then x - delta*u, those of the points ``keep`` selects, in the same layout."""
    def both(a):
        return None if a is None else np.concatenate([half[keep] for half in np.split(a, 2)])
    return both(answers_pm[0]), both(answers_pm[1])


def max_step(config: SynthesisConfig, domain: Domain, n_inputs: int) -> float:
    """The probe step cap: ``max_delta`` domain scales for up to 64 input coordinates, growing
    as sqrt(n_inputs / 64) above, as the box's diameter does (a 224x224x3 image: 48x)."""
    return config.max_delta * domain.scale * max(1.0, math.sqrt(n_inputs / 64.0))


def clear_of_faces(domain: Domain, shape, x: np.ndarray, u: np.ndarray, slope: np.ndarray, want: np.ndarray):
    """Probe directions that leave out the coordinates sitting within a step of a face of the box.

    In a box of 10^5 pixels some coordinate of any point is always near 0 or 1 (and
    Newton steps freeze coordinates at a bound), so a probe along the boundary normal
    could step only ~1e-3 before leaving the box: too short for a kink to be heard or
    to survive a copy's rounding (ResNet50 at 224x224: 37% of the candidates audible).
    Those coordinates are dropped from u (renormalized) where they would stop a step of
    ``want``, as long as u keeps at least half its alignment with the normal; the slope
    along u is scaled by that alignment. Returns (u, slope).
    """
    room = _room(domain, shape, x)
    if room is None or not len(x):
        return u, slope
    blocked = room < want[:, None] * np.abs(u)
    kept = np.where(blocked, 0.0, u)
    align = np.linalg.norm(kept, axis=1)  # cosine between u (unit) and the kept part
    fix = blocked.any(axis=1) & (align >= 0.5)
    u = u.copy()
    u[fix] = (kept[fix] / align[fix, None]).astype(u.dtype)
    return u, np.where(fix, slope * align, slope)


def stable_steps(engine: _Engine, geo: _Geometry, x, u, delta, loud, decision, cap, reach, config: SynthesisConfig,
                 batch: int, domain_scale: float, seen: _Seen) -> np.ndarray:
    """Probe steps grown (x ``stability_growth``, up to the caps) until the owner's bend
    at each point survives a small perturbation of the owner's own weights.

    A step that just makes the kink audible can be far shorter than the distance the
    bend moves when the weights change a little: in a deep network one rounding of
    every weight (float16, int8) moves the owner's boundaries past such a step, and a
    quantized copy no longer shows the owner's kink there (measured on MobileNetV2 and
    ResNet50, docs/results.md). So the owner is perturbed with relative Gaussian weight
    noise of ``stability_noise`` (data-free, seeded; the weights are restored after),
    and each audible point's step grows until the perturbed owner's second difference
    is within ``stability_error`` of the owner's (unit and intersection points) or it
    keeps the owner's labels on both sides of a decision point with at least
    1 - ``stability_error`` of the owner's margins there. Steps grow up to
    ``max_delta`` domain scales (not the dimension-scaled cap of :func:`max_step`, which
    is for hearing a kink at all: windows that wide hold so many of an innocent model's
    own bends that ``bend_presence`` stops telling it apart, measured on MobileNetV2)
    and never shrink; points that never get there keep the largest step allowed. The
    owner's answers go to (and come from) ``seen``.
    """
    model = engine.net.model
    original, noisy = geo.owner_weights(model, config)
    delta = delta.copy()
    todo = np.flatnonzero(loud)
    limit = np.minimum(np.minimum(cap, reach), np.maximum(delta, config.max_delta * domain_scale))

    def noisy_answers(points: np.ndarray) -> np.ndarray:
        with weights_swapped(model, noisy, original):
            return _raw_outputs(engine, points, batch)

    ask = todo[~seen.known(todo, 0)]
    if len(ask):
        seen.at_x(ask, _raw_answers(engine, x[ask], batch))
    o0, n0 = canonical(seen.y[0, todo], geo.out_kind), None  # the perturbed owner's n0: with the first probes
    while len(todo):
        step = probe_step(delta[todo], u[todo])
        plus, minus = x[todo] + step, x[todo] - step
        fresh = ~seen.known(todo, 1) | ~seen.known(todo, 2)  # the owner's answers at this step, unless seen
        if fresh.any():
            seen.at_probes(todo[fresh], _raw_answers(engine, np.concatenate([plus[fresh], minus[fresh]]), batch))
        op, om = (canonical(seen.y[k, todo], geo.out_kind) for k in (1, 2))
        asked = [plus, minus] if n0 is not None else [x[todo], plus, minus]
        *first, raw_p, raw_m = np.split(noisy_answers(np.concatenate(asked)), len(asked))  # one weight swap for all
        if first:  # kept: the fingerprint's perturbed-owner reference
            seen.perturbed[0, todo], n0 = first[0], canonical(first[0], geo.out_kind)
        seen.perturbed[1, todo], seen.perturbed[2, todo] = raw_p, raw_m
        np_, nm = canonical(raw_p, geo.out_kind), canonical(raw_m, geo.out_kind)
        dec = decision[todo]
        k_o, k_n = op + om - 2 * o0, np_ + nm - 2 * n0
        flips = op.argmax(1) != om.argmax(1)
        labels = (op.argmax(1), om.argmax(1))
        ok = survives(k_o, k_n, side_margins(op, om, labels), side_margins(np_, nm, labels), dec,
                      config.stability_error) & (~dec | flips)
        larger = np.minimum(delta[todo] * config.stability_growth, limit[todo])
        grow = ~ok & (larger > delta[todo] * (1 + 1e-6))
        delta[todo[grow]] = larger[grow]
        seen.moved(todo[grow])
        todo, o0, n0 = todo[grow], o0[grow], n0[grow]
    return delta


PERTURBATION_SEED = 7919
"""Offset of the stability noise's seed from the synthesis seed (``seed + 7919``)."""


def perturbed_weights(model, config: SynthesisConfig) -> list[np.ndarray]:
    """The owner's weights with the synthesis's relative Gaussian stability noise
    (``stability_noise``, seeded by ``seed + PERTURBATION_SEED``): the same every time for
    the same model and config, so the fingerprint's perturbed-owner answers can be asked again."""
    from tafa_tf.piracy import noisy_weights

    return noisy_weights(model, config.stability_noise,
                         np.random.default_rng(config.seed + PERTURBATION_SEED))


@contextlib.contextmanager
def weights_swapped(model, weights: list[np.ndarray], original: list[np.ndarray] | None = None):
    """``model`` with ``weights`` inside the block, its own weights (``original``, read now
    if not given) restored after, even on error."""
    from tafa_tf.piracy import set_weights

    original = model.get_weights() if original is None else original
    set_weights(model, weights)
    try:
        yield model
    finally:
        set_weights(model, original)


def _raw_outputs(engine: _Engine, x: np.ndarray, batch: int) -> np.ndarray:
    """The owner's raw outputs at ``x``, flattened per input, in float64."""
    return _raw_answers(engine, x, batch)[0]


def owner_outputs(model: Any, x: np.ndarray) -> np.ndarray:
    """``model``'s raw outputs at ``x``, flattened per input: through the traced pass of its
    synthesis engine when it has one (weights swapped in or not: the pass reads its
    variables), so the fingerprint's later questions (its background, the models with
    fresh weights) cost no second trace of the model (ResNet50 at 224x224: 2 s); else
    :func:`tafa_tf.outputs.model_outputs`. The answers are the same to the bit."""
    engine = model.__dict__.get(_ENGINE_ATTR)
    if engine is None:
        return model_outputs(model, x).reshape(len(x), -1)
    flat = np.asarray(x, dtype="float32").reshape(len(x), -1)
    return _raw_outputs(engine, flat, inference_batch_size(engine.net.input_shape))


def _raw_answers(engine: _Engine, x: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The owner's raw outputs at ``x`` (flattened per input, float64) and its penultimate
    features from the same pass (float32; None where the model does not expose them)."""
    if not len(x):
        return np.zeros((0, int(np.prod(engine.net.output_shape)))), None
    tf = engine.tf
    pairs = [engine.outputs()(tf.constant(x[sl])) for sl in _batches(len(x), 4 * batch)]
    h = np.concatenate([h.numpy() for _, h in pairs])
    return np.concatenate([y.numpy() for y, _ in pairs]).astype("float64"), h if h.shape[1] else None


def _room(domain: Domain, shape, x: np.ndarray) -> np.ndarray | None:
    """Per point and coordinate, the distance to the nearer face of the domain's box (None: no box)."""
    bounds = domain.bounds(shape)
    if bounds is None:
        return None
    low, high = (b.reshape(1, -1) for b in bounds)
    return np.minimum(x - low, high - x)


def _reach(domain: Domain, shape, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """How far each point may step along +-u and stay in the domain's box."""
    room = _room(domain, shape, x)
    if room is None:
        return np.full(len(x), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(u) > 1e-12, room / np.abs(u), np.inf).min(axis=1)


# ----------------------------------------------------------------------------------- targets


def _pick_targets(
    rng: np.random.Generator,
    eligible_by_site: list[np.ndarray],
    count: int,
    n_units: int,
) -> list[list[int]]:
    """``count`` lists of ``n_units`` columns, the first spread round-robin over sites."""
    sites = [s for s in eligible_by_site if len(s)]
    all_cols = np.concatenate(sites)
    n_units = min(n_units, len(all_cols))  # an intersection needs that many distinct live units
    chosen = []
    for i in range(count):
        first = int(rng.choice(sites[i % len(sites)]))
        rest: list[int] = []
        if n_units > 1:
            # prefer other layers: intersections across depth are the most model-specific
            others = [s for j, s in enumerate(sites) if j != i % len(sites)] or sites
            pool = np.concatenate(others)
            rest = [int(c) for c in rng.choice(pool, size=min(n_units - 1, len(pool)), replace=False)]
            rest = [c for c in rest if c != first]
            while len(rest) < n_units - 1:
                c = int(rng.choice(all_cols))
                if c != first and c not in rest:
                    rest.append(c)
        chosen.append([first, *rest])
    return chosen


def influential_by_site(net: ReluNetwork, st: _UnitStats, eligible: np.ndarray, count: int) -> list[np.ndarray]:
    """Per site, the eligible units among the ``count`` most influential ones overall."""
    cols = np.flatnonzero(eligible)
    if len(cols) > count:
        cols = cols[np.argsort(-st.influence[cols], kind="stable")[:count]]
    site_of = net.site_of_unit()
    keep = np.zeros(net.n_units, dtype=bool)
    keep[cols] = True
    return [np.flatnonzero(keep & (site_of == s)) for s in range(len(net.sites))]


@dataclass
class _Candidates:
    seeds: np.ndarray
    idx: np.ndarray
    kinds: np.ndarray
    scales: np.ndarray
    near: np.ndarray


def _candidates(rng, engine, pool, n_random, near_samples, st, by_site, counts, batch) -> _Candidates:
    """Targets and start seeds of one round: ``counts`` = (unit, multi, decision) candidates."""
    n_unit, n_multi, n_dec = counts
    n_cand = n_unit + n_multi + n_dec
    idx = np.full((n_cand, MAX_TARGETS), -1, dtype="int32")
    kinds = np.full(n_cand, KIND_DECISION, dtype="int8")
    seeds = np.empty((n_cand, pool.shape[1]), dtype="float32")
    scales = np.ones((n_cand, MAX_TARGETS), dtype="float64")
    targets = _pick_targets(rng, by_site, n_unit, 1)
    sizes = rng.integers(2, MAX_TARGETS + 1, size=n_multi)
    targets += [t for k in sizes for t in _pick_targets(rng, by_site, 1, int(k))]
    cols = np.unique(np.concatenate([np.asarray(t, "int64") for t in targets])) if targets else np.zeros(0, "int64")
    pool_z = _gather_pool(engine, pool, cols, batch) if len(cols) else None
    where = {int(c): j for j, c in enumerate(cols)}

    def seed_rows(i: int, size: int) -> np.ndarray:
        lo, hi = (n_random, len(pool)) if near_samples[i] else (0, n_random)
        return lo + rng.choice(hi - lo, size=min(size, hi - lo), replace=False)

    for i, t in enumerate(targets):
        idx[i, : len(t)] = t
        kinds[i] = KIND_UNIT if len(t) == 1 else KIND_MULTI
        scales[i, : len(t)] = st.spread[t]
        # start from the pool seed closest to all target boundaries, among a random few
        cand = seed_rows(i, 32)
        dist = np.abs(pool_z[np.ix_(cand, [where[c] for c in t])] / st.spread[t]).sum(axis=1)
        seeds[i] = pool[cand[np.argmin(dist)]]
    if n_dec:
        _decision_candidates(rng, pool, n_random, near_samples, st, idx, seeds, scales, np.arange(len(targets), n_cand))
    return _Candidates(seeds, idx, kinds, scales, near_samples)


def _decision_candidates(rng, pool, n_random, near_samples, st, idx, seeds, scales, rows) -> None:
    logp = st.logp
    top2 = np.argsort(-logp, axis=1)[:, :2]
    picks = rng.choice(n_random, size=len(rows), replace=n_random < len(rows))
    near = near_samples[rows]
    if near.any():
        n_near = len(pool) - n_random
        picks[near] = n_random + rng.choice(n_near, size=int(near.sum()), replace=n_near < near.sum())
    idx[rows, 0] = top2[picks, 0]
    idx[rows, 1] = top2[picks, 1]
    scales[rows, 0] = st.margin_scale
    seeds[rows] = pool[picks]


# ----------------------------------------------------------------------------------- synthesis


def _seed_pool(rng, domain: Domain, net: ReluNetwork, config: SynthesisConfig, samples, varied: bool = False):
    """Random seeds (fewer for very large models; ``varied``: :meth:`Box.sample_varied`),
    then jittered public samples if any."""
    size = int(max(64, min(config.pool, config.pool_unit_budget // max(net.n_units, 1))))
    shape = net.input_shape
    pool = (domain.sample_varied if varied else domain.sample)(rng, (size, *shape)).reshape(size, -1)
    n_random = len(pool)
    if samples is not None:
        picked = samples[rng.integers(0, len(samples), size=size)].reshape(size, -1)
        jitter = rng.standard_normal(picked.shape) * config.sample_noise * domain.scale
        near = domain.project((picked + jitter).astype("float32").reshape(-1, *shape)).reshape(size, -1)
        pool = np.concatenate([pool, near])
    return pool.astype("float32"), n_random


def _round_counts(n_cand: int, task: str, config: SynthesisConfig, round_no: int,
                  decision_share: float | None = None) -> tuple[int, int, int]:
    """(unit, multi, decision) candidates of a round. A classifier's later rounds give
    decision points ``decision_share``, their share of the usable points found so far (half
    the round when none was found), at least the first round's share: the kinds are drawn
    as they paid. In some deep CNNs few bends survive the stability noise but most decision
    points do (MobileNetV2 at 96x96: 1 of 91 bends, 90 of 102 decision points); in others
    it is the other way round (ResNet50 at 224x224 trained for one epoch: 28 of 48 unit
    points, 9 of 45 decision points), where a fixed half of the round went to points that
    were dropped."""
    share = config.decision_fraction if task == "classification" else 0.0
    if round_no > 0 and share > 0:
        share = max(share, decision_share if decision_share is not None else 0.5)
    n_dec = int(round(n_cand * share))
    n_multi = int(round(n_cand * config.multi_fraction * (1 - share) / max(1 - config.decision_fraction, 1e-9)))
    if task != "classification":
        n_multi = int(round(n_cand * config.multi_fraction))
    return n_cand - n_dec - n_multi, n_multi, n_dec


def _one_round(engine, geo, domain, task, st, by_site, pool, n_random, near_all, counts, config, batch, rng,
               wanted: tuple[int, int] | None, give_up: int | None = None):
    """One round of candidates, in chunks when the model allows only small batches: the
    round stops after the chunk that finds the ``wanted`` (audible, stable) points still
    missing (:func:`_missing`; None: never stops early), or after a chunk whose yield so
    far projects under ``give_up`` audible points over the whole round (the caller then
    turns to other seeds: :func:`_read_pool`).

    A large model's batch holds a few inputs (ResNet50 at 224x224: 7), so its candidates
    run as several chunks anyway; in a random order, so that stopping early keeps each
    kind's share. A model whose candidates fit one batch (the MLPs) runs them all at once.
    """
    near = near_all(sum(counts))
    cand = _candidates(rng, engine, pool, n_random, near, st, by_site, counts, batch)
    decision = cand.kinds == KIND_DECISION
    n_cand = len(cand.seeds)
    chunk = max(batch, int(math.ceil(n_cand / CHUNKS)))
    order = np.arange(n_cand) if chunk >= n_cand else rng.permutation(n_cand)
    parts, found, start, tolerance = [], np.zeros(2, int), 0, NEWTON_TOLERANCE
    while start < n_cand:
        rows = order[start : start + _chunk_size(chunk, batch, start, found, wanted)]
        start += len(rows)
        x, residual, u, slope = newton(engine, geo, cand.seeds[rows], cand.idx[rows], decision[rows],
                                       cand.scales[rows], config.newton_steps, batch, tolerance)
        ok = residual < tolerance
        done = rows[ok]  # decision rows: the class pair in columns 0 and 1, one constraint (their margin)
        u_ok, delta, loud, seen = probe_steps(engine, geo, domain, x[ok], u[ok], cand.idx[done], decision[done],
                                              slope[ok], st.margin_scale, config, batch, st.audible_steps)
        tolerance = max(tolerance, _looser_tolerance(delta[loud], slope[ok][loud], cand.scales[done][loud, 0]))
        stable = _stable_points(seen, delta, cand.kinds[done], loud, task, geo.out_kind, config)
        parts.append({"x": x[ok], "u": u_ok, "delta": delta, "loud": loud, "kind": cand.kinds[done],
                      "seen": seen.answers(), "seen_features": seen.features(engine.feature_width()),
                      "seen_perturbed": seen.perturbed_answers(), "stable": stable,
                      "targets": cand.idx[done], "residual": residual[ok], "near": near[done], "tried": len(rows)})
        found += (int(loud.sum()), int(stable.sum()))
        if wanted is not None and np.all(found >= wanted):
            break
        if give_up is not None and start < n_cand and found[0] * n_cand < give_up * start:
            break  # these seeds hear too few bends (a clear miss: the caller switches under n/2)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "tried"}
    return {**out, "candidates": sum(p["tried"] for p in parts), "converged": len(out["x"])}


def _looser_tolerance(delta: np.ndarray, slope: np.ndarray, scale: np.ndarray) -> float:
    """The tolerance the next chunks' Newton steps may stop at: a point must lie nearer its
    boundary than a twentieth of its probe step, so the bend stays near the probe's middle
    (the owner and the suspect are asked at the same queries either way). The constraint
    changes by delta * slope across a step, so 5% of its smallest relative change (10th
    percentile of the audible points) is allowed, between :data:`NEWTON_TOLERANCE` and
    1e-2. Deep networks, whose audible steps are 10^3-10^6 times the distance to the
    next boundary (ResNet50 at 224x224: 10^4), take the 1e-2: about one Newton pass less
    per point, 2 decades of residual each. The digits MLP runs its candidates as one chunk
    (none later); with a base, as two, the second at about 1e-3."""
    rel = delta * slope / np.maximum(scale, 1e-30)
    rel = rel[np.isfinite(rel) & (rel > 0)]
    if not len(rel):
        return NEWTON_TOLERANCE
    return float(np.clip(0.05 * np.quantile(rel, 0.1), NEWTON_TOLERANCE, 1e-2))


def _chunk_size(chunk: int, batch: int, tried: int, found: np.ndarray, wanted: tuple[int, int] | None) -> int:
    """The next chunk: ``chunk`` candidates, or fewer (whole batches) when the yields so far
    say fewer will do for the (audible, stable) points still missing (ResNet50 at 224x224:
    143 stable points from 156 candidates, where 144 would have done)."""
    if wanted is None or not tried or not np.all(found > 0):
        return chunk
    need = max(0.0, float(np.max((np.asarray(wanted) - found) * tried / found)))
    return int(min(chunk, max(batch, batch * math.ceil(need / batch))))


def _missing(loud: int, stable: int, n: int, config: SynthesisConfig) -> tuple[int, int]:
    """(audible, stable) points still to find: n audible ones and, when stable points are
    preferred (``prefer_stable``), all but an eighth of them stable. Creation keeps the
    stable ones first and fills with the rest, whose kinks and flips verification ignores
    anyway (tafa_tf.verification.stable_points): chasing the last few stable points took
    ResNet50 at 224x224 from 14.8x to 16.4x the time of single passes."""
    want_stable = n - n // 8 if config.counts_stable() else 0
    return max(0, n - loud), max(0, want_stable - stable)


def _stable_points(seen: _Seen, delta, kind, loud, task: str, out_kind: str, config: SynthesisConfig) -> np.ndarray:
    """Per point, audible and kept by the owner under the stability noise (the answers
    :func:`stable_steps` saw at the final steps; tafa_tf.probes.stable_under)."""
    if config.stability_noise <= 0 or not loud.any():
        return np.zeros(len(delta), dtype=bool)
    return loud & stable_under(by_query(seen.answers()), by_query(seen.perturbed_answers()), delta, kind, task,
                               out_kind, config.stability_error)


def _usable(loud: np.ndarray, stable: np.ndarray, config: SynthesisConfig) -> np.ndarray:
    """The points whose share per kind steers later rounds: the stable ones when they are
    preferred (``prefer_stable``), else every audible one."""
    return stable if config.counts_stable() else loud


def synthesize(
    net: ReluNetwork,
    domain: Domain,
    task: str,
    out_kind: str,
    config: SynthesisConfig,
    samples: np.ndarray | None = None,
) -> BoundaryPoints:
    """Synthesize boundary points of ``net`` in ``domain``: at least ``config.n`` audible
    ones when the model allows (more rounds of candidates while short), every converged
    audible candidate returned for the caller to select from.

    With ``samples`` (a few public inputs, never training data needed), a share
    ``config.sample_fraction`` of the points start from jittered samples, so they
    lie on boundaries near where real inputs are; the rest start anywhere in the domain.

    Raises:
        UnsupportedModelError: when no unit changes sign at the seeds, uniform or of varied
            brightness and contrast (all dead or always on), or the model answers the same
            at all of them.
    """
    # no tf.random.set_seed: nothing here draws from TensorFlow, and it clears TensorFlow's
    # kernel caches (every traced function's setup paid again on its next call)
    rng = np.random.default_rng(config.seed)
    engine = engine_for(net)
    geo = _geometry(engine, domain, out_kind)
    batch = engine.batch_size(config.memory_budget_gib)
    read = _read_pool(rng, domain, net, config, samples, engine, geo, batch, out_kind, varied=False)
    varied, can_vary = False, config.varied_seeds and isinstance(domain, Box)
    if isinstance(read, UnsupportedModelError) and can_vary:
        # nothing to find near uniform seeds: seeds of varied brightness and contrast, before refusing
        again = _read_pool(rng, domain, net, config, samples, engine, geo, batch, out_kind, varied=True)
        varied = not isinstance(again, UnsupportedModelError)
        read = again  # a refusal then says both kinds of seeds were tried
    if isinstance(read, UnsupportedModelError):
        raise read
    pool, n_random, st, eligible, engine, seen_as = read
    n_cand = int(math.ceil(config.n * config.oversample))
    by_site = _targets(net, st, eligible, seen_as, n_cand, config)

    def near_all(k: int) -> np.ndarray:
        return (rng.random(k) < config.sample_fraction) if samples is not None else np.zeros(k, bool)

    rounds: list[dict[str, Any]] = []
    may_switch = can_vary and not varied  # uniform seeds so far: the first round may turn to varied ones
    for r in range(max(1, config.rounds)):
        usable = [_usable(rd["loud"], rd["stable"], config) for rd in rounds]
        missing = _missing(sum(int(rd["loud"].sum()) for rd in rounds), sum(int(rd["stable"].sum()) for rd in rounds),
                           config.n, config)
        heard = sum(int(u.sum()) for u in usable)
        decisions = sum(int((rd["kind"][u] == KIND_DECISION).sum()) for rd, u in zip(rounds, usable))
        counts = _round_counts(n_cand, task, config, r, decisions / heard if heard else None)
        if r > 0 and (not any(missing) or (not missing[0] and _expected_gain(rounds, usable, counts) < config.n / 8)):
            break  # found; or n audible points, and another round would hardly add stable ones
        if r == 1 and may_switch and missing[0] > config.n // 2:
            # under half the audible bends near uniform seeds: the next rounds start elsewhere
            # (only after the first round: the audible points missing never grow)
            read = _read_pool(rng, domain, net, config, samples, engine, geo, batch, seen_as, varied=True)
            if not isinstance(read, UnsupportedModelError):
                steps = st.audible_steps
                pool, n_random, st, eligible, engine, seen_as = read
                st.audible_steps, varied = steps, True
                by_site = _targets(net, st, eligible, seen_as, n_cand, config)
        give_up = config.n // 4 if r == 0 and may_switch else None  # a clear miss: no need to finish the round
        rounds.append({**_one_round(engine, geo, domain, task, st, by_site, pool, n_random, near_all, counts, config,
                                    batch, rng, missing if config.stop_at_n else None, give_up), "varied": varied})
    return _assemble(rounds, net, st, eligible, config, samples is not None)


def _read_pool(rng, domain: Domain, net: ReluNetwork, config: SynthesisConfig, samples, engine: _Engine,
               geo: _Geometry, batch: int, seen_as: str, varied: bool):
    """Seeds (uniform, or of varied brightness and contrast: :meth:`Box.sample_varied`) and
    the units' statistics there: (pool, n_random, stats, eligible units, engine, what its
    outputs are), or the UnsupportedModelError that refuses the model at these seeds.
    ``engine`` gives outputs of kind ``seen_as``: the owner's, or logits where an earlier
    pool saw the softmax saturated (the later rounds then keep reading logits).

    Uniform draws of many pixels are all mid-grey noise, where a trained CNN can be all but
    constant: ResNet50 at 224x224 trained to 0.23 accuracy on digits (their background
    black) gave 34 usable points of 128 in three rounds from them, 128 in one round from
    varied seeds. The synthesis starts from uniform seeds, and turns to varied ones when
    there is nothing to find there or its first round finds under half the audible bends
    wanted (a round that finds most of them is followed by more uniform ones: a softmax
    saturated at every uniform seed found 12 of 16 points after such a switch, 16 without).
    A first round in chunks stops early when its yield is a clear miss (``give_up`` of
    :func:`_one_round`): that ResNet50 heard 2 of its first 26 uniform candidates."""
    pool, n_random = _seed_pool(rng, domain, net, config, samples, varied)
    grad_seeds = _grad_seeds(config, net.n_units, len(pool))
    st = unit_statistics(engine, pool, geo.probs, batch, rng, grad_seeds)
    eligible = (st.active > 0.01) & (st.active < 0.99)
    where = f"{len(pool)} seeds drawn from {domain!r}" + (" (uniform, then of varied brightness and contrast)"
                                                           if varied else "")
    if not eligible.any():
        return UnsupportedModelError(
            f"No ReLU unit of the model changes sign at {where}: all {net.n_units} units are dead or always on "
            "there, so there is no boundary to fingerprint. Pass the domain the model was trained on "
            "(e.g. domain=tafa.domains.Box(0, 1) for pixels)."
        )
    if constant_to_rounding(st.out, seen_as) and _saturated(st.out, seen_as) and softmax_layer(net) is not None:
        # a softmax saturated at every seed (1.0 for one class): search on its logits, which
        # still move; decision points between classes answer unsaturated probabilities.
        # (A network that is itself constant, e.g. a random MobileNetV2, answers the same
        # unsaturated probabilities everywhere: refused below, without any round.)
        engine = engine_for(net, logits=True)
        st = unit_statistics(engine, pool, geo.probs, batch, rng, grad_seeds)
        seen_as = "logits"
    if constant_to_rounding(st.out, seen_as):
        return _constant_error(net, where)
    return pool, n_random, st, eligible, engine, seen_as


def _targets(net: ReluNetwork, st: _UnitStats, eligible: np.ndarray, seen_as: str, n_cand: int,
             config: SynthesisConfig) -> list[np.ndarray]:
    """The influential eligible units per site (:func:`influential_by_site`), with the
    statistics' canonical outputs and median top-2 margin filled in."""
    st.logp = canonical(st.out, seen_as)
    top = np.sort(st.logp, axis=1)[:, ::-1]
    st.margin_scale = float(np.median(top[:, 0] - top[:, 1])) + 1e-12 if top.shape[1] > 1 else 1.0
    return influential_by_site(net, st, eligible, int(math.ceil(config.influence_top * n_cand)))


def _saturated(outputs: np.ndarray, out_kind: str) -> bool:
    """Whether every row of these probabilities gives one class 1.0, to float32 rounding."""
    eps = float(np.finfo(np.float32).eps)
    return out_kind == "probabilities" and bool(np.all(np.max(outputs, axis=1) >= 1.0 - 8 * eps))


def _constant_error(net: ReluNetwork, where: str) -> UnsupportedModelError:
    """The refusal of a model whose outputs agree to float32 rounding at ``where`` (its seeds).

    Its boundaries there move no output: nothing to fingerprint. A randomly initialised
    MobileNetV2 in inference mode answers bit for bit the same everywhere (its
    BatchNormalization statistics are the initial ones); a MobileNet trained to chance
    accuracy varies by a few float32 roundings (``bends.constant_to_rounding``). Without
    this check the synthesis ran its rounds before refusing, 25 minutes at 224x224 on two
    shared cores.
    """
    return UnsupportedModelError(
        f"The model {net.model.name!r} answers the same, to float32 rounding, at all {where}, so there is "
        "nothing to fingerprint (a randomly initialised network in inference mode, or one trained to chance "
        "accuracy, often does). Pass the domain the model was trained on, and a trained model. " + SAMPLES_HINT
    )


def _expected_gain(rounds: list[dict[str, Any]], usable: list[np.ndarray], counts: tuple[int, int, int]) -> float:
    """Usable points a round of ``counts`` (unit, multi, decision) candidates should add, at
    each kind's yield so far. MobileNetV2 (alpha 1) at 96x96 had 10 stable points in 611:
    two more rounds tripled the fingerprint's time for a handful."""
    kind = np.concatenate([rd["kind"] for rd in rounds])
    good = np.concatenate(usable)
    gain = 0.0
    for k, c in zip((KIND_UNIT, KIND_MULTI, KIND_DECISION), counts):
        tried = int((kind == k).sum())
        gain += c * (int(good[kind == k].sum()) / tried if tried else 1.0)
    return gain


def _assemble(rounds, net, st, eligible, config, with_samples) -> BoundaryPoints:
    """Audible points of every round; quiet ones only to make up for missing ones."""
    cat = {k: np.concatenate([rd[k] for rd in rounds]) for k in ("x", "u", "delta", "loud", "kind", "targets",
                                                                   "residual", "near", "seen", "seen_features",
                                                                   "seen_perturbed", "stable")}
    loud = np.flatnonzero(cat["loud"])
    quiet = np.flatnonzero(~cat["loud"] & (cat["delta"] > 0))
    quiet = quiet[np.argsort(-cat["delta"][quiet], kind="stable")][: max(0, config.n - len(loud))]
    keep = np.sort(np.concatenate([loud, quiet]))
    stats = {
        "candidates": int(sum(rd["candidates"] for rd in rounds)),
        "converged": int(sum(rd["converged"] for rd in rounds)),
        "audible": int(len(loud)),
        "stable": int(cat["stable"].sum()),
        "quiet_kept": int(len(quiet)),
        "rounds": len(rounds),
        "varied_seed_rounds": int(sum(rd["varied"] for rd in rounds)),
        "uniform_seed_candidates": int(sum(rd["candidates"] for rd in rounds if not rd["varied"])),
        "pool": int(len(st.out)),
        "eligible_units": int(eligible.sum()),
        "dead_units": int((st.active <= 0.01).sum()),
        "always_on_units": int((st.active >= 0.99).sum()),
        "units": int(net.n_units),
        "seeded_near_samples": int(cat["near"][keep].sum()),
    }
    shape = net.input_shape
    return BoundaryPoints(
        x=cat["x"][keep].reshape(-1, *shape),
        u=cat["u"][keep].reshape(-1, *shape),
        delta=cat["delta"][keep].astype("float32"),
        kind=cat["kind"][keep],
        targets=cat["targets"][keep],
        residual=cat["residual"][keep].astype("float32"),
        stats=stats,
        seeded=cat["near"][keep] if with_samples else None,
        seen=cat["seen"][keep],
        seen_features=cat["seen_features"][keep] if cat["seen_features"].shape[2] else None,
        seen_perturbed=cat["seen_perturbed"][keep],
        stable=cat["stable"][keep],
    )
def select(points: BoundaryPoints, keep: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``n`` kept points, each kind in proportion to what was asked."""
    keep = np.flatnonzero(keep)
    if len(keep) <= n:
        return keep
    by_kind = {k: keep[points.kind[keep] == k] for k in np.unique(points.kind[keep])}
    total = len(keep)
    quota = {k: int(round(n * len(v) / total)) for k, v in by_kind.items()}
    short = n - sum(quota.values())
    for k in sorted(by_kind, key=lambda k: -len(by_kind[k])):
        if short == 0:
            break
        step = 1 if short > 0 else -1
        quota[k] += step
        short -= step
    chosen = [rng.choice(v, size=min(quota[k], len(v)), replace=False) for k, v in by_kind.items()]
    return np.sort(np.concatenate(chosen))


def select_owner_specific(
    owner: np.ndarray, base: np.ndarray, keep: np.ndarray, n: int, task: str, groups: np.ndarray | None = None,
    group_share: float = 0.0,
) -> np.ndarray:
    """Indices of at most ``n`` kept points where the owner departs most from its public base.

    ``owner`` and ``base`` are canonical outputs at the 3N queries (x, x+du, x-du) of N
    candidates. A copy of the owner inherits these departures; another fine-tune of the
    same base departs elsewhere, so these points tell the two apart (see
    ``verification``'s ``owner_side``). Classifiers: points where the two models' labels
    differ at any of the three queries come first. Then: largest departure first.
    With ``groups`` (a boolean per candidate, e.g. seeded from public samples), a share
    ``group_share`` of the points comes from the group, the rest from outside it.
    """
    m = len(keep)
    departure = np.linalg.norm((owner - base).reshape(3, m, -1), axis=2).sum(axis=0)
    differ = np.zeros(m, dtype=bool)
    if task == "classification":
        differ = (owner.argmax(axis=1) != base.argmax(axis=1)).reshape(3, m).any(axis=0)
    order = np.lexsort((-departure, ~differ))
    order = order[keep[order]]
    if groups is None:
        return np.sort(order[:n])
    inside, outside = order[groups[order]], order[~groups[order]]
    n_in = min(len(inside), int(round(n * group_share)))
    n_out = min(len(outside), n - n_in)
    n_in = min(len(inside), n - n_out)  # fill from the group when too few lie outside it
    return np.sort(np.concatenate([inside[:n_in], outside[:n_out]]))


__all__ = ["SynthesisConfig", "BoundaryPoints", "synthesize", "select", "select_owner_specific"]
