"""Data-free synthesis of boundary points: TAFA's fingerprint inputs.

From random seeds in the input domain, each candidate is pulled onto the zero set of
one or several ReLU pre-activations of the owner's model (or onto a classifier's
decision boundary) by least-norm Newton steps,

    x <- x - J^T (J J^T)^-1 c(x),

which are exact inside one linear region. The loop runs batched inside one
tf.function. Each point then gets a probe direction across its boundary, a step that
crosses no other boundary of the owner, and the kink of the owner's output there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tafa_tf.domains import Domain, Gaussian
from tafa_tf.errors import UnsupportedModelError
from tafa_tf.introspection import ReluNetwork
from tafa_tf.outputs import canonical
from tafa_tf.probes import KIND_DECISION, KIND_MULTI, KIND_UNIT

MAX_TARGETS = 4


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of boundary synthesis (stored in the fingerprint's manifest)."""

    n: int = 128
    seed: int = 0
    multi_fraction: float = 0.35  # share of points on intersections of 2-4 boundaries
    decision_fraction: float = 0.25  # classifiers: share of points on the decision boundary
    newton_steps: int = 30
    pool: int = 1024  # random seeds used to find dead/always-on units and near seeds
    oversample: float = 1.6  # candidates per wanted point, the rest absorb failures
    delta_fraction: float = 0.5  # probe step as a fraction of the distance to the next boundary
    max_delta: float = 0.05  # probe step cap, in units of the domain's scale
    decision_margin: float = 0.25  # decision probes reach this share of the median top-2 margin
    sample_fraction: float = 0.5  # with public samples: share of points seeded from them
    sample_noise: float = 0.05  # jitter added to public samples, in units of the domain's scale
    base_candidates: float = 4.0  # with a public base: candidates per kept point (the most owner-specific stay)

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


class _Engine:
    """Batched, traced Newton projection for one network."""

    def __init__(self, net: ReluNetwork, domain: Domain, out_kind: str):
        import tensorflow as tf

        self.tf = tf
        self.net = net
        self.d = int(np.prod(net.input_shape))
        self.out_kind = out_kind
        bounds = domain.bounds(net.input_shape)
        if bounds is None:
            low = np.full(self.d, -np.inf, "float32")
            high = np.full(self.d, np.inf, "float32")
        else:
            low, high = (b.reshape(-1).astype("float32") for b in bounds)
        self.low = tf.constant(low)
        self.high = tf.constant(high)
        if isinstance(domain, Gaussian) and domain.shell:
            self.shell = (domain.mean, *domain.shell_radii(self.d))
        else:
            self.shell = None
        self.solve = tf.function(self._solve, reduce_retracing=True)
        self.jacobian = tf.function(self._jacobian, reduce_retracing=True)
        self.coords = tf.function(self._coords, reduce_retracing=True)

    # The constraint c(x): target pre-activations, or a top-2 logit margin.
    def _constraints(self, x, idx, mask, decision):
        tf = self.tf
        out, z = self.net(tf.reshape(x, (-1, *self.net.input_shape)))
        if self.out_kind == "probabilities":
            out = tf.math.log(tf.maximum(out, 1e-12))
        safe = tf.maximum(idx, 0)
        units = tf.gather(z, safe, batch_dims=1)
        cls = tf.minimum(safe[:, :2], tf.shape(out)[1] - 1)  # only meaningful on decision rows
        margin = tf.gather(out, cls[:, :1], batch_dims=1) - tf.gather(out, cls[:, 1:2], batch_dims=1)
        margin = tf.pad(margin, [[0, 0], [0, MAX_TARGETS - 1]])
        c = tf.where(decision[:, None], margin, units)
        return c * mask

    def _jacobian(self, x, idx, mask, decision, free):
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            c = self._constraints(x, idx, mask, decision)
        jac = tape.batch_jacobian(c, x) * free[:, None, :]
        return c, jac

    def _project(self, x):
        tf = self.tf
        x = tf.clip_by_value(x, self.low, self.high)
        if self.shell is not None:
            mean, lo, hi = self.shell
            centered = x - mean
            norm = tf.norm(centered, axis=1, keepdims=True)
            target = tf.clip_by_value(norm, lo, hi)
            x = mean + centered * target / tf.maximum(norm, 1e-12)
        return x

    def _free(self, x):
        tf = self.tf
        at_bound = tf.logical_or(x <= self.low + 1e-6, x >= self.high - 1e-6)
        return tf.cast(tf.logical_not(at_bound), tf.float32)

    def _solve(self, x, idx, mask, decision, steps):
        tf = self.tf
        m = MAX_TARGETS
        for _ in tf.range(steps):
            c, jac = self._jacobian(x, idx, mask, decision, self._free(x))
            gram = tf.matmul(jac, jac, transpose_b=True)
            # relative ridge: frozen coordinates can leave target normals parallel or zero
            ridge = 1e-6 * (tf.linalg.trace(gram) / m)[:, None, None] + 1e-12
            lam = tf.linalg.solve(gram + ridge * tf.eye(m), c[:, :, None])
            step = tf.matmul(jac, lam, transpose_a=True)[:, :, 0]
            x = self._project(x - step)
        c, jac = self._jacobian(x, idx, mask, decision, self._free(x))
        return x, c, jac

    def _coords(self, x, u):
        """Outputs and coordinates at x, and the coordinates' rates of change along u."""
        tf = self.tf
        with tf.autodiff.ForwardAccumulator(x, u) as acc:
            out, z = self.net(tf.reshape(x, (-1, *self.net.input_shape)))
        return out, z, acc.jvp(z)


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


@dataclass
class _UnitStats:
    """What a pool of random seeds says of the owner's units and outputs."""

    pool: np.ndarray  # (P, d) seeds: random draws first, then (with samples) jittered samples
    n_random: int
    out: np.ndarray  # (P, outputs) the owner's outputs there
    z: np.ndarray  # (P, units) pre-activations there
    active: np.ndarray  # (units,) share of seeds where each unit is on
    eligible_by_site: list[np.ndarray]  # live units (on for some seeds, off for others), per site
    z_scale: np.ndarray  # (units,) spread of each pre-activation


@dataclass
class _Plan:
    """The candidates to project: their targets, kinds, seeds and constraint scales."""

    idx: np.ndarray  # (C, MAX_TARGETS) unit columns, or the class pair on decision rows; -1 padded
    kinds: np.ndarray
    seeds: np.ndarray
    scales: np.ndarray
    near_samples: np.ndarray  # (C,) seeded from a public sample
    margin_scale: float


def synthesize(
    net: ReluNetwork,
    domain: Domain,
    task: str,
    out_kind: str,
    config: SynthesisConfig,
    samples: np.ndarray | None = None,
) -> BoundaryPoints:
    """Synthesize ``config.n`` boundary points of ``net`` in ``domain``.

    With ``samples`` (a few public inputs, never training data needed), a share
    ``config.sample_fraction`` of the points start from jittered samples, so they
    lie on boundaries near where real inputs are; the rest start anywhere in the domain.

    Raises:
        UnsupportedModelError: when no unit changes sign anywhere in the domain (all
            dead or always on), or too few points converge.
    """
    import tensorflow as tf

    rng = np.random.default_rng(config.seed)
    tf.random.set_seed(config.seed)
    engine = _Engine(net, domain, out_kind)
    stats = _unit_statistics(engine, net, domain, config, rng, samples)
    plan = _plan_candidates(stats, task, out_kind, config, rng, samples is not None)
    mask = (plan.idx >= 0).astype("float32")
    decision = plan.kinds == KIND_DECISION
    mask[decision, 1:] = 0.0
    x, c, jac = engine.solve(
        tf.constant(plan.seeds), tf.constant(plan.idx), tf.constant(mask), tf.constant(decision),
        tf.constant(config.newton_steps),
    )
    x, c, jac = x.numpy(), c.numpy().astype("float64"), jac.numpy().astype("float64")
    residual = (np.abs(c) / plan.scales * mask).max(axis=1)
    u, has_normal = _probe_directions(jac, mask)
    delta = _probe_steps(engine, domain, config, x, u, jac, plan)
    converged = (residual < 1e-4) & has_normal & (delta > 1e-6 * domain.scale)
    summary = {
        "candidates": len(plan.idx),
        "converged": int(converged.sum()),
        "eligible_units": int(sum(len(e) for e in stats.eligible_by_site)),
        "dead_units": int((stats.active <= 0.01).sum()),
        "always_on_units": int((stats.active >= 0.99).sum()),
        "units": int(net.n_units),
        "seeded_near_samples": int(plan.near_samples[converged].sum()),
    }
    keep = np.flatnonzero(converged)
    shape = net.input_shape
    return BoundaryPoints(
        x=x[keep].reshape(-1, *shape),
        u=u[keep].reshape(-1, *shape),
        delta=delta[keep].astype("float32"),
        kind=plan.kinds[keep],
        targets=plan.idx[keep],
        residual=residual[keep].astype("float32"),
        stats=summary,
        seeded=None if samples is None else plan.near_samples[keep],
    )


def _unit_statistics(
    engine: _Engine, net: ReluNetwork, domain: Domain, config: SynthesisConfig, rng: np.random.Generator,
    samples: np.ndarray | None,
) -> _UnitStats:
    """Draw the seed pool and find, from it, which units are alive and how far they spread."""
    import tensorflow as tf

    shape = net.input_shape
    pool = domain.sample(rng, (config.pool, *shape)).reshape(config.pool, -1)
    n_random = len(pool)
    if samples is not None:
        picked = samples[rng.integers(0, len(samples), size=config.pool)].reshape(config.pool, -1)
        jitter = rng.standard_normal(picked.shape) * config.sample_noise * domain.scale
        near = domain.project((picked + jitter).astype("float32").reshape(-1, *shape)).reshape(config.pool, -1)
        pool = np.concatenate([pool, near])
    outs, zs = [], []
    for i in range(0, len(pool), 512):
        o, z, _ = engine.coords(tf.constant(pool[i : i + 512]), tf.zeros_like(pool[i : i + 512]))
        outs.append(o.numpy())
        zs.append(z.numpy())
    pool_out = np.concatenate(outs).astype("float64")
    pool_z = np.concatenate(zs).astype("float64")
    active = (pool_z > 0).mean(axis=0)
    eligible = (active > 0.01) & (active < 0.99)
    site_of = net.site_of_unit()
    if not eligible.any():
        raise UnsupportedModelError(
            f"No ReLU unit of the model changes sign anywhere in the domain {domain!r}: all "
            f"{net.n_units} units are dead or always on there, so there is no boundary to fingerprint. "
            "Pass the domain the model was trained on (e.g. domain=tafa.domains.Box(0, 1) for pixels)."
        )
    return _UnitStats(
        pool=pool, n_random=n_random, out=pool_out, z=pool_z, active=active,
        eligible_by_site=[np.flatnonzero(eligible & (site_of == s)) for s in range(len(net.sites))],
        z_scale=pool_z.std(axis=0) + 1e-12,
    )


def _plan_candidates(
    stats: _UnitStats, task: str, out_kind: str, config: SynthesisConfig, rng: np.random.Generator,
    with_samples: bool,
) -> _Plan:
    """Targets and starting seeds for the candidates: single units, intersections, decision points."""
    n_cand = int(math.ceil(config.n * config.oversample))
    decision_share = config.decision_fraction if task == "classification" else 0.0
    n_dec = int(round(n_cand * decision_share))
    n_multi = int(round(n_cand * config.multi_fraction))
    n_unit = n_cand - n_dec - n_multi
    plan = _Plan(
        idx=np.full((n_cand, MAX_TARGETS), -1, dtype="int32"),
        kinds=np.zeros(n_cand, dtype="int8"),
        seeds=np.empty((n_cand, stats.pool.shape[1]), dtype="float32"),
        scales=np.ones((n_cand, MAX_TARGETS), dtype="float64"),
        near_samples=np.zeros(n_cand, bool),
        margin_scale=1.0,
    )
    targets = _pick_targets(rng, stats.eligible_by_site, n_unit, 1)
    multi_sizes = rng.integers(2, MAX_TARGETS + 1, size=n_multi)
    targets += [t for k in multi_sizes for t in _pick_targets(rng, stats.eligible_by_site, 1, int(k))]
    if with_samples:  # which part of the pool each candidate's seed comes from: random draws or near samples
        plan.near_samples = rng.random(n_cand) < config.sample_fraction
    for i, cols in enumerate(targets):
        plan.idx[i, : len(cols)] = cols
        plan.kinds[i] = KIND_UNIT if len(cols) == 1 else KIND_MULTI
        plan.scales[i, : len(cols)] = stats.z_scale[cols]
        # start from the pool seed closest to all target boundaries, among a random few
        lo, hi = (stats.n_random, len(stats.pool)) if plan.near_samples[i] else (0, stats.n_random)
        cand = lo + rng.choice(hi - lo, size=min(32, hi - lo), replace=False)
        dist = np.abs(stats.z[np.ix_(cand, cols)] / stats.z_scale[cols]).sum(axis=1)
        plan.seeds[i] = stats.pool[cand[np.argmin(dist)]]
    if n_dec:
        _plan_decision_points(plan, stats, np.arange(len(targets), n_cand), out_kind, rng)
    return plan


def _plan_decision_points(
    plan: _Plan, stats: _UnitStats, rows: np.ndarray, out_kind: str, rng: np.random.Generator
) -> None:
    """Fill ``rows`` of the plan with seeds headed for the decision boundary between their top two classes."""
    logp = canonical(stats.out, out_kind)
    top2 = np.argsort(-logp, axis=1)[:, :2]
    margins = logp[np.arange(len(logp)), top2[:, 0]] - logp[np.arange(len(logp)), top2[:, 1]]
    plan.margin_scale = float(np.median(margins)) + 1e-12
    n_random, n_dec = stats.n_random, len(rows)
    picks = rng.choice(n_random, size=n_dec, replace=n_random < n_dec)
    near = plan.near_samples[rows]
    if near.any():
        n_near = len(stats.pool) - n_random
        picks[near] = n_random + rng.choice(n_near, size=int(near.sum()), replace=n_near < near.sum())
    plan.idx[rows, 0] = top2[picks, 0]
    plan.idx[rows, 1] = top2[picks, 1]
    plan.kinds[rows] = KIND_DECISION
    plan.scales[rows, 0] = plan.margin_scale
    plan.seeds[rows] = stats.pool[picks]


def _probe_directions(jac: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normalized sum of the unit normals of all target boundaries; and where it exists."""
    norms = np.linalg.norm(jac, axis=2, keepdims=True)
    normals = np.where(norms > 0, jac / np.maximum(norms, 1e-30), 0.0) * mask[:, :, None]
    u = normals.sum(axis=1)
    u_norm = np.linalg.norm(u, axis=1, keepdims=True)
    return (u / np.maximum(u_norm, 1e-30)).astype("float32"), u_norm[:, 0] > 1e-8


def _probe_steps(
    engine: _Engine, domain: Domain, config: SynthesisConfig, x: np.ndarray, u: np.ndarray, jac: np.ndarray,
    plan: _Plan,
) -> np.ndarray:
    """Probe steps that cross the target boundaries and no other boundary of the owner."""
    import tensorflow as tf

    idx = plan.idx
    decision = plan.kinds == KIND_DECISION
    _, z_x, dz = engine.coords(tf.constant(x), tf.constant(u))
    z_x, dz = z_x.numpy().astype("float64"), dz.numpy().astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(z_x) / np.abs(dz)
    t[~np.isfinite(t)] = np.inf
    rows = np.arange(len(idx))
    for j in range(MAX_TARGETS):
        sel = (idx[:, j] >= 0) & ~decision
        t[rows[sel], idx[sel, j]] = np.inf
    t[t < 1e-9] = np.inf  # units sitting on their own boundary at x: co-incident, ignore
    region = t.min(axis=1)
    cap = config.max_delta * domain.scale
    delta = np.minimum(config.delta_fraction * region, cap)
    if decision.any():
        slope = np.abs((jac[:, 0, :] * u).sum(axis=1)) + 1e-12
        delta[decision] = np.minimum(config.decision_margin * plan.margin_scale / slope[decision], 4 * cap)
    bounds = domain.bounds(engine.net.input_shape)
    if bounds is not None:
        low, high = (b.reshape(-1) for b in bounds)
        room = np.minimum(x - low, high - x)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(np.abs(u) > 1e-12, room / np.abs(u), np.inf).min(axis=1)
        delta = np.minimum(delta, reach)
    return delta


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
