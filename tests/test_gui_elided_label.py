"""Labels that show image names shorten them instead of widening the window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from afps_gui.ui.elided_label import ElidedLabel

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures

LONG = "line_7/camera_2/" + "very_long_folder_name/" * 12 + "exp3_num_339854.jpg"


def test_a_long_text_is_shortened_to_fit_and_kept_whole(qtbot):
    row = QWidget()
    qtbot.addWidget(row)
    layout = QHBoxLayout(row)
    label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
    layout.addWidget(label)
    row.resize(300, 40)
    row.show()
    label.setText(LONG)
    qtbot.waitUntil(lambda: label.text_shown() != "" and label.width() <= 300)
    shown = label.text_shown()
    assert "…" in shown and shown.endswith(".jpg") and shown.startswith("line_7")
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.text() == LONG and label.toolTip() == LONG
    row.resize(label.sizeHint().width() + 40, 40)  # room for all of it: no dots
    qtbot.waitUntil(lambda: label.text_shown() == LONG)


def test_a_long_text_does_not_raise_the_minimum_width(qtbot):
    label = ElidedLabel()
    qtbot.addWidget(label)
    label.setText("short")
    minimum = label.minimumSizeHint()
    label.setText(LONG)
    assert label.minimumSizeHint() == minimum
    assert label.sizeHint().width() > 10 * minimum.width()  # it still asks for room


def test_long_image_names_leave_the_window_minimum_alone(qtbot, window):
    """A long path beside the heat map or in the review panel widened the whole window (past
    the screen), and each image picked re-laid it out: its minimum followed the name."""
    qtbot.wait(100)
    before, width = window.minimumSizeHint().width(), window.width()
    window.heatmap.name_label.setText(LONG)
    window.review.info_image.setText(LONG)
    qtbot.wait(100)  # the layouts' requests are handled
    assert window.minimumSizeHint().width() == before  # was 2,600 px with plain labels
    assert window.width() == width
