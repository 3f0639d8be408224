"""The review panel's keys: one table of what each key does, turned into shortcuts that act
anywhere inside the panel.

A shortcut whose context is the panel and its children fires before the focused list sees the
key, so the lists cannot eat arrows, digits or Space. Undo and redo are the window's (its Edit
menu's UNDO_KEYS and REDO_KEYS, actions.py, step the one history); the panel handles the same
keys only when a key press reaches it unclaimed, as it does when the panel stands alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple, Optional

from PySide6.QtCore import QKeyCombination, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QCheckBox, QPushButton, QTabWidget, QToolButton, QWidget

from ..core.taxonomy import NORMAL
from .actions import REDO_KEYS, UNDO_KEYS

TYPE_KEYS = 9  # keys 1-9 label the first nine defect types; later ones go through "Label as"


class ReviewKey(NamedTuple):
    keys: str  # as QKeySequence writes it
    action: Callable[[], object]
    repeats: bool  # a held key repeats it (moving does; a decision must not label a run)


def review_keys(panel) -> list[ReviewKey]:
    keys = [ReviewKey(k, partial(panel.move, -1), True) for k in ("Left", "Up", "A")]
    keys += [ReviewKey(k, partial(panel.move, 1), True) for k in ("Right", "Down", "D")]
    keys += [
        ReviewKey(str(i), partial(panel.decide_type, i - 1), False) for i in range(1, TYPE_KEYS + 1)
    ]
    keys.append(ReviewKey("0", partial(panel.decide, NORMAL), False))
    keys += [ReviewKey(k, panel.accept_prediction, False) for k in ("Space", "Return", "Enter")]
    keys += [ReviewKey(k, panel.undo, True) for k in UNDO_KEYS]
    keys += [ReviewKey(k, panel.redo, True) for k in REDO_KEYS]
    return keys


def _windows_own(keys: str) -> bool:
    return keys.startswith("Ctrl+")


def install_review_shortcuts(panel: QWidget) -> list[QShortcut]:
    """The panel's keys as shortcuts of the panel and its children (undo and redo excepted:
    the window has them). Buttons take no keyboard focus: Space would press them."""
    for widget in panel.findChildren(QWidget):
        if isinstance(widget, (QPushButton, QToolButton, QCheckBox, QTabWidget)):
            widget.setFocusPolicy(Qt.NoFocus)
    shortcuts = []
    for key in review_keys(panel):
        if _windows_own(key.keys):
            continue
        shortcut = QShortcut(QKeySequence(key.keys), panel)
        shortcut.setContext(Qt.WidgetWithChildrenShortcut)
        shortcut.setAutoRepeat(key.repeats)
        shortcut.activated.connect(key.action)
        shortcuts.append(shortcut)
    return shortcuts


def key_action(panel, event: QKeyEvent) -> Optional[Callable[[], object]]:
    """The action of a key press that reached the panel unclaimed, or None when not ours."""
    mods = event.modifiers() & ~Qt.KeypadModifier
    if not mods & Qt.ControlModifier:
        mods &= ~Qt.ShiftModifier  # Shift+digit and Shift+arrow act as the plain key
    try:
        keys = QKeySequence(QKeyCombination(mods, Qt.Key(event.key()))).toString()
    except ValueError:  # a key code Qt's enum does not name
        return None
    for key in review_keys(panel):
        if key.keys == keys:
            return key.action if key.repeats or not event.isAutoRepeat() else _ignore
    return None


def _ignore() -> None:
    return None
