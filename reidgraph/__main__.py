"""``python -m reidgraph`` runs the command line."""

import sys

from reidgraph.cli import main

sys.exit(main())
