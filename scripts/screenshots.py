"""Screenshots of every panel of the app at the sizes inspection PCs have, for a walk-through.

Opens the demo project (made, fitted, scored and trained on first use, as a new user's first
launch does) or a project given with --project, then saves one PNG per panel and tab at each
window size: the start-up window, the image browser with the heat map, the patch inspector, the
training tabs, the review tabs, the defect-types and preferences dialogs.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py OUT_DIR
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py OUT_DIR --project P

The per-user folder is a fresh temporary one unless AFPS_HOME is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SIZES = ((1600, 1000), (1280, 800))


def settle(app, rounds: int = 20) -> None:
    from PySide6.QtCore import QEventLoop, QThread

    for _ in range(rounds):
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QThread.msleep(20)


def wait_for(app, condition, timeout_s: float = 1800) -> None:
    import time

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("Timed out waiting for the app")
        settle(app, 1)


def open_project(app, window, project: str | None) -> None:
    finished = []
    window.pipeline_finished.connect(finished.append)
    if project:
        window.open_project(project)
        return
    window.open_demo()  # a fresh per-user folder: made, then fitted, scored and trained
    wait_for(app, lambda: bool(finished))
    wait_for(app, lambda: not window.runner.busy)


def grab(app, widget, path: Path) -> None:
    settle(app)
    widget.grab().save(str(path))
    print(path)


def panels(app, window, out: Path, tag: str) -> None:
    window.docks["heatmap"].raise_()
    rels = window.browser.visible_rels()
    if rels:
        window.browser.select(rels[0])
        wait_for(app, lambda: window.heatmap.view is not None, 60)
    grab(app, window, out / f"{tag}_heatmap.png")
    window.docks["inspector"].raise_()
    grab(app, window, out / f"{tag}_inspector.png")
    window.docks["training"].raise_()
    tabs = window.training.tabs
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        grab(app, window, out / f"{tag}_training_{i}.png")
    review = window.docks["review"].widget()
    review_tabs = getattr(review, "tabs", None)
    for i in range(review_tabs.count() if review_tabs else 0):
        review_tabs.setCurrentIndex(i)
        grab(app, window, out / f"{tag}_review_{i}.png")


def dialogs(app, window, out: Path) -> None:
    from afps_gui.ui.prefs_dialog import PreferencesDialog
    from afps_gui.ui.types_dialog import DefectTypesDialog

    for name, dialog in (
        ("types", DefectTypesDialog(window.project.store, window)),
        ("prefs", PreferencesDialog(window.prefs, window.project, window)),
    ):
        dialog.show()
        grab(app, dialog, out / f"dialog_{name}.png")
        dialog.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--project", help="a project folder (default: the demo)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AFPS_HOME", tempfile.mkdtemp(prefix="afps-shots-"))
    from afps_gui.app import make_application
    from afps_gui.ui.main_window import MainWindow
    from afps_gui.ui.prefs import load_prefs
    from afps_gui.ui.startup import StartupWindow

    app = make_application()
    shell = StartupWindow(load_prefs())
    shell.resize(*SIZES[0])
    shell.show()
    grab(app, shell, args.out / "startup.png")
    shell.close()
    window = MainWindow()
    window.show()
    open_project(app, window, args.project)
    for width, height in SIZES:
        window.resize(width, height)
        settle(app, 5)
        window._default_sizes()  # the layout a first start at this size gets
        panels(app, window, args.out, f"{width}x{height}")
    dialogs(app, window, args.out)
    window.close()


if __name__ == "__main__":
    main()
