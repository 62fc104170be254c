"""``python -m tickroom.loadtest``: see loadtest/cli.py.

``tickroom loadtest`` runs this module in its own process and names itself
in TICKROOM_LOADTEST_PROG, so that --help and errors show the command typed.
"""

import os
import sys

from tickroom.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main(prog=os.environ.pop("TICKROOM_LOADTEST_PROG", "python -m tickroom.loadtest")))
