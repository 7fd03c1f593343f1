"""Check whether models on the Hugging Face Hub are copies of yours.

    python examples/check_hf_repo.py owner.tafa hf://org/suspect@main hf://org/other
    python examples/check_hf_repo.py owner.tafa --search digits --library keras --json out.json

Each suspect is downloaded (only its model files, up to --max-gib), scanned for code
and unsafe operators before loading, queried as a black box and scored. Broken or
malicious uploads are listed with their reason; the others are ranked by score.
Set HF_TOKEN for private repositories and HF_ENDPOINT for a mirror.
Exits 10 when a copy is found and 0 otherwise, as `tafa scan` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import tafa_tf as tafa
from adapters import HubQuery, ScanEntry, scan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("fingerprint", type=Path, help="the owner's .tafa file")
    parser.add_argument(
        "refs", nargs="*", help="hf://ORG/NAME[@REVISION] refs or local model paths"
    )
    parser.add_argument("--search", help="list Hub models whose name contains this")
    parser.add_argument("--library", help="list Hub models of this library (e.g. keras)")
    parser.add_argument("--limit", type=int, default=50, help="most Hub models to list")
    parser.add_argument("--workers", type=int, default=4, help="suspects checked at once")
    parser.add_argument("--max-gib", type=float, default=2.0, help="largest model to download")
    parser.add_argument("--json", type=Path, help="also write the ranked result as JSON here")
    args = parser.parse_args(argv)
    if not args.refs and not (args.search or args.library):
        parser.error("give suspect refs, or --search / --library to list the Hub")

    fp = tafa.Fingerprint.load(args.fingerprint)
    suspects = args.refs or HubQuery(library=args.library, search=args.search, limit=args.limit)

    def show(entry: ScanEntry) -> None:
        what = f"score {entry.score:.3f}" if entry.ok else f"{entry.error_type}: {entry.error}"
        print(f"{entry.ref}: {what}", file=sys.stderr)

    result = scan(
        fp,
        suspects,
        max_workers=args.workers,
        on_result=show,
        max_bytes=int(args.max_gib * 1024**3),
    )
    print(result.table())
    if args.json:  # written whole or not at all
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(result.to_json())
        os.replace(tmp, args.json)
    return EXIT_PIRATED if any(e.pirated for e in result.entries) else 0


EXIT_PIRATED = 10  # the exit code of `tafa verify` and `tafa scan` when a copy is found


if __name__ == "__main__":
    sys.exit(main())
