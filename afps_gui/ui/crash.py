"""Unexpected errors from any thread end up in one dialog on the GUI thread."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from . import messages


class CrashReporter(QObject):
    """The reporter handed to logs.install_crash_handler.

    ``report`` may be called from a worker thread: it only emits a signal, which Qt queues to
    this object's (the GUI) thread, where the dialog is shown.
    """

    crashed = Signal(str, str)

    def __init__(self, window_getter=lambda: None, parent=None):
        super().__init__(parent)
        self._window = window_getter
        self._showing = False
        self.reports: list[tuple[str, str]] = []
        self.crashed.connect(self._show)

    def report(self, message: str, details: str) -> None:
        self.crashed.emit(message, details)

    @Slot(str, str)
    def _show(self, message: str, details: str) -> None:
        self.reports.append((message, details))
        if self._showing:  # one dialog at a time; later ones are in the log
            return
        self._showing = True
        try:
            messages.crash(self._window(), message, details)
        except Exception:  # the reporter must never raise: that would call it again
            logging.getLogger("afps.crash").exception("Could not show the crash dialog")
        finally:
            self._showing = False
