"""``tafa scan``: verify many suspects (files, folders, Hub repos, a Hub search) and rank them."""

from __future__ import annotations

import argparse
from typing import Any

from tafa_tf.cli import _common as c

EPILOG = """\
examples:
  tafa scan owner.tafa suspects/                       # every model in the folder
  tafa scan owner.tafa a.keras b.h5 hf://org/model@v2 --json
  tafa scan owner.tafa --library keras --search digits --limit 20   # a Hub listing (HF_ENDPOINT applies)

A suspect that cannot be loaded or queried gets an "error" row; the scan goes on.

exit codes: 10 at least one suspect judged pirated, 0 none, 4 no suspect could be
  verified, 6 the Hub could not be reached for the search, 3 bad .tafa file,
  2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the scan subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(
        sub,
        "scan",
        help="verify many suspects and rank them by score",
        description="Verify every suspect against one fingerprint and print them ranked, most suspicious first.",
        epilog=EPILOG,
    )
    p.add_argument("fingerprint", help="the owner's .tafa file")
    p.add_argument("refs", nargs="*", metavar="REF",
                   help="model files, folders of models, or hf://ORG/NAME[@REV] references")
    p.add_argument("--search", default=None, metavar="QUERY", help="also scan Hub models whose name contains QUERY")
    p.add_argument("--library", default=None, help="also scan Hub models of this library tag (e.g. keras)")
    p.add_argument("--limit", type=c.positive_int, default=20, help="at most this many Hub models (default: 20)")
    p.add_argument("--workers", type=c.positive_int, default=2, help="suspects checked at once (default: 2)")
    p.add_argument("--timeout", type=c.positive_float, default=None, help="seconds each suspect may take")
    c.add_trust_code_flag(p)
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def run(args: argparse.Namespace) -> int:
    """Scan every suspect with adapters.scan; print the ranked table; return 10 if any is pirated."""
    fp = c.load_fingerprint(args.fingerprint)
    refs = c.expand_refs(args.refs)
    if not refs and not (args.search or args.library):
        c.fail("Nothing to scan: give model refs or folders, or --search/--library. Received: no REF", c.EXIT_USAGE)
    c.import_tensorflow()
    adapters = c.require_adapters()
    HubQuery, list_hub_refs, scan = adapters.HubQuery, adapters.list_hub_refs, adapters.scan

    if args.search or args.library:
        with c.failing_as(c.EXIT_NETWORK, "Cannot list the Hub's models"):
            refs += list_hub_refs(HubQuery(library=args.library, search=args.search, limit=args.limit))
    with c.failing_as(c.EXIT_USAGE, "Cannot scan"):
        result = scan(fp, refs, max_workers=args.workers, progress=c.show_progress(args), timeout=args.timeout,
                      trust_code=args.trust_code)
    flagged = sum(e.pirated is True for e in result.entries)
    errors = result.errors
    if flagged:
        code = c.EXIT_PIRATED
    elif len(errors) == len(result.entries):
        code = c.EXIT_NETWORK if all(e.error_type == "HubConnectionError" for e in errors) else c.EXIT_SUSPECT
    else:
        code = c.EXIT_OK
    if args.json:
        c.write_json({"fingerprint": args.fingerprint, "exit_code": code, **result.to_dict()})
        return code
    print(result.table())
    regime = "" if fp.calibration is not None else " (uncalibrated verdicts; see `tafa calibrate`)"
    print(f"\n{flagged} of {len(result.entries)} suspects judged pirated{regime}; {len(errors)} could not be verified "
          f"({result.seconds:.0f} s)")
    return code
