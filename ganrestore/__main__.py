"""``python -m ganrestore <command>``: the same as the ``ganrestore`` console script."""

import sys

from .cli import main

sys.exit(main())
