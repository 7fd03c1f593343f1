"""Where a suspect bends: verification features that ignore what its outputs say.

A ReLU network is piecewise affine, so across one of the owner's probes,
x - delta*u, x, x + delta*u, a suspect's answers lie on a straight line unless the
suspect itself bends between the two probes. The relative curvature

    c = |f(x+du) + f(x-du) - 2 f(x)| / (|f(x+du) - f(x)| + |f(x) - f(x-du)|)

is 0 where the suspect is affine across the probe and grows to 1 for a sharp bend
at x; it does not change when the outputs are rescaled, shifted, or mixed by a new
linear output layer. A copy that kept the owner's hidden layers (FTLL and RTLL,
which retrain only the output layer, quantization, permutation) bends exactly
where the owner does, at every one of the owner's boundary points; a model trained
independently bends somewhere else, and only now and then within the owner's short
probe step (delta is half the owner's distance to its next boundary).

``bend_presence`` compares the suspect's mean relative curvature at the owner's
boundary points with the owner's own: the smaller over the larger, in [0, 1]. It is
symmetric on purpose: a suspect that curves everywhere (random answers, a far finer
partition) curves more than the owner and scores low, not 1. It needs no queries beyond
the fingerprint's 3N. Measured on three zoos of the piracy benchmark's classifier and
regressor (docs/results.md): the owner, FTLL and RTLL copies 0.81-1.00; innocent
models, fine-tunes of the owner's public base included, 0.02-0.23. Copies whose every
layer was retrained (FTAL, RTAL, pruning, adversarial tuning) move their bends as far
as another fine-tune of the base does, and score like innocents here.

It says something about the owner only beyond what a model of the owner's architecture
with fresh weights shows at the owner's points (:func:`beyond_fresh`; a random DenseNet121
at 96x96 bent there as much as its copy fine-tuned with BatchNormalization in training
mode), and only where the owner's bend stands out from the
owner's curvature anyway at the probe's scale: where probe steps span many of the
network's boundaries (deep CNNs trained on a small dataset), every model of the
architecture curves across them about as much. ``background_curvature`` measures that
at fingerprinting, and ``bend_presence`` is NaN where too few bends stand out.
"""

from __future__ import annotations

import math

import numpy as np

_TINY = 1e-12
_EPS32 = float(np.finfo(np.float32).eps)
AUDIBLE_RATIO = 30.0
"""A second difference counts as a bend when it stands this many times above float32 rounding."""
STANDOUT = 2.0
"""An owner's bend stands out where its curvature is this many times its background's."""
STANDOUT_SHARE = 0.25
"""``bend_presence`` is measured only when at least this share of the owner's heard bends stand out."""
STANDOUT_MIN = 4
"""... and at least this many: a MobileNetV2 fingerprint with 7 bends, 2 of them standing
out, lifted its innocents to 0.60 on the presence of those two (docs/results.md)."""
CONTROL_SHIFTS = (2.0, 3.0)
"""Background probe: the owner's probe moved 2 steps along its direction (centre 2 steps out, ends 1 and 3)."""


def rounding_noise(y0: np.ndarray, yp: np.ndarray, ym: np.ndarray) -> np.ndarray:
    """Per probe, the float32 rounding a second difference yp + ym - 2 y0 of these outputs can carry."""
    norm = lambda y: np.linalg.norm(y, axis=1)  # noqa: E731
    return 16 * _EPS32 * (norm(yp) + norm(ym) + 2 * norm(y0))


def constant_to_rounding(y: np.ndarray, kind: str = "values") -> bool:
    """Whether the rows of ``y`` (one model's outputs at many inputs) agree to float32
    rounding: the spread of every output stays within the rounding one second difference
    of them carries, so no probe among them can be :func:`audible`. A MobileNet (v1)
    trained to chance accuracy answered so at 32x32, varying by 8e-7 on probabilities of
    0.3: not bit for bit constant, and not a model to fingerprint either.

    ``kind="probabilities"`` compares log-probabilities, not centered (centering a
    near-uniform softmax leaves values near 0, whose rounding says nothing of the
    rounding the model's own computation carried).
    """
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if not len(y):
        return False
    if kind == "probabilities":
        y = np.log(np.clip(y, _TINY, None))
    spread = float(np.linalg.norm(np.ptp(y, axis=0)))
    return spread <= float(rounding_noise(y, y, y).max()) / 2.0


def audible(y0: np.ndarray, yp: np.ndarray, ym: np.ndarray, ratio: float = AUDIBLE_RATIO) -> np.ndarray:
    """Per probe: does its second difference stand ``ratio`` times above float32 rounding?"""
    return np.linalg.norm(yp + ym - 2.0 * y0, axis=1) > ratio * rounding_noise(y0, yp, ym) + 1e-12


def relative_curvature(y0: np.ndarray, yp: np.ndarray, ym: np.ndarray) -> np.ndarray:
    """Per probe, |second difference| / (|first difference up| + |first difference down|), in [0, 1]."""
    num = np.linalg.norm(yp + ym - 2.0 * y0, axis=1)
    den = np.linalg.norm(yp - y0, axis=1) + np.linalg.norm(y0 - ym, axis=1)
    with np.errstate(invalid="ignore", over="ignore"):  # answers near float's limit: NaN, dropped by the caller
        return np.where(den > _TINY, num / np.maximum(den, _TINY), 0.0)


def linearize(y: np.ndarray) -> np.ndarray:
    """Undo a sigmoid head: outputs all strictly inside (0, 1) become their logits.

    A generator's sigmoid output curves everywhere; its logit is piecewise affine
    again, so bends show as they do for any ReLU network. Other outputs are returned
    as they are.
    """
    if y.size and np.all(y > 0.0) and np.all(y < 1.0):
        p = np.clip(y, 1e-7, 1.0 - 1e-7)
        return np.log(p) - np.log1p(-p)
    return y


def control_queries(x: np.ndarray, u: np.ndarray, delta: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The inputs :func:`background_curvature` needs beside the probes: x + s*2*delta*u, then
    x + s*3*delta*u, with s the ``side`` (+1 or -1) of each point (2N rows)."""
    step = (side * delta).reshape(-1, *[1] * (x.ndim - 1)) * u
    return np.concatenate([x + c * step for c in CONTROL_SHIFTS])


def background_curvature(probes: tuple[np.ndarray, np.ndarray, np.ndarray], controls: np.ndarray,
                         side: np.ndarray, *, sigmoid_head: bool = False) -> np.ndarray:
    """Per point, the owner's relative curvature across its own probe moved two steps along
    its direction, to one side: how curved the owner is anyway at the probe's scale.

    A bend at x leaves that probe affine, so in a network with few bends at that scale
    (the MLPs of the benchmark) this is near 0 and the owner's bend at x stands far
    above it. Where the probe step is wide against the spacing of the network's
    boundaries (VGG16 trained on digits at 32x32: half the points' bends no higher than
    the background) every model curves about as much across any such probe, an
    independent one included, and bend presence says nothing about the owner.

    Args:
        probes: the owner's canonical outputs at x, x + delta*u, x - delta*u.
        controls: its canonical outputs at :func:`control_queries` (2N rows).
        side: (N,) +1 or -1, the side each point's control probe lies on (as given to
            :func:`control_queries`); 0 where neither side fits in the domain.
        sigmoid_head: as for :func:`bend_presence`.

    Returns:
        (N,) the curvature; NaN where ``side`` is 0.
    """
    both = np.concatenate([*probes, controls])
    y0, yp, ym, c2, c3 = np.split(linearize(both) if sigmoid_head else both, 5)
    near = np.where((np.asarray(side) > 0)[:, None], yp, ym)  # the probe one step out on that side
    return np.where(np.asarray(side) != 0, relative_curvature(c2, c3, near), np.nan)


def bend_presence(owner: tuple[np.ndarray, np.ndarray, np.ndarray],
                  suspect: tuple[np.ndarray, np.ndarray, np.ndarray], *, sigmoid_head: bool = False,
                  background: np.ndarray | None = None, follow: bool = False) -> float:
    """The smaller of the suspect's and the owner's mean relative curvature at the
    owner's boundary points over the larger, in [0, 1]; NaN when the owner shows no
    bend there. Only the points where the owner's second difference stands above
    float32 rounding (:func:`audible`) count: on a nearly constant model both sides'
    "curvature" elsewhere is rounding noise, alike for any model (MobileNetV2 at 224,
    at chance: innocents scored 0.98 on it and were accused).

    With the owner's ``background`` curvature (:func:`background_curvature`, stored in
    fingerprints since 0.2): NaN unless at least ``STANDOUT_SHARE`` of those bends, and
    ``STANDOUT_MIN`` of them, stand ``STANDOUT`` times above it. Where they do not, an innocent model curves across the
    owner's probes as much as the owner (VGG16 trained on digits: innocents 0.80 and
    0.96, one accused); the MLPs of the benchmark have 66-90% of their bends standing
    out and are unchanged. Where at least that share but fewer than ``FOLLOW_BELOW`` stand
    out, the owner is rough at the probes' scale and the level ratio counts only if the
    suspect's curvature follows the owner's point by point (:func:`follows`); else 0.

    Args:
        owner: the owner's canonical outputs (at x, x + delta*u, x - delta*u), one row per point.
        suspect: the suspect's, in the same order and form.
        sigmoid_head: outputs that may come through a sigmoid (a generator's pixels):
            both sides are passed through :func:`linearize` first.
        background: (N,) the owner's background curvature, or None (older fingerprints).
        follow: ask that the suspect's curvature follow the owner's (:func:`follows`)
            whatever the owner's roughness: where the suspect's answers carry noise that
            curves every probe (tafa_tf.verification asks it where the suspect's kinks
            are clearly noisier than no bend at all, ``NOISY_KINKS``). An independent
            digits MLP behind inputs rounded to 8 bits, as an image service rounds them,
            curved as much as the owner at the owner's points and read 0.69 on the level
            ratio; the owner behind the same rounding follows its own curvature.
    """
    heard = audible(*owner)  # where the owner's bend is rounding noise, curvature means nothing
    if not heard.any():
        return float("nan")
    both = np.concatenate([*owner, *suspect])
    o0, op, om, s0, sp, sm = np.split(linearize(both) if sigmoid_head else both, 6)
    curved = relative_curvature(o0, op, om)  # the owner's, per point
    rough = False  # does the owner curve anyway at the probes' scale, at many of its points?
    if background is not None:
        with np.errstate(invalid="ignore"):
            stands = curved > STANDOUT * np.asarray(background, dtype="float64")  # NaN background: False
        standing, n_heard = np.count_nonzero(stands & heard), np.count_nonzero(heard)
        if standing < max(STANDOUT_MIN, STANDOUT_SHARE * n_heard):
            return float("nan")
        rough = standing < FOLLOW_BELOW * n_heard
    ref = float(np.mean(curved[heard]))
    if not ref > 0.0:
        return float("nan")
    theirs = relative_curvature(s0[heard], sp[heard], sm[heard])
    if (rough or follow) and not follows(theirs, curved[heard]):
        return 0.0
    mine = float(np.mean(theirs))
    return min(mine, ref) / max(mine, ref)


FOLLOW_BELOW = 0.5
"""Where fewer than this share of the owner's heard bends stand out from its background,
``bend_presence`` also asks that the suspect curve most where the owner does (:func:`follows`):
an independent model of such a rough architecture can curve across the owner's probes as
much as the owner. The benchmark's MLPs have 76-96% standing out and never ask it."""
FOLLOW_SIGMAS = 3.0
"""The suspect's curvature follows the owner's, point by point, when their rank correlation
stands this many standard errors (1/sqrt(k - 1) for k points, under no relation) above 0."""


def follows(theirs: np.ndarray, mine: np.ndarray) -> bool:
    """Does the suspect curve most where the owner curves most? Spearman's rank correlation
    of the two per-point curvatures, over ``FOLLOW_SIGMAS / sqrt(k - 1)``.

    The level ratio alone says how curved the suspect is at the owner's points, not where:
    a trained ResNet50 at 224x224 that curves everywhere at the probes' scale reached
    0.73 on it, an innocent above a fine-tuned copy (0.67); its rank correlation with the
    owner was -0.03, the copy's 0.53 (97 points; docs/results.md). It is asked only of
    rough owners (``FOLLOW_BELOW``): a copy under a retrained output layer (RTLL) keeps
    every bend but remixes their sizes, and the benchmark's regressor RTLL copies
    correlated at only 0.21-0.33 (innocents up to 0.23), while their level ratio, 0.75-0.97
    against innocents' 0.07-0.25, told them apart.
    """
    ok = np.isfinite(theirs) & np.isfinite(mine)
    k = int(np.count_nonzero(ok))
    if k < 3:
        return False
    a, b = _ranks(theirs[ok]), _ranks(mine[ok])
    a, b = a - a.mean(), b - b.mean()
    if not np.any(b):  # the owner's bends are all alike: there is no order to follow
        return True
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return den > 0 and float(a @ b) / den > FOLLOW_SIGMAS / np.sqrt(k - 1)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of ``x`` (ties given their mean rank), as float."""
    from scipy.stats import rankdata

    return rankdata(x).astype("float64")


FRESH_MODELS = 3
"""How many models of the owner's architecture with fresh weights a fingerprint asks, to set
``bend_presence``'s level by chance (:func:`beyond_fresh`). One is not enough: of three fresh
DenseNet121s at 96x96, one read 0.00 (it did not follow the owner's rough curvature) and two
0.37 / 0.38."""


def beyond_fresh(presence: float, fresh: float) -> float:
    """``presence`` beyond ``fresh`` (the most that models of the owner's architecture with
    fresh weights showed at the owner's points), rescaled to [0, 1]:
    ``max(0, (presence - fresh) / (1 - fresh))``; ``presence`` as it is where ``fresh`` is
    NaN or 0 (older fingerprints; architectures whose fresh models bend elsewhere).

    Bending where the owner bends is evidence only where a model of the same architecture
    does not do it anyway. The benchmark's MLPs and trained CNNs: fresh models 0.00-0.10,
    copies' presence nearly unchanged. A DenseNet121 at 96x96 with random weights, owner and
    innocents alike: fresh models up to 0.38, innocents 0.35 / 0.43, so a copy at 0.43 was
    only tied with an innocent (docs/results.md, Real architectures).
    """
    if not math.isfinite(presence) or not math.isfinite(fresh) or fresh <= 0.0:
        return presence
    if fresh >= 1.0:
        return 0.0
    return max(0.0, (presence - fresh) / (1.0 - fresh))


__all__ = ["relative_curvature", "linearize", "bend_presence", "follows", "audible", "rounding_noise", "control_queries",
           "background_curvature", "beyond_fresh", "FRESH_MODELS"]
