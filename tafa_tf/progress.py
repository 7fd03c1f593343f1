"""Optional progress bars: one helper for every long loop of the library and the CLI."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar on stderr, or (``enabled=False``) a silent one with the same methods.

    Works as an iterable wrapper (``for x in progress_bar(items, ...)``), with
    ``update``/``close`` and as a context manager.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not enabled, **kwargs)


__all__ = ["progress_bar"]
