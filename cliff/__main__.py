"""``python -m cliff``: the command line of :mod:`cliff.cli`."""

import sys

from cliff.cli import main

if __name__ == "__main__":
    sys.exit(main())
