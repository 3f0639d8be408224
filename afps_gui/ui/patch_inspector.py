"""The patch-selection inspector: which patches feed the classifier, like the paper's Fig. 3.

Left: the patches the chosen strategy selects (or, once a classifier exists, the patches it used
with each token's attention as the dot's size and colour). Right: random selection, the paper's
baseline, with the same N and seed. Below: the anomaly scores of the selected patches against
those of all patches. Selection is core.selection.select_patches on the cached patch map; the
classifier's view comes from a background task.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .. import resources
from ..core.errors import AfpsError
from ..core.selection import STRATEGIES, select_patches
from .heatmap import image_plot
from .view_data import ClassifierView, ImageView, classify_image, load_image_view

STRATEGY_COLOURS = {"afps": "#ff3b30", "random": "#ffd60a", "top": "#ff9f0a"}
# The linear heads pool the top patches: draw their choice like top-N.
STRATEGY_COLOURS.update(pooled=STRATEGY_COLOURS["top"], region=STRATEGY_COLOURS["top"])
GRID_PEN = pg.mkPen((255, 255, 255, 45), width=1)
ATTENTION_MAP = pg.colormap.get("plasma")


class SelectionPane(QWidget):
    """One image with the patch grid and a set of selected patches drawn as dots."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(title)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title)
        self.canvas, self.plot = image_plot()
        self.image_item = pg.ImageItem()
        self.grid_lines = pg.PlotCurveItem(pen=GRID_PEN, connect="pairs")
        self.dots = pg.ScatterPlotItem(pxMode=True)
        self.centre = pg.ScatterPlotItem(pxMode=True, symbol="star", size=18)
        for z, item in enumerate((self.image_item, self.grid_lines, self.dots, self.centre)):
            item.setZValue(z)
            self.plot.addItem(item)
        layout.addWidget(self.canvas, 1)
        self._shape = None

    def set_image(self, view: ImageView) -> None:
        self.image_item.setImage(view.image, autoLevels=False)  # uint8 RGB as it is
        xs, ys = view.geometry.line_edges() if view.geometry else ([], [])
        h, w = view.image.shape[:2]
        vx = np.repeat(xs, 2)
        vy = np.tile([0, h], len(xs))
        hx = np.tile([0, w], len(ys))
        hy = np.repeat(ys, 2)
        self.grid_lines.setData(np.concatenate([vx, hx]), np.concatenate([vy, hy]))
        if self._shape != view.image.shape:
            self._shape = view.image.shape
            self.plot.autoRange(padding=0.02)

    def set_points(self, view: ImageView, positions, colour: str, sizes=None, brushes=None):
        x, y = view.geometry.centres(positions)
        size = sizes if sizes is not None else _dot_size(view)
        brush = brushes if brushes is not None else pg.mkBrush(colour)
        self.dots.setData(x=x, y=y, size=size, brush=brush, pen=pg.mkPen("k", width=0.8))

    def set_centre(self, view: Optional[ImageView], cell=None) -> None:
        if view is None or cell is None:
            self.centre.clear()
            return
        x, y = view.geometry.centres(np.array([cell]))
        self.centre.setData(x=x, y=y, brush=pg.mkBrush("#00e5ff"), pen=pg.mkPen("k"))

    def clear(self) -> None:
        for item in (self.image_item, self.grid_lines, self.dots, self.centre):
            item.clear()
        self._shape = None


def _dot_size(view: ImageView) -> float:
    """Dots a bit smaller than a cell at the current zoom would be ideal; a fixed 7 px reads
    well from 16 x 16 to 64 x 64 grids."""
    return 7.0


class PatchInspector(QWidget):
    def __init__(self, tasks, parent=None):
        super().__init__(parent)
        self.tasks = tasks
        self.project = None
        self.models = None
        self.rel: Optional[str] = None
        self.view: Optional[ImageView] = None
        self.clf_view: Optional[ClassifierView] = None
        self._shown_rel: Optional[str] = None
        self._on_screen = True  # the window says when its tab is behind another
        self._build()

    # --- building -----------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._controls())
        panes = QSplitter(Qt.Orientation.Horizontal)
        self.left = SelectionPane("Selected patches")
        self.right = SelectionPane("Random (baseline)")
        panes.addWidget(self.left)
        panes.addWidget(self.right)
        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(panes)
        lower.addWidget(self._histogram())
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 1)
        layout.addWidget(lower, 1)
        self.prediction_label = QLabel()
        self.prediction_label.setWordWrap(True)
        self.note_label = QLabel("Open a project and pick an image.")
        self.note_label.setObjectName("hint")
        layout.addWidget(self.prediction_label)
        layout.addWidget(self.note_label)

    def _controls(self) -> QVBoxLayout:
        row = QHBoxLayout()
        self.strategy_box = QComboBox()
        self.strategy_box.addItems(STRATEGIES)
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 10000)
        self.n_spin.setValue(100)
        self.sd_spin = QDoubleSpinBox()
        self.sd_spin.setRange(0.01, 1.0)
        self.sd_spin.setSingleStep(0.05)
        self.sd_spin.setValue(0.15)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        self.resample_button = QPushButton(resources.icon("resample"), "Re-sample")
        self.resample_button.setToolTip("Draw again with the next seed")
        self.resample_button.clicked.connect(
            lambda: self.seed_spin.setValue(self.seed_spin.value() + 1)
        )
        self.compare_box = QCheckBox("Random side by side")
        self.compare_box.setChecked(True)
        self.attention_box = QCheckBox("Classifier's patches and attention")
        self.attention_box.setChecked(True)
        self.attention_box.setToolTip(
            "Show the patches the trained classifier used for its prediction; a bigger, brighter "
            "dot got more attention."
        )
        for w in (self.strategy_box, self.n_spin, self.sd_spin, self.seed_spin):
            signal = w.currentTextChanged if isinstance(w, QComboBox) else w.valueChanged
            signal.connect(self._redraw)
        self.compare_box.toggled.connect(self._redraw)
        self.attention_box.toggled.connect(self._redraw)
        for text, w in (
            ("Strategy", self.strategy_box),
            ("N", self.n_spin),
            ("sd", self.sd_spin),
            ("Seed", self.seed_spin),
        ):
            row.addWidget(QLabel(text))
            row.addWidget(w)
        row.addWidget(self.resample_button)
        row.addStretch(1)
        options = QHBoxLayout()
        options.addWidget(self.compare_box)
        options.addWidget(self.attention_box)
        options.addStretch(1)
        rows = QVBoxLayout()
        rows.addLayout(row)
        rows.addLayout(options)
        return rows

    def _histogram(self) -> pg.PlotWidget:
        self.hist = pg.PlotWidget(background="w")
        self.hist.setMinimumHeight(130)
        self.hist.setLabel("bottom", "patch anomaly score")
        self.hist.setLabel("left", "share of patches")
        self.hist.addLegend(offset=(-10, 5))
        self.hist.setMouseEnabled(x=False, y=False)
        for axis in ("left", "bottom"):
            self.hist.getAxis(axis).enableAutoSIPrefix(False)
        self.hist_all = self.hist.plot(
            [0, 1], [0], stepMode="center", fillLevel=0, brush=(120, 120, 120, 90),
            pen=pg.mkPen("#666"), name="all patches",
        )  # fmt: skip
        self.hist_sel = self.hist.plot(
            [0, 1], [0], stepMode="center", pen=pg.mkPen("#d62728", width=2), name="selected"
        )
        return self.hist

    # --- public API -----------------------------------------------------------------------

    def set_project(self, project, models) -> None:
        self.project, self.models = project, models
        self.rel = self.view = self.clf_view = self._shown_rel = None
        self.left.clear()
        self.right.clear()
        self.prediction_label.setText("")
        if project is not None:
            c = project.settings.classifier
            self.strategy_box.setCurrentText(c.strategy)
            self.n_spin.setValue(c.n)
            self.sd_spin.setValue(c.sd)
            self.seed_spin.setValue(c.seed)
        self.note_label.setText("Pick an image in the browser." if project else "No project open.")

    def show_image(self, rel: str) -> None:
        self.rel = rel
        if self._on_screen:
            self._load()

    def reload(self) -> None:
        self._shown_rel = None
        if self.rel and self._on_screen:
            self._load()

    def set_on_screen(self, on_screen: bool) -> None:
        """Its dock's tab was brought to the front (True) or put behind another (False).
        Work only for what the user can see: loading an image and classifying it take CPU (and
        the GIL) from the UI thread."""
        self._on_screen = on_screen
        if on_screen and self.rel and self.rel != self._shown_rel:
            self._load()

    # --- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        if self.project is None or not self.rel:
            return
        models, rel = self.models, self.rel
        self._shown_rel = rel
        self.tasks.submit(
            "inspector",
            lambda: models.image_view(rel, load_image_view),
            self._loaded,
            lambda f: self.note_label.setText(f.message),
        )

    def _loaded(self, view: ImageView) -> None:
        if self.project is None or view.rel != self.rel:
            return
        self.view, self.clf_view = view, None
        self.prediction_label.setText("")
        self._redraw()
        if view.geometry is not None and self.models.has_classifier():
            project, models, rel = self.project, self.models, view.rel
            self.prediction_label.setText("Classifying…")
            self.tasks.submit(
                "inspector-classifier",
                lambda: classify_image(project, models, rel),
                self._classified,
                lambda f: self.prediction_label.setText(f"No prediction: {f.message}"),
            )

    def _classified(self, clf_view: Optional[ClassifierView]) -> None:
        if clf_view is None or clf_view.rel != self.rel:
            self.prediction_label.setText("")
            return
        self.clf_view = clf_view
        p = clf_view.prediction
        others = ", ".join(
            f"{c} {100 * q:.0f} %"
            for c, q in zip(clf_view.classes, p.probabilities)
            if c != p.label
        )
        self.prediction_label.setText(
            f"<b>Classifier: {p.label} ({100 * p.confidence:.0f} %)</b>"
            + (f"  — {others}" if others else "")
            + f"  · N = {clf_view.n}, {clf_view.strategy}"
            + (f", sd {clf_view.sd:.2f}" if clf_view.strategy == "afps" else "")
        )
        self._redraw()

    # --- drawing ----------------------------------------------------------------------------

    def _redraw(self, *args) -> None:
        view = self.view
        self.sd_spin.setEnabled(self.strategy_box.currentText() == "afps")
        self.right.setVisible(self.compare_box.isChecked())
        if view is None:
            return
        self.left.set_image(view)
        self.right.set_image(view)
        if view.geometry is None:
            for pane in (self.left, self.right):
                pane.dots.clear()
                pane.set_centre(None)
            self.note_label.setText("  ·  ".join(view.notes))
            return
        self.note_label.setText(self._grid_note(view))
        positions = self._draw_left(view)
        self._draw_right(view)
        self._draw_histogram(view, positions)

    def _grid_note(self, view: ImageView) -> str:
        gh, gw = view.geometry.grid
        return (
            f"{view.rel}: {gh} x {gw} patch grid; the star marks the highest-scoring patch "
            "(AFPS draws around it)."
        )

    def _select(self, view: ImageView, strategy: str) -> Optional[np.ndarray]:
        try:
            return select_patches(
                view.patch_map,
                self.n_spin.value(),
                strategy,
                self.sd_spin.value(),
                self.seed_spin.value(),
                valid=view.geometry.valid_cells(),
            )
        except AfpsError as exc:
            self.note_label.setText(str(exc))
            return None

    def _draw_left(self, view: ImageView) -> Optional[np.ndarray]:
        argmax = np.unravel_index(int(np.argmax(_valid_map(view))), view.patch_map.shape)
        self.left.set_centre(view, argmax)
        if self.clf_view is not None and self.attention_box.isChecked():
            return self._draw_attention(view)
        strategy = self.strategy_box.currentText()
        positions = self._select(view, strategy)
        self.left.title.setText(f"{strategy}: {self.n_spin.value()} patches")
        if positions is None:
            self.left.dots.clear()
        else:
            self.left.set_points(view, positions, STRATEGY_COLOURS[strategy])
        return positions

    def _draw_attention(self, view: ImageView) -> np.ndarray:
        p = self.clf_view.prediction
        att = np.asarray(p.attention, dtype=float)
        rel = att / att.max() if att.max() > 0 else att
        sizes = 3 + 9 * np.sqrt(rel)
        brushes = [pg.mkBrush(ATTENTION_MAP.map(float(v), mode="qcolor")) for v in rel]
        self.left.set_points(view, p.positions, "", sizes=sizes, brushes=brushes)
        self.left.title.setText(
            f"Classifier's {len(p.positions)} patches (size and colour = attention)"
        )
        return p.positions

    def _draw_right(self, view: ImageView) -> None:
        if self._draw_close_look():
            return
        if not self.compare_box.isChecked():
            return
        positions = self._select(view, "random")
        self.right.title.setText(f"random (baseline): {self.n_spin.value()} patches")
        if positions is None:
            self.right.dots.clear()
        else:
            self.right.set_points(view, positions, STRATEGY_COLOURS["random"])

    def _draw_close_look(self) -> bool:
        """Where the classifier took a close look at the defect, the right pane shows that
        window at full resolution with the patches it pooled there."""
        cv = self.clf_view
        if cv is None or cv.look is None:
            return False
        self.right.setVisible(True)
        self.right.set_image(cv.look)
        self.right.set_points(cv.look, cv.look_cells, STRATEGY_COLOURS["top"])
        self.right.set_centre(None)
        y0, y1, x0, x1 = cv.window
        self.right.title.setText(
            f"Close look: x {x0}–{x1}, y {y0}–{y1} of the original image; "
            f"the {len(cv.look_cells)} patches pooled there"
        )
        return True

    def _draw_histogram(self, view: ImageView, positions: Optional[np.ndarray]) -> None:
        scores = _valid_map(view)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            return
        bins = np.histogram_bin_edges(finite, bins=40)
        all_counts, _ = np.histogram(finite, bins=bins)
        self.hist_all.setData(bins, all_counts / max(1, finite.size))
        if positions is None or len(positions) == 0:
            self.hist_sel.setData(bins, np.zeros(len(bins) - 1))
            return
        sel = view.patch_map[positions[:, 0], positions[:, 1]]
        sel_counts, _ = np.histogram(sel, bins=bins)
        self.hist_sel.setData(bins, sel_counts / max(1, len(sel)))


def _valid_map(view: ImageView) -> np.ndarray:
    """The patch map with padding cells (aspect-preserving input) set to -inf."""
    valid = view.geometry.valid_cells()
    if valid is None:
        return view.patch_map
    return np.where(valid, view.patch_map, -np.inf)
