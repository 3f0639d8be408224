"""Entry point of the desktop app: ``afps-gui`` (and ``python main.py``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional

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
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        from .ui.self_test import run_self_test

        return run_self_test(args.device or "auto")
    app = make_application()
    from .ui.main_window import MainWindow

    window = MainWindow(device_override=args.device if args.device not in (None, "auto") else "")
    install_reporter(app, lambda: window)
    window.show()
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: open_at_start(window, args))
    return app.exec()


def make_application():
    """The QApplication with logging, the style sheet and the app's identity."""
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
    from .workers import tune_for_the_ui, warm_up_imports

    tune_for_the_ui()
    warm_up_imports()
    import gc

    # Torch leaves many long-lived objects: a full garbage collection then stalls the UI for
    # 75-176 ms (measured by benchmarks/bench_review_speed.py). Freezing what start-up created
    # keeps those objects out of every later collection.
    gc.collect()
    gc.freeze()
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
