"""Black-box verification: ask a suspect about the fingerprint's points and score it.

Only the suspect's outputs are needed. It is queried at every point x_i and at both
probes x_i +- delta_i*u_i, and its answers are compared with the owner's through
task-agnostic features:

- ``output_similarity``: 1 / (1 + relative squared error of the outputs);
- ``diff_similarity``: the same for first differences across each probe,
  f(x+du) - f(x-du), which carry the local slope of the owner's function;
- ``kink_similarity`` and ``kink_cosine``: agreement of the second differences
  (the bends) at the owner's boundary points; ``mixture_kinks``: the squared cosine of
  all the suspect's kinks there with all the owner's (for a classifier, on probabilities
  too), blind to their scale, as an ensemble that averages the owner with other models
  carries them (measured where ``bend_presence`` is);
- ``lattice_agreement``, for a suspect whose answers lie on an int8 grid (kinks cannot
  be read there): the share of its answers within two grid steps of the owner's, beyond
  chance; and ``noise_agreement``, for one whose kinks are noisier than no bend: the
  share of its answers at the owner's bends within twice its median kink error of the
  owner's, beyond chance. The first stands in for ``kink_similarity`` in the default
  score; the second raises its floor (:data:`FLOORS`);
- ``bend_presence``: whether the suspect bends where the owner does, whatever its
  outputs say (tafa_tf.bends): its relative curvature across the owner's probes
  against the owner's, the smaller over the larger; a copy that kept the owner's
  hidden layers (FTLL, RTLL) scores about 1 even under a new output layer;
- classifiers: ``label_agreement`` over all queries and ``flip_agreement``, the share of
  decision-boundary probes whose two labels the suspect gives as the owner does;
  ``label_kappa``, the label agreement beyond chance (Cohen's kappa), and
  ``output_correlation``, the correlation of the centered log-probabilities with the
  owner's (blind to confidence), which stand in for ``label_agreement`` and
  ``output_similarity`` in the default score;
- with a public base model named at fingerprinting: ``owner_side``, where the owner
  and its base answer differently, how far the suspect sides with the owner
  (classifiers: the share of those queries where it gives the owner's label;
  otherwise: how far its answer goes from the base's toward the owner's, the
  projection clipped to [0, 1] times the cosine of the two departures, weighted by
  how far the owner and the base differ); and
  ``base_contrast``, the cosine of the suspect's and the owner's departures from that
  base (negative counts as 0), reported but not in the default score;
- with a base and public samples: ``owner_pull``, the same projection at the points
  seeded from the samples, for every task. A student distilled from the owner on
  data copies the owner there; it is reported, and left to calibration (in the
  default score it cost more on pruned copies than it gained on distilled ones).

Kinks and flips are measured at the points where the owner's own perturbed copy keeps
them (``stable_points``), when the fingerprint stores that copy's answers.

A suspect that answers with labels only is scored on the label features alone
(label-only mode). One that answers another number of values than the owner's model
(a new output layer on the owner's network, for a task of its own) is scored on the
head features alone, and never cleared (mode ``new_head``, :func:`_new_head_features`).
The score is the calibrated combiner's probability when the fingerprint carries a
calibration, else ``default_score`` (documented there).
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from tafa_tf import judge
from tafa_tf.bends import bend_presence, beyond_fresh, linearize
from tafa_tf.asking import ask, query
from tafa_tf.errors import SuspectShapeError
from tafa_tf.heads import FOLDS, exactness, head_closeness, head_contrast, head_exact, head_fit
from tafa_tf.judge import UNCALIBRATED_FLOOR
from tafa_tf.outputs import canonical, coarse_grid, labels_of, lattice_step, output_kind, softmax
from tafa_tf.probes import KIND_DECISION, kinks, n_repeats, stable_under
from tafa_tf.record import Fingerprint
from tafa_tf.verdicts import verdict_word

if TYPE_CHECKING:
    import keras

DEFAULT_THRESHOLD = UNCALIBRATED_FLOOR
"""The lowest score at which an uncalibrated verdict may say "pirated".

Without a calibration the verdict follows tafa_tf.judge: relative to references the
fingerprint carries without data (the owner's answers shuffled across the points, and
the public base's answers when the fingerprint was made with ``base=``), pirated at or
above ``max(DEFAULT_THRESHOLD, ref + 0.85 * (1 - ref))``, cleared under 20% of the way
from ``ref`` to 1, and no verdict ("uncertain") in between. Calibrate (``tafa calibrate``,
``tafa.references.build``) for a threshold with a measured false-positive rate."""



@runtime_checkable
class SuspectLike(Protocol):
    """What ``verify`` needs of a suspect besides a keras.Model: a callable numpy -> numpy.

    ``adapters.Suspect`` (a model loaded from a file or the Hub) is one; so is any
    function. Optional, read when present: ``input_shape`` (without the batch axis;
    checked against the fingerprint before querying) and ``to_dict()`` (provenance,
    copied into ``Report.source``).
    """

    def __call__(self, x: np.ndarray) -> Any: ...


@runtime_checkable
class DescribedSuspect(SuspectLike, Protocol):
    """A suspect that can say where it came from (``Report.source``)."""

    def to_dict(self) -> dict[str, Any]: ...

STATUS_OK = "ok"
STATUS_NON_FINITE = "non_finite"
STATUS_NONDETERMINISTIC = "nondeterministic"


@dataclass(frozen=True)
class Report:
    """The outcome of verifying one suspect against one fingerprint.

    Attributes:
        score: in [0, 1], higher means more likely pirated (NaN when status is not
            scoreable).
        pirated: the verdict: True (pirated), False (not pirated), or None: no verdict,
            when the suspect's answers cannot support one (status "non_finite", or
            "nondeterministic" with a score under the threshold: noise lowers agreement,
            so such a suspect is not cleared) or, uncalibrated, when the score falls in
            the uncertain band between ``clear_threshold`` and ``threshold``.
        features: the verification features, by name.
        queries: how many inputs the suspect was asked about.
        status: "ok"; "non_finite" (the suspect answered NaN or inf); or
            "nondeterministic" (it answered the same input differently; see ``warnings``).
        threshold: pirated at or above it: the calibration's threshold, or the
            uncalibrated rule's (tafa_tf.judge, never under DEFAULT_THRESHOLD).
        calibrated: whether a stored calibration made the score and threshold.
        mode: "outputs"; "labels" for a label-only suspect; "new_head" for one answering
            another number of values (never cleared: ``pirated`` is True or None).
        warnings: anything the user should know before relying on the verdict.
        source: what the suspect says of itself (path, repository, resolved sha...).
        clear_threshold: uncalibrated: not pirated under it (None when calibrated).
        references: uncalibrated: the data-free reference scores the thresholds follow.
        fpr, fpr_upper: calibrated: the threshold's measured false-positive rate on the
            innocent references (cross-validated scores) and its one-sided 95%
            Clopper-Pearson upper bound; None uncalibrated.
        p_value: calibrated: (1 + innocent references scoring >= score) / (1 + n).
        n_positives, n_negatives: calibrated: the pirated and innocent references behind it.
    """

    score: float
    pirated: bool | None
    features: dict[str, float]
    queries: int
    status: str = STATUS_OK
    threshold: float = DEFAULT_THRESHOLD
    calibrated: bool = False
    mode: str = "outputs"
    warnings: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    clear_threshold: float | None = None
    references: dict[str, float] = field(default_factory=dict)
    fpr: float | None = None
    fpr_upper: float | None = None
    p_value: float | None = None
    n_positives: int | None = None
    n_negatives: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def verdict(self) -> str:
        """"PIRATED", "not pirated", "uncertain" (uncalibrated band) or "no verdict"."""
        uncertain = self.status == STATUS_OK and not self.calibrated and math.isfinite(self.score)
        return verdict_word(self.pirated, uncertain=uncertain)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        d["score"] = None if not math.isfinite(self.score) else self.score
        return d

    def __str__(self) -> str:
        if self.calibrated:
            rates = f"threshold {self.threshold:.3f}, calibrated"
            if self.fpr is not None:
                rates += (f": FPR {self.fpr:.3f} on {self.n_negatives} innocent references (95% upper bound "
                          f"{self.fpr_upper:.3f}), p-value {self.p_value:.3g}")
            head = f"{self.verdict}: score {self.score:.3f} ({rates})"
        else:
            band = (f"cleared under {self.clear_threshold:.3f}, " if self.clear_threshold is not None else "")
            head = (f"{self.verdict} (uncalibrated): score {self.score:.3f} ({band}pirated from {self.threshold:.3f}; "
                    "no error rate without `tafa calibrate`)")
        head += f", {self.queries} queries"
        if self.status != STATUS_OK:
            head += f" [status: {self.status}]"
        return head


def _relative_similarity(s: np.ndarray, o: np.ndarray, reference: np.ndarray) -> float:
    """1 / (1 + |s - o|^2 / |reference|^2): 1 for identical, 0.5 when the error is as large as the signal."""
    den = float(np.sum(reference**2))
    if den <= 0:
        return float("nan")
    return 1.0 / (1.0 + float(np.sum((s - o) ** 2)) / den)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / den if den > 0 else 0.0


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two label sets: agreement beyond what their label frequencies give
    by chance (0), up to 1; NaN when chance alone agrees always (one label each, the same)."""
    classes = np.union1d(a, b)
    chance = float(sum(np.mean(a == c) * np.mean(b == c) for c in classes))
    if chance >= 1.0:
        return float("nan")
    return (float(np.mean(a == b)) - chance) / (1.0 - chance)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two answer sets over every query and output, each output
    centered over the queries: 1 when ``a`` is ``b`` up to a positive scale and shift."""
    return _cosine((a - a.mean(axis=0)).ravel(), (b - b.mean(axis=0)).ravel())


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = na > 0
    if not ok.any():
        return float("nan")
    cos = np.where(nb[ok] > 0, (a[ok] * b[ok]).sum(axis=1) / (na[ok] * np.maximum(nb[ok], 1e-300)), 0.0)
    return float(np.mean(cos))


def _pull(s: np.ndarray, o: np.ndarray, b: np.ndarray) -> float:
    """How far the answers ``s`` follow the owner's departure from the base, ``o - b``, in [0, 1].

    Per query: the projection of ``s - b`` on ``o - b`` (clipped to [0, 1]) times the
    cosine of the two departures (negative counts as 0), so that an answer far off to
    the side earns little; averaged with weights ``|o - b|``. For one output value the
    cosine is 1 wherever the projection is positive.
    """
    apart, moved = o - b, s - b
    w = np.linalg.norm(apart, axis=1)
    if w.sum() <= 0:
        return float("nan")
    dot = np.sum(moved * apart, axis=1)
    t = dot / np.maximum(w**2, 1e-300)
    cos = dot / np.maximum(w * np.linalg.norm(moved, axis=1), 1e-300)
    return float(np.sum(w * np.clip(t, 0.0, 1.0) * np.clip(cos, 0.0, 1.0)) / np.sum(w))


@dataclass(frozen=True)
class _Reading:
    """A suspect's answers as they are compared with the owner's, and how they were read."""

    answers: np.ndarray
    kind: str  # output kind: "labels", "probabilities", "logits" or "values"
    order: np.ndarray | None = None  # its classes in the owner's order (:func:`class_order`), if moved
    grid: str | None = None  # how its probabilities were rounded (:func:`tafa_tf.outputs.coarse_grid`)
    lattice: float | None = None  # the step of a quantized suspect's answers (:func:`tafa_tf.outputs.lattice_step`)

    def warnings(self) -> list[str]:
        """What the report says about how the answers were read."""
        out = []
        if self.order is not None:
            moved = int(np.sum(self.order != np.arange(len(self.order))))
            out.append(f"The suspect lists its classes in another order ({moved} of {len(self.order)} moved): "
                       "its outputs were matched to the owner's classes before scoring.")
        if self.kind == "labels":
            out.append(f"The suspect's answers are rounded ({self.grid}), far coarser than the fingerprint's "
                       "bends: scored as a label-only suspect, on label agreement and decision flips alone."
                       if self.grid else "Label-only suspect: scored on label agreement and decision flips alone.")
        if self.lattice is not None:
            out.append(f"The suspect's answers are quantized (every value a multiple of {self.lattice:.3g}, as an "
                       "int8 model answers), far coarser than the owner's probes: no difference, kink or bend can "
                       "be read across them. They were left out of its score; in the kinks' place it counts how "
                       f"many of its answers lie within {LATTICE_STEPS:g} grid steps of the owner's, beyond chance "
                       "(lattice_agreement, counted no lower than 0.5).")
        return out


def _read(fp: Fingerprint, answers: np.ndarray, width: int) -> _Reading:
    """A classifier suspect's answers as they are compared with the owner's ``width``
    outputs: its classes in the owner's order (:func:`class_order`), and labels where its
    probabilities come rounded (:func:`tafa_tf.outputs.coarse_grid`). Answers of another
    width are left for the shape check."""
    kind = output_kind(answers, fp.task, width)
    if kind == "labels":
        return _Reading(answers, kind)
    step = lattice_step(answers)
    if fp.task != "classification" or answers.ndim != 2 or answers.shape[1] != width:
        return _Reading(answers, kind, lattice=step)
    order = class_order(fp, answers)
    if order is not None:  # the classes answer in another order: the owner's order first
        answers = answers[:, order]
    grid = coarse_grid(answers)
    half = grid in ("float16", "bfloat16")  # an int8 softmax's 1/256 grid fits bfloat16's too
    if step is not None and (half or (grid is None and kind == "probabilities")):
        grid = f"quantized, every value a multiple of {step:.3g}, as an int8 model answers"
    if grid is not None:
        # rounded probabilities (an API's 4 decimals, a float16 model): the bends are lost in
        # the rounding and log(0) stands where a probability was rounded away; labels are not
        return _Reading(labels_of(answers, kind).astype("float64"), "labels", order, grid)
    return _Reading(answers, kind, order, lattice=step)


def compute_features(fp: Fingerprint, answers: np.ndarray) -> tuple[dict[str, float], str]:
    """Verification features of a suspect's answers to ``fp.queries()``; and the mode."""
    return _features(fp, _read(fp, answers, fp.owner_outputs().shape[1]))


def _features(fp: Fingerprint, reading: _Reading) -> tuple[dict[str, float], str]:
    """:func:`compute_features` of answers already read (:func:`_read`)."""
    n = fp.n_points
    owner = fp.owner_outputs().astype("float64")
    answers, s_kind = reading.answers, reading.kind
    if s_kind != "labels" and _width(answers) != owner.shape[1]:
        return _new_head_features(fp, reading), MODE_NEW_HEAD
    features: dict[str, float] = {}
    stable = stable_points(fp)
    if fp.task == "classification":
        o_lab = labels_of(owner, fp.output_kind)
        s_lab = labels_of(answers, s_kind)
        dec = np.flatnonzero(fp.kind == KIND_DECISION)
        # a decision point itself is a tie for the owner: its label means nothing there
        counted = np.ones(len(o_lab), dtype=bool)
        counted[dec] = False
        features["label_agreement"] = float(np.mean(o_lab[counted] == s_lab[counted]))
        kappa = _kappa(o_lab[counted], s_lab[counted])
        if math.isfinite(kappa):  # NaN: both give one and the same label everywhere
            features["label_kappa"] = kappa
        if stable is not None:
            dec = dec[_enough(stable[dec])]
        if len(dec):
            same_p = s_lab[n + dec] == o_lab[n + dec]
            same_m = s_lab[2 * n + dec] == o_lab[2 * n + dec]
            features["flip_agreement"] = float(np.mean(same_p & same_m))
        if fp.yb is not None:
            differ = counted & (labels_of(fp.yb, fp.output_kind) != o_lab)
            if differ.any():
                features["owner_side"] = float(np.mean(s_lab[differ] == o_lab[differ]))
    if s_kind == "labels":
        return features, "labels"
    oc = canonical(owner, fp.output_kind)
    sc = canonical(answers, s_kind)
    features["output_similarity"] = _relative_similarity(sc, oc, oc - oc.mean(axis=0))
    if fp.task == "classification":
        features["output_correlation"] = _correlation(sc, oc)
    o0, op, om = oc[:n], oc[n : 2 * n], oc[2 * n :]
    s0, sp, sm = sc[:n], sc[n : 2 * n], sc[2 * n :]
    if reading.lattice is None:  # quantized answers: the probes' steps are finer than their grid
        features["diff_similarity"] = _relative_similarity(sp - sm, op - om, op - om)
    if fp.yb is not None:
        # Does the suspect depart from the public base the way the owner did? Another
        # fine-tune of that base departs elsewhere, a copy of the owner along with it.
        base = canonical(fp.yb.astype("float64"), fp.output_kind)
        features["base_contrast"] = max(0.0, _cosine((sc - base).ravel(), (oc - base).ravel()))
        if fp.seeded is not None and fp.seeded.any():
            near = np.tile(fp.seeded.astype(bool), 3)
            features["owner_pull"] = _pull(sc[near], oc[near], base[near])
        if fp.task != "classification":
            features["owner_side"] = _pull(sc, oc, base)
        for name in ("owner_pull", "owner_side"):  # NaN: the base answers as the owner does
            if name in features and not math.isfinite(features[name]):
                del features[name]
    bends = fp.kind != KIND_DECISION
    kept = bends.copy()  # kinks: where the perturbed owner keeps them
    if stable is not None:
        kept[bends] = _enough(stable[bends])
    if kept.any():
        features.update(_kink_features(fp, (o0, op, om), (s0, sp, sm), kept, quantized=reading.lattice is not None))
    if bends.any() and reading.lattice is None:  # presence compares curvature and has its own guard (background)
        # kinks clearly noisier than no bend: noise curves every probe, so the curvature must follow the owner's
        noisy = features.get("kink_similarity", 1.0) < NOISY_KINKS
        presence = beyond_fresh(bend_presence_at(fp, (o0, op, om), (s0, sp, sm), follow=noisy),
                                _fresh_presence(fp, (o0, op, om)))
        if math.isfinite(presence):
            features["bend_presence"] = presence
            if kept.any():  # measured where presence is: where the owner's bends stand out
                features["mixture_kinks"] = _mixture_kinks(fp, (o0, op, om), (s0, sp, sm), kept)
    agreement = math.nan if reading.lattice is None else lattice_agreement(answers, fp.owner_outputs(), reading.lattice)
    if math.isfinite(agreement):  # a quantized suspect's stand-in for its kinks (STAND_INS)
        features["lattice_agreement"] = agreement
    # on an int8 grid the rounding, not the suspect, sets how close its answers come
    features.update(_head_features(fp, _head_answers(fp, sc), closeness=reading.lattice is None))
    return features, "outputs"


MODE_NEW_HEAD = "new_head"
"""The mode of a suspect that answers another number of values than the owner's model
(:func:`_new_head_features`): the owner's network under a new output layer, for another task."""


def _width(answers: np.ndarray) -> int:
    return int(answers.shape[1]) if answers.ndim == 2 else 1


def _new_head_features(fp: Fingerprint, reading: _Reading) -> dict[str, float]:
    """The features of a suspect answering another number of values than the owner's model.

    A pirate who keeps the owner's network and trains a new output layer for a task of
    its own (five classes where the owner had ten, two targets where it had one) answers
    in another width: no answer can be compared with the owner's, but whether an affine
    map of the owner's penultimate features explains them can be read in any width
    (``head_fit``, ``head_closeness``, ``head_exact``; with the base ``head_contrast`` and
    ``head_evidence``). ``bend_presence`` is not measured: its ratio of each side's own
    curvature lifted independent digits CNNs under two-class heads to 0.90-1.00 and
    accused them (benchmarks/bench_new_head.py). Raises SuspectShapeError where the
    head features cannot be read (the fingerprint keeps no features, or the answers do
    not vary).

    With the public base's features, ``head_closeness`` counts only as far as the owner's
    features explain the answers better than the base's (times ``2 * head_contrast``, at
    most 1, and by nothing where the base's explain them exactly): an owner that trained
    a head on a frozen public backbone shares every hidden layer with anyone else's new
    head on that backbone, and read without the base any such head would be accused.
    """
    answers = canonical(reading.answers, reading.kind)
    # values all inside (0, 1) come through a sigmoid (a binary or multi-label head, a
    # decoder's pixels: _head_answers does the same for those): its logits are affine
    answers = linearize(answers) if reading.kind == "values" else answers
    features = _head_features(fp, answers, closeness=reading.lattice is None, beyond_base=True)
    if not features:
        raise SuspectShapeError(
            f"The suspect answers {_width(reading.answers)} values per input, but the owner's model answered "
            f"{fp.owner_outputs().shape[1]} (output shape {tuple(fp.output_shape)}), and nothing can be read "
            "across them: " + ("its answers do not vary." if fp.features is not None else
               "this fingerprint keeps no penultimate features of the owner (an older fingerprint, or a last "
               "layer too wide to keep); a suspect under a new output layer needs them. Verify the suspect's "
               "output that does the owner's task, or fingerprint the owner again.")
        )
    return features


NEW_HEAD_WARNING = (
    "The suspect answers {theirs} values per input where the owner's model answers {ours}: it was read as the "
    "owner's network under a new output layer (a transfer to another task), scored on how closely an affine "
    "map of the owner's penultimate features explains its answers (head_closeness, head_exact). Such a "
    "suspect can be shown to be a copy, never cleared: a copy fine-tuned in every layer for a new task can "
    "read the owner's features little better than an independent model."
)


NOISY_KINKS = 0.45
"""Under this ``kink_similarity`` a suspect's kinks are clearly noisier than no bend at all
(0.5; models that do not bend at the owner's points read 0.47-0.50, the 5th percentile and
median of the benchmark's 696 innocents), and ``bend_presence`` must follow the owner's
curvature point by point (:func:`tafa_tf.bends.bend_presence`, ``follow``). An independent
digits MLP behind inputs rounded to 8-bit pixels read 0.21 on its kinks and 0.69 on the
level ratio alone. Deep CNNs' copies and innocents hover at 0.47-0.52 (ResNet50 at 32x32):
a line at 0.5 took the lift from a pruned copy and an innocent alike, by the third decimal."""


def bend_presence_at(fp: Fingerprint, owner: tuple, suspect: tuple, *, at_bends: bool = False,
                     follow: bool = False) -> float:
    """:func:`tafa_tf.bends.bend_presence` at the fingerprint's bends (not its decision points),
    from the owner's and a suspect's canonical answers at the points and across each probe
    (N rows each; ``at_bends``: the suspect's at the bends alone, as ``Fingerprint.fresh``;
    ``follow``: as for bend_presence)."""
    bends = fp.bend_points()
    if not at_bends:
        suspect = tuple(y[bends] for y in suspect)
    return bend_presence(tuple(y[bends] for y in owner), suspect, sigmoid_head=fp.task == "generation",
                         background=None if fp.background is None else fp.background[bends], follow=follow)


_FRESH_PRESENCE: dict[int, float] = {}


def _fresh_answers(fp: Fingerprint) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per model with fresh weights (``Fingerprint.fresh``; none without them), its canonical
    answers at every bend: at x, x + delta*u, x - delta*u."""
    if fp.fresh is None:
        return []
    return [tuple(np.split(canonical(raw, fp.output_kind), 3))
            for raw in np.split(fp.fresh.astype("float64"), len(fp.fresh) // (3 * len(fp.bend_points())))]


def _fresh_presence(fp: Fingerprint, owner: tuple) -> float:
    """The most ``bend_presence`` that the fingerprint's models with fresh weights
    (``Fingerprint.fresh``) reach, NaN ones as 0; NaN without them. Once per fingerprint."""
    def compute() -> float:
        values = [np.nan_to_num(bend_presence_at(fp, owner, fresh, at_bends=True)) for fresh in _fresh_answers(fp)]
        return float(max(values)) if values else float("nan")

    return _per_fingerprint(_FRESH_PRESENCE, fp, id(fp), compute)


def _kink_features(fp: Fingerprint, owner: tuple, suspect: tuple, kept: np.ndarray, *,
                   quantized: bool) -> dict[str, float]:
    """``kink_similarity`` and ``kink_cosine`` over the ``kept`` bends, from the owner's and
    the suspect's canonical answers (at the points, and across each probe); and, where the
    suspect's kinks are noisier than no bend at all, ``noise_agreement``."""
    (o0, op, om), (s0, sp, sm) = owner, suspect
    delta = fp.delta.astype("float64")[kept]
    k_owner = kinks(o0[kept], op[kept], om[kept], delta)
    # quantized answers: no kink can be read in them, so none counts (as for a suspect
    # that does not bend there: kink similarity 0.5, cosine 0)
    k_susp = np.zeros_like(k_owner) if quantized else kinks(s0[kept], sp[kept], sm[kept], delta)
    out = {"kink_similarity": _relative_similarity(k_susp, k_owner, k_owner),
           "kink_cosine": _mean_cosine(k_owner, k_susp)}
    # noise (not a grid, whose kinks were never read): is it all that parts the answers?
    if not quantized and out["kink_similarity"] < FLOORS["kink_similarity"]:
        noise = noise_agreement(s0[kept], o0[kept], (k_susp - k_owner) * delta.reshape(-1, 1))
        if math.isfinite(noise):
            out["noise_agreement"] = noise
    return out


def _at(triple: tuple, rows: np.ndarray) -> tuple:
    return tuple(y[rows] for y in triple)


def mixture_kinks(task: str, o0: np.ndarray, op: np.ndarray, om: np.ndarray, s0: np.ndarray, sp: np.ndarray,
                  sm: np.ndarray, delta: np.ndarray) -> float:
    """How much of the suspect's kinks at the owner's bends lies along the owner's, whatever
    their size: the squared cosine of all its kinks with all the owner's (0 where they
    point against them), from canonical answers at the bends and across their probes,
    read on the answers and, for a classifier, on its probabilities too; the larger.

    A suspect that averages the owner's answers with another model's (an ensemble)
    carries the owner's kinks scaled by the owner's weight, plus the other model's,
    which seldom bends at the owner's points: the cosine ignores the scale. An ensemble
    averages logits or values (then its answers show it) or probabilities (then these
    do; where the softmax saturates its kinks vanish, so all kinks are weighed together,
    by size, not point by point as ``kink_cosine`` does). Squared, it is the share of
    the suspect's kink energy along the owner's: a cosine of all kinks together rests on
    the largest few, and innocent models reached 0.59 on it (0.35 squared) where
    ensembles read 0.86-1.00 (0.73-1.00 squared; docs/results.md). ``verify`` measures it only where
    ``bend_presence`` is (the owner's bends stand out from its own curvature), beyond
    what models with fresh weights show (:func:`_mixture_kinks`).
    """
    owner, suspect = (o0, op, om), (s0, sp, sm)
    k_owner, k_susp = kinks(*owner, delta), kinks(*suspect, delta)
    cosines = [_cosine(k_owner.ravel(), k_susp.ravel())]
    if task == "classification" and k_owner.shape[1] > 1:
        p_owner, p_susp = (kinks(*map(softmax, triple), delta) for triple in (owner, suspect))
        cosines.append(_cosine(p_owner.ravel(), p_susp.ravel()))
    return max(0.0, *cosines) ** 2


_FRESH_MIXTURE: dict[int, float] = {}


def _mixture_kinks(fp: Fingerprint, owner: tuple, suspect: tuple, kept: np.ndarray) -> float:
    """:func:`mixture_kinks` at the ``kept`` bends, beyond the most that the fingerprint's
    models with fresh weights (``Fingerprint.fresh``, answers at every bend) reach there
    (:func:`tafa_tf.bends.beyond_fresh`): where a model of the owner's architecture bends
    the owner's way anyway, doing so is no evidence. The fresh level is computed once
    per fingerprint."""
    delta = fp.delta.astype("float64")

    def fresh_level() -> float:
        bends = fp.bend_points()
        rows, mine = bends[kept[bends]], kept[bends]  # the kept bends: in every row, in the fresh rows
        levels = [mixture_kinks(fp.task, *_at(owner, rows), *_at(fresh, mine), delta[rows])
                  for fresh in _fresh_answers(fp)]
        return float(max(levels)) if levels else float("nan")

    value = mixture_kinks(fp.task, *_at(owner, kept), *_at(suspect, kept), delta[kept])
    return beyond_fresh(value, _per_fingerprint(_FRESH_MIXTURE, fp, id(fp), fresh_level))


LATTICE_STEPS = 2.0
"""How many of a quantized suspect's grid steps its answer may lie from the owner's and
still agree (:func:`lattice_agreement`): half a step from rounding the output, the rest
from the activations rounded to 8 bits inside."""


def lattice_agreement(answers: np.ndarray, owner: np.ndarray, step: float) -> float:
    """How many of a quantized suspect's answers lie within :data:`LATTICE_STEPS` grid
    steps (``step``: :func:`tafa_tf.outputs.lattice_step`) of the owner's, beyond chance
    (:func:`agreement_beyond_chance`). NaN where the shapes differ.

    An int8 copy's kinks are lost in its grid, but its answers are the owner's rounded:
    full-int8 TensorFlow Lite copies of the benchmark's MLPs and CNN put 0.88-1.00 of
    their answers within two steps of the owner's, independent int8 models 0.01-0.28,
    mostly by chance (a decoder's background pixels: 0.27 by chance). Measured in
    docs/results.md, TensorFlow Lite copies (session 29).
    """
    a = np.asarray(answers, dtype="float64").reshape(len(answers), -1)
    o = np.asarray(owner, dtype="float64").reshape(len(owner), -1)
    if a.shape != o.shape or not len(a):
        return float("nan")
    return agreement_beyond_chance(a, o, np.full(o.shape[1], LATTICE_STEPS * float(step)))


NOISE_WIDTHS = 2.0
"""How far a noisy suspect's answer may lie from the owner's, in medians of its kink
error (:func:`noise_agreement`), and still agree."""


def noise_agreement(s0: np.ndarray, o0: np.ndarray, kink_error: np.ndarray) -> float:
    """Where a suspect's kinks are noisier than no bend at all (kink similarity under its
    floor, :data:`FLOORS`): how many of its answers at the owner's bends (``s0`` against
    ``o0``, canonical) lie within :data:`NOISE_WIDTHS` times the median of its own second
    differences' error (``kink_error``, per output) of the owner's, beyond chance
    (:func:`agreement_beyond_chance`).

    A copy with noise finer than the probes (a dynamic-range TensorFlow Lite file: each
    layer's inputs rounded to 8 bits as it runs) departs from the owner by the same noise
    that scrambles its second differences; a model that is not the owner departs by far
    more than its curvature at the owner's points. Measured (docs/results.md, session
    29): the 26 dynamic-range copies of bench_tflite 0.61-0.99; every one of the 696
    innocent models of the piracy benchmark's zoos at most 0.08.
    """
    width = NOISE_WIDTHS * np.median(np.abs(kink_error), axis=0)
    return agreement_beyond_chance(s0, o0, width)


def agreement_beyond_chance(answers: np.ndarray, owner: np.ndarray, width: np.ndarray) -> float:
    """``(agree - chance) / (1 - chance)``: ``agree`` the share of answers within ``width``
    (one per output) of the owner's answer to the same query, ``chance`` the share that
    would be were each compared with the owner's answers to every query, one output at
    a time, as Cohen's kappa counts labels. NaN where chance is 1."""
    agree = float(np.mean(np.abs(answers - owner) <= width))
    ranked = np.sort(owner, axis=0)
    within = [np.searchsorted(ranked[:, j], answers[:, j] + width[j], side="right")
              - np.searchsorted(ranked[:, j], answers[:, j] - width[j], side="left") for j in range(owner.shape[1])]
    chance = float(np.mean(within)) / len(owner)
    return (agree - chance) / (1.0 - chance) if chance < 1.0 else float("nan")


_TINY_NORM = 1e-12
CLASS_ORDER_GAIN = 0.1
"""How much the best matching of the suspect's classes to the owner's must raise their mean
correlation over identity before the suspect's outputs are reordered (:func:`class_order`)."""
CLASS_ORDER_MATCH = 0.5
"""... and how high that mean correlation must then be: answers that correlate with the
owner's at noise level (the shuffled-owner references of tafa_tf.judge) find some other
matching by chance, which says nothing about their classes."""


def class_order(fp: Fingerprint, answers: np.ndarray) -> np.ndarray | None:
    """The suspect's output columns in the owner's class order, where its classes answer in
    another order; None where they answer in the owner's (or cannot be matched).

    Listing the classes in another order (a new ``id2label``, a pirate's own label indices
    when fine-tuning) costs a pirate nothing and changes no boundary, but took every label
    and output feature to chance: a fine-tuned copy of the digits MLP scored 0.80, the same
    fine-tune with its classes reordered 0.24 and was cleared. Each owner class is matched
    to the suspect column whose canonical outputs correlate best with it over the 3N
    queries (one to one, scipy's ``linear_sum_assignment``), kept only where that raises
    the mean correlation over identity by :data:`CLASS_ORDER_GAIN`, to at least
    :data:`CLASS_ORDER_MATCH`. Measured over 13 zoos
    (digits MLP and CNN, make_classification; docs/results.md): no innocent model's best
    matching differed from identity (gain 0.000 for each of 216, their correlation at
    identity 0.62-0.99); RTAL copies, their output layer drawn afresh, gained at most
    0.036; a reordered copy gains about 0.7, to about 1.
    """
    from scipy.optimize import linear_sum_assignment

    owner = canonical(fp.owner_outputs().astype("float64"), fp.output_kind)
    mine = canonical(np.asarray(answers, dtype="float64"), output_kind(answers, fp.task, owner.shape[1]))
    if owner.shape != mine.shape or owner.shape[1] < 2:
        return None
    a, b = owner - owner.mean(axis=0), mine - mine.mean(axis=0)
    norms = np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(norms > _TINY_NORM, (a.T @ b) / np.maximum(norms, _TINY_NORM), 0.0)
    if not np.all(np.isfinite(corr)):
        return None
    rows, cols = linear_sum_assignment(-corr)
    order = cols[np.argsort(rows)]
    identity = np.arange(owner.shape[1])
    if np.array_equal(order, identity):
        return None
    matched = corr[identity, order].mean()
    gain = matched - np.diag(corr).mean()
    return order if gain >= CLASS_ORDER_GAIN and matched >= CLASS_ORDER_MATCH else None



MIN_STABLE = 8
"""Fewest stable points of a kind (bends, decision points) the kink and flip features are
measured over, unless at least half the points of that kind are stable; else absent.
One stable bend among 26 made an int8 MobileNetV2 copy's kink similarity 0.43 and its
score 0.86, under the accusation line (docs/results.md)."""


def _enough(stable: np.ndarray) -> np.ndarray:
    """``stable`` (one flag per point of a kind), or all False when too few are stable."""
    stable = np.asarray(stable, dtype=bool)
    if stable.sum() >= min(MIN_STABLE, max(1, math.ceil(len(stable) / 2))):
        return stable
    return np.zeros_like(stable)


def stable_points(fp: Fingerprint) -> np.ndarray | None:
    """Per point, whether the owner's evidence there survives its own perturbed copy
    (``fp.perturbed``: the owner under the synthesis's 0.5% weight noise), as the step
    search asks: a bend's kink within ``stability_error`` of the owner's, a decision
    point's labels on both sides the owner's. None for fingerprints that keep no such copy.

    The step search grows each probe until the bend is stable, but only up to a cap, and
    keeps the points that never get there: in MobileNetV2 at 96x96 none of the 91 bends
    did, and their kinks, lost by any rounding of the weights, told a copy from an
    innocent no better than chance while pulling an int8 copy under the accusation line.
    The kink and flip features are measured over the stable points only (absent where
    there are none); the other features, ``bend_presence`` included, use every point.
    """
    perturbed = getattr(fp, "perturbed", None)
    if perturbed is None:
        return None
    return stable_under(fp.owner_outputs(), perturbed, fp.delta, fp.kind, fp.task, fp.output_kind,
                        float(fp.synthesis.get("stability_error", 0.5)))


def _head_answers(fp: Fingerprint, canonical_answers: np.ndarray) -> np.ndarray:
    """Canonical answers as the head features read them: a decoder's through its
    sigmoid's inverse (tafa_tf.bends.linearize), others as they are."""
    return linearize(canonical_answers) if fp.task == "generation" else canonical_answers


def _per_fingerprint(cache: dict, fp: Fingerprint, key: Any, compute: Any) -> Any:
    """``cache[key]``, computed by ``compute()`` on first use; the entry goes when ``fp``
    does. For what depends on the fingerprint alone, so that a scan verifying thousands
    of suspects against one fingerprint computes it once."""
    if key not in cache:
        cache[key] = compute()
        weakref.finalize(fp, cache.pop, key, None)
    return cache[key]


def _head_features(fp: Fingerprint, answers: np.ndarray, *, closeness: bool = True,
                   beyond_base: bool = False) -> dict[str, float]:
    """``head_fit`` of the suspect's canonical ``answers`` and, with the base's features,
    ``head_contrast`` and ``head_evidence``, their product (tafa_tf.heads); ``head_exact``;
    and unless ``closeness`` is False, ``head_closeness``; none that is NaN (answers that
    do not vary). ``beyond_base``: with the base's features, ``head_closeness`` counts only
    as far as the owner's explain the answers better (``min(1, 2 * head_contrast)``, 0 for
    a NaN contrast), and not where the base's explain them exactly (:func:`_new_head_features`)."""
    if fp.features is None:
        return {}
    out = {"head_fit": head_fit(fp.features, answers, fp.n_points)}
    fit_base = float("nan")
    if fp.base_features is not None:
        fit_base = head_fit(fp.base_features, answers, fp.n_points)
        out["head_contrast"] = head_contrast(out["head_fit"], fit_base)
        out["head_evidence"] = out["head_fit"] * out["head_contrast"]
    out["head_exact"] = head_exact(out["head_fit"], _input_fit(fp, answers), fit_base)
    if closeness:
        out["head_closeness"] = head_closeness(out["head_fit"], _copy_fit(fp))
        if beyond_base and fp.base_features is not None:
            contrast = out["head_contrast"] if math.isfinite(out["head_contrast"]) else 0.0
            out["head_closeness"] *= min(1.0, 2.0 * contrast) * (1.0 - np.nan_to_num(exactness(fit_base)))
    return {k: v for k, v in out.items() if math.isfinite(v)}


_COPY_FIT: dict[int, float] = {}


def _copy_fit(fp: Fingerprint) -> float:
    """``head_fit`` on the owner's features of what a copy that changed nothing on purpose
    answers, once per fingerprint: the lower of the owner's own answers' fit and its
    perturbed twin's (``Fingerprint.perturbed``: weights under 0.5% noise, about what
    int8 rounding does). In a deep CNN rounding alone leaves a percent of the answers'
    variance off the owner's features (MobileNetV2 0.35: an int8 copy's fit 0.98)."""

    def compute() -> float:
        fits = [head_fit(fp.features, _head_answers(fp, canonical(np.asarray(raw, dtype="float64"), fp.output_kind)),
                         fp.n_points) for raw in (fp.owner_outputs(), fp.perturbed) if raw is not None]
        finite = [f for f in fits if math.isfinite(f)]
        return min(finite) if finite else float("nan")

    return _per_fingerprint(_COPY_FIT, fp, id(fp), compute)


_QUERY_ROWS: dict[int, np.ndarray] = {}


def _input_fit(fp: Fingerprint, answers: np.ndarray) -> float:
    """``head_fit`` of the answers on the queries themselves, where a fold's training rows
    outnumber the input values (else an affine map of the inputs cannot be learnt from
    them exactly, nor one of the owner's features that span it: NaN, not computed).

    The flattened queries are kept once per fingerprint (the entry goes when it does), so
    head_fit's fold decompositions of them are made once, not once per suspect: they were
    two thirds of a digits MLP verification."""
    if int(np.prod(fp.input_shape, dtype=np.int64)) + 1 >= 3 * fp.n_points * (FOLDS - 1) // FOLDS:
        return float("nan")

    def flattened() -> np.ndarray:
        x = fp.queries()
        return x.reshape(len(x), -1)

    rows = _per_fingerprint(_QUERY_ROWS, fp, id(fp), flattened)
    return head_fit(rows, answers, fp.n_points)


SCORE_FEATURES = ("output_similarity", "diff_similarity", "kink_similarity", "label_agreement", "flip_agreement",
                  "head_closeness")
"""The terms of the default score's mean, as named before their stand-ins (:data:`STAND_INS`)."""
TERM_WEIGHTS = {"head_closeness": 2.0}
"""Weights of the default score's terms where not 1 (:data:`SCORE_FEATURES`).

``head_closeness`` (tafa_tf.heads) weighs two: of every feature without the base it
alone ranks copies tuned in all their layers (FTAL, adversarial tuning) above other
fine-tunes of the owner's public base, and copies of every kind above independently
trained models (docs/results.md, "How close the suspect reads the owner's features")."""
STAND_INS = {"output_similarity": "output_correlation", "label_agreement": "label_kappa",
             "kink_similarity": "lattice_agreement"}
"""Terms of the mean that stand in where the features carry them (clipped at 0), under the
floor of the term they replace (:data:`FLOORS`).

A quantized suspect's kinks cannot be read (:func:`tafa_tf.outputs.lattice_step`), so
``lattice_agreement`` stands in for ``kink_similarity``: whether its answers are the
owner's rounded to its grid. Full-int8 TensorFlow Lite copies had scored at most 0.875
with the kinks counted absent (classifiers) and 0.75 (regressors, decoder); with it
0.92-1.00, and independent int8 models kept their scores (docs/results.md).

Classifiers' ``output_correlation`` and ``label_kappa``: a classifier's centered
log-probabilities scale with its confidence, which any fine-tune, pruning or
temperature changes, so their correlation with the owner's counts, not their squared
error; and its labels off the data often fall on one or two
classes that any model trained on the same data picks too, so agreement beyond what
the two models' label frequencies give by chance (Cohen's kappa) counts. Measured
(docs/results.md): on MobileNetV2 rows, 30%-pruned copies (accuracy 0.12-0.33) had
scored at or under an innocent (0.287 / 0.291, 0.287 / 0.385) and now score above;
on the piracy benchmark's classifiers, no AUC fell by more than 0.01.
"""
FLOORS = {"kink_similarity": 0.5}
"""Terms of the default score's mean that count no lower than this.

``kink_similarity`` is 0.5 for a suspect that does not bend at the owner's points at all
(its kink error is then the owner's kink), the level of every innocent model of the
benchmark (median 0.498 over the 696 of its zoos, 5th percentile 0.47). Under 0.5 the suspect
curves there more than the owner does, in other directions: answers with noise finer
than the probes but coarser than the bends. A pirate gets that for free by shipping the
copy as a TensorFlow Lite file with dynamic-range quantization (int8 weights, each
layer's inputs rounded to 8 bits as it runs): over six zoo kinds such copies kept every
label and an output correlation of 1.00, but their kink similarity fell to 0.02-0.40 and
they scored 0.69-0.87 (make_friedman1 0.90-0.95), under the accusation line. Noise is no
evidence of innocence, so it counts as no bend: they score 0.83-0.96, and no removal AUC
of the piracy benchmark moved by more than 0.003 (docs/results.md).

Whether that noise is all that parts the suspect's answers from the owner's is evidence,
though: ``noise_agreement`` (measured only where kink similarity is under 0.5) raises
the floor to itself where it is higher. The same copies then score 0.86-1.00 (session
29); no innocent of the benchmark came near it (at most 0.08 against 0.5), and no score
of its 2,468 suspects moved. The data-free references are scored without any floor.
"""
FLOOR_RAISERS = {"kink_similarity": "noise_agreement", "head_closeness": "noise_agreement",
                 "label_agreement": "head_closeness", "flip_agreement": "head_closeness"}
"""Features that raise a term's floor (:data:`FLOORS`) to themselves where higher.

``head_closeness`` too: answers with noise finer than the probes (a dynamic-range
TensorFlow Lite copy) leave their noise off the owner's features, and noise is no
evidence of innocence.

A classifier's label terms (``label_agreement`` or its stand-in ``label_kappa``, and
``flip_agreement``) count no lower than ``head_closeness``: a copy whose output layer
was drawn afresh and retrained (RTAL) decides the labels off the data anew, and agreed
with the owner less than independently trained models do (kappa 0.04-0.23 against
0.06-0.55), while a linear read of the owner's features still explained its answers far
better than theirs. Disagreeing labels are no evidence of innocence where the answers
are the owner's features under a new head. On the piracy benchmark (zoos 1-5, without
the base) the classifier's removal-attack AUC rose from 0.855 to 0.881 and the held-out
digits CNN's from 0.781 to 0.849; with the base they moved by at most 0.005
(docs/results.md)."""
CONDITIONAL_FEATURES = frozenset({"lattice_agreement", "noise_agreement", "head_closeness"})
"""Features measured only where a suspect's answers call for them (on an int8 grid, kinks
noisier than no bend), or not on an int8 grid (``head_closeness``): a calibration on
features leaves them out without a warning."""
LIFTS = ("bend_presence", "head_evidence", "head_exact", "mixture_kinks")
"""Features that raise the default score to themselves where they are higher (never lower it)."""
OWNER_SIDE_WEIGHT = 2.0 / 3.0


def default_score(features: dict[str, float], *, floors: bool = True) -> float:
    """The uncalibrated score, in [0, 1] (``floors``: apply :data:`FLOORS`).

    Without a public base: the mean of the similarity features present
    (:data:`SCORE_FEATURES`; for classifiers with :data:`STAND_INS`), ``head_closeness``
    weighing two (:data:`TERM_WEIGHTS`). With one
    (``owner_side`` present): ``owner_side`` weighs 2/3 and that mean 1/3. Measured on
    the piracy benchmark (docs/results.md): ``owner_side`` alone tells copies from
    fine-tunes of the same base, and the similarity mean keeps independently
    trained models, which side with the owner about half the time, below the threshold.
    ``base_contrast`` is reported but left out: it lowered the benchmark's AUCs.

    ``bend_presence`` then lifts the score to itself where it is higher: bending where
    the owner bends at nearly all of its boundary points is evidence on its own (a
    copy that kept the owner's hidden layers under a retrained or new output layer),
    and no innocent model of the benchmark came near it (at most 0.3, copies with the
    owner's hidden layers 0.81-1; docs/results.md). Where it is low the score is
    unchanged, so it never lowers a copy's score. It is absent (no lift) where the
    owner's bends do not stand out from its own curvature at the probes' scale
    (tafa_tf.bends; VGG16 trained on digits, where innocents reached 0.96 on it).

    ``head_evidence`` (with a base: ``head_fit * head_contrast``, tafa_tf.heads) lifts
    it the same way: a copy whose output layer was drawn afresh and every layer
    retrained (RTAL) answers unlike the owner everywhere off the data, but a new output
    layer on the owner's features still explains its answers better than one on the
    base's. On the piracy benchmark (zoos 1-5) it raised the classifier's removal-attack
    AUC from 0.85 to 0.97 (RTAL 0.17 to 0.82) and kept every other row (docs/results.md).

    ``mixture_kinks`` lifts it the same way: a suspect whose kinks at the owner's bends
    lie along the owner's carries the owner's function, scaled, inside its answers, as an
    ensemble averaging the owner with other models does. On the piracy benchmark (zoos
    1-5, docs/results.md) ensembles with the owner at half or a third of them scored
    0.41-0.97 (AUC 0.59-0.95 against the innocents) and now 0.73-0.99 (AUC 1.00); no
    innocent model reached 0.36 on it, none's score moved, nor any removal-attack AUC.
    """
    terms = [max(0.0, features[STAND_INS[k]]) if STAND_INS.get(k) in features else features.get(k, float("nan"))
             for k in SCORE_FEATURES]
    if floors:  # a feature that is absent stays absent
        terms = [max(_floor(features, k), v) if math.isfinite(v) else v for k, v in zip(SCORE_FEATURES, terms)]
    present = [(v, TERM_WEIGHTS.get(k, 1.0)) for k, v in zip(SCORE_FEATURES, terms) if math.isfinite(v)]
    mean = float(np.average([v for v, _ in present], weights=[w for _, w in present])) if present else float("nan")
    side = features.get("owner_side", float("nan"))
    if not math.isfinite(side):
        score = mean
    elif not math.isfinite(mean):
        score = float(side)
    else:
        score = OWNER_SIDE_WEIGHT * float(side) + (1.0 - OWNER_SIDE_WEIGHT) * mean
    if not math.isfinite(score):
        return score
    lifts = [features.get(k, float("nan")) for k in LIFTS]
    return max([score, *(float(v) for v in lifts if math.isfinite(v))])


def _floor(features: dict[str, float], name: str) -> float:
    """The lowest the default score's term for ``name`` counts: :data:`FLOORS`, raised to
    the feature :data:`FLOOR_RAISERS` names where the suspect carries it and it is higher."""
    return max(FLOORS.get(name, -math.inf), features.get(FLOOR_RAISERS.get(name, ""), -math.inf))


DEFAULT_SCORE_FEATURE = "default_score"
COMBINERS = ("score", "features")


def check_combine(combine: Any) -> None:
    """Raise ValueError unless ``combine`` names one of :data:`COMBINERS`."""
    if combine not in COMBINERS:
        raise ValueError(f"combine must be one of {COMBINERS}. Received: combine={combine!r}")


def calibration_row(features: dict[str, float], combine: str) -> dict[str, float]:
    """What a calibration is fitted on, for one reference model with these features.

    ``combine="score"`` (the default of ``tafa.calibrate``): the uncalibrated score
    alone, under the name ``default_score``; the calibration then places the threshold
    on it (a logistic map of one variable keeps its order). ``"features"``: every
    feature, for a combiner learned from the references; with the dozen or two
    references ``tafa.references.build`` makes it overfits (docs/results.md).
    """
    check_combine(combine)
    return {DEFAULT_SCORE_FEATURE: default_score(features)} if combine == "score" else dict(features)


def _features_in(fp: Fingerprint, answers: np.ndarray, mode: str) -> dict[str, float]:
    """The features of answers in the owner's width, read as a suspect in ``mode`` reads them:
    as they are, or (:data:`MODE_NEW_HEAD`) as if under a new output layer."""
    if mode == MODE_NEW_HEAD:
        return _new_head_features(fp, _Reading(answers, fp.output_kind))
    return compute_features(fp, answers)[0]


def reference_score(fp: Fingerprint, answers: np.ndarray, mode: str = "outputs") -> float:
    """The default score of a data-free reference's answers, without the lifts
    (``bend_presence``, ``head_evidence``) and the floors (:data:`FLOORS`).

    The floors are for a suspect whose answers carry noise; a shuffled reference's kinks
    stand at the wrong points, and kept under 0.5 they keep the accusation line where the
    benchmark's verdicts measured it (with the floor, 10 of 820 copies fell to uncertain).

    The shuffled-owner references (tafa_tf.judge) answer with the owner's own probe
    triples moved to other points, so the owner's bends come along and
    ``bend_presence`` (a mean over points) is 1 for them by construction: it would put
    the uncalibrated accusation threshold at 1 and clear every copy. Innocent models
    score at most 0.3 on it (docs/results.md), so leaving it out of the references
    changes no innocent's standing; copies still get the lift. ``head_evidence`` is
    left out alike, though near 0 for them anyway: shuffled answers fit the owner's
    features at no point's place, and the base's answers are its own features' affine
    map (contrast 0).
    """
    features = _features_in(fp, answers, mode)
    for name in LIFTS:
        features.pop(name, None)
    return default_score(features, floors=False)


def _suspect_score(fp: Fingerprint, answers: np.ndarray, mode: str = "outputs") -> float:
    """The default score of answers to ``fp.queries()``, as a suspect giving them in ``mode`` gets it."""
    return default_score(_features_in(fp, answers, mode))


_REFERENCES: dict[tuple[int, str], dict[str, float]] = {}


def _references_of(fp: Fingerprint, mode: str) -> dict[str, float]:
    """The data-free references' scores, computed once per fingerprint (and answer mode).

    They depend on the fingerprint alone, so a scan that verifies thousands of suspects
    against one fingerprint scores them once, not once per suspect (they cost about
    30% of a verification of the digits MLP). The entry goes when the fingerprint does.
    """
    refs = _per_fingerprint(_REFERENCES, fp, (id(fp), mode), lambda: judge.reference_scores_for(
        fp, functools.partial(reference_score, fp, mode=mode), mode,
        copy_score_of=functools.partial(_suspect_score, fp, mode=mode)))
    return dict(refs)


def verify(
    fp: Fingerprint,
    suspect: keras.Model | SuspectLike,
    *,
    batch_size: int | None = None,
    timeout: float | None = None,
) -> Report:
    """Verify whether ``suspect`` is a copy of the model that ``fp`` fingerprints.

    Args:
        fp: the owner's Fingerprint (``tafa.fingerprint`` or ``Fingerprint.load``).
        suspect: a keras.Model, or any callable mapping a numpy batch of inputs to a
            numpy batch of outputs (scores, probabilities, or labels only), such as
            ``adapters.load_suspect(...)``.
        batch_size: queries per call to a keras.Model suspect; None: as many as keep
            the inputs of one call under 2^22 values, at most 512
            (``tafa_tf.outputs.inference_batch_size``).
        timeout: seconds the suspect may take to answer all queries; None waits.

    Inputs in another layout, or several outputs: see ``tafa_tf.asking`` (and the warnings).

    Returns:
        A Report (score, pirated, features, queries, status, ...).

    Raises:
        SuspectShapeError: the suspect's input or output shape does not fit.
        SuspectTimeoutError: the suspect did not answer in time.
        SuspectError: the suspect raised or answered something that is not an array.

    Examples:
        >>> report = tafa.verify(fp, suspect_model)
        >>> report.score, report.pirated
    """
    _check_verify_arguments(fp, batch_size, timeout)
    x = fp.queries()
    repeat = x[: n_repeats(fp.n_points)]
    asked = ask(fp, suspect, np.concatenate([x, repeat]), batch_size=batch_size, timeout=timeout)
    answers = _closest_output(fp, asked, len(x))
    answers, again = answers[: len(x)], answers[len(x) :]
    calibration = fp.calibration
    common = {
        "queries": len(x) + len(repeat),
        "threshold": float(calibration.threshold_) if calibration is not None else DEFAULT_THRESHOLD,
        "source": _source_of(suspect),
    }
    if not (np.all(np.isfinite(answers)) and np.all(np.isfinite(again))):
        bad = int((~np.isfinite(answers)).reshape(len(answers), -1).any(axis=1).sum())
        return Report(
            score=float("nan"), pirated=None, features={}, status=STATUS_NON_FINITE,
            calibrated=calibration is not None,
            warnings=(f"The suspect answered NaN or inf for {bad} of {len(x)} inputs; it cannot be scored.",),
            **common,
        )
    warnings: list[str] = list(asked.notes)
    status = STATUS_OK
    if _answers_vary(answers[: len(repeat)], again):
        status = STATUS_NONDETERMINISTIC
        warnings.append(
            "The suspect answered the same input differently (dropout or noise at inference?): "
            "the score is noisier than usual; query it in inference mode if you can."
        )
    reading = _read(fp, answers, fp.owner_outputs().shape[1])
    features, mode = _features(fp, reading)
    score, calibrated = _score(fp, features, mode, warnings)
    warnings.extend(reading.warnings())
    decision = judge.decide(fp, score, calibration=calibration if calibrated else None, mode=mode,
                            references=None if calibrated else _references_of(fp, mode))
    _never_cleared_if_new_head(decision, mode, _width(answers), fp.owner_outputs().shape[1])
    warnings.extend(decision.pop("warnings"))
    pirated = decision.pop("pirated")
    if status == STATUS_NONDETERMINISTIC and pirated is False:
        # Noise only lowers agreement, so a high score still stands; a low one may be the
        # noise talking, and clearing the suspect on it would be a verdict it cannot support.
        pirated = None
        warnings.append("No verdict: a random-answering suspect below the threshold cannot be cleared.")
    common.update(decision)  # threshold, and the error rates or the uncalibrated band behind it
    return Report(
        score=score, pirated=pirated, features=features, status=status, calibrated=calibrated, mode=mode,
        warnings=tuple(warnings), **common,
    )


def _never_cleared_if_new_head(decision: dict[str, Any], mode: str, theirs: int, ours: int) -> None:
    """A suspect under a new output layer (:data:`MODE_NEW_HEAD`) is accused or left
    uncertain, never cleared: too little of the owner survives a new task's fine-tuning
    for a low score to mean anything. Calibration, fitted on the owner's outputs, cannot
    help either, so the warning says why instead of pointing to it."""
    if mode != MODE_NEW_HEAD:
        return
    if decision["pirated"] is False:
        decision["pirated"] = None
    decision["clear_threshold"] = None
    decision["warnings"] = (NEW_HEAD_WARNING.format(theirs=theirs, ours=ours),)


def _closest_output(fp: Fingerprint, asked: Any, n: int) -> np.ndarray:
    """The answers of the suspect's output closest to the owner: its only one, or, where
    several fit the owner's (a decoy beside the copy), the one with the highest default
    score on the first ``n`` answers (the queries; the rest are repeats)."""
    if len(asked.outputs) == 1:
        return asked.outputs[0][1]
    scores, unread = [], None
    for _, y in asked.outputs:
        try:
            scores.append(_suspect_score(fp, y[:n]) if np.all(np.isfinite(y)) else -math.inf)
        except SuspectShapeError as e:  # read under a new head, nothing could be read across
            scores.append(-math.inf)
            unread = e
    if unread is not None and max(scores) == -math.inf:
        raise unread
    best = int(np.argmax(scores))
    asked.notes.append(f"Of those, output '{asked.outputs[best][0]}' answers most like the owner and is the one scored.")
    return asked.outputs[best][1]


def _check_verify_arguments(fp: Any, batch_size: Any, timeout: Any) -> None:
    if not isinstance(fp, Fingerprint):
        raise TypeError(f"verify() needs a tafa.Fingerprint first. Received: {type(fp).__name__}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None. Received: batch_size={batch_size!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None. Received: timeout={timeout!r}")


def _answers_vary(first: np.ndarray, again: np.ndarray) -> bool:
    """Whether the repeated queries got different answers (beyond float noise)."""
    spread = float(np.max(np.abs(first))) + 1e-12
    return bool(np.max(np.abs(again - first)) > 1e-3 * spread)


def _score(fp: Fingerprint, features: dict[str, float], mode: str, warnings: list[str]) -> tuple[float, bool]:
    """The score, and whether the stored calibration made it."""
    calibration = fp.calibration
    if calibration is not None and mode == "outputs":
        # a stored calibration reads the features it was fitted on (see calibration_row)
        return float(calibration.score({**features, DEFAULT_SCORE_FEATURE: default_score(features)})), True
    if calibration is not None:
        # the combiner was fitted on output features a label-only suspect cannot give
        warnings.append("The stored calibration needs full outputs; the uncalibrated rule was used.")
    return default_score(features), False


def _source_of(suspect: Any) -> dict[str, Any]:
    import keras

    if isinstance(suspect, DescribedSuspect) and not isinstance(suspect, keras.Model):
        try:
            d = suspect.to_dict()
            return dict(d) if isinstance(d, dict) else {}
        except Exception:  # metadata is a courtesy, never a reason to fail a verification
            return {}
    name = getattr(suspect, "name", None)
    return {"name": name} if isinstance(name, str) else {}


__all__ = ["Report", "SuspectLike", "DescribedSuspect", "verify", "query", "compute_features", "default_score", "DEFAULT_THRESHOLD"]
