"""The ``tafa`` command line: inspect, fingerprint, verify, calibrate, scan, results, demo.

One module per subcommand (``tafa_tf/cli/<name>.py``, each with ``register`` and
``run``); this module builds the parser and turns every failure into one line on
stderr and a documented exit code (see ``tafa --help`` and docs/cli.md). Full
tracebacks only with TAFA_DEBUG=1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from tafa_tf.cli import _common as c

DESCRIPTION = """\
tafa: prove that a suspect model is a pirated copy of your trained ReLU network
(TAFA task-agnostic fingerprinting; classification, regression and generation).
"""

EPILOG = f"""\
quick start:
  tafa demo                                   # a worked example on scikit-learn digits (~1 min)
  tafa fingerprint owner.keras --out owner.tafa
  tafa verify owner.tafa suspect.keras        # exit 10 = pirated, 0 = not pirated
  tafa scan owner.tafa suspects/ hf://org/model
  tafa scan a.tafa b.tafa suspects/ --store scans.db   # resumable; --engine ray for a cluster
  tafa results scans.db --format csv          # the store's ranked rows
  tafa calibrate owner.tafa --positives pirated/ --negatives innocent/ --plot roc.png

exit codes:
{c.exit_code_table()}

Every subcommand has --json and --help. Set TAFA_DEBUG=1 for full tracebacks and
TensorFlow's own logs.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(c.EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tafa`` parser with every subcommand registered."""
    from tafa_tf._version import __version__
    from tafa_tf.cli import calibrate, demo, fingerprint, inspect, results, scan, verify

    parser = _Parser(
        prog="tafa", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tafa-tf {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in (demo, inspect, fingerprint, verify, scan, results, calibrate):
        module.register(sub)
    return parser


def _one_line_warnings() -> None:
    """Library warnings as 'tafa: warning: ...' lines, without Python's source echo."""

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        print(f"tafa: warning: {c.one_line(Exception(str(message)))}", file=sys.stderr)

    warnings.showwarning = show
    logging.basicConfig(level=logging.WARNING, format="tafa: %(levelname)s: %(message)s")
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.ERROR, "error")
    logging.addLevelName(logging.INFO, "info")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tafa`` command; return its exit code (the console script exits with it).

    Args:
        argv: the arguments without the program name (default: sys.argv[1:]).

    Returns:
        The process exit code; see ``tafa --help`` for the table.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return c.EXIT_USAGE
    prog = f"tafa {args.command_name}" if hasattr(args, "command_name") else "tafa"
    if not c.debug_enabled():
        _one_line_warnings()
    try:
        if getattr(args, "command_name", "") != "results":  # the one command that reads a store only
            from tafa_tf._backend import require_tensorflow_backend

            require_tensorflow_backend()
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return c.EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the one place every failure becomes a line and a code
        code = c.exit_code_of(e)
        if c.debug_enabled():
            traceback.print_exc()
        message = c.one_line(e)
        if code == c.EXIT_INTERNAL:
            message = (f"internal error: {type(e).__name__}: {message} "
                       f"(rerun with {c.DEBUG_ENV}=1 for the traceback and please report it)")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code


__all__ = ["build_parser", "main"]
