"""A one-line label that shortens its text with "…" rather than widen the window."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

# By default the label never asks for less than this many average characters.
MIN_CHARS = 6


class ElidedLabel(QLabel):
    """Shows as much of its text as fits, with the full text in its tooltip.

    A plain QLabel asks for the width of its whole text (a word-wrapped one for its longest
    word, and a file path is one word). Beside an image name that becomes the window's minimum
    width: a long path pushes the window past the screen, and each image picked changes the
    minimum, so the whole window is laid out again as the user moves through the list. This
    label asks for its whole text only as a preference and fits whatever width it gets.
    """

    def __init__(
        self, text: str = "", parent=None, mode=Qt.TextElideMode.ElideRight, min_chars=MIN_CHARS
    ):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._min_chars = min_chars
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def text(self) -> str:
        """The whole text, as set (``text_shown`` is what fits)."""
        return self._full

    def text_shown(self) -> str:
        return super().text()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        text = text or ""
        if text == self._full:
            return
        self._full = text
        self.setToolTip(text)
        self._fit()
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full)
        width += margins.left() + margins.right() + 2 * self.margin()
        return QSize(max(width, self.minimumSizeHint().width()), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        width = self.fontMetrics().averageCharWidth() * self._min_chars
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().width() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(0, room))
        if shown != super().text():
            super().setText(shown)
