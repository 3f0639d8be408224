"""The one undo path: the window's Undo/Redo actions and the review panel's keys both step the
labels' history here, and everything that shows labels follows the ``changed`` signal.

The step itself is the review session's (core): it undoes in the store and updates the images
it touched. This controller only turns the outcome into signals.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..core.errors import AfpsError
from ..core.review_session import ReviewSession


class History(QObject):
    changed = Signal(object)  # the HistoryStep that was applied (see core.review_session)
    said = Signal(str, bool)  # a message for the inspector, and whether it is an error

    def __init__(self, session: ReviewSession, parent=None):
        super().__init__(parent)
        self.session = session

    def undo(self) -> None:
        self._step(undo=True)

    def redo(self) -> None:
        self._step(undo=False)

    def _step(self, *, undo: bool) -> None:
        if self.session.project is None:
            return
        try:
            step = self.session.step_history(undo=undo)
        except AfpsError as exc:
            self.said.emit(str(exc), True)
            return
        if step is None:
            self.said.emit(f"Nothing to {'undo' if undo else 'redo'}.", False)
            return
        self.changed.emit(step)
