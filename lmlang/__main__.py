"""``python -m lmlang`` is the ``lmlang`` command."""

import sys

from lmlang.cli import main

sys.exit(main())
