"""Entry point of the desktop app: ``afps-gui`` (and ``python main.py``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional

from PySide6.QtCore import QObject, Qt, QTimer, Slot

log = logging.getLogger("afps.app")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="afps-gui", description="AFPS Inspector: visual inspection with PaDiM and AFPS."
    )
    parser.add_argument(
        "--demo", action="store_true", help="open the demo project (made if needed)"
    )
    parser.add_argument("--project", metavar="PATH", help="open this project folder")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="where the models run for this session (default: the project's setting)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="run fit, score and train on a small demo offscreen; exit 0 when all is well",
    )
    # For benchmarks/bench_startup.py: print "visible" when a window is drawn and "ready" when
    # the main window is, then quit.
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        from .ui.self_test import run_self_test

        return run_self_test(args.device or "auto")
    app = make_qt_application()
    from .ui.prefs import load_prefs
    from .ui.startup import StartupWindow

    prefs = load_prefs()
    shell = StartupWindow(prefs)
    if args.startup_probe:
        shell.painted.connect(lambda: print("visible", flush=True))
    StartingUp(app, shell, prefs, args)  # the app owns it
    shell.show()
    return app.exec()


class StartingUp(QObject):
    """Loads the libraries once the user sees the start-up window, then puts the main window in
    its place. A QObject of the UI thread: the loader's signals reach its slots on that thread
    (a plain lambda would run in the loader's thread, and widgets made there hang the app)."""

    def __init__(self, app, shell, prefs, args):
        from .ui.startup import Loader

        super().__init__(app)
        self.shell, self.prefs, self.args = shell, prefs, args
        self.loader = Loader(load_heavy_parts, self)
        self.loader.done.connect(self.loaded)
        self.loader.failed.connect(self.not_loaded)
        shell.painted.connect(self.loader.start, Qt.ConnectionType.SingleShotConnection)

    @Slot()
    def loaded(self) -> None:
        replace_shell(self.parent(), self.shell, self.prefs, self.args)

    @Slot(str)
    def not_loaded(self, details: str) -> None:
        could_not_start(self.parent(), self.shell, details)


def replace_shell(app, shell, prefs, args) -> None:
    """Build the main window where the start-up window is and show it in its place."""
    shell.say("Starting: building the window…")
    from .ui.main_window import MainWindow  # it sets the UI process's threads (tune_for_the_ui)

    device = args.device if args.device not in (None, "auto") else ""
    window = MainWindow(prefs, device_override=device)
    install_reporter(app, lambda: window)
    if not prefs.window_geometry:
        window.setGeometry(shell.geometry())
    window.show()
    shell.close()
    freeze_start_up_objects()
    app._afps_window = window  # the shell's lambdas must not be its only owner
    if args.startup_probe:
        print("ready", flush=True)
        QTimer.singleShot(0, app.quit)
        return
    QTimer.singleShot(0, lambda: open_at_start(window, args))


def could_not_start(app, shell, details: str) -> None:
    from PySide6.QtWidgets import QMessageBox

    log.error("Could not load the app's libraries:\n%s", details)
    box = QMessageBox(QMessageBox.Icon.Critical, "AFPS Inspector", "", parent=shell)
    box.setText(
        "AFPS Inspector could not load its libraries (torch, scikit-learn or its own modules). "
        "Reinstall the app (or run scripts/bootstrap.sh in a source checkout), then start it "
        "again."
    )
    box.setDetailedText(details)
    box.exec()
    app.exit(1)


def make_qt_application():
    """The QApplication with logging, the style sheet and the app's identity: quick, no torch."""
    from PySide6.QtWidgets import QApplication

    from .logs import setup_logging
    from .resources import icon, style_sheet

    path = setup_logging()
    log.info("AFPS Inspector starting; log at %s", path)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("AFPS Inspector")
    app.setOrganizationName("AFPS")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    return app


def load_heavy_parts() -> None:
    """Import what the main window and its jobs need (any thread): torch, scikit-learn, the core,
    and the first-use imports of the jobs (workers.warm_up_imports)."""
    from .ui.startup import import_heavy_modules
    from .workers import warm_up_imports

    import_heavy_modules()
    warm_up_imports()


def freeze_start_up_objects() -> None:
    import gc

    # Torch leaves many long-lived objects: a full garbage collection then stalls the UI for
    # 75-176 ms (measured by benchmarks/bench_review_speed.py). Freezing what start-up created
    # keeps those objects out of every later collection.
    gc.collect()
    gc.freeze()


def make_application():
    """The QApplication with everything loaded, all at once (the self-test and benchmarks)."""
    app = make_qt_application()
    from .workers import tune_for_the_ui

    load_heavy_parts()
    tune_for_the_ui()
    freeze_start_up_objects()
    return app


def install_reporter(app, window_getter):
    from .logs import install_crash_handler
    from .ui.crash import CrashReporter

    reporter = CrashReporter(window_getter, app)
    install_crash_handler(reporter.report)
    app._afps_reporter = reporter  # keep it alive as long as the app
    return reporter


def open_at_start(window, args) -> None:
    """--project, --demo, the demo on the very first launch, or the last project.

    The first launch is one with no demo shown yet and no project ever opened: someone who ran
    the demo script (--demo) or opened a project of their own gets their last project back.
    """
    prefs = window.prefs
    if args.project:
        window.open_project(os.path.expanduser(args.project))
    elif args.demo:
        prefs.demo_offered = True
        window.open_demo()
    elif not prefs.demo_offered and not prefs.recent_projects:
        prefs.demo_offered = True
        window.open_demo()
    elif prefs.recent_projects:
        window.open_project(prefs.recent_projects[0], quiet=True)


if __name__ == "__main__":
    sys.exit(main())
