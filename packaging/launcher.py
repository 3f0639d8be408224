"""Entry point of the bundled executables (PyInstaller script).

One script serves both executables of the one-folder bundle; the executable's own name decides:

* ``afps-gui``: the desktop app (``afps_gui.app.main``: --demo, --project, --device, --self-test);
* ``afps``: the command line (``afps_gui.cli.main``), except that ``afps --self-test [--device D]``
  runs the app's self-test, so that it can be run from a console on Windows, where the windowed
  ``afps-gui.exe`` has no stdout.
"""

import multiprocessing
import os
import sys


def main() -> int:
    # A frozen program that (directly or through torch / joblib) starts a child process must let
    # the child run the multiprocessing bootstrap instead of the app.
    multiprocessing.freeze_support()
    exe = os.path.basename(sys.executable if getattr(sys, "frozen", False) else sys.argv[0])
    name = exe.lower()
    if name.endswith(".exe"):
        name = name[:-4]
    if name == "afps" and "--self-test" not in sys.argv[1:2]:
        from afps_gui.cli import main as entry
    else:
        from afps_gui.app import main as entry
    return entry()


if __name__ == "__main__":
    sys.exit(main())
