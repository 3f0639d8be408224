"""The image browser: a sortable, filterable table of every image with its thumbnail."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .browser_model import (
    ANY,
    COL_IMAGE,
    COL_SCORE,
    COLUMN_SAMPLES,
    COLUMNS,
    LOW_CONFIDENCE,
    NO_PREDICTION,
    REL_ROLE,
    ImageFilter,
    ImageTableModel,
    label_choices,
)
from .thumbnails import ThumbnailCache

SPLITS = (ANY, "fit", "calibrate", "test", "train", "")
IMAGE_COLUMN_ROOM = 170  # the thumbnail and a dozen characters of the name
IMAGE_COLUMN_MIN = 110  # below this the name is gone: scroll sideways instead


class BrowserWidget(QWidget):
    current_changed = Signal(str)  # rel of the current image

    def __init__(self, parent=None, thumb_side: int = 48):
        super().__init__(parent)
        self.project = None
        self.thumbnails = ThumbnailCache(thumb_side, newest_first=True, parent=self)
        self.model = ImageTableModel(self.thumbnails, self)
        self.proxy = ImageFilter(self)
        self.proxy.setSourceModel(self.model)
        self._build(thumb_side)

    # --- building -----------------------------------------------------------------------

    def _build(self, thumb_side: int) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._filter_bar())
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setIconSize(self.thumbnails_size(thumb_side))
        self.view.verticalHeader().setDefaultSectionSize(thumb_side + 6)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().hide()
        header = self.view.horizontalHeader()
        # The short columns are as wide as their title and typical values need (measured in
        # the font, not fixed pixels: those cut "Confidence" and pushed "Reviewed" off the
        # side at 1600 px); the image's name takes the rest, elided on the left, but never
        # less than its thumbnail and a few characters: a narrow dock scrolls sideways instead.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.view.viewport().installEventFilter(self)
        for col in range(len(COLUMNS)):
            if col != COL_IMAGE:
                self.view.setColumnWidth(col, self._column_width(col))
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.view.selectionModel().currentRowChanged.connect(self._row_changed)
        layout.addWidget(self.view, 1)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.view.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_image_column()
        return super().eventFilter(watched, event)

    def _fit_image_column(self) -> None:
        header = self.view.horizontalHeader()
        others = sum(header.sectionSize(c) for c in range(len(COLUMNS)) if c != COL_IMAGE)
        width = max(IMAGE_COLUMN_MIN, self.view.viewport().width() - others)
        if header.sectionSize(COL_IMAGE) != width:
            header.resizeSection(COL_IMAGE, width)

    def _column_width(self, col: int) -> int:
        fm = self.view.fontMetrics()
        title = self.view.horizontalHeader().fontMetrics().horizontalAdvance(COLUMNS[col]) + 22
        return max(title, fm.horizontalAdvance(COLUMN_SAMPLES[col]) + 14)

    def preferred_width(self) -> int:
        """Wide enough for every column and a readable image name: the window's default
        layout gives the browser this much where it can."""
        short = sum(self._column_width(c) for c in range(len(COLUMNS)) if c != COL_IMAGE)
        return short + IMAGE_COLUMN_ROOM + self.view.verticalScrollBar().sizeHint().width() + 16

    @staticmethod
    def thumbnails_size(side: int):
        from PySide6.QtCore import QSize

        return QSize(side, side)

    def _filter_bar(self) -> QGridLayout:
        grid = QGridLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by name…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda t: self.proxy.set_filter(text=t.strip()))
        self.split_box = self._combo(SPLITS, "split")
        self.label_box = self._combo([ANY], "label")
        self.pred_box = self._combo([ANY], "prediction")
        self.disagree_box = QCheckBox("Prediction ≠ label")
        self.disagree_box.toggled.connect(lambda on: self.proxy.set_filter(disagree_only=on))
        self.lowconf_box = QCheckBox(f"Confidence < {100 * LOW_CONFIDENCE:.0f} %")
        self.lowconf_box.toggled.connect(lambda on: self.proxy.set_filter(low_confidence_only=on))
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        grid.addWidget(self.search, 0, 0, 1, 4)
        grid.addWidget(QLabel("Split"), 1, 0)
        grid.addWidget(self.split_box, 1, 1)
        grid.addWidget(QLabel("Label"), 1, 2)
        grid.addWidget(self.label_box, 1, 3)
        grid.addWidget(QLabel("Predicted"), 2, 0)
        grid.addWidget(self.pred_box, 2, 1)
        grid.addWidget(self.disagree_box, 2, 2, 1, 2)
        grid.addWidget(self.lowconf_box, 3, 0, 1, 2)
        grid.addWidget(self.count_label, 3, 2, 1, 2, Qt.AlignmentFlag.AlignRight)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset):
            signal.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        return grid

    def _combo(self, items, key: str) -> QComboBox:
        box = QComboBox()
        box.addItems([i if i else "(none)" for i in items])
        box.setMinimumContentsLength(9)

        def changed(text: str) -> None:
            value = "" if text == "(none)" and key == "split" else text
            self.proxy.set_filter(**{key: value})
            self._update_count()

        box.currentTextChanged.connect(changed)
        return box

    # --- public API -----------------------------------------------------------------------

    def set_project(self, project) -> None:
        self.project = project
        self.thumbnails.clear()
        self.model.set_project(project)
        self._reset_choices()
        self.proxy.sort(COL_SCORE, Qt.SortOrder.DescendingOrder)
        self.view.horizontalHeader().setSortIndicator(COL_SCORE, Qt.SortOrder.DescendingOrder)
        self._update_count()
        if self.proxy.rowCount():
            self.view.setCurrentIndex(self.proxy.index(0, 0))

    def refresh(self, rels: Optional[list[str]] = None) -> None:
        """Re-read rows from the project (all when None) without moving the selection."""
        if self.project is None:
            return
        self.model.refresh(rels)
        if rels is None:
            self._reset_choices()
        self.proxy.refilter()
        if rels is None:
            # New scores after a job: re-sort once (the selection stays on its image).
            self.model.sort(self.model.sort_column, self.model.sort_order)
        self._update_count()

    def current_rel(self) -> Optional[str]:
        idx = self.view.currentIndex()
        return idx.data(REL_ROLE) if idx.isValid() else None

    def select(self, rel: str) -> bool:
        """Make ``rel`` the current row (clearing filters that hide it)."""
        row = self.model.row_of(rel)
        if row is None:
            return False
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        if not idx.isValid():
            self.clear_filters()
            idx = self.proxy.mapFromSource(self.model.index(row, 0))
        self.view.selectionModel().setCurrentIndex(
            idx,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.view.scrollTo(idx)
        return True

    def clear_filters(self) -> None:
        self.search.clear()
        for box in (self.split_box, self.label_box, self.pred_box):
            box.setCurrentIndex(0)
        self.disagree_box.setChecked(False)
        self.lowconf_box.setChecked(False)

    def visible_rels(self) -> list[str]:
        return [self.proxy.index(r, 0).data(REL_ROLE) for r in range(self.proxy.rowCount())]

    # --- internals --------------------------------------------------------------------------

    def _reset_choices(self) -> None:
        labels = label_choices(self.project)
        preds = (
            [ANY]
            + sorted({r.prediction for r in self.model.rows if r.prediction})
            + [NO_PREDICTION]
        )
        for box, items in ((self.label_box, labels), (self.pred_box, preds)):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(items)
            box.setCurrentText(current if current in items else ANY)
            box.blockSignals(False)
        self.proxy.set_filter(
            label=self.label_box.currentText(), prediction=self.pred_box.currentText()
        )

    def _update_count(self, *args) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        self.count_label.setText(
            f"{shown} of {total} images" if shown != total else f"{total} images"
        )

    def _row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.isValid():
            self.current_changed.emit(current.data(REL_ROLE))
