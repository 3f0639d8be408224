"""The status bar (device, running job, progress, cancel) and the read-only banner."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QToolButton

from .. import resources


class StatusBar(QStatusBar):
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.readonly_label = QLabel()
        self.readonly_label.setObjectName("banner")
        self.readonly_label.setVisible(False)
        self.job_label = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        # A fixed width: a progress text that changes length would otherwise re-lay the whole
        # status bar (and repaint it) on every report while a job runs.
        self.progress.setFixedWidth(300)
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(resources.icon("cancel"))
        self.cancel_button.setToolTip("Cancel the running job")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.device_label = QLabel()
        self.device_label.setToolTip("Where the models run (Edit ▸ Preferences)")
        self.addWidget(self.readonly_label)
        self.addPermanentWidget(self.job_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)
        self.addPermanentWidget(self.device_label)
        self._keep_height_with_progress()

    def _keep_height_with_progress(self) -> None:
        """The bar keeps the height it has with the progress bar shown. (Showing it made the
        bar a few pixels taller, which resized every dock above it: the whole window re-laid
        and repainted at the start and end of every job, 75 ms on the UI thread.)"""
        for widget in (self.progress, self.cancel_button):
            widget.setVisible(True)
        height = self.sizeHint().height()
        for widget in (self.progress, self.cancel_button):
            widget.setVisible(False)
        self.setFixedHeight(height)

    def set_device(self, text: str) -> None:
        self.device_label.setText(f"Device: {text}")

    def set_readonly(self, reason: str) -> None:
        self.readonly_label.setText(f"Read-only: {reason}" if reason else "")
        self.readonly_label.setVisible(bool(reason))

    def job_started(self, name: str) -> None:
        self._started = time.monotonic()
        self.clearMessage()  # what is said from now on is about this job
        self.job_label.setText(name)
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)

    def job_progress(self, done: int, total: int, message: str) -> None:
        # Touch only what changed: each change repaints, on the UI thread, while a job runs.
        if self.progress.maximum() != max(1, total):
            self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, total))
        eta = time_left(time.monotonic() - getattr(self, "_started", time.monotonic()), done, total)
        room = 40 - len(eta)
        text = message if len(message) < room else message[: room - 1] + "…"
        text = f"{text} · {eta}" if eta else text
        if message and text != self.progress.format():
            self.progress.setFormat(text)
            self.progress.setToolTip(message)

    def forget_job(self) -> None:
        """Another project: what the last job did ("Training the classifier: done") was about
        the one before."""
        self.job_label.setText("")
        self.clearMessage()

    def job_cancelling(self) -> None:
        self.job_label.setText(f"{self.job_label.text()}: cancelling…")
        self.cancel_button.setEnabled(False)

    def job_finished(self, name: str, outcome: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        words = {"ok": "done", "failed": "failed", "cancelled": "cancelled"}
        # A job that went well is said once, for a while; one that did not stays said.
        self.job_label.setText("" if outcome == "ok" else f"{name}: {words.get(outcome, outcome)}")
        if outcome != "ok" or not self.currentMessage():  # keep what the result said, if it did
            self.showMessage(f"{name}: {words.get(outcome, outcome)}", 8000)


def time_left(elapsed: float, done: int, total: int) -> str:
    """ "about 3 min left" from the share done so far; nothing until the estimate means
    something (5 s in and 2 % done)."""
    if total <= 0 or done <= 0 or elapsed < 5 or done / total < 0.02:
        return ""
    left = elapsed * (total - done) / done
    if left < 60:
        return f"{max(5, round(left / 5) * 5):.0f} s left"
    return f"about {round(left / 60):.0f} min left"


def banner_text(reason: str) -> str:
    return (
        f"This project is open read-only: {reason} You can look at everything; "
        "fitting, training, labelling and saving are off."
    )


class Banner(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        # Expanding: a toolbar stretches such a widget over its whole width.
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def show_reason(self, reason: str) -> None:
        # The toolbar that holds the banner is shown or hidden by the window.
        self.setText(banner_text(reason) if reason else "")
