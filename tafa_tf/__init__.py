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

from tafa_tf._version import __version__
from tafa_tf import domains, errors, references
from tafa_tf.batch import calibrate, verify_many
from tafa_tf.calibration import Calibration
from tafa_tf.creation import fingerprint
from tafa_tf.introspection import inspect_model
from tafa_tf.inversion import batchnorm_samples
from tafa_tf.record import Fingerprint
from tafa_tf.verification import Report, verify

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
