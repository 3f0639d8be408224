"""Work the window does once at start-up so that the user never waits for it later."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QWidget


def warm_up_plots(root: QWidget) -> None:
    """Draw every plot under ``root`` once into a throwaway image.

    The first paint of a pyqtgraph plot lays out its axes and rasterises their fonts: 40 ms on
    the UI thread, felt the first time a tab of plots comes forward (Train brings the training
    tab forward as its job starts). Drawn here, before the window shows, it costs ~20 ms once.
    """
    image = QImage(640, 360, QImage.Format.Format_ARGB32_Premultiplied)
    for view in root.findChildren(pg.GraphicsView):
        painter = QPainter(image)
        try:
            view.scene().render(painter)
        finally:
            painter.end()


def warm_up_hidden_pages(pages: list[QWidget], size_like: QWidget) -> None:
    """Lay out and draw, once, pages the user has not seen yet (docks behind a tab, the inner
    tabs of the training panel), at the size they will be shown at.

    A page's first showing polishes its widgets, lays it out and caches its fonts: ~20 ms of
    the UI thread on its own, 40–55 ms while a job competes for the two cores, and Train brings
    the training tab forward as its job starts. Done here, a moment after the window appears,
    later showings cost what a repaint costs.
    """
    for page in pages:
        if on_screen(page):
            continue
        if size_like.width() > 0 and size_like.height() > 0:
            page.resize(size_like.size())
        page.grab()


def on_screen(widget: QWidget) -> bool:
    """Qt calls a dock behind a tab visible; what counts is whether any of it can be seen."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()
