"""``python -m tafa_tf.cli``: the same as the ``tafa`` console script."""

import sys

from tafa_tf.cli import main

sys.exit(main())
