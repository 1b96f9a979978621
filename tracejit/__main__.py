"""``python -m tracejit``: the same as the ``tracejit`` command."""
import sys

from .cli import main

sys.exit(main())
