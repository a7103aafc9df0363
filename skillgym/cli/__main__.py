"""``python -m skillgym.cli``: the ``skillgym`` command."""

import sys

from skillgym.cli.commands import main

sys.exit(main())
