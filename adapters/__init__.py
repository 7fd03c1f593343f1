"""tafa-tf adapters: load suspect models from files and the Hugging Face Hub, and scan many.

    from adapters import load_suspect, scan
    suspect = load_suspect("hf://org/name@revision")   # or a .keras / .h5 / .tflite / SavedModel path
    result = scan([fp_a, fp_b], refs, store="scans.db", engine="threads")   # or engine="ray"

The PyPI distribution "adapters" installs a top-level package with the same name.
``__tafa_tf_adapters__`` marks this one, so tafa_tf can tell the two apart and say
how to fix a clash.
"""

from __future__ import annotations

__tafa_tf_adapters__ = True

from adapters.errors import (
    AdapterError,
    GatedRepoError,
    HubConnectionError,
    MissingDependencyError,
    ModelLoadError,
    ModelTooLargeError,
    NoModelError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafeModelError,
)
from adapters.load import DEFAULT_MAX_BYTES, load_suspect
from adapters.engines import LocalEngine
from adapters.scanning import (
    HubQuery,
    ScanEntry,
    ScanResult,
    iter_scan,
    list_hub_refs,
    make_engine,
    scan,
)
from adapters.store import ScanStore, StoreError
from adapters.suspect import FileRecord, Suspect

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AdapterError",
    "FileRecord",
    "GatedRepoError",
    "HubConnectionError",
    "HubQuery",
    "LocalEngine",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelTooLargeError",
    "NoModelError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "ScanEntry",
    "ScanResult",
    "ScanStore",
    "StoreError",
    "Suspect",
    "UnsafeModelError",
    "iter_scan",
    "list_hub_refs",
    "make_engine",
    "load_suspect",
    "scan",
]
