"""``tafa scan``: verify many suspects (files, folders, Hub repos, a Hub search) against one or more fingerprints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tafa_tf.cli import _common as c

EPILOG = """\
examples:
  tafa scan owner.tafa suspects/                       # every model in the folder
  tafa scan owner.tafa a.keras b.h5 hf://org/model@v2 --json
  tafa scan a.tafa b.tafa c.tafa suspects/ --store scans.db   # each suspect loaded once, checked against 3
  tafa scan a.tafa suspects/ --store scans.db          # again: skips what the store holds (resume)
  tafa scan a.tafa suspects/ --store scans.db --retry-errors
  tafa scan a.tafa suspects/ --store scans.db --engine ray                      # a local Ray
  tafa scan a.tafa suspects/ --store scans.db --engine ray --address ray://head:10001   # a Ray cluster
  tafa results scans.db --format csv --output scans.csv
  tafa scan owner.tafa --library keras --search digits --limit 20   # a Hub listing (HF_ENDPOINT applies)

The leading arguments that end in .tafa are the fingerprints; the rest are suspects.
A suspect that cannot be loaded or queried gets an "error" row, and a fingerprint whose
input or output shape does not fit a suspect a "not_applicable" row; the scan goes on.
With --store, each suspect's rows are written as they arrive (SQLite), so a killed
scan rerun with the same --store redoes only the suspects that were in flight.

exit codes: 10 at least one suspect judged pirated, 0 none, 4 no suspect could be
  verified, 6 the Hub could not be reached for the search, 3 bad .tafa file,
  2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the scan subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "scan",
        help="verify many suspects against one or more fingerprints and rank them by score",
        description="Verify every suspect against each fingerprint and print the results ranked, most "
                    "suspicious first.",
        epilog=EPILOG,
    )
    p.add_argument("inputs", nargs="+", metavar="FP.tafa [FP.tafa ...] [REF",
                   help="the owners' .tafa files, then model files, folders of models, or hf://ORG/NAME[@REV] refs")
    p.add_argument("--search", default=None, metavar="QUERY", help="also scan Hub models whose name contains QUERY")
    p.add_argument("--library", default=None, help="also scan Hub models of this library tag (e.g. keras)")
    p.add_argument("--limit", type=c.positive_int, default=20, help="at most this many Hub models (default: 20)")
    p.add_argument("--workers", type=c.positive_int, default=2,
                   help="suspects checked at once by the local engine (default: 2)")
    p.add_argument("--timeout", type=c.positive_float, default=None, help="seconds each suspect may take")
    c.add_trust_code_flag(p)
    p.add_argument("--store", default=None, metavar="FILE.db",
                   help="a SQLite scan store: results are written as they arrive; pairs already there are skipped")
    p.add_argument("--retry-errors", action="store_true", help="with --store: redo the pairs that ended in an error")
    p.add_argument("--engine", choices=("threads", "processes", "ray"), default="threads",
                   help="where suspects are checked: threads (default), processes, or ray (needs tafa-tf[ray])")
    p.add_argument("--address", default=None,
                   help="with --engine ray: the cluster to join (auto, or ray://HOST:10001); default: a local Ray")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def split_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """The leading ``.tafa`` arguments (fingerprints) and the rest (suspect refs).

    Raises:
        CliError: EXIT_USAGE when the first argument is not a .tafa file.
    """
    n = 0
    while n < len(inputs) and Path(inputs[n]).suffix.lower() == ".tafa":
        n += 1
    if n == 0:
        c.fail(f"The first argument must be a fingerprint (.tafa file). Received: {inputs[0]!r}", c.EXIT_USAGE)
    return inputs[:n], inputs[n:]


def run(args: argparse.Namespace) -> int:
    """Scan every suspect with adapters.scan; print the ranked table; return 10 if any is pirated."""
    fp_paths, refs = split_inputs(args.inputs)
    fps = [c.load_fingerprint(p) for p in fp_paths]
    refs = c.expand_refs(refs)
    if not refs and not (args.search or args.library):
        c.fail("Nothing to scan: give model refs or folders, or --search/--library. Received: no REF", c.EXIT_USAGE)
    if args.address and args.engine != "ray":
        c.fail(f"--address is for --engine ray. Received: --engine {args.engine}", c.EXIT_USAGE)
    if args.retry_errors and not args.store:
        c.fail("--retry-errors needs --store (the errors to retry are in the store). Received: no --store",
               c.EXIT_USAGE)
    c.import_tensorflow()
    adapters = c.require_adapters()
    if args.search or args.library:
        with c.failing_as(c.EXIT_NETWORK, "Cannot list the Hub's models"):
            refs += adapters.list_hub_refs(adapters.HubQuery(library=args.library, search=args.search,
                                                             limit=args.limit))
    with c.failing_as(c.EXIT_USAGE, "Cannot scan"):
        engine = adapters.make_engine(args.engine, max_workers=args.workers, address=args.address)
        result = adapters.scan(fps, refs, max_workers=args.workers, progress=c.show_progress(args),
                               timeout=args.timeout, trust_code=args.trust_code, store=args.store, engine=engine,
                               retry_errors=args.retry_errors, fingerprint_names=[Path(p).name for p in fp_paths])
    code = exit_code(result)
    if args.json:
        single = {"fingerprint": fp_paths[0]} if len(fp_paths) == 1 else {}
        c.write_json({**single, "fingerprints": fp_paths, "store": args.store, "exit_code": code, **result.to_dict()})
        return code
    print(result.table())
    print(summary(result, uncalibrated=any(fp.calibration is None for fp in fps)))
    return code


def exit_code(result: Any) -> int:
    """10 if any pair is judged pirated; else 4 (6 if the Hub was unreachable) when nothing was scored; else 0."""
    if any(e.pirated is True for e in result.entries):
        return c.EXIT_PIRATED
    if result.entries and not any(e.ok for e in result.entries):
        errors = result.errors
        if errors and all(e.error_type == "HubConnectionError" for e in errors):
            return c.EXIT_NETWORK
        return c.EXIT_SUSPECT
    return c.EXIT_OK


def summary(result: Any, *, uncalibrated: bool = False) -> str:
    """The line under the table: counts of suspects, verdicts, errors and pairs not applicable."""
    refs = {e.ref for e in result.entries}
    flagged = {e.ref for e in result.entries if e.pirated is True}
    failed = {e.ref for e in result.errors}
    regime = " (uncalibrated verdicts; see `tafa calibrate`)" if uncalibrated else ""
    line = (f"\n{len(flagged)} of {len(refs)} suspects judged pirated{regime}; {len(failed)} could not be verified "
            f"({result.seconds:.0f} s)")
    if result.not_applicable:
        line += f"; {len(result.not_applicable)} fingerprint-suspect pairs not applicable (shapes differ)"
    return line
