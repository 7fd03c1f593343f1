"""``tafa scan``: verify many suspects (files, folders, Hub repos, a Hub search) and rank them."""

from __future__ import annotations

import argparse
import math
from typing import Any

from tafa_tf.cli import _common as c
from tafa_tf.cli.verify import describe_source, verdict_word, verify_ref

EPILOG = """\
examples:
  tafa scan owner.tafa suspects/                       # every model in the folder
  tafa scan owner.tafa a.keras b.h5 hf://org/model@v2 --json
  tafa scan owner.tafa --search digits --limit 20      # Hub search (HF_ENDPOINT is honoured)

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
    p.add_argument("--search", default=None, metavar="QUERY", help="also scan the Hub's models matching QUERY")
    p.add_argument("--limit", type=c.positive_int, default=20, help="at most this many Hub search results (20)")
    p.add_argument("--timeout", type=c.positive_float, default=None, help="seconds each suspect may take")
    p.add_argument("--trust-code", action="store_true",
                   help="accept suspects whose layers carry Python code (Lambda); only for authors you trust")
    c.add_common_flags(p)
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def hub_search(query: str, limit: int) -> list[str]:
    """hf:// refs of the Hub models matching ``query`` (HF_ENDPOINT and HF_TOKEN apply)."""
    from huggingface_hub import HfApi

    with c.failing_as(c.EXIT_NETWORK, f"Cannot search the Hub for {query!r}"):
        try:
            return [f"hf://{m.id}" for m in HfApi().list_models(search=query, limit=limit)]
        except Exception as e:  # huggingface_hub raises requests/httpx errors: all mean "unreachable"
            if isinstance(e, (c.CliError, ValueError)):
                raise
            raise ConnectionError(c.one_line(e)) from e


def run(args: argparse.Namespace) -> int:
    """Verify each suspect and print the ranked table; return 10 if any is pirated."""
    fp = c.load_fingerprint(args.fingerprint)
    refs = c.expand_refs(args.refs)
    if args.search:
        refs += hub_search(args.search, args.limit)
    if not refs:
        c.fail("Nothing to scan: give model refs or folders, or --search QUERY. Received: no REF", c.EXIT_USAGE)
    rows: list[dict[str, Any]] = []
    for ref in c.bar(refs, enabled=c.show_progress(args), desc="scan", unit="model"):
        try:
            report = verify_ref(fp, ref, timeout=args.timeout, revision=None, trust_code=args.trust_code)
        except c.CliError as e:
            rows.append({"ref": ref, "score": None, "verdict": "error", "status": "error", "error": str(e),
                         "code": e.code, "source": {}})
            continue
        rows.append({"ref": ref, "score": report.score if math.isfinite(report.score) else None,
                     "verdict": verdict_word(report.pirated), "status": report.status, "error": None,
                     "pirated": report.pirated, "features": report.features, "source": report.source,
                     "threshold": report.threshold, "calibrated": report.calibrated})
    # Most suspicious first; errors and unscored suspects last, in the order given.
    rows.sort(key=lambda r: -r["score"] if r["score"] is not None else math.inf)
    flagged = sum(r.get("pirated") is True for r in rows)
    failed = [r for r in rows if r["status"] == "error"]
    if flagged:
        code = c.EXIT_PIRATED
    elif len(failed) == len(rows):
        code = c.EXIT_NETWORK if all(r["code"] == c.EXIT_NETWORK for r in failed) else c.EXIT_SUSPECT
    else:
        code = c.EXIT_OK
    if args.json:
        c.write_json({"fingerprint": args.fingerprint, "exit_code": code, "pirated": flagged,
                      "errors": len(failed), "suspects": [{k: v for k, v in r.items() if k != "code"} for r in rows]})
        return code
    width = max(12, *(len(r["ref"]) for r in rows))
    print(f"{'rank':>4}  {'score':>6}  {'verdict':<12} {'suspect':<{width}}  provenance")
    for i, r in enumerate(rows, 1):
        score = f"{r['score']:6.3f}" if r["score"] is not None else "     -"
        detail = r["error"] if r["error"] else describe_source(r["source"], r["ref"])
        print(f"{i:>4}  {score}  {r['verdict']:<12} {r['ref']:<{width}}  {detail}")
    print(f"\n{flagged} of {len(rows)} suspects judged pirated; {len(failed)} could not be verified")
    return code
