"""Every message box of the app goes through here, so that tests can answer them.

Tests monkeypatch ``exec_box`` (the single place that runs a modal box) to record the box and
return at once; nothing else in the UI calls ``QMessageBox.exec`` directly.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger("afps.ui")


def exec_box(box: QDialog) -> int:
    """Run a modal box and return its result (monkeypatched in tests)."""
    return box.exec()


def _box(parent: QWidget | None, icon: QMessageBox.Icon, message: str, title: str) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title or "AFPS Inspector")
    box.setText(message)
    return box


def error(parent: QWidget | None, message: str, details: str = "", title: str = "") -> None:
    """Show an error in plain words; the traceback (if any) sits behind "Show Details…"."""
    log.warning("Shown to the user: %s", message)
    box = _box(parent, QMessageBox.Icon.Warning, message, title)
    if details:
        box.setDetailedText(details)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    exec_box(box)


def info(parent: QWidget | None, message: str, title: str = "") -> None:
    exec_box(_box(parent, QMessageBox.Icon.Information, message, title))


def confirm(parent: QWidget | None, message: str, title: str = "") -> bool:
    box = _box(parent, QMessageBox.Icon.Question, message, title)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return exec_box(box) == QMessageBox.StandardButton.Yes


class CrashDialog(QDialog):
    """An unexpected error: what happened, the full text, and a button that copies it."""

    def __init__(self, message: str, details: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("AFPS Inspector: unexpected error")
        self.resize(640, 420)
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"<b>{_escape(message)}</b><br>The app keeps running and your labels are saved. "
            "Please copy the text below into a bug report."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.text = QPlainTextEdit(details)
        self.text.setReadOnly(True)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

    def copy(self) -> None:
        QApplication.clipboard().setText(self.text.toPlainText())


def crash(parent: QWidget | None, message: str, details: str) -> None:
    exec_box(CrashDialog(message, details, parent))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
