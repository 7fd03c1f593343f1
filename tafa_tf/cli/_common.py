"""What every ``tafa`` subcommand shares: exit codes, errors, loading, output.

Kept free of TensorFlow at import: ``tafa --help`` must answer at once, and the
TensorFlow logging switches must be set before TensorFlow is first imported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

# Exit codes. verify and scan tell pirated, not pirated and failures apart so that a
# CI job can branch on the code alone; the table is repeated in `tafa --help` and in
# docs/cli.md.
EXIT_OK = 0
"""Success; for verify and scan: no suspect judged pirated."""
EXIT_INTERNAL = 1
"""An unexpected error (a bug): rerun with TAFA_DEBUG=1 and report the traceback."""
EXIT_USAGE = 2
"""Bad command-line arguments (argparse's own convention)."""
EXIT_INPUT = 3
"""The owner's side is unusable: model file, fingerprint file, domain, calibration data."""
EXIT_SUSPECT = 4
"""A suspect could not be loaded or queried (missing, unsafe, corrupt, wrong shape...)."""
EXIT_NO_VERDICT = 5
"""No verdict: uncalibrated and in the uncertain band, or answers (NaN or inf) that support none."""
EXIT_NETWORK = 6
"""The Hugging Face Hub could not be reached: worth retrying later."""
EXIT_PIRATED = 10
"""verify: the suspect is judged pirated; scan: at least one suspect is."""
EXIT_INTERRUPTED = 130
"""Interrupted with Ctrl-C (the shell's convention, 128 + SIGINT)."""

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success; verify/scan: not pirated"),
    (EXIT_INTERNAL, "unexpected internal error (rerun with TAFA_DEBUG=1)"),
    (EXIT_USAGE, "usage error: bad arguments"),
    (EXIT_INPUT, "owner-side input error: model, .tafa file, domain, calibration set"),
    (EXIT_SUSPECT, "suspect error: could not be loaded or queried"),
    (EXIT_NO_VERDICT, "no verdict: uncalibrated and uncertain, or the suspect answered NaN or inf"),
    (EXIT_NETWORK, "the Hub could not be reached (retry later)"),
    (EXIT_PIRATED, "verify/scan: pirated"),
    (EXIT_INTERRUPTED, "interrupted"),
)

DEBUG_ENV = "TAFA_DEBUG"


def exit_code_table() -> str:
    """The exit codes as an aligned text table, for --help."""
    return "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)


def debug_enabled() -> bool:
    """Whether TAFA_DEBUG asks for full tracebacks and TensorFlow's own logs."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class CliError(Exception):
    """An error the CLI reports as one line with a chosen exit code.

    Args:
        message: what went wrong and what to do, on one line.
        code: the process exit code (one of the EXIT_* constants).
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def one_line(e: BaseException) -> str:
    """An exception's message squeezed onto one line (its type name if it has none)."""
    text = " ".join(str(e).split())
    return text or type(e).__name__


def exit_code_of(e: BaseException, *, default: int = EXIT_INTERNAL) -> int:
    """The exit code for an exception that reached main() without a CliError wrapper."""
    from tafa_tf import errors

    if isinstance(e, CliError):
        return e.code
    if isinstance(e, ConnectionError):
        return EXIT_NETWORK
    if isinstance(e, errors.SuspectError) or type(e).__module__.startswith("adapters"):
        return EXIT_SUSPECT
    if isinstance(e, errors.TafaError):
        return EXIT_INPUT
    if isinstance(e, (OSError, ValueError)):
        return EXIT_INPUT
    return default


@contextlib.contextmanager
def failing_as(code: int, what: str) -> Iterator[None]:
    """Turn any expected error inside the block into a CliError with ``code``.

    ``what`` names the thing being handled ("the suspect f16.keras"), so that the one
    line tells the user which of several inputs failed. Hub connection problems keep
    their own code whatever the block, since the fix (retry) is the same everywhere.
    """
    from tafa_tf.errors import TafaError

    try:
        yield
    except CliError:
        raise
    except ConnectionError as e:
        raise CliError(f"{what}: {one_line(e)}", EXIT_NETWORK) from e
    except (TafaError, OSError, ValueError, ImportError, RuntimeError) as e:
        raise CliError(f"{what}: {one_line(e)}", code) from e


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Hide what native code writes to stderr inside the block (kept under TAFA_DEBUG).

    TensorFlow's C++ core logs GPU probing and oneDNN notices before absl logging is
    initialized, which TF_CPP_MIN_LOG_LEVEL does not silence; redirecting file
    descriptor 2 is the one switch that works. What was written is replayed if the
    block fails, so a broken installation still explains itself.
    """
    if debug_enabled():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow and Keras quietly; the CLI calls this before any model work.

    Only the CLI process changes TF_CPP_MIN_LOG_LEVEL (the library never touches the
    environment); a value the user set wins.
    """
    if "tensorflow" in sys.modules:
        return
    if not debug_enabled():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow as tf

        # Device discovery prints the CUDA probe's failure on machines without a GPU.
        tf.config.list_physical_devices()
        import keras  # noqa: F401
    import logging

    logging.getLogger("tensorflow").setLevel(logging.DEBUG if debug_enabled() else logging.ERROR)
    if not debug_enabled():
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


def existing_model_path(path: str) -> Path:
    """``path`` as a Path, or CliError (EXIT_INPUT) when nothing is there: said before
    TensorFlow's import (seconds) or another model's loading is paid for."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CliError(f"The model file {path} does not exist. Received: model={path!r}", EXIT_INPUT)
    return p


def load_owner_model(path: str) -> Any:
    """Load the owner's own model file; trusted, but Keras safe_mode stays on.

    Raises:
        CliError: EXIT_INPUT when the file is missing or is not a Keras model.
    """
    p = existing_model_path(path)
    import_tensorflow()
    import keras

    with failing_as(EXIT_INPUT, f"Cannot load the model {path}"), quiet_stderr():
        # not compiled: nothing here trains the owner, and its optimizer's state (two more
        # copies of every weight with Adam) and a custom loss need not load
        return keras.saving.load_model(p, compile=False)


def load_fingerprint(path: str) -> Any:
    """Read a .tafa file, failing with EXIT_INPUT and one line."""
    from tafa_tf.record import Fingerprint

    with failing_as(EXIT_INPUT, f"Cannot read the fingerprint {path}"):
        return Fingerprint.load(path)


def load_suspect_ref(ref: str, *, trust_code: bool = False, revision: str | None = None) -> Any:
    """Load one suspect through the adapters, failing with EXIT_SUSPECT and one line."""
    load_suspect = require_adapters().load_suspect
    with failing_as(EXIT_SUSPECT, f"Cannot load the suspect {ref}"):
        from adapters.hub import is_hub_ref
        from adapters.load import local_layout

        if not is_hub_ref(ref):  # a mistyped path is said before TensorFlow's import (seconds)
            local_layout(Path(ref).expanduser())
        import_tensorflow()
        return load_suspect(ref, trust_code=trust_code, revision=revision)


def require_adapters() -> Any:
    """tafa-tf's adapters package, or one clear line when it is missing or shadowed."""
    from tafa_tf.adapters_check import require_tafa_adapters

    try:
        return require_tafa_adapters()
    except ImportError as e:  # the adapters package ships with tafa-tf: a broken or clashing install
        raise CliError(one_line(e), EXIT_INTERNAL) from e


MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SUSPECT_SUFFIXES = (*MODEL_SUFFIXES, ".tflite")
"""Files a folder of suspects is expanded to: Keras models and TensorFlow Lite files."""


def _is_model_folder(p: Path) -> bool:
    return (p / "saved_model.pb").is_file() or (p / "config.json").is_file()


def expand_refs(refs: Iterable[str]) -> list[str]:
    """Expand folders of models into one ref per model; keep files and hf:// refs.

    A folder that is itself a model (a SavedModel or a Keras folder) stays one ref;
    any other folder stands for the models directly inside it, in name order, so that
    ``--negatives innocents/`` takes every model saved there.

    Raises:
        CliError: EXIT_USAGE for a folder with no model in it.
    """
    out: list[str] = []
    for ref in refs:
        p = Path(ref).expanduser()
        if ref.startswith("hf://") or not p.is_dir() or _is_model_folder(p):
            out.append(ref)
            continue
        found = sorted(
            str(c) for c in p.iterdir()
            if (c.is_file() and c.suffix.lower() in SUSPECT_SUFFIXES) or (c.is_dir() and _is_model_folder(c))
        )
        if not found:
            raise CliError(
                f"The folder {ref} holds no model (.keras, .h5, .tflite, Keras folder or SavedModel). "
                f"Received: {ref!r}",
                EXIT_USAGE,
            )
        out.extend(found)
    return out


def parse_domain(text: str) -> Any:
    """argparse type for --domain: ``box:LOW,HIGH``, ``box`` (= 0,1), ``gaussian:STD``, ``gaussian``."""
    from tafa_tf import domains

    kind, _, args = text.strip().partition(":")
    kind = kind.lower()
    try:
        values = [float(v) for v in args.split(",")] if args.strip() else []
    except ValueError:
        values = None
    if kind == "box" and values is not None and len(values) in (0, 2):
        low, high = values or [0.0, 1.0]
        if low < high:
            return domains.Box(low, high)
    if kind == "gaussian" and values is not None and len(values) in (0, 1):
        std = values[0] if values else 1.0
        if std > 0:
            return domains.Gaussian(std)
    raise argparse.ArgumentTypeError(
        "expected box:LOW,HIGH with LOW < HIGH (e.g. box:0,1) or gaussian:STD with STD > 0 "
        f"(e.g. gaussian:1.0). Received: {text!r}"
    )


def _number(text: str, convert: Any, ok: Any, expected: str) -> Any:
    """Parse ``text`` with ``convert`` and check it with ``ok``; argparse's error otherwise."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}. Received: {text!r}")
    return value


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` to ``high`` (no upper bound if None)."""
    expected = f"a whole number of at least {low}" if high is None else f"a whole number from {low} to {high}"

    def parse(text: str) -> int:
        return _number(text, int, lambda v: low <= v and (high is None or v <= high), expected)

    return parse


positive_int = int_between(1)
"""argparse type: a whole number of at least 1."""


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    return _number(text, float, lambda v: 0 < v < 1, "a number strictly between 0 and 1")


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    return _number(text, float, lambda v: v > 0, "a number above 0")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars: on for a terminal, off in pipes and CI logs; --progress/--no-progress force."""
    if getattr(args, "progress", None) is not None:
        return bool(args.progress)
    return sys.stderr.isatty()


def write_json(data: Any, out: TextIO | None = None) -> None:
    """Print ``data`` as indented JSON; NaN and inf become null so any parser reads it."""
    print(json.dumps(_finite(data), indent=2, sort_keys=False), file=out or sys.stdout)


def _finite(x: Any) -> Any:
    import math

    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _finite(x.item())
    return x


def fail(message: str, code: int) -> NoReturn:
    """Raise a CliError (for call sites that read better as a statement)."""
    raise CliError(message, code)


def add_command(sub: Any, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand parser whose --help keeps the epilog's example layout."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_trust_code_flag(p: argparse.ArgumentParser, *, what: str = "suspects") -> None:
    """--trust-code: accept models whose layers carry code, for the commands that load suspects."""
    p.add_argument("--trust-code", action="store_true",
                   help=f"accept {what} whose layers carry Python code (Lambda); only for authors you trust")


def add_common_flags(p: argparse.ArgumentParser, *, json_help: str = "print the result as JSON on stdout") -> None:
    """--json and --progress/--no-progress, shared by every subcommand."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show progress bars on stderr (default: only when stderr is a terminal)",
    )
