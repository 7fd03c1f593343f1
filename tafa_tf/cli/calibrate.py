"""``tafa calibrate``: learn the verdict threshold from held-out pirated and innocent models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tafa_tf.cli import _common as c
from tafa_tf.batch import calibrate_reports
from tafa_tf.cli import _references as refs_cli
from tafa_tf.judge import calibrated_stats
from tafa_tf.progress import progress_bar
from tafa_tf.verification import COMBINERS

EPILOG = """\
examples:
  # one step: build reference models from your own model and training data, then calibrate
  tafa calibrate owner.tafa --model owner.keras --data train.npz [--base base.keras] --target-fpr 0.05

  # or bring your own pirated and innocent models
  tafa calibrate owner.tafa --positives pirated/ --negatives innocent/
  tafa calibrate owner.tafa --positives p1.keras p2.keras p3.keras --negatives n1.keras n2.keras n3.keras \\
      --cv 3 --target-fpr 0.05 --plot roc.png --out owner.calibrated.tafa --json

Positives are pirated variants of your model (e.g. made with tafa_tf.piracy:
fine-tuned, pruned, quantized, distilled); negatives are innocent models (other
seeds, other architectures, independent fine-tunes of the same public base).
Folders stand for every model directly inside them. Each class needs at least
--cv models; a false-positive rate is only as fine as one innocent model in the
number of innocents (20+ innocents for 5%, ~100 for 1%).

With --model and --data (a .npz with x and y; a generator's images alone as x), the
innocent references are fine-tunes of --base on subsets of your data and your
architecture re-initialised and trained on them (with half-way checkpoints); the
pirated ones are fine-tuned, pruned, quantized, noised, permuted/rescaled and
distilled copies of your model. They are kept in <fingerprint>.refs/ (--refs-cache):
a rerun loads them, an interrupted build resumes. Your model is never changed.

With --base, a fingerprint made without base= also gets the base's answers to its
queries, so that verification measures whether a suspect departs from the base the
way your model did (it tells your copies from other fine-tunes of the same base).

The default --combine score places the threshold on the uncalibrated score; with a
hundred or more references, --combine features learns a combiner of every feature.

The calibration is stored in the .tafa file (replaced atomically, in place unless
--out is given); `tafa verify` then uses its score and threshold.

exit codes: 0 calibrated, 3 bad .tafa file or too few usable models, 4 a model could
  not be loaded or queried, 2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the calibrate subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "calibrate",
        help="fit the verdict threshold on pirated and innocent models; store it in the .tafa",
        description="Verify held-out pirated (positive) and innocent (negative) models, fit a combiner of the "
        "verification features with a threshold at the target false-positive rate, store it in the "
        "fingerprint and draw the cross-validated ROC curve.",
        epilog=EPILOG,
    )
    p.add_argument("fingerprint", help="the owner's .tafa file")
    p.add_argument("--positives", nargs="+", default=None, metavar="REF", help="pirated models or folders of them")
    p.add_argument("--negatives", nargs="+", default=None, metavar="REF", help="innocent models or folders of them")
    refs_cli.add_flags(p)
    p.add_argument("--target-fpr", type=c.fraction, default=0.01,
                   help="largest acceptable false-positive rate (default: 0.01)")
    p.add_argument("--cv", type=c.int_between(2), default=5, help="cross-validation folds, at least 2 (default: 5)")
    p.add_argument("--combine", choices=COMBINERS, default="score",
                   help="score: place the threshold on the uncalibrated score (default); features: learn a "
                        "combiner of every feature (needs many more references than the default dozen)")
    p.add_argument("-o", "--out", default=None, help="write the calibrated .tafa here (default: replace FINGERPRINT)")
    p.add_argument("--plot", default=None, help="ROC plot PNG (default: <out>.roc.png beside the .tafa)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the ROC plot")
    c.add_trust_code_flag(p, what="models")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def plot_roc(path: Path, labels: np.ndarray, scores: np.ndarray, *, auc: float, target_fpr: float,
             title: str) -> Path:
    """Draw the ROC curve of held-out scores to a PNG, without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tafa_tf.evidence import draw_roc

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)  # the Agg canvas: no display needed, the CLI runs headless
    ax = fig.add_subplot()
    draw_roc(ax, labels, scores, auc=auc, target_fpr=target_fpr)
    ax.set_title(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def load_models(args: argparse.Namespace, progress: bool) -> list[tuple[str, int, Any]]:
    """The --positives and --negatives models, loaded through the adapters: (ref, label, model)."""
    positives, negatives = c.expand_refs(args.positives), c.expand_refs(args.negatives)
    return [(ref, label, c.load_suspect_ref(ref, trust_code=args.trust_code))
            for ref, label in progress_bar([(r, 1) for r in positives] + [(r, 0) for r in negatives],
                                           enabled=progress, desc="loading models", unit="model")]


def run(args: argparse.Namespace) -> int:
    """Calibrate, store the calibration, draw the ROC curve, print AUC and TPR."""
    import tafa_tf as tafa

    build = refs_cli.check_args(args)
    fp = c.load_fingerprint(args.fingerprint)
    out = Path(args.out).expanduser() if args.out else Path(args.fingerprint)
    plot = None if args.no_plot else Path(args.plot) if args.plot else out.with_name(out.stem + ".roc.png")
    progress = c.show_progress(args)
    base = c.load_owner_model(args.base) if args.base else None
    if base is not None and fp.yb is None:
        with c.failing_as(c.EXIT_INPUT, f"Cannot use {args.base} as the base"):
            fp = fp.with_base(base)
        if not args.json:
            print(f"the fingerprint now also holds the answers of the base {args.base} (owner_side)")
    built = None
    if build:
        refs, built = refs_cli.build(args, base, progress)
        models = [(f"reference {n}", 1, m) for n, m in zip(refs.positive_names, refs.positives)]
        models += [(f"reference {n}", 0, m) for n, m in zip(refs.negative_names, refs.negatives)]
    else:
        models = load_models(args, progress)
    # Verify each model once: leave out (and name) those with no usable answers, and
    # calibrate on the reports of the others.
    usable, skipped = [], []
    for ref, label, model in progress_bar(models, enabled=progress, desc="verifying", unit="model"):
        with c.failing_as(c.EXIT_SUSPECT, f"Cannot query {ref}"):
            report = tafa.verify(fp.with_calibration(None), model)
        (usable if report.status == "ok" else skipped).append((ref, label, report))
    pos = [r for _, label, r in usable if label == 1]
    neg = [r for _, label, r in usable if label == 0]
    with c.failing_as(c.EXIT_INPUT, "Cannot calibrate"):
        cal = calibrate_reports(pos, neg, target_fpr=args.target_fpr, cv=args.cv, combine=args.combine)
        fp.with_calibration(cal).save(out)
    if plot is not None:
        with c.failing_as(c.EXIT_INPUT, f"Cannot write the plot {plot}"):
            plot_roc(plot, cal.cv_labels_, cal.cv_scores_, auc=cal.auc, target_fpr=args.target_fpr,
                     title=f"{Path(args.fingerprint).name}: {len(pos)} pirated vs {len(neg)} innocent, "
                           f"{args.cv}-fold CV")
    stated = calibrated_stats(cal, float("nan"))
    summary = {
        "out": str(out), "plot": str(plot) if plot is not None else None, "auc": cal.auc, "references": built,
        "fpr": stated["fpr"], "fpr_upper": stated["fpr_upper"],
        "threshold": cal.threshold, "tpr_at_fpr": cal.tpr_at_fpr, "target_fpr": args.target_fpr,
        "fpr_at_threshold": cal.fpr_at_threshold_, "combine": args.combine, "base_answers": fp.yb is not None,
        "positives": len(pos), "negatives": len(neg), "skipped": [ref for ref, _, _ in skipped],
        "calibration": cal.to_dict(),
    }
    if args.json:
        c.write_json(summary)
        return c.EXIT_OK
    if built is not None:
        print(f"reference models in {built['cache_dir']}: {built['built']} built, {built['loaded']} loaded from the cache")
    print(f"calibrated on {len(pos)} pirated and {len(neg)} innocent models ({args.cv}-fold cross-validation)")
    print(f"  AUC                 {cal.auc:.3f}")
    print(f"  TPR at FPR {args.target_fpr:<8g} {cal.tpr_at_fpr:.3f}")
    print(f"  threshold           {cal.threshold:.4f}")
    print(f"  FPR on innocents    {stated['fpr']:.3f} (95% upper bound {stated['fpr_upper']:.3f} over {len(neg)} "
          "innocent models, Clopper-Pearson)")
    print(f"  stored in           {out}")
    if plot is not None:
        print(f"  ROC plot            {plot}")
    for ref, _, _ in skipped:
        print(f"tafa calibrate: warning: left out {ref}: its answers cannot be scored", file=__import__("sys").stderr)
    return c.EXIT_OK
