"""``python -m mtlkit`` runs the command line."""

import sys

from mtlkit.cli.main import main

sys.exit(main())
