"""tafa-tf: task-agnostic fingerprinting of Keras ReLU networks (TAFA, ESORICS 2021).

    import tafa_tf as tafa
    fp = tafa.fingerprint(model, task="auto", n=128, domain=None, seed=0)
    fp.save("owner.tafa"); fp = tafa.Fingerprint.load("owner.tafa")
    report = tafa.verify(fp, suspect)       # report.score, report.pirated, report.features
    cal = tafa.calibrate(fp, positives=[...], negatives=[...], target_fpr=0.01)
    fp = fp.with_calibration(cal)

Where things live: creation.py makes a fingerprint (``fingerprint``), record.py is the
``Fingerprint`` value and archive.py its .tafa file, synthesis.py finds boundary
points, probes.py the queries asked about them, verification.py asks a suspect and
scores it (``verify``, ``Report``), calibration.py is the estimator (``Calibration``),
batch.py verifies many suspects and calibrates on them (``calibrate``), inversion.py
finds inputs a model's BatchNormalization statistics describe (``batchnorm_samples``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from tafa_tf._version import __version__

# Names load on first use (PEP 562): ``import tafa_tf`` stays cheap, and the ``tafa``
# command answers --help, usage errors and missing files without importing TensorFlow
# (about 8 s on 2 cores).
_LAZY = {
    "Calibration": "tafa_tf.calibration",
    "Fingerprint": "tafa_tf.record",
    "Report": "tafa_tf.verification",
    "batchnorm_samples": "tafa_tf.inversion",
    "calibrate": "tafa_tf.batch",
    "fingerprint": "tafa_tf.creation",
    "inspect_model": "tafa_tf.introspection",
    "verify": "tafa_tf.verification",
    "verify_many": "tafa_tf.batch",
}

if TYPE_CHECKING:
    from tafa_tf import domains, errors, references
    from tafa_tf.batch import calibrate, verify_many
    from tafa_tf.calibration import Calibration
    from tafa_tf.creation import fingerprint
    from tafa_tf.introspection import inspect_model
    from tafa_tf.inversion import batchnorm_samples
    from tafa_tf.record import Fingerprint
    from tafa_tf.verification import Report, verify


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from tafa_tf._backend import require_tensorflow_backend

        require_tensorflow_backend()  # a clear error, not a failure deep in Keras, under JAX or PyTorch
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"tafa_tf.{name}") is not None:
        value = importlib.import_module(f"tafa_tf.{name}")  # tafa.domains, tafa.piracy, ...
    else:
        raise AttributeError(f"module 'tafa_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *(k for k in globals() if k.startswith("__"))})


__all__ = [
    "Calibration",
    "Fingerprint",
    "Report",
    "batchnorm_samples",
    "calibrate",
    "domains",
    "errors",
    "fingerprint",
    "inspect_model",
    "references",
    "verify",
    "verify_many",
    "__version__",
]
