"""Thumbnails decoded in the background, newest request first, kept in an LRU cache.

The browser's view asks only for the rows it paints, so only visible images are ever requested.
When the user scrolls fast, the requests pile up; the loader serves the newest first (what is
on screen now) and forgets the oldest beyond a bound (rows long scrolled past).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap

from ..workers import behind_the_ui

log = logging.getLogger("afps.thumbnails")

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


class _Relay(QObject):
    decoded = Signal(str, QImage)


class _Decoder(QRunnable):
    """Drains the loader's request stack, newest first, then ends."""

    def __init__(self, loader: ThumbnailLoader):
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        behind_the_ui()
        while True:
            path = self.loader._pop()
            if path is None:
                return
            try:
                image = decode_thumbnail(path, self.loader.side)
            except Exception:  # one bad file must not stop the thumbnails of the others
                log.exception("Thumbnail of %s failed", path)
                image = QImage()
            self.loader._relay.decoded.emit(path, image)


class ThumbnailLoader(QObject):
    loaded = Signal(str)  # the path whose thumbnail is now in the cache

    def __init__(self, side: int = 48, capacity: int = 3000, parent=None):
        super().__init__(parent)
        self.side = side
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._stack: list[str] = []
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._running = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one core decodes; the other stays with the UI
        self._relay = _Relay(self)
        self._relay.decoded.connect(self._store)

    def get(self, path: str) -> QPixmap | None:
        """The cached thumbnail, or None after queueing its decoding."""
        pixmap = self._cache.get(path)
        if pixmap is not None:
            self._cache.move_to_end(path)
            return pixmap
        self._request(path)
        return None

    def clear(self) -> None:
        with self._lock:
            self._stack.clear()
            self._pending.clear()
        self._cache.clear()

    def wait(self, ms: int = 10000) -> bool:
        return self._pool.waitForDone(ms)

    def _request(self, path: str) -> None:
        with self._lock:
            if path in self._pending:
                return
            self._pending.add(path)
            self._stack.append(path)
            if len(self._stack) > MAX_PENDING:
                for old in self._stack[: len(self._stack) - MAX_PENDING]:
                    self._pending.discard(old)
                del self._stack[: len(self._stack) - MAX_PENDING]
            start = not self._running
            self._running = True
        if start:
            self._pool.start(_Decoder(self))

    def _pop(self) -> str | None:
        with self._lock:
            if not self._stack:
                self._running = False
                return None
            return self._stack.pop()

    @Slot(str, QImage)
    def _store(self, path: str, image: QImage) -> None:
        with self._lock:
            self._pending.discard(path)
        pixmap = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        self._cache[path] = pixmap
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.loaded.emit(path)
