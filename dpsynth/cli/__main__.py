"""``python -m dpsynth.cli``: the ``dpsynth`` command."""

import sys

from dpsynth.cli import main

sys.exit(main())
