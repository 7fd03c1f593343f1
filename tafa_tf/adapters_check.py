"""Tell tafa-tf's ``adapters`` package from the PyPI distribution of the same name.

The PyPI distribution "adapters" (parameter-efficient transfer learning) installs a
top-level package called ``adapters`` too. Ours carries ``__tafa_tf_adapters__ =
True``. It lives in tafa_tf, which is never shadowed, and imports nothing from either
package, so it works when the other one shadows ours; the CLI loads adapters
through it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MARKER = "__tafa_tf_adapters__"


def require_tafa_adapters() -> ModuleType:
    """Import tafa-tf's ``adapters`` package, or explain why it is not the one found.

    Returns:
        The ``adapters`` module, checked to be tafa-tf's.

    Raises:
        ImportError: no ``adapters`` package, or another one shadows tafa-tf's.
    """
    try:
        module = importlib.import_module("adapters")
    except ImportError as e:
        raise ImportError(
            "tafa-tf's 'adapters' package (model loading and Hub scanning) is not "
            "installed; reinstall tafa-tf. Received: " + str(e)
        ) from e
    if getattr(module, MARKER, False) is not True:
        where = getattr(module, "__file__", None) or sorted(getattr(module, "__path__", []))
        raise ImportError(
            "Another package named 'adapters' shadows tafa-tf's adapters (most likely the "
            "PyPI distribution 'adapters' for parameter-efficient fine-tuning). Run "
            "`pip uninstall adapters` and reinstall tafa-tf, or install tafa-tf in its own "
            f"virtual environment. Received: adapters imported from {where}"
        )
    return module
