"""Thumbnails decoded in the background into an LRU cache (the browser's and the review
panel's).

Each cache has its own decoder thread (a TaskRunner of one thread): one core decodes, the
other stays with the UI. The browser's view asks only for the rows it paints, so only visible
images are ever requested; when the user scrolls fast the requests pile up, and the browser's
cache serves the newest first (what is on screen now) and forgets the oldest beyond a bound
(rows long scrolled past). The review panel asks for the image it shows and then the next few,
and is served in that order.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Optional

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from ..workers import TaskRunner

MAX_PENDING = 256


def decode_thumbnail(path: str, side: int, *, enlarge: bool = True) -> QImage:
    """A side x side-bounded thumbnail; Qt's reader scales while decoding (fast for JPEG).

    ``enlarge=False`` keeps an image smaller than the bound at its own size (the review panel
    scales its image to the label anyway; decoding it larger only costs the UI thread).
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    small = size.isValid() and max(size.width(), size.height()) <= side
    if size.isValid() and size.width() > 0 and size.height() > 0 and (enlarge or not small):
        reader.setScaledSize(size.scaled(QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        image = _decode_with_core(path, side)
    return image


def _decode_with_core(path: str, side: int) -> QImage:
    """Files Qt's readers refuse (a format without a plugin in this build, a variant its
    plugin does not handle) go through the app's own decoder, as the heat map does."""
    from ..core.errors import AfpsError
    from ..core.images import load_image

    try:
        pixels = load_image(path)
    except AfpsError:
        return QImage()
    h, w = pixels.shape[:2]
    image = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return image.scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class ThumbnailCache(QObject):
    """Decoded thumbnails by key (a path, or an image's rel), what failed and why."""

    ready = Signal(str)  # the key whose thumbnail (or error) is now known

    def __init__(
        self,
        side: int = 48,
        capacity: int = 3000,
        *,
        enlarge: bool = True,
        newest_first: bool = False,
        max_pending: int = MAX_PENDING,
        parent=None,
    ):
        super().__init__(parent)
        self.side, self.capacity, self.enlarge = side, capacity, enlarge
        self.max_pending = max_pending
        self.tasks = TaskRunner(self, newest_first=newest_first)
        self.pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self.errors: dict[str, str] = {}
        self._pending: OrderedDict[str, None] = OrderedDict()

    def get(self, key: str) -> Optional[QPixmap]:
        """The cached thumbnail (now the most recently used), or None."""
        pixmap = self.pixmaps.get(key)
        if pixmap is not None:
            self.pixmaps.move_to_end(key)
        return pixmap

    def fetch(self, key: str, path) -> Optional[QPixmap]:
        """The cached thumbnail, or None after queueing its decoding."""
        pixmap = self.get(key)
        if pixmap is None:
            self.request(key, path)
        return pixmap

    def request(self, key: str, path) -> None:
        if path is None or key in self._pending or key in self.pixmaps or key in self.errors:
            return
        self._pending[key] = None
        while len(self._pending) > self.max_pending:
            self.tasks.forget(self._pending.popitem(last=False)[0])
        self.tasks.submit(
            key,
            partial(decode_thumbnail, str(path), self.side, enlarge=self.enlarge),
            partial(self._decoded, key),
            lambda failure, key=key: self._failed(key, failure.message),
        )

    def clear(self) -> None:
        for key in self._pending:  # late images of a project no longer open are dropped
            self.tasks.forget(key)
        self._pending.clear()
        self.pixmaps.clear()
        self.errors.clear()

    def wait(self, ms: int = 10000) -> bool:
        return self.tasks.wait(ms)

    def _decoded(self, key: str, image: QImage) -> None:
        if image.isNull():
            self._failed(key, "unreadable image")
            return
        self._pending.pop(key, None)
        self.pixmaps[key] = QPixmap.fromImage(image)
        while len(self.pixmaps) > self.capacity:
            self.pixmaps.popitem(last=False)
        self.ready.emit(key)

    def _failed(self, key: str, message: str) -> None:
        self._pending.pop(key, None)
        self.errors[key] = message or "unreadable image"
        self.ready.emit(key)
