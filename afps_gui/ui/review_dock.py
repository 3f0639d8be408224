"""The review mode lives in afps_gui/ui/review.py (another module's job); this wires it in.

If that module is missing or broken, the dock says so and everything else still works: the
window never depends on the review module having landed.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

log = logging.getLogger("afps.ui")


def _import_review():
    try:
        from . import review
    except Exception as exc:  # ImportError, or a half-finished module: both mean "not yet"
        log.warning("Review mode unavailable: %s", exc)
        return None
    return review


def review_module():
    return _import_review()


def make_review_panel(parent=None):
    """(widget for the dock, the ReviewPanel or None)."""
    review = _import_review()
    panel_class = getattr(review, "ReviewPanel", None) if review else None
    if panel_class is not None:
        try:
            panel = panel_class(parent)
            return panel, panel
        except Exception:
            log.exception("The review panel failed to start")
    label = QLabel("Review mode unavailable in this build.")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setObjectName("hint")
    return label, None


def types_dialog(store, parent):
    """The defect-types dialog, or None when the review module is unavailable."""
    review = _import_review()
    try:
        from .types_dialog import DefectTypesDialog
    except Exception as exc:
        log.warning("Defect types dialog unavailable: %s", exc)
        DefectTypesDialog = getattr(review, "DefectTypesDialog", None) if review else None
    return DefectTypesDialog(store, parent) if DefectTypesDialog else None


def label_action(name: str):
    """import_labels_action / export_labels_action / export_report_action, or None."""
    review = _import_review()
    return getattr(review, name, None) if review else None
