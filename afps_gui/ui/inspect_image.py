"""The Inspect view's pictures, made in a background task: the part with its heat map, and the
strip's thumbnails. The UI thread only turns a finished QImage into a pixmap and paints it.

The map is the one the inspection recorded (``InspectionLog.get``: the patch map and its valid
box), smoothed and upsampled with the same core functions as the heat-map viewer
(``padim.smooth_map``, ``preprocess.map_to_image``) and coloured with ``overlays.colourise`` at
the viewer's colour scale (``view_data.display_levels``). It is computed at the size it is shown
(at most ``MAX_SIDE``), so a large photograph costs the UI thread no scaling.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.errors import AfpsError
from ..core.images import load_image
from ..core.inspection_log import LOG_NAME, NG, OK, InspectionLog, InspectionLogError, path_now
from ..core.overlay import inside_outline
from ..core.padim import smooth_map
from ..core.preprocess import Box, map_to_image
from .inspect_counters import empty_counts
from .overlays import colourise, outline
from .thumbnails import decode_thumbnail
from .view_data import display_levels, model_info

MAX_SIDE = 1024  # the big picture is made at most this big
THUMB_SIDE = 72
OPACITY = 0.55  # of the heat map over the part
CONTOUR_RGB = (0, 229, 255)  # the threshold outline, as in the heat-map viewer
VERDICT_COLOURS = {OK: "#12b76a", NG: "#d92d20", None: "#98a2b3"}


def verdict_colour(verdict: Optional[str]) -> QColor:
    return QColor(VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[None]))


class LogReader:
    """The project's inspection log, opened read-only once in the task thread and reused."""

    def __init__(self, project_folder):
        self.path = Path(project_folder) / LOG_NAME
        self._log: Optional[InspectionLog] = None
        self._lock = threading.Lock()

    def get(self, row_id: int):
        with self._lock:
            if self._log is None:
                self._log = InspectionLog(self.path, readonly=True)
            return self._log.get(row_id)

    def counts(self, *since: str) -> list[tuple[dict, int]]:
        """``InspectionLog.counts_upto`` of each time; zeros for a project not inspected yet."""
        with self._lock:
            if self._log is None and not self.path.exists():
                return [(empty_counts(), 0) for _ in since]
            if self._log is None:
                self._log = InspectionLog(self.path, readonly=True)
            return [self._log.counts_upto(s) for s in since]

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None


@dataclass
class Rendered:
    """What one background task made: the big picture (or why not) and strip thumbnails."""

    post_id: Optional[int] = None
    image: Optional[QImage] = None
    note: str = ""
    thumbs: dict[int, QImage] = field(default_factory=dict)


def render(reader: LogReader, models, post: Optional[dict], thumbs: list[dict], cmap: str):
    """Run in a TaskRunner task: the picture of ``post`` and the thumbnails of ``thumbs``."""
    out = Rendered(post_id=post.get("id") if post else None)
    if post is not None:
        try:
            out.image = picture(reader, models, post, cmap)
        except (AfpsError, InspectionLogError, OSError) as exc:
            out.note = str(exc)
    for item in thumbs:
        out.thumbs[item["id"]] = thumbnail(item)
    return out


def picture(reader: LogReader, models, post: dict, cmap: str) -> QImage:
    pixels = load_image(path_now(post["file"], post.get("stored")), at_least=(MAX_SIDE, MAX_SIDE))
    h, w = pixels.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if scale < 1.0:
        pixels = _scaled(pixels, size)
    row = reader.get(post["id"]) if post.get("box") else None
    if row is not None and row.patch_map is not None and models is not None:
        pixels = _with_map(pixels, row, models.padim_summary(), cmap)
    return _qimage(pixels)


def _with_map(pixels: np.ndarray, row, padim, cmap: str) -> np.ndarray:
    """The part with its map blended in, and the outline of what lies above the threshold."""
    amap = map_to_image(smooth_map(row.patch_map, Box(*row.box), padim.config), pixels.shape[:2])
    levels = display_levels(model_info(padim).levels, amap)
    rgba = colourise(amap, levels, cmap).astype(np.float32)
    alpha = rgba[..., 3:4] / 255.0 * OPACITY
    out = pixels.astype(np.float32) * (1 - alpha) + rgba[..., :3] * alpha
    if row.threshold is not None and row.verdict == NG:
        edge = outline(inside_outline(amap, row.threshold), CONTOUR_RGB, width=2)
        out = np.where(edge[..., 3:4] > 0, edge[..., :3], out)
    return np.clip(out, 0, 255).astype(np.uint8)


def _scaled(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = _qimage(pixels).scaled(
        size[1], size[0], Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )  # fmt: skip
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    stride = image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * image.height())
    return (
        raw.reshape(image.height(), stride)[:, : 3 * image.width()]
        .reshape(image.height(), image.width(), 3)
        .copy()
    )


def _qimage(pixels: np.ndarray) -> QImage:
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail(post: dict) -> QImage:
    """A small picture of the part framed in its verdict's colour (grey: unreadable)."""
    side = THUMB_SIDE
    canvas = QImage(side, side, QImage.Format.Format_RGB32)
    canvas.fill(QColor("#202124"))
    image = QImage()
    if post.get("verdict") is not None:
        image = decode_thumbnail(path_now(post["file"], post.get("stored")), side - 8)
    painter = QPainter(canvas)
    if not image.isNull():
        painter.drawImage((side - image.width()) // 2, (side - image.height()) // 2, image)
    painter.setPen(QPen(verdict_colour(post.get("verdict")), 6))
    painter.drawRect(QRect(3, 3, side - 6, side - 6))
    painter.end()
    return canvas


class ImagePane(QWidget):
    """Paints one picture as large as fits, keeping its aspect; a short text when empty."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 100)
        self._pixmap: Optional[QPixmap] = None
        self._fitted: Optional[QPixmap] = None  # scaled once per size, not per paint
        self._text = "No part inspected yet."

    def show_image(self, image: Optional[QImage], text: str = "") -> None:
        self._pixmap = QPixmap.fromImage(image) if image is not None else None
        self._fitted = None
        self._text = text
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(640, 480)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._fitted = None
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()  # before the backing store flushes (PySide may free it later)

    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), QColor("#202124"))
        if self._pixmap is None:
            painter.setPen(QColor("#c0c4cc"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._text)  # fmt: skip
            return
        if self._fitted is None:
            self._fitted = self._pixmap.scaled(
                self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )  # fmt: skip
        x = (self.width() - self._fitted.width()) // 2
        y = (self.height() - self._fitted.height()) // 2
        painter.drawPixmap(x, y, self._fitted)
