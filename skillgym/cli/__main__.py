"""``python -m skillgym.cli``: the ``skillgym`` command."""

import sys

from skillgym.cli.main import main

sys.exit(main())
