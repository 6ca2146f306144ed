"""``python -m sftc`` is the ``sftc`` command."""
import sys

from .cli import main

sys.exit(main())
