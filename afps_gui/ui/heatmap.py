"""The heat-map viewer: an image with its anomaly map, a live threshold contour and the mask.

The map, the image and the mask are gathered (and the map coloured) in a background task
(``view_data``, ``overlays``); this widget only draws. Moving the threshold slider redraws the
outline from the map already in memory, so trying thresholds never refits or rescores anything.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .. import resources
from ..core.overlay import inside_outline
from ..core.padim import is_anomalous
from .elided_label import ElidedLabel
from .overlays import colourise, outline, shrink_step
from .view_data import ImageView, display_levels, load_image_view

# Antialiased curves cost several times more to paint; on a busy 2-core machine every
# millisecond of painting on the UI thread counts (see benchmarks/bench_gui_responsiveness.py).
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

COLORMAPS = ("inferno", "viridis", "magma", "plasma", "turbo", "CET-L4")
CONTOUR_RGB = (0, 229, 255)  # cyan: the threshold outline, visible on every colour map
MASK_RGB = (124, 252, 0)  # green: the ground-truth mask
SLIDER_STEPS = 1000
BAR_ROWS = 256  # pyqtgraph's ColorBarItem draws its colour table over 0..256 in its view
SCORE_TEMPLATE = "score {:.1f}   normalised {:.2f}   threshold {:.1f}"
WIDEST_SCORES = (8888.8, 8.88, 8888.8)  # the score readout always has room for these


def bar_position(value: float, levels: tuple[float, float]) -> float:
    """Where ``value`` lies on a ColorBarItem: its view runs 0..256 (the colour table's rows)
    whatever the levels, and only its axis shows the values."""
    lo, hi = levels
    return BAR_ROWS * min(max((value - lo) / ((hi - lo) or 1.0), 0.0), 1.0)


def image_plot(background: str = "#202124") -> tuple[pg.GraphicsLayoutWidget, pg.PlotItem]:
    """A plot for showing images: square pixels, y down, no axes, zoom and pan with the mouse."""
    widget = pg.GraphicsLayoutWidget()
    widget.setBackground(background)
    plot = widget.addPlot()
    plot.setAspectLocked(True)
    plot.invertY(True)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.setMenuEnabled(False)
    plot.hideButtons()
    return widget, plot


def with_overlay(view: ImageView, cmap_name: str) -> ImageView:
    """Colour the map in the background task, so the UI thread only shows pixels."""
    if view.amap is None:
        return view
    # A copy: the view itself is shared with the patch inspector (ModelCache.image_view).
    levels = display_levels(view.model.levels, view.amap)
    return replace(view, overlay=colourise(view.amap, levels, cmap_name), levels=levels)


class HeatmapViewer(QWidget):
    threshold_changed = Signal(float)
    save_threshold_requested = Signal(float)

    def __init__(self, tasks, parent=None):
        super().__init__(parent)
        self.tasks = tasks
        self.project = None
        self.models = None
        self.view: Optional[ImageView] = None
        self._waiting: Optional[str] = None  # an image to show once this tab is visible
        self._on_screen = True
        self.threshold: Optional[float] = None
        self._top_score = 0.0
        self.readonly = False
        self._build()

    # --- building -----------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._controls())
        self.canvas, self.plot = image_plot()
        self.image_item = pg.ImageItem()
        self.overlay = pg.ImageItem()
        self.contour = pg.ImageItem()
        self.mask_outline = pg.ImageItem()
        for item in (self.image_item, self.overlay, self.contour, self.mask_outline):
            self.plot.addItem(item)
        self.overlay.setZValue(1)
        self.contour.setZValue(2)
        self.mask_outline.setZValue(3)
        self.colorbar = pg.ColorBarItem(
            values=(0, 1), width=16, label="anomaly score", interactive=False, colorMapMenu=False
        )
        self.canvas.addItem(self.colorbar, 0, 1)
        self.bar_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#00e5ff", width=2))
        self.colorbar.addItem(self.bar_line)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(self._readouts())
        self._set_colormap(COLORMAPS[0])
        self._show_notes(["Open a project and pick an image."])

    def _controls(self) -> QVBoxLayout:
        """Two short rows rather than one long one: the dock may be narrow."""
        row = QVBoxLayout()
        self.cmap_box = QComboBox()
        self.cmap_box.addItems(COLORMAPS)
        self.cmap_box.currentTextChanged.connect(self._set_colormap)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(70)
        self.opacity.setMaximumWidth(110)
        self.opacity.valueChanged.connect(lambda v: self.overlay.setOpacity(v / 100))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, SLIDER_STEPS)
        self.threshold_slider.setMinimumWidth(140)
        self.threshold_slider.valueChanged.connect(self._slider_moved)
        self.threshold_label = QLabel("–")
        self.threshold_label.setObjectName("readout")
        self.threshold_label.setMinimumWidth(60)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the threshold saved with the anomaly model")
        self.reset_button.clicked.connect(self.reset_threshold)
        self.save_button = QPushButton(resources.icon("save"), "Save as project threshold")
        self.save_button.clicked.connect(
            lambda: self.save_threshold_requested.emit(float(self.threshold))
        )
        self.mask_box = QCheckBox("Ground-truth mask")
        self.mask_box.setChecked(True)
        self.mask_box.toggled.connect(lambda on: self.mask_outline.setVisible(on))
        top = QHBoxLayout()
        for widget in (QLabel("Colours"), self.cmap_box, QLabel("Opacity"), self.opacity):
            top.addWidget(widget)
        top.addSpacing(12)
        top.addWidget(self.mask_box)
        top.addStretch(1)
        bottom = QHBoxLayout()
        for widget in (QLabel("Threshold"), self.threshold_slider, self.threshold_label):
            bottom.addWidget(widget, 1 if widget is self.threshold_slider else 0)
        bottom.addWidget(self.reset_button)
        bottom.addWidget(self.save_button)
        row.addLayout(top)
        row.addLayout(bottom)
        return row

    def _readouts(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.name_label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle, min_chars=16)
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score_label = QLabel()
        self.score_label.setObjectName("readout")
        # Room for the widest readout, always: the numbers never get cut off, and their width
        # does not become part of the window's minimum as images change (the name shrinks).
        self.score_label.ensurePolished()
        self.score_label.setMinimumWidth(
            self.score_label.fontMetrics().horizontalAdvance(SCORE_TEMPLATE.format(*WIDEST_SCORES))
        )
        self.decision_label = QLabel()
        self.hover_label = QLabel()
        self.hover_label.setObjectName("readout")
        self.hover_label.setMinimumWidth(230)
        self.note_label = QLabel()
        self.note_label.setObjectName("hint")
        self.note_label.setWordWrap(True)
        row.addWidget(self.name_label)
        row.addWidget(self.note_label, 1)
        row.addWidget(self.score_label)
        row.addWidget(self.decision_label)
        row.addSpacing(12)
        row.addWidget(self.hover_label)
        return row

    # --- public API -----------------------------------------------------------------------

    def set_project(self, project, models) -> None:
        self.project, self.models = project, models
        self.threshold = None
        self.view = None
        self._waiting = None
        self.readonly = bool(project and project.readonly)
        self._top_score = self._highest_score()
        self._clear()
        self._show_notes(["Pick an image in the browser."] if project else ["No project open."])

    def set_readonly(self, readonly: bool) -> None:
        self.readonly = readonly
        self._update_buttons()

    def show_image(self, rel: str) -> None:
        if self.project is None or not rel:
            return
        self.name_label.setText(rel)
        if not self._on_screen:
            # Behind another tab: load when shown. Work only for what the user can see: the
            # decoding and smoothing take CPU (and the GIL) from the UI thread.
            self._waiting = rel
            return
        self._waiting = None
        models = self.models
        cmap = self.cmap_box.currentText()
        self.tasks.submit(
            "heatmap",
            lambda: with_overlay(models.image_view(rel, load_image_view), cmap),
            self._display,
            lambda f: self._show_notes([f.message]),
        )

    def set_on_screen(self, on_screen: bool) -> None:
        """Its dock's tab was brought to the front (True) or put behind another (False)."""
        self._on_screen = on_screen
        if on_screen and self._waiting:
            self.show_image(self._waiting)

    def _highest_score(self) -> float:
        """The project's highest cached score: the slider reaches above every image."""
        scores = self.project.cache.scores().values() if self.project is not None else ()
        return max((v for v in scores if math.isfinite(v)), default=0.0)

    def reload(self) -> None:
        """Show the current image again (after a fit or a scoring run changed its map)."""
        self._top_score = self._highest_score()
        if self.view is not None:
            if self.view.model is None or not self.models.has_padim():
                self.threshold = None
            self.show_image(self.view.rel)

    def reset_threshold(self) -> None:
        if self.view and self.view.model:
            self.set_threshold(self.view.model.threshold)

    def set_threshold(self, value: float) -> None:
        self.threshold = float(value)
        self._sync_slider()
        self._update_threshold()

    # --- drawing ----------------------------------------------------------------------------

    def _display(self, view: ImageView) -> None:
        if self.project is None:
            return
        new_shape = self.view is None or self.view.image.shape != view.image.shape
        self.view = view
        self.image_item.setImage(view.image, autoLevels=False)  # uint8 RGB: shown as it is
        self._draw_map(view)
        self._draw_mask(view)
        if new_shape:
            self.plot.autoRange(padding=0.02)
        self._show_notes(view.notes)
        self._update_threshold()

    def _draw_map(self, view: ImageView) -> None:
        if view.model is not None and (self.threshold is None or math.isnan(self.threshold)):
            self.threshold = view.model.threshold
        if view.amap is None:
            self.overlay.clear()
            self.contour.clear()
            self.overlay.setVisible(False)
            return
        self.overlay.setImage(view.overlay, autoLevels=False)
        self.overlay.setVisible(True)
        self.colorbar.setLevels(view.levels or view.model.levels)
        self._sync_slider()

    def _draw_mask(self, view: ImageView) -> None:
        if view.mask is None:
            self.mask_outline.clear()
            self.mask_box.setEnabled(False)
            return
        self.mask_box.setEnabled(True)
        self._show_outline(self.mask_outline, view.mask, MASK_RGB)
        self.mask_outline.setVisible(self.mask_box.isChecked())

    @staticmethod
    def _show_outline(item: pg.ImageItem, region: np.ndarray, colour) -> None:
        step = shrink_step(region.shape)
        item.setImage(outline(region[::step, ::step], colour), autoLevels=False)
        item.resetTransform()
        item.setTransform(pg.QtGui.QTransform.fromScale(step, step))

    def _slider_range(self) -> tuple[float, float]:
        """The model's and the project's range, the same for every image: with the image's
        own (its score, its map's levels) the handle jumped when the image changed though the
        threshold had not."""
        model = self.view.model
        return 0.0, max(model.levels[1], model.threshold, self._top_score) * 1.1

    def _sync_slider(self) -> None:
        if self.view is None or self.view.model is None or self.threshold is None:
            return
        lo, hi = self._slider_range()
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(SLIDER_STEPS * (self.threshold - lo) / (hi - lo)))
        self.threshold_slider.blockSignals(False)

    def _slider_moved(self, value: int) -> None:
        if self.view is None or self.view.model is None:
            return
        lo, hi = self._slider_range()
        self.threshold = lo + (hi - lo) * value / SLIDER_STEPS
        self._update_threshold()
        self.threshold_changed.emit(self.threshold)

    def _update_threshold(self) -> None:
        view, thr = self.view, self.threshold
        have = view is not None and view.model is not None and thr is not None
        self.threshold_label.setText(f"{thr:.1f}" if have else "–")
        if have:
            self.bar_line.setPos(bar_position(thr, self.colorbar.levels()))
            if view.amap is not None:
                self._show_outline(self.contour, inside_outline(view.amap, thr), CONTOUR_RGB)
        self.contour.setVisible(bool(have and view.amap is not None))
        self.bar_line.setVisible(have)
        self._update_decision()
        self._update_buttons()

    def _update_decision(self) -> None:
        view = self.view
        if view is None or view.score is None or self.threshold is None:
            self.score_label.setText("")
            self.decision_label.setText("")
            return
        self.score_label.setText(SCORE_TEMPLATE.format(view.score, view.normalised, self.threshold))
        anomalous = is_anomalous(view.score, self.threshold)
        self.decision_label.setText("ANOMALOUS" if anomalous else "normal")
        self.decision_label.setObjectName("decisionAnomalous" if anomalous else "decisionNormal")
        self.decision_label.style().unpolish(self.decision_label)
        self.decision_label.style().polish(self.decision_label)

    def _update_buttons(self) -> None:
        model = self.view.model if self.view else None
        changed = bool(model and self.threshold is not None and self.threshold != model.threshold)
        self.reset_button.setEnabled(changed)
        self.save_button.setEnabled(changed and not self.readonly)
        self.threshold_slider.setEnabled(model is not None)

    def _hover(self, scene_pos) -> None:
        view = self.view
        if view is None or view.geometry is None:
            return
        point = self.plot.vb.mapSceneToView(scene_pos)
        cell = view.geometry.cell_at(point.x(), point.y())
        if cell is None:
            self.hover_label.setText("")
            return
        i, j = cell
        self.hover_label.setText(f"patch ({i}, {j})  score {view.patch_map[i, j]:.1f}")

    def _set_colormap(self, name: str) -> None:
        self.colorbar.setColorMap(pg.colormap.get(name))
        view = self.view
        if view is not None and view.amap is not None:
            self.overlay.setImage(with_overlay(view, name).overlay, autoLevels=False)

    def _show_notes(self, notes: list[str]) -> None:
        self.note_label.setText("  ·  ".join(notes))

    def _clear(self) -> None:
        self.image_item.clear()
        self.overlay.clear()
        self.contour.clear()
        self.mask_outline.clear()
        self.name_label.setText("")
        self.score_label.setText("")
        self.decision_label.setText("")
        self.hover_label.setText("")
        self.colorbar.setLevels((0, 1))  # no other project's (or image's) range stays on the bar
        self._update_threshold()
