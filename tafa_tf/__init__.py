"""tafa-tf: task-agnostic fingerprinting of Keras ReLU networks (TAFA, ESORICS 2021).

    import tafa_tf as tafa
    fp = tafa.fingerprint(model, task="auto", n=128, domain=None, seed=0)
    fp.save("owner.tafa"); fp = tafa.Fingerprint.load("owner.tafa")
    report = tafa.verify(fp, suspect)       # report.score, report.pirated, report.features
    cal = tafa.calibrate(fp, positives=[...], negatives=[...], target_fpr=0.01)
    fp = fp.with_calibration(cal)
"""

from __future__ import annotations

__version__ = "0.1.0"

from tafa_tf import domains, errors
from tafa_tf.calibration import Calibration, calibrate
from tafa_tf.fingerprint import Fingerprint, fingerprint
from tafa_tf.introspection import inspect_model
from tafa_tf.verification import Report, verify

__all__ = [
    "Calibration",
    "Fingerprint",
    "Report",
    "calibrate",
    "domains",
    "errors",
    "fingerprint",
    "inspect_model",
    "verify",
    "__version__",
]
