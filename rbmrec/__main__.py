"""``python -m rbmrec``: the ``rbmrec`` command line."""

import sys

from rbmrec.cli import main

sys.exit(main())
