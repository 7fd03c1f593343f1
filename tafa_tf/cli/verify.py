"""``tafa verify``: is this suspect a copy of the fingerprinted model?"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tafa_tf.cli import _common as c
from tafa_tf.progress import progress_bar

EPILOG = """\
examples:
  tafa verify owner.tafa suspect.keras
  tafa verify owner.tafa hf://some-org/some-model@main --json
  tafa verify owner.tafa ./saved_model_dir --timeout 60

  tafa verify owner.tafa suspect.keras --report evidence.html   # a self-contained HTML evidence file

  # in a CI job: branch on the exit code alone
  tafa verify owner.tafa candidate.keras; case $? in
    0) echo "not a copy";; 10) echo "PIRATED";; *) echo "could not decide";; esac

Without a calibration in the .tafa the verdict is "uncalibrated": it accuses only far
above references the fingerprint carries (the owner's answers shuffled, the public
base's answers), clears only far below, and in between says "uncertain" (exit 5).
Run `tafa calibrate owner.tafa --model owner.keras --data train.npz` for a verdict with a
measured false-positive rate, its 95% upper bound and a p-value.

exit codes: 0 not pirated, 10 pirated, 5 no verdict (uncalibrated and uncertain, or the
  suspect answered NaN/inf), 4 suspect could not be loaded or queried, 3 bad .tafa file,
  6 Hub unreachable, 2 usage error, 1 internal error. Set TAFA_DEBUG=1 for full tracebacks.
"""


def register(sub: Any) -> None:
    """Add the verify subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "verify",
        help="verify one suspect model against a fingerprint",
        description="Query a suspect model at the fingerprint's boundary points and judge whether it is "
        "a copy of the owner's model. Only the suspect's outputs are used (black box).",
        epilog=EPILOG,
    )
    p.add_argument("fingerprint", help="the owner's .tafa file")
    p.add_argument("suspect", help="a .keras/.h5/.tflite file, a Keras or SavedModel folder, or hf://ORG/NAME[@REV]")
    p.add_argument("--timeout", type=c.positive_float, default=None, help="seconds the suspect may take to answer")
    p.add_argument("--revision", default=None, help="branch, tag or commit for an hf:// suspect")
    c.add_trust_code_flag(p)
    p.add_argument("--report", default=None, metavar="HTML",
                   help="also write a self-contained HTML evidence report (plots embedded) to this file")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def exit_code_for(pirated: bool | None) -> int:
    """The verdict's exit code: 10 pirated, 0 not pirated, 5 no verdict."""
    return {True: c.EXIT_PIRATED, False: c.EXIT_OK, None: c.EXIT_NO_VERDICT}[pirated]


def verify_suspect(fp: Any, suspect: Any, ref: str, *, timeout: float | None) -> Any:
    """Verify a loaded suspect; its errors become one-line CliErrors naming ``ref``."""
    import tafa_tf as tafa

    with c.failing_as(c.EXIT_SUSPECT, f"Cannot query the suspect {ref}"):
        return tafa.verify(fp, suspect, timeout=timeout)


def describe_source(source: dict[str, Any], ref: str) -> str:
    """One line of provenance: ref, format, resolved commit, short hash of the main file."""
    parts = [str(source.get("source") or ref)]
    if source.get("format"):
        parts.append(str(source["format"]))
    if source.get("commit_sha"):
        parts.append(f"commit {str(source['commit_sha'])[:12]}")
    files = source.get("files") or []
    if files:
        parts.append(f"sha256 {str(files[0].get('sha256', ''))[:12]}")
    return "  ".join(parts)


def write_evidence(args: argparse.Namespace, fp: Any, report: Any) -> str:
    """Write the HTML evidence report that --report asks for; return its path."""
    from tafa_tf import evidence

    with c.failing_as(c.EXIT_INPUT, f"Cannot write the evidence report {args.report}"):
        path = evidence.write_html(args.report, fp, report, fingerprint_path=args.fingerprint,
                                   suspect_ref=args.suspect, command=["tafa", *sys.argv[1:]])
    return str(path)


def run(args: argparse.Namespace) -> int:
    """Verify one suspect; print the report; return the verdict's exit code."""
    fp = c.load_fingerprint(args.fingerprint)
    with progress_bar(total=2, enabled=c.show_progress(args), desc="verify", unit="step") as b:
        b.set_postfix_str("loading suspect")
        suspect = c.load_suspect_ref(args.suspect, trust_code=args.trust_code, revision=args.revision)
        b.update(1)
        b.set_postfix_str("verifying")
        report = verify_suspect(fp, suspect, args.suspect, timeout=args.timeout)
        b.update(1)
    code = exit_code_for(report.pirated)
    html = write_evidence(args, fp, report) if args.report else None
    if args.json:
        c.write_json({
            "verdict": report.verdict,
            "calibrated": report.calibrated,
            "exit_code": code,
            "suspect": args.suspect,
            "fingerprint": {"path": args.fingerprint, "task": fp.task, "points": fp.n_points},
            "report": report.to_dict(),
            "evidence": html,
        })
        return code
    print(str(report))
    print(f"  suspect      {describe_source(report.source, args.suspect)}")
    print(f"  fingerprint  {args.fingerprint} ({fp.task}, {fp.n_points} points)")
    print(f"  mode         {report.mode}, status {report.status}")
    if report.calibrated and report.fpr is not None:
        print(f"  references   {report.n_positives} pirated, {report.n_negatives} innocent")
        print(f"  FPR          {report.fpr:.3f} (95% upper bound {report.fpr_upper:.3f}, Clopper-Pearson)")
        print(f"  p-value      {report.p_value:.3g}")
    if html:
        print(f"  evidence     {html}")
    for name, value in report.features.items():
        print(f"  {name:<18} {value:.3f}")
    for w in report.warnings:
        print(f"tafa verify: warning: {w}", file=sys.stderr)
    return code
