"""``python -m labsched`` runs the command line."""

import sys

from labsched.cli import main

sys.exit(main())
