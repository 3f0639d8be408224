"""Start AFPS Inspector from a source checkout: ``python main.py [--demo | --project PATH]``."""

import sys

from afps_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
