"""Verdicts on held-out zoos: does the uncalibrated rule accuse innocents, and does calibration hold?

For each zoo seed (benchmarks/piracy_suite.py builds an independent zoo per seed: data
split, base, owner, pirated and innocent models), each task, with and without the
public base at fingerprinting:

- uncalibrated: tafa.verify's verdict without a calibration (tafa_tf.judge: relative
  to the data-free references, with an uncertain band). Counts of innocent models
  flagged (must be 0), pirated models flagged, and suspects left uncertain;
- auto-calibrated: reference models built from the owner's own assets only
  (tafa.references.build on the owner's training half of the data, with the public
  base the owner fine-tuned: the owner has it even when the fingerprint is made
  without it; --refs-base same leaves it out then; a fingerprint made without the base
  then gets the base's answers, as `tafa calibrate --base` does), tafa.calibrate at a
  target FPR of 5% (on the uncalibrated score; --combine features: every feature), then
  the zoo's held-out innocent
  and pirated models (none of them a reference) verified against the calibrated
  fingerprint. Counts of innocents flagged and of pirated copies caught, distilled
  students apart (the issue's goal excludes distilled classifiers).

    python benchmarks/verdicts.py --zoo-seeds 1 2 3 [--tasks ...] [--cache DIR] [--refs-cache DIR]
    python benchmarks/verdicts.py --zoo-seeds 1 2 3 4 5 --tasks classification --classifier cnn

Writes benchmarks/results/verdicts.json and prints one row per seed x task x base.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TARGET_FPR = 0.05


def _suspects(pos: dict[str, list], neg: dict[str, list]) -> list[tuple[int, str, str, Any]]:
    return [(1, f, n, m) for f, items in pos.items() for n, m in items] + [
        (0, f, n, m) for f, items in neg.items() for n, m in items
    ]


def _uncalibrated(fp: Any, suspects: list) -> dict[str, Any]:
    import tafa_tf as tafa

    rows, report = [], None
    for label, fam, name, model in suspects:
        report = tafa.verify(fp, model)
        rows.append({"label": label, "family": fam, "name": name, "score": report.score, "pirated": report.pirated})
    return {"rows": rows, **_counts(rows), "clear": report.clear_threshold, "accuse": report.threshold,
            "references": report.references}


def _calibrated(fp: Any, z: Any, owner: Any, with_base: bool, suspects: list, args: argparse.Namespace) -> dict[str, Any]:
    import tafa_tf as tafa
    from tafa_tf import references

    t0 = time.time()
    refs_base = with_base or args.refs_base == "always"
    refs = references.build(owner, z.owner_data(), base=z.base if refs_base else None, n_innocent=args.n_refs,
                            n_pirated=args.n_refs, seed=z.zs, cache_dir=args.refs_cache, progress=not args.no_progress)
    t_refs = time.time() - t0
    if refs_base and fp.yb is None:  # as `tafa calibrate --base` does
        fp = fp.with_base(z.base)
    cal = tafa.calibrate(fp, refs.positives, refs.negatives, target_fpr=TARGET_FPR, combine=args.combine)
    fpc = fp.with_calibration(cal)
    rows = []
    for label, fam, name, model in suspects:
        r = tafa.verify(fpc, model)
        rows.append({"label": label, "family": fam, "name": name, "score": r.score, "pirated": r.pirated})
    return {"rows": rows, **_counts(rows), "threshold": cal.threshold, "cv_auc": cal.auc,
            "references": {"positives": len(refs.positives), "negatives": len(refs.negatives), "base": refs_base},
            "refs_seconds": t_refs}


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    inn = [r for r in rows if r["label"] == 0]
    pir = [r for r in rows if r["label"] == 1 and r["family"] != "distillation"]
    dis = [r for r in rows if r["label"] == 1 and r["family"] == "distillation"]
    return {
        "innocent": len(inn), "innocent_flagged": sum(r["pirated"] is True for r in inn),
        "innocent_uncertain": sum(r["pirated"] is None for r in inn),
        "pirated": len(pir), "pirated_flagged": sum(r["pirated"] is True for r in pir),
        "pirated_uncertain": sum(r["pirated"] is None for r in pir),
        "distilled": len(dis), "distilled_flagged": sum(r["pirated"] is True for r in dis),
    }


def run_zoo(task: str, zoo_seed: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Both regimes, with and without the base, on one task of one zoo."""
    import piracy_suite as ps
    import tafa_tf as tafa

    z = ps.Zoo(ps.kind_of(task, args), Path(args.cache), False, zoo_seed)
    owner, pos, neg = z.build()
    suspects = _suspects(pos, neg)
    out = []
    for with_base in (True, False):
        fp = tafa.fingerprint(owner, task=task, n=args.n, domain=z._domain(), seed=args.seed,
                              base=z.base if with_base else None)
        res = {"zoo_seed": zoo_seed, "task": task, "base": with_base,
               "uncalibrated": _uncalibrated(fp, suspects)}
        if not args.no_calibration:
            res["calibrated"] = _calibrated(fp, z, owner, with_base, suspects, args)
        print(format_row(res), flush=True)
        out.append(res)
    return out


def format_row(res: dict[str, Any]) -> str:
    u = res["uncalibrated"]
    line = (f"zoo {res['zoo_seed']:<3} {res['task']:<15} {'base' if res['base'] else 'no base':<8} "
            f"uncal: innocent {u['innocent_flagged']}/{u['innocent']} flagged ({u['innocent_uncertain']} uncertain), "
            f"pirated {u['pirated_flagged']}/{u['pirated']} ({u['pirated_uncertain']} uncertain)")
    c = res.get("calibrated")
    if c:
        line += (f" | cal: innocent {c['innocent_flagged']}/{c['innocent']}, pirated {c['pirated_flagged']}/"
                 f"{c['pirated']}, distilled {c['distilled_flagged']}/{c['distilled']} (cv AUC {c['cv_auc']:.2f})")
    return line


# DESIGN.md's evaluation protocol: the pirated families the verdicts goal (issue 11) was set on;
# the zoos also hold the removal attacks of the literature (issue 14), counted apart as well.
PROTOCOL_FAMILIES = ("fine-tune", "pruning", "quantization", "noise", "permute/rescale", "distillation")


def _protocol_counts(results: list[dict[str, Any]], regime: str) -> dict[str, int]:
    """Pirated copies of the protocol's families (distilled classifiers apart), and how many were flagged."""
    rows = [row for r in results if regime in r for row in r[regime]["rows"]
            if row["label"] == 1 and row["family"] in PROTOCOL_FAMILIES
            and not (row["family"] == "distillation" and r["task"] == "classification")]
    return {"protocol_pirated": len(rows), "protocol_flagged": sum(row["pirated"] is True for row in rows)}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every seed, task and base setting, and the per-seed spread."""
    total: dict[str, Any] = {}
    for regime in ("uncalibrated", "calibrated"):
        rows = [r[regime] for r in results if regime in r]
        if not rows:
            continue
        keys = ("innocent", "innocent_flagged", "innocent_uncertain", "pirated", "pirated_flagged",
                "pirated_uncertain", "distilled", "distilled_flagged")
        t = {k: int(sum(r[k] for r in rows)) for k in keys}
        t["fpr"] = t["innocent_flagged"] / max(t["innocent"], 1)
        t["tpr_excluding_distilled"] = t["pirated_flagged"] / max(t["pirated"], 1)
        t.update(_protocol_counts(results, regime))
        t["tpr_protocol"] = t["protocol_flagged"] / max(t["protocol_pirated"], 1)
        seeds = sorted({r["zoo_seed"] for r in results})
        per_seed = []
        for s in seeds:
            rs = [r[regime] for r in results if r["zoo_seed"] == s and regime in r]
            per_seed.append((sum(r["innocent_flagged"] for r in rs) / max(sum(r["innocent"] for r in rs), 1),
                             sum(r["pirated_flagged"] for r in rs) / max(sum(r["pirated"] for r in rs), 1)))
        t["per_seed_fpr"] = [round(a, 4) for a, _ in per_seed]
        t["per_seed_tpr"] = [round(b, 4) for _, b in per_seed]
        total[regime] = t
    return total


def for_suite(tasks: list[str], zoo_seeds: list[int], *, cache: str, n: int, seed: int, classifier: str = "mlp",
              regressor: str = "mlp") -> dict[str, Any]:
    """The verdicts on the zoos of a benchmarks/piracy_suite.py run (its --verdicts hook), printed and returned."""
    args = _parser().parse_args(["--zoo-seeds", *map(str, zoo_seeds), "--tasks", *tasks, "--cache", cache,
                                 "--n", str(n), "--seed", str(seed), "--classifier", classifier, "--regressor", regressor,
                                 "--no-progress"])
    results = [r for s in args.zoo_seeds for t in tasks for r in run_zoo(t, s, args)]
    return {"summary": summarize(results), "results": results}


def _parser() -> argparse.ArgumentParser:
    import piracy_suite as ps

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--tasks", nargs="+", default=["classification", "regression", "generation"])
    parser.add_argument("--n", type=int, default=128, help="fingerprint points")
    parser.add_argument("--seed", type=int, default=0, help="fingerprint seed")
    parser.add_argument("--n-refs", type=int, default=12, help="innocent and pirated references each")
    parser.add_argument("--cache", default=str(HERE / ".cache"), help="the piracy suite's zoo cache")
    parser.add_argument("--refs-cache", default=str(HERE / ".cache" / "references"))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-calibration", action="store_true", help="only the uncalibrated verdicts")
    parser.add_argument("--refs-base", choices=("always", "same"), default="always",
                        help="always: the references use the public base whenever the owner fine-tuned one (the "
                             "owner has it even when the fingerprint is made without it); same: only when the "
                             "fingerprint uses it (default: always)")
    parser.add_argument("--combine", choices=("score", "features"), default="score",
                        help="tafa.calibrate's combine: the uncalibrated score alone (default) or every feature")
    parser.add_argument("--classifier", choices=list(ps.CLASSIFIERS), default="mlp",
                        help="the classification zoo (benchmarks/piracy_suite.py --classifier)")
    parser.add_argument("--regressor", choices=list(ps.REGRESSORS), default="mlp",
                        help="the regression zoo (benchmarks/piracy_suite.py --regressor)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.time()
    results = [r for s in args.zoo_seeds for t in args.tasks for r in run_zoo(t, s, args)]
    summary = summarize(results)
    for regime, t in summary.items():
        print(f"{regime}: innocent flagged {t['innocent_flagged']}/{t['innocent']} (FPR {t['fpr']:.3f}, per seed "
              f"{t['per_seed_fpr']}), pirated flagged {t['pirated_flagged']}/{t['pirated']} (TPR "
              f"{t['tpr_excluding_distilled']:.3f}, per seed {t['per_seed_tpr']}), distilled "
              f"{t['distilled_flagged']}/{t['distilled']}, uncertain: {t['innocent_uncertain']} innocent, "
              f"{t['pirated_uncertain']} pirated; protocol families (distilled classifiers apart) "
              f"{t['protocol_flagged']}/{t['protocol_pirated']} (TPR {t['tpr_protocol']:.3f})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"summary": summary, "results": results, "seconds": time.time() - t0, "target_fpr": TARGET_FPR,
               "zoo_seeds": args.zoo_seeds, "n": args.n, "n_refs": args.n_refs, "combine": args.combine,
               "refs_base": args.refs_base, "classifier": args.classifier,
               "regressor": args.regressor}
    tmp = out / ".verdicts.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1, default=float))
    os.replace(tmp, out / "verdicts.json")
    print(f"wrote {out / 'verdicts.json'} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
