"""The Qt binding keeps Python's reference counts: a binding that drops one reference to None
per call (PySide6 6.12.0 on Python 3.11) kills the app after some thousands of calls."""

from __future__ import annotations

import sys


def test_qt_calls_do_not_drop_references_to_none_or_bools(qapp):
    from PySide6.QtWidgets import QCheckBox, QLabel

    label, box = QLabel("x"), QCheckBox()
    before = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for i in range(300):  # few enough that a leak fails the test rather than crash it
        label.setText("x" * (i % 7))  # returns None
        box.setChecked(bool(i % 2))
        box.isChecked()  # returns a bool
    after = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    # A few references come and go with the interpreter's own work; a leak is one per call.
    assert all(abs(a - b) < 100 for a, b in zip(after, before)), (before, after)
