"""``tafa results``: read a scan store: the ranked table, or every row as JSON or CSV."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from tafa_tf.cli import _common as c

EPILOG = """\
examples:
  tafa results scans.db                               # the ranked table
  tafa results scans.db --format csv --output scans.csv
  tafa results scans.db --format json > scans.json
  tafa results scans.db --fingerprint a.tafa          # one fingerprint's rows (by file name or sha256 prefix)

Works while a scan is still writing to the store (SQLite WAL). The columns are
listed in docs/cli.md and in adapters/store.py.

exit codes: 10 at least one suspect judged pirated, 0 none, 3 not a scan store,
  2 usage error, 1 internal error.
"""


def register(sub: Any) -> None:
    """Add the results subcommand to ``sub`` (argparse subparsers)."""
    p = c.add_command(sub, "results", help="show or export what a scan store (tafa scan --store) holds",
                      description="Print a scan store's results ranked by score, or export every row.",
                      epilog=EPILOG)
    p.add_argument("store", help="the SQLite file given to tafa scan --store")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: table)")
    p.add_argument("--output", default=None, metavar="FILE", help="write there (atomically) instead of stdout")
    p.add_argument("--fingerprint", default=None, metavar="NAME_OR_SHA",
                   help="only this fingerprint's rows (its .tafa file name or a sha256 prefix)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.set_defaults(run=run, command_name=p.prog.split()[-1])


def run(args: argparse.Namespace) -> int:
    """Print or export the store's rows; return 10 if any is judged pirated."""
    from adapters.scanning import ranked
    from adapters.store import ScanStore, export_rows

    from tafa_tf.cli.scan import exit_code, summary

    path = Path(args.store).expanduser()
    if not path.is_file():
        c.fail(f"No scan store at {args.store}; run tafa scan --store first. Received: {args.store!r}", c.EXIT_USAGE)
    with c.failing_as(c.EXIT_INPUT, f"Cannot read the scan store {args.store}"), ScanStore(path) as store:
        rows = store.rows()
    if args.fingerprint:
        key = args.fingerprint
        rows = [r for r in rows if r["fingerprint_name"] == Path(key).name or r["fp_sha256"].startswith(key)]
    result = ranked(_entries(rows))
    fmt = "json" if args.json else args.format
    text = result.table() + summary(result) if fmt == "table" else export_rows(_in_rank_order(rows, result), fmt)
    if args.output:
        _write_atomically(Path(args.output), text + "\n")
    else:
        print(text)
    return exit_code(result)


def _entries(rows: list[dict[str, Any]]) -> list[Any]:
    from adapters.store import entry_of

    return [entry_of(r) for r in rows]


def _in_rank_order(rows: list[dict[str, Any]], result: Any) -> list[dict[str, Any]]:
    rank = {(e.fingerprint, e.ref, e.content_sha): i for i, e in enumerate(result.entries)}
    return sorted(rows, key=lambda r: rank[(r["fp_sha256"], r["ref"], r["content_sha"])])


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
