"""Start-up: a window at once, the heavy libraries behind it.

Importing torch takes 2-4 s and the whole app (scikit-learn, pyqtgraph, the core) 6-8 s on a
quiet inspection PC: a user who clicks the icon and sees nothing for that long clicks again. So
the app first shows a light window where the main window will be (same place and size, the
app's name, what it is loading), imports the heavy modules in a thread while that window keeps
painting, then builds the main window on the UI thread and puts it in the light one's place.

This module imports only Qt and light parts of the app: it must be quick to import itself.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QByteArray, Qt, QThread, Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

from .. import resources
from .prefs import Preferences

log = logging.getLogger("afps.startup")

# Loaded in the thread, before the main window's modules: together they are most of the
# start-up time (torch alone 2-4 s). Qt-based modules (pyqtgraph, the UI) load on the UI
# thread afterwards: Qt objects belong to the thread that made them.
HEAVY_MODULES = (
    "numpy",
    "torch",
    "torchvision",
    "scipy.ndimage",
    "sklearn.metrics",
    "afps_gui.core.pipeline",
    "afps_gui.core.experiment",
    "afps_gui.core.devices",
)
DEFAULT_SIZE = (1500, 950)  # the main window's first size, too


class Loader(QThread):
    """Runs ``load`` (imports, warm-ups) off the UI thread; ``failed`` carries the traceback."""

    done = Signal()
    failed = Signal(str)

    def __init__(self, load: Callable[[], None], parent=None):
        super().__init__(parent)
        self._load = load
        self.setObjectName("startup-loader")

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            self._load()
        except BaseException:  # a broken install: the window says so instead of vanishing
            self.failed.emit(traceback.format_exc())
            return
        log.info("Libraries loaded in %.1f s", time.perf_counter() - t0)
        self.done.emit()


def import_heavy_modules() -> None:
    for name in HEAVY_MODULES:
        importlib.import_module(name)


class StartupWindow(QMainWindow):
    """What the user sees while the app loads: where the main window will appear."""

    painted = Signal()  # the first time it is drawn: the moment the user sees a window

    def __init__(self, prefs: Preferences):
        super().__init__()
        self._was_painted = False
        self.setWindowTitle("AFPS Inspector")
        self.setWindowIcon(resources.icon("app"))
        self.resize(*DEFAULT_SIZE)
        if prefs.window_geometry:  # where the main window was last time
            self.restoreGeometry(QByteArray.fromBase64(prefs.window_geometry.encode()))
        self.setCentralWidget(self._content())

    def _content(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addStretch(2)
        title = QLabel("AFPS Inspector")
        title.setObjectName("startupTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2)
        title.setFont(font)
        layout.addWidget(title)
        self.message = QLabel("Starting: loading the inspection libraries…")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.message)
        bar = QProgressBar()
        bar.setRange(0, 0)  # busy: imports do not report how far they are
        bar.setMaximumWidth(320)
        bar.setTextVisible(False)
        layout.addWidget(bar, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)
        return box

    def say(self, message: str) -> None:
        self.message.setText(message)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._was_painted:
            self._was_painted = True
            self.painted.emit()
