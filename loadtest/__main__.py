"""``python -m tickroom.loadtest``: see loadtest/cli.py."""

import sys

from tickroom.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
