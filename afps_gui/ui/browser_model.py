"""The browser's table model and its filter: one row per image of the project.

Rows hold plain values gathered from the project in one pass (labels, predictions, scores,
reviewed flags, splits), so that painting and filtering thousands of rows never touches the
database. ``refresh(rels)`` re-reads only the rows that changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from ..core.errors import AfpsError
from ..core.review_queue import DEFAULT_LOW_CONFIDENCE
from ..core.taxonomy import NORMAL

COLUMNS = ("Image", "Split", "Label", "Prediction", "Conf.", "Score", "✓")
# Short titles keep the table within a side dock; the full meaning is in the header's tooltip.
COLUMN_TIPS = (
    "The image's file, relative to the dataset",
    "train or test (defect images the classifier was tested on)",
    "The image's label: a person's, else the dataset's",
    "The classifier's prediction (red: it disagrees with the label)",
    "Confidence of the prediction",
    "Anomaly score (above the threshold: anomalous)",
    "Reviewed by a person",
)
# What each short column must show in full (besides its title), to size it.
COLUMN_SAMPLES = ("", "calibrate", "Scratch", "Scratch", "100 %", "9999.9", "✓")
COL_IMAGE, COL_SPLIT, COL_LABEL, COL_PRED, COL_CONF, COL_SCORE, COL_REVIEWED = range(7)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
REL_ROLE = Qt.ItemDataRole.UserRole + 2
LOW_CONFIDENCE = DEFAULT_LOW_CONFIDENCE  # the review queue's: one threshold for "unsure"
ANY = "(any)"
UNLABELLED = "(unlabelled)"
NO_PREDICTION = "(none)"


@dataclass
class Row:
    rel: str
    path: str
    split: str = ""
    label: Optional[str] = None
    prediction: Optional[str] = None
    confidence: float = math.nan
    score: float = math.nan
    reviewed: bool = False

    @property
    def disagrees(self) -> bool:
        return bool(self.label and self.prediction and self.label != self.prediction)


def project_splits(project) -> dict[str, str]:
    """rel -> which part of the method uses the image (fit, calibrate, test, train)."""
    out: dict[str, str] = {}
    try:
        split = project.normal_split()
    except AfpsError:
        split = None
    if split is not None:
        for name, samples in (("fit", split.fit), ("calibrate", split.val), ("test", split.test)):
            out.update(dict.fromkeys((s.rel for s in samples), name))
    try:
        train, test = project.classifier_split()
    except AfpsError:
        train, test = [], []
    out.update(dict.fromkeys((s.rel for s in train), "train"))
    out.update(dict.fromkeys((s.rel for s in test), "test"))
    return out


class ImageTableModel(QAbstractTableModel):
    def __init__(self, thumbnails, parent=None):
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.rows: list[Row] = []
        self._index: dict[str, int] = {}
        self._by_path: dict[str, int] = {}
        self._project = None
        self.colours: dict[str, QColor] = {}
        self.sort_column = -1
        self.sort_order = Qt.SortOrder.AscendingOrder
        thumbnails.ready.connect(self._thumbnail_ready)

    # --- filling ------------------------------------------------------------------------

    def set_project(self, project) -> None:
        self.beginResetModel()
        self._project = project
        self.rows = [Row(s.rel, str(s.path)) for s in project.dataset.samples] if project else []
        self._reindex()
        if project is not None:
            self._fill(self.rows, full=True)
        self.endResetModel()

    def _reindex(self) -> None:
        self._index = {r.rel: i for i, r in enumerate(self.rows)}
        self._by_path = {r.path: i for i, r in enumerate(self.rows)}

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows themselves with one Python key per row. (A proxy's own sort asks
        data() for both sides of every comparison: n log n calls into Python, 30 ms for a few
        hundred rows on the UI thread, which stalled the window after every job.)"""
        self.sort_column, self.sort_order = column, order
        if column < 0:
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        where = [(self.rows[i.row()].rel, i.column()) for i in old]
        self.rows.sort(
            key=lambda row: self._sort_key(row, column),
            reverse=order == Qt.SortOrder.DescendingOrder,
        )
        self._reindex()
        self.changePersistentIndexList(old, [self.index(self._index[r], c) for r, c in where])
        self.layoutChanged.emit()

    def refresh(self, rels: Optional[list[str]] = None) -> None:
        """Re-read the given rows (all when None) from the project and repaint them."""
        if self._project is None or not self.rows:
            return
        if rels is None:
            self._fill(self.rows, full=True)
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, 6))
            return
        rows = [self.rows[self._index[r]] for r in rels if r in self._index]
        self._fill(rows, full=False)
        for row in rows:
            i = self._index[row.rel]
            self.dataChanged.emit(self.index(i, 0), self.index(i, 6))

    def _fill(self, rows: list[Row], full: bool) -> None:
        project = self._project
        store = project.store
        samples = project.dataset.by_rel()
        labels = project.labels() if full else None
        preds = store.predictions() if full else None
        scores = project.cache.scores()
        reviewed = store.reviewed()
        splits = project_splits(project) if full else None
        self.colours = {t.name: QColor(t.colour) for t in store.types()}
        for row in rows:
            if full:
                row.label = labels.get(row.rel)
                pred = preds.get(row.rel)
                row.split = splits.get(row.rel, "")
            else:
                sample = samples.get(row.rel)
                row.label = project.label_of(sample) if sample else store.label(row.rel)
                pred = store.prediction(row.rel)
            row.prediction = pred.label if pred else None
            row.confidence = float(pred.confidence) if pred else math.nan
            row.score = float(scores.get(row.rel, math.nan))
            row.reviewed = row.rel in reviewed

    def row_of(self, rel: str) -> Optional[int]:
        return self._index.get(rel)

    # --- Qt model interface ---------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == SORT_ROLE:
            return self._sort_key(row, col)
        if role == REL_ROLE:
            return row.rel
        if role == Qt.ItemDataRole.DecorationRole and col == COL_IMAGE:
            return self.thumbnails.fetch(row.path, row.path)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, col)
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_IMAGE:
            return row.rel
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_CONF, COL_SCORE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row: Row, col: int):
        if col == COL_IMAGE:
            return row.rel
        if col == COL_SPLIT:
            return row.split
        if col == COL_LABEL:
            return row.label or ""
        if col == COL_PRED:
            return row.prediction or ""
        if col == COL_CONF:
            return "" if math.isnan(row.confidence) else f"{100 * row.confidence:.0f} %"
        if col == COL_SCORE:
            return "" if math.isnan(row.score) else f"{row.score:.1f}"
        return "✓" if row.reviewed else ""

    def _sort_key(self, row: Row, col: int):
        if col == COL_CONF:
            return -1.0 if math.isnan(row.confidence) else row.confidence
        if col == COL_SCORE:
            return -1.0 if math.isnan(row.score) else row.score
        if col == COL_REVIEWED:
            return int(row.reviewed)
        return str(self._display(row, col)).casefold()

    def _foreground(self, row: Row, col: int):
        if col == COL_PRED and row.disagrees:
            return QBrush(QColor("#b42318"))
        if col in (COL_LABEL, COL_PRED):
            name = row.label if col == COL_LABEL else row.prediction
            colour = self.colours.get(name or "")
            if colour is not None:
                return QBrush(colour.darker(140))
        return None

    def _thumbnail_ready(self, path: str) -> None:
        i = self._by_path.get(path)
        if i is not None:
            idx = self.index(i, COL_IMAGE)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ImageFilter(QSortFilterProxyModel):
    """Filters on the rows' plain values (no data() calls): fast on thousands of images."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.split = ANY
        self.label = ANY
        self.prediction = ANY
        self.disagree_only = False
        self.low_confidence_only = False
        self.text = ""
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(
            False
        )  # re-sorting on every refresh would move rows under the user

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """The rows are sorted in the table model (fast); this filter keeps their order."""
        self.sourceModel().sort(column, order)

    def set_filter(self, **values) -> None:
        self.begin_change()
        for key, value in values.items():
            setattr(self, key, value)
        self.end_change()

    def begin_change(self) -> None:
        # Qt 6.9 added begin/endFilterChange and deprecated invalidateFilter.
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()

    def end_change(self) -> None:
        if hasattr(self, "endFilterChange"):
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def refilter(self) -> None:
        self.begin_change()
        self.end_change()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        row = self.sourceModel().rows[source_row]
        if self.text and self.text.casefold() not in row.rel.casefold():
            return False
        if self.split != ANY and row.split != self.split:
            return False
        if self.label != ANY and (row.label or UNLABELLED) != self.label:
            return False
        if self.prediction != ANY and (row.prediction or NO_PREDICTION) != self.prediction:
            return False
        if self.disagree_only and not row.disagrees:
            return False
        if self.low_confidence_only and not (row.prediction and row.confidence < LOW_CONFIDENCE):
            return False
        return True


def label_choices(project) -> list[str]:
    if project is None:
        return [ANY]
    return [ANY, NORMAL, *project.store.type_names(), UNLABELLED]
