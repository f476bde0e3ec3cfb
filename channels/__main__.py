"""``python -m channels``: the same as the ``channels`` command."""

import sys

from .frontend.cli import main

sys.exit(main())
