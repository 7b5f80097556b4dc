"""``python -m lstmsearch.cli``: the ``lstmsearch`` command."""

import sys

from .main import main

sys.exit(main())
