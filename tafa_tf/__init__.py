"""tafa-tf: task-agnostic fingerprinting of Keras ReLU networks (TAFA, ESORICS 2021).

    import tafa_tf as tafa
    fp = tafa.fingerprint(model, task="auto", n=128, domain=None, seed=0)
    report = tafa.verify(fp, suspect)
"""

from __future__ import annotations

__version__ = "0.1.0"
