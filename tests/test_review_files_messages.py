"""The review panel's import/export boxes are the app's one kind of message box (issue 16):
review_files.show_info/show_error/ask_yes_no go through messages, so they are logged and run
through messages.exec_box like every other box."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtWidgets import QMessageBox
from test_gui_support import BoxRecorder

from afps_gui.ui import messages, review_files


@pytest.fixture
def boxes(monkeypatch):
    recorder = BoxRecorder()
    monkeypatch.setattr(messages, "exec_box", recorder)
    return recorder


def test_the_review_files_boxes_are_messages_boxes(qtbot, boxes, caplog):
    with caplog.at_level(logging.WARNING, logger="afps.ui"):
        review_files.show_error(None, "Import labels", "The file is gone.")
    assert "The file is gone." in caplog.text
    review_files.show_info(None, "Import labels", "Imported 3 label(s).")
    boxes.answer = QMessageBox.StandardButton.Yes
    assert review_files.ask_yes_no(None, "Export labels", "Replace it?") is True
    boxes.answer = QMessageBox.StandardButton.No
    assert review_files.ask_yes_no(None, "Export labels", "Replace it?") is False
    assert boxes.texts() == [
        "The file is gone.",
        "Imported 3 label(s).",
        "Replace it?",
        "Replace it?",
    ]
    assert [b.windowTitle() for b in boxes.boxes] == ["Import labels"] * 2 + ["Export labels"] * 2
    icons = [b.icon() for b in boxes.boxes[:3]]
    assert icons == [
        QMessageBox.Icon.Warning,
        QMessageBox.Icon.Information,
        QMessageBox.Icon.Question,
    ]
