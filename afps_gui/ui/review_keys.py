"""The review panel's keys: which action a key press means, and the routing that lets the
panel's keys win anywhere inside it.

The lists inside the panel would take arrows and Space for themselves, and the window's Undo
action Ctrl+Z: the router hands our keys to the panel before either sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Optional

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCheckBox, QMenu, QPushButton, QTabWidget, QToolButton, QWidget

from ..core.taxonomy import NORMAL


def key_action(panel, event: QKeyEvent) -> Optional[Callable[[], object]]:
    """The review action of a key press, or None when the key is not ours."""
    key = event.key()
    mods = event.modifiers() & ~Qt.KeypadModifier
    ctrl = bool(mods & Qt.ControlModifier)
    shift = bool(mods & Qt.ShiftModifier)
    moves = {Qt.Key_Left: -1, Qt.Key_Up: -1, Qt.Key_A: -1}
    moves.update({Qt.Key_Right: 1, Qt.Key_Down: 1, Qt.Key_D: 1})
    if ctrl:
        if mods & ~(Qt.ControlModifier | Qt.ShiftModifier):
            return None
        if key == Qt.Key_Z:
            return panel.redo if shift else panel.undo
        if key == Qt.Key_Y and not shift:
            return panel.redo
        return None
    if mods & ~Qt.ShiftModifier:
        return None  # Alt/Meta combinations belong to the window
    if key in moves:
        return partial(panel.move, moves[key])
    if event.isAutoRepeat():
        return _ignore  # a held key must not label a run of images
    if Qt.Key_1 <= key <= Qt.Key_9:
        return partial(panel.decide_type, key - Qt.Key_1)
    if key == Qt.Key_0:
        return partial(panel.decide, NORMAL)
    if key in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Enter):
        return panel.accept_prediction
    return None


def _ignore() -> None:
    return None


class KeyRouter(QObject):
    """Review keys win anywhere inside the panel.

    Buttons and check boxes take no keyboard focus (Space would press them instead of
    accepting a prediction); the lists keep focus for scrolling, and this filter hands our keys
    to the panel before the list sees them. Window shortcuts cannot do this: the window's "1"
    or Ctrl+Z would be ambiguous with the panel's, and a list eats arrows and Space before any
    shortcut of the panel's could see them.
    """

    def __init__(self, panel: QWidget):
        super().__init__(panel)
        self.panel = panel
        for widget in panel.findChildren(QWidget):
            if isinstance(widget, QMenu):
                continue  # an open menu keeps its own arrow keys
            if isinstance(widget, (QPushButton, QToolButton, QCheckBox, QTabWidget)):
                widget.setFocusPolicy(Qt.NoFocus)
            elif widget.focusPolicy() != Qt.NoFocus:
                # Only a widget that can have the focus gets key events first (the lists,
                # which would scroll or search on our keys); the rest pass them up to the
                # panel's own handlers.
                widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.KeyPress, QEvent.ShortcutOverride):
            action = key_action(self.panel, event)
            if action is not None:
                event.accept()
                if kind == QEvent.KeyPress:
                    action()
                return True
        return super().eventFilter(watched, event)
