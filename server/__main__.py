"""``python -m tickroom.server`` is ``tickroom``."""

import sys

from tickroom.server.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
