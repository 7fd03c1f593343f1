"""The embedded demo: fingerprint a digits classifier, then catch its pirated copies.

What ``tafa demo`` (and the README's first command) runs, end to end on data that
ships with scikit-learn: train an owner model, make pirated copies of it with
:mod:`tafa_tf.piracy` (fine-tuned, pruned, int8-quantized, noised, neurons permuted, in an ensemble),
train innocent models of the same architecture from other seeds, fingerprint the
owner without any data, and verify every suspect. About a minute on two cores.

Examples:
    >>> from tafa_tf import demo
    >>> result = demo.run_demo()
    >>> print(demo.format_table(result))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tafa_tf.progress import progress_bar
from tafa_tf.verdicts import verdict_word

KIND = "digits_mlp"
PIRATED = "pirated"
INNOCENT = "innocent"


@dataclass(frozen=True)
class DemoRow:
    """One suspect of the demo: what it truly is, and what verification said."""

    name: str
    truth: str  # PIRATED or INNOCENT
    how: str
    score: float
    pirated: bool | None
    status: str

    @property
    def correct(self) -> bool:
        """Whether the verdict matches the truth."""
        return self.pirated is (self.truth == PIRATED)


@dataclass(frozen=True)
class DemoResult:
    """The demo's outcome: one row per suspect, and the settings that produced it."""

    rows: tuple[DemoRow, ...]
    threshold: float
    calibrated: bool
    points: int
    queries: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def caught(self) -> int:
        """Pirated copies judged pirated."""
        return sum(r.pirated is True for r in self.rows if r.truth == PIRATED)

    @property
    def cleared(self) -> int:
        """Innocent models judged not pirated."""
        return sum(r.pirated is False for r in self.rows if r.truth == INNOCENT)

    @property
    def n_pirated(self) -> int:
        return sum(r.truth == PIRATED for r in self.rows)

    @property
    def n_innocent(self) -> int:
        return sum(r.truth == INNOCENT for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (NaN scores become None)."""
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["score"] = r.score if math.isfinite(r.score) else None
            d["correct"] = r.correct
            rows.append(d)
        return {
            "rows": rows, "threshold": self.threshold, "calibrated": self.calibrated, "points": self.points,
            "queries": self.queries, "seconds": round(self.seconds, 1), "caught": self.caught,
            "pirated": self.n_pirated, "cleared": self.cleared, "innocent": self.n_innocent,
            "settings": self.settings,
        }


def _pirates(owner: Any, data: Any, seed: int) -> list[tuple[str, str, Callable[[], Any]]]:
    """The pirated copies, each built lazily so the progress bar moves per model."""
    from tafa_tf import piracy, zoo

    return [
        ("fine-tuned", "5 epochs on the owner's data, lr 1e-3",
         lambda: piracy.fine_tune(owner, data.x_train, data.y_train, epochs=5, learning_rate=1e-3, seed=seed)),
        ("pruned", "30% smallest weights zeroed", lambda: piracy.prune(owner, 0.3)),
        ("int8", "int8 weight quantization", lambda: piracy.quantize(owner, "int8")),
        ("noised", "5% relative weight noise", lambda: piracy.add_noise(owner, 0.05, seed=seed)),
        ("permuted", "hidden neurons shuffled (same function)", lambda: piracy.permute_neurons(owner, seed=seed)),
        ("ensemble", "answers averaged with a model of its own",
         lambda: piracy.ensemble(owner, [zoo.train(KIND, seed=seed + 100)])),
    ]


def run_demo(
    *,
    n: int = 128,
    seed: int = 0,
    innocents: int = 2,
    progress: bool = False,
) -> DemoResult:
    """Train, pirate, fingerprint and verify; return one row per suspect.

    Args:
        n: fingerprint points.
        seed: the owner's seed; innocent models use seed+1, seed+2, ...
        innocents: how many independently trained innocent models (each ~5 s).
        progress: show a progress bar on stderr.

    Returns:
        A DemoResult.

    Raises:
        ValueError: a bad argument.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 8:
        raise ValueError(f"n must be an integer of at least 8. Received: n={n!r}")
    if not isinstance(innocents, int) or isinstance(innocents, bool) or not 1 <= innocents <= 10:
        raise ValueError(f"innocents must be an integer from 1 to 10. Received: innocents={innocents!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    import tafa_tf as tafa
    from tafa_tf import zoo

    start = time.monotonic()
    data = zoo.data_for(KIND)
    # 1 owner + its fingerprint + the pirates + innocents, each a step of the bar
    n_pirates = len(_pirates(None, data, seed))  # built lazily: listing them trains nothing
    bar = progress_bar(total=2 + n_pirates + innocents, desc="demo", unit="model", enabled=progress)
    bar.set_postfix_str("training the owner")
    owner = zoo.train(KIND, seed=seed)
    bar.update(1)
    bar.set_postfix_str("fingerprinting the owner (no data)")
    fp = tafa.fingerprint(owner, task="classification", n=n, domain=tafa.domains.Box(0.0, 1.0), seed=seed)
    bar.update(1)
    suspects: list[tuple[str, str, str, Any]] = []
    for name, how, make in _pirates(owner, data, seed):
        bar.set_postfix_str(f"pirating: {name}")
        suspects.append((name, PIRATED, how, make()))
        bar.update(1)
    for i in range(1, innocents + 1):
        bar.set_postfix_str(f"training innocent seed {seed + i}")
        suspects.append((f"seed {seed + i}", INNOCENT, "trained independently, same data and architecture",
                         zoo.train(KIND, seed=seed + i)))
        bar.update(1)
    bar.close()
    reports = [tafa.verify(fp, model) for *_, model in suspects]
    rows = [
        DemoRow(name, truth, how, float(r.score), r.pirated, r.status)
        for (name, truth, how, _), r in zip(suspects, reports)
    ]
    return DemoResult(
        rows=tuple(rows), threshold=float(reports[0].threshold), calibrated=bool(reports[0].calibrated),
        points=fp.n_points, queries=fp.n_queries, seconds=time.monotonic() - start,
        settings={"kind": KIND, "n": n, "seed": seed, "innocents": innocents},
    )


def format_table(result: DemoResult) -> str:
    """The demo's table and its final line, as printed by ``tafa demo``."""
    head = f"{'suspect':<12} {'truth':<9} {'score':>6}  {'verdict':<12} how it was made"
    lines = [head, "-" * len(head)]
    for r in result.rows:
        verdict = verdict_word(r.pirated, uncertain=not result.calibrated and r.status == "ok")
        # no verdict is not a wrong verdict: the uncalibrated rule leaves the middle band open
        mark = "" if r.correct else "  <- no verdict" if r.pirated is None else "  <- wrong"
        score = f"{r.score:6.3f}" if math.isfinite(r.score) else "   nan"
        lines.append(f"{r.name:<12} {r.truth:<9} {score}  {verdict:<12} {r.how}{mark}")
    threshold = "calibrated" if result.calibrated else "uncalibrated: pirated from this score, see `tafa calibrate`"
    lines.append("")
    undecided = sum(r.pirated is None for r in result.rows)
    lines.append(
        f"caught {result.caught}/{result.n_pirated} pirated copies, cleared {result.cleared}/{result.n_innocent} "
        f"innocent models, {undecided} without a verdict "
        f"(threshold {result.threshold:.3f}, {threshold}; {result.points} points, "
        f"{result.queries} queries per suspect, {result.seconds:.0f} s)"
    )
    return "\n".join(lines)


__all__ = ["DemoResult", "DemoRow", "format_table", "run_demo"]
