"""A small line chart painted with QPainter: the training panel's live loss and accuracy.

These charts show a few dozen points and need no zoom or pan. pyqtgraph drew them well but
replays a recorded picture of every axis's text on each paint: ~15 ms each time the training tab
came forward, two to three times that while a job competes for the two cores, which alone froze
the window past 50 ms at the Train click. Painted here, a full repaint of both charts takes
~5 ms offscreen, and raising the training tab ~7 ms (was 16-21).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PAD = 6.0
MARKER = 4.0


def nice_ticks(lo: float, hi: float, max_ticks: int = 6, integer: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) from lo to hi, at most max_ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, max_ticks)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    count = int(math.floor((hi - first) / step + 1e-9)) + 1
    return [round(first + i * step, 12) for i in range(count)]


def tick_text(value: float, step: float) -> str:
    """As many decimals as the tick step needs, no more."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{min(decimals, 6)}f}"


@dataclass
class Series:
    name: str
    color: QColor
    square: bool = False  # marker: square, else round
    points: list[tuple[float, float]] = field(default_factory=list)


class LineChart(QWidget):
    """Lines with markers over a grid, a title, axis labels and a legend when it helps."""

    def __init__(self, title: str, x_label: str, y_label: str, parent=None):
        super().__init__(parent)
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.series: list[Series] = []
        self.x_range: tuple[float, float] | None = None
        self.y_range: tuple[float, float] | None = None
        self.integer_x = False
        self.empty_text = ""
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def add_series(self, name: str, color: str, square: bool = False) -> Series:
        series = Series(name, QColor(color), square)
        self.series.append(series)
        return series

    def set_points(self, series: Series, xs, ys) -> None:
        series.points = [(float(x), float(y)) for x, y in zip(xs, ys)]
        self.update()

    def set_ranges(self, x=None, y=None) -> None:
        """Fix the x and/or y range (None leaves that axis as it is; clear() lets both fit the
        data again)."""
        self.x_range = x if x is not None else self.x_range
        self.y_range = y if y is not None else self.y_range
        self.update()

    def clear(self) -> None:
        for series in self.series:
            series.points = []
        self.x_range = self.y_range = None
        self.update()

    # --- painting ---------------------------------------------------------------------------

    def _ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        points = [p for s in self.series for p in s.points]
        xs, ys = [p[0] for p in points] or [0.0, 1.0], [p[1] for p in points] or [0.0, 1.0]
        x = self.x_range or (min(xs), max(xs))
        y = self.y_range or (min(ys), max(ys))
        # A flat range (one point, constant values) would divide by zero.
        x = x if x[1] > x[0] else (x[0] - 0.5, x[0] + 0.5)
        y = y if y[1] > y[0] else (y[0] - 0.5, y[0] + 0.5)
        return x, y

    def _layout(self):
        """Ranges, y ticks with their texts, and the plot rectangle: worked out once a paint."""
        (x0, x1), (y0, y1) = self._ranges()
        y_ticks = nice_ticks(y0, y1, 6)
        step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
        y_texts = [tick_text(v, step) for v in y_ticks]
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        tick_width = max((metrics.horizontalAdvance(t) for t in y_texts), default=0.0)
        plot = QRectF(self.rect()).adjusted(
            PAD + line + tick_width + PAD, PAD + 1.4 * line + PAD, -PAD - 4, -(PAD + 2 * line + PAD)
        )
        return (x0, x1), (y0, y1), y_ticks, y_texts, plot

    def plot_rect(self) -> QRectF:
        """Where the data go: inside the title, the axis labels and the y tick texts."""
        return self._layout()[-1]

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = QFontMetricsF(self.font())
        line = metrics.height()
        (x0, x1), (y0, y1), y_ticks, y_texts, plot = self._layout()
        x_ticks = nice_ticks(x0, x1, 8, self.integer_x)
        if plot.width() < 20 or plot.height() < 20:
            return

        def to_screen(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())  # fmt: skip

        self._paint_title(painter, plot, text, line)
        self._paint_grid(painter, plot, text, x_ticks, y_ticks, y_texts, to_screen, line)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setClipRect(plot.adjusted(-MARKER, -MARKER, MARKER, MARKER))
        for series in self.series:
            self._paint_series(painter, series, to_screen)
        painter.setClipping(False)
        self._paint_legend(painter, plot, text, metrics)
        if self.empty_text and not any(s.points for s in self.series):
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, self.empty_text)

    def _paint_title(self, painter: QPainter, plot: QRectF, text: QColor, line: float) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        painter.drawText(QRectF(0, PAD, self.width(), 1.4 * line), Qt.AlignmentFlag.AlignCenter,
                         self.title)  # fmt: skip
        painter.setFont(self.font())
        below = QRectF(plot.left(), plot.bottom() + PAD + line, plot.width(), line)
        painter.drawText(below, Qt.AlignmentFlag.AlignCenter, self.x_label)
        painter.save()
        painter.translate(PAD, plot.center().y())
        painter.rotate(-90)
        painter.drawText(QRectF(-plot.height() / 2, 0, plot.height(), line),
                         Qt.AlignmentFlag.AlignCenter, self.y_label)  # fmt: skip
        painter.restore()

    def _paint_grid(self, painter, plot, text, x_ticks, y_ticks, y_texts, to_screen, line):
        grid = QColor(text)
        grid.setAlphaF(0.15)
        x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
        for value in x_ticks:
            px = to_screen(value, 0).x()
            painter.setPen(grid)
            painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()))
            painter.setPen(text)
            painter.drawText(QRectF(px - 40, plot.bottom() + 2, 80, line),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                             tick_text(value, x_step))  # fmt: skip
        for value, label in zip(y_ticks, y_texts):
            py = to_screen(0, value).y()
            painter.setPen(grid)
            painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py))
            painter.setPen(text)
            painter.drawText(QRectF(0, py - line / 2, plot.left() - 4, line),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)  # fmt: skip
        painter.setPen(text)
        painter.drawRect(plot)

    @staticmethod
    def _paint_series(painter: QPainter, series: Series, to_screen) -> None:
        points = [to_screen(x, y) for x, y in series.points]
        painter.setPen(QPen(series.color, 2))
        painter.drawPolyline(points)
        painter.setBrush(series.color)
        painter.setPen(Qt.PenStyle.NoPen)
        for p in points:
            box = QRectF(p.x() - MARKER / 2, p.y() - MARKER / 2, MARKER, MARKER)
            painter.drawRect(box) if series.square else painter.drawEllipse(box)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_legend(self, painter, plot: QRectF, text: QColor, metrics: QFontMetricsF) -> None:
        named = [s for s in self.series if s.name]
        if len(named) < 2:
            return
        line = metrics.height()
        width = max(metrics.horizontalAdvance(s.name) for s in named) + 30
        box = QRectF(plot.right() - width - 8, plot.bottom() - len(named) * line - 12,
                     width, len(named) * line + 4)  # fmt: skip
        background = self.palette().color(QPalette.ColorRole.Base)
        background.setAlphaF(0.85)
        painter.fillRect(box, background)
        for i, series in enumerate(named):
            y = box.top() + 2 + (i + 0.5) * line
            painter.setPen(QPen(series.color, 2))
            painter.drawLine(QPointF(box.left() + 4, y), QPointF(box.left() + 22, y))
            painter.setPen(text)
            painter.drawText(QRectF(box.left() + 26, y - line / 2, width - 26, line),
                             Qt.AlignmentFlag.AlignVCenter, series.name)  # fmt: skip
