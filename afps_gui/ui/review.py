"""Review mode: walk the images in the order that needs eyes first and decide each in one key.

Keys (inside the panel): 1-9 a defect type in the project's type order, 0 normal, Space or Enter
accept the prediction, Left/Right (or Up/Down, or A/D) previous/next, Ctrl+Z undo and
Ctrl+Shift+Z (or Ctrl+Y) redo.

Speed matters: an inspector decides hundreds of images in a row. A decision is one
``LabelStore.set_label`` (one durable transaction) plus an update of the few things that depend
on that one image (its queue row, the counts, the progress). Nothing reloads the whole label set
or rebuilds the queue on a key press; that only happens on ``refresh()``, a filter change, or an
undo of a change that touched many images (an import, a rename, a merge). The queue order is
frozen between refreshes so that the cursor never jumps under the inspector's hands: a decided
image keeps its row (marked reviewed) until the next refresh.

Thumbnails are decoded on a worker thread (QImageReader, scaled while decoding) and the next
images are prefetched, so a large photo never stalls the key that moves to it.

Every modal dialog goes through the small functions at the top of this module so that tests can
replace them.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Optional

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import review_queue as rq
from ..core.errors import AfpsError
from ..core.labels import OverwriteRefused
from ..core.taxonomy import NORMAL
from ..workers import behind_the_ui
from .elided_label import ElidedLabel
from .types_dialog import DefectTypesDialog, swatch

NORMAL_COLOUR = "#9AA5B1"  # grey-blue: normal is the absence of a defect, not a colour of its own
UNLABELLED_COLOUR = "#FFFFFF"
THUMB_MAX_SIDE = 512  # decoded size; the label scales it down to fit the dock
THUMB_CACHE = 48
PREFETCH = 3
WIDE_LAYOUT = 860  # px: from this panel width on, image, details and queue sit side by side
MAX_LISTED = 12  # image paths listed in a message before "and N more"

# -------------------------------------------------------------- dialogs (tests replace these)


def ask_yes_no(parent: Optional[QWidget], title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.Yes | QMessageBox.No, QMessageBox.No
    )
    return answer == QMessageBox.Yes


def choose_save_path(
    parent: Optional[QWidget], title: str, start: str, filters: str
) -> Optional[str]:
    # The platform dialog's own overwrite question is switched off: we ask ourselves, once,
    # after the store has refused, so every path (GUI, tests) takes the same route.
    path, _ = QFileDialog.getSaveFileName(
        parent, title, start, filters, options=QFileDialog.DontConfirmOverwrite
    )
    return path or None


def choose_open_path(
    parent: Optional[QWidget], title: str, start: str, filters: str
) -> Optional[str]:
    path, _ = QFileDialog.getOpenFileName(parent, title, start, filters)
    return path or None


def show_info(parent: Optional[QWidget], title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def show_error(parent: Optional[QWidget], title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


# ------------------------------------------------------------- import / export actions


def _listed(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = "\n".join(f"  {item}" for item in items[:limit])
    more = len(items) - limit
    return shown + (f"\n  … and {more} more" if more > 0 else "")


def format_import_report(report, path: str = "") -> str:
    """The ImportReport in plain words: what was applied and every row that was not."""
    lines = [
        f"Imported {report.applied} label(s) from {Path(path).name or 'the file'}; "
        f"{report.unchanged} already had that label."
    ]
    if report.created_types:
        lines.append(f"New defect types: {', '.join(report.created_types)}.")
    if report.unknown_images:
        lines.append(
            f"\n{len(report.unknown_images)} image path(s) are not in this dataset and were "
            "skipped (paths must be relative to the dataset root):\n"
            + _listed(report.unknown_images)
        )
    if report.unknown_types:
        lines.append(
            f"\nUnknown defect type(s), rows skipped: {', '.join(report.unknown_types)}. "
            "Add them under Defect types… and import the file again."
        )
    if report.bad_rows:
        lines.append(f"\n{len(report.bad_rows)} row(s) not used:\n" + _listed(report.bad_rows))
    if report.change_id is not None:
        lines.append("\nThe import is one change: Ctrl+Z in the review panel undoes all of it.")
    return "\n".join(lines)


def import_labels_action(parent: Optional[QWidget], project) -> bool:
    """Ask for a labels CSV, import it as one undoable change, and show what happened.

    Unknown images, unknown types and bad rows are reported, never fatal. Returns True when
    any label or type changed (the caller then refreshes what shows labels).
    """
    title = "Import labels"
    if project is None:
        return False
    if project.readonly:
        show_error(parent, title, _readonly_text(project, "Labels cannot be imported."))
        return False
    path = choose_open_path(
        parent, title, str(project.folder), "CSV files (*.csv *.txt);;All files (*)"
    )
    if not path:
        return False
    dataset = project.dataset
    try:
        report = project.store.import_csv(
            path, known_images={s.rel for s in dataset.samples}, root=dataset.root
        )
    except AfpsError as exc:
        show_error(parent, title, str(exc))
        return False
    show_info(parent, title, format_import_report(report, path))
    return report.change_id is not None


def _write_asking(parent, title: str, targets: list[Path], write: Callable[[bool], object]):
    """Run ``write(overwrite)``; if a target exists, ask once and retry with overwrite=True.

    Returns (True, result) when written, (False, None) when the user said no or it failed.
    """
    try:
        return True, write(False)
    except OverwriteRefused:
        existing = [str(t) for t in targets if t.exists()]
        question = (
            "\n".join(existing) + "\n\nalready exist" + ("s" if len(existing) == 1 else "")
            + ". Replace " + ("it" if len(existing) == 1 else "them") + "?"
        )  # fmt: skip
        if not ask_yes_no(parent, title, question):
            return False, None
        try:
            return True, write(True)
        except (AfpsError, OSError) as exc:
            show_error(parent, title, str(exc))
    except (AfpsError, OSError) as exc:
        show_error(parent, title, str(exc))
    return False, None


def _with_suffix(path: str, suffix: str) -> Path:
    target = Path(path)
    return target if target.suffix else target.with_suffix(suffix)


def export_labels_action(parent: Optional[QWidget], project) -> None:
    """Write every human label to a CSV (paths relative to the dataset root); never overwrite
    a file unless the user said yes."""
    title = "Export labels"
    if project is None:
        return
    path = choose_save_path(
        parent, title, str(project.folder / "labels.csv"), "CSV files (*.csv);;All files (*)"
    )
    if not path:
        return
    target = _with_suffix(path, ".csv")
    ok, n = _write_asking(
        parent,
        title,
        [target],
        lambda overwrite: project.store.export_csv(target, overwrite=overwrite),
    )
    if ok:
        show_info(parent, title, f"Wrote {n} label(s) to {target}.")


def known_threshold(project) -> Optional[float]:
    """The anomaly threshold saved with the project's PaDiM model, or None if there is none."""
    path = project.padim_path
    if not path.is_file():
        return None
    try:  # only the settings are needed; this avoids building the backbone
        from ..core.modelfile import load_model
        from ..core.padim import FORMAT_VERSION, KIND

        settings, _ = load_model(path, KIND, FORMAT_VERSION)
    except AfpsError:
        return None
    threshold = settings.get("threshold")
    return None if threshold is None else float(threshold)


def report_rows(project, threshold: Optional[float] = None) -> list[dict]:
    """One report row per image: score from the cache; anomalous only when both are known."""
    scores = project.cache.scores()
    rows = []
    for sample in project.dataset.samples:
        score = scores.get(sample.rel)
        anomalous = None if score is None or threshold is None else bool(score > threshold)
        rows.append(
            {
                "image": sample.rel,
                "score": score,
                "anomalous": anomalous,
                "dataset_label": sample.label,
            }
        )
    return rows


def export_report_action(
    parent: Optional[QWidget], project, threshold: Optional[float] = None
) -> None:
    """Write the inspection report as CSV plus a JSON beside it (same name, .json).

    ``threshold`` defaults to the one saved with the anomaly model (the main window passes its
    adjusted one when the user moved the slider).
    """
    title = "Export report"
    if project is None:
        return
    path = choose_save_path(
        parent, title, str(project.folder / "report.csv"), "CSV files (*.csv);;All files (*)"
    )
    if not path:
        return
    csv_path = _with_suffix(path, ".csv")
    json_path = csv_path.with_suffix(".json")
    if threshold is None:
        threshold = known_threshold(project)
    rows = report_rows(project, threshold)
    from ..core.report import write_report

    ok, _ = _write_asking(
        parent,
        title,
        [csv_path, json_path],
        lambda overwrite: write_report(
            project.store, rows, csv_path, json_path, overwrite=overwrite
        ),
    )
    if ok:
        note = "" if threshold is not None else " (no anomaly threshold yet: 'anomalous' is empty)"
        show_info(parent, title, f"Wrote {len(rows)} image(s) to\n{csv_path}\n{json_path}{note}")


def _readonly_text(project, action: str) -> str:
    why = (getattr(project, "readonly_reason", "") or "").strip()
    why = why or "This project is open read-only."
    return f"{why}\n\n{action}"


# --------------------------------------------------------------------------- thumbnails


class _ThumbSink(QObject):
    """Lives in the GUI thread; workers emit through it (queued across threads)."""

    loaded = Signal(str, int, QImage, str)  # rel, generation, image, error


class _ThumbJob(QRunnable):
    def __init__(self, sink: _ThumbSink, rel: str, path: str, generation: int):
        super().__init__()
        self.sink, self.rel, self.path, self.generation = sink, rel, path, generation

    def run(self) -> None:
        behind_the_ui()
        reader = QImageReader(self.path)
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > THUMB_MAX_SIDE:
            # Decoding straight to the small size is much faster for JPEGs and saves memory.
            reader.setScaledSize(size.scaled(THUMB_MAX_SIDE, THUMB_MAX_SIDE, Qt.KeepAspectRatio))
        image = reader.read()
        error = reader.errorString() if image.isNull() else ""
        try:
            self.sink.loaded.emit(self.rel, self.generation, image, error)
        except RuntimeError:  # the panel went away while this image was decoding
            pass


# --------------------------------------------------------------------------- queue model


class QueueModel(QAbstractListModel):
    """The visible queue rows (rels) of a ReviewPanel, drawn from the panel's items."""

    def __init__(self, panel: ReviewPanel):
        super().__init__(panel)
        self.panel = panel
        self.rows: list[str] = []
        self._text: dict[str, str] = {}

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        rel = self.rows[index.row()]
        item = self.panel.item(rel)
        if item is None:
            return None
        if role == Qt.DisplayRole:
            text = self._text.get(rel)
            if text is None:  # cached: a paint asks for every visible row, every frame
                text = f"{'✓ ' if item.reviewed else ''}{rel}   ·   {_short_reason(item)}"
                self._text[rel] = text
            return text
        if role == Qt.DecorationRole:
            return self.panel.label_icon(item.label)
        if role == Qt.ToolTipRole:
            return f"{rel}\n{item.describe()}"
        if role == Qt.ForegroundRole and item.reviewed:
            return QColor("#7B8794")
        if role == Qt.UserRole:
            return rel
        return None

    def reset(self, rows: list[str]) -> None:
        self.beginResetModel()
        self.rows = rows
        self._text.clear()
        self.endResetModel()

    def row_changed(self, row: int) -> None:
        self._text.pop(self.rows[row], None)
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def insert(self, row: int, rel: str) -> None:
        self.beginInsertRows(QModelIndex(), row, row)
        self.rows.insert(row, rel)
        self.endInsertRows()


def _short_reason(item: rq.QueueItem) -> str:
    if item.reason == rq.DISAGREE:
        return f"model {item.predicted} ≠ {item.label}"
    if item.reason == rq.LOW_CONFIDENCE:
        conf = "" if item.confidence is None else f" {item.confidence:.0%}"
        return f"unsure: {item.predicted}{conf}"
    if item.reason == rq.UNLABELLED:
        return "no label" if item.score is None else f"score {item.score:.3g}"
    if item.reason == rq.REVIEWED:
        return f"{item.label}"
    return f"{item.label}, unconfirmed"


# --------------------------------------------------------------------------- the panel


def prediction_text(predicted: str, confidence) -> str:
    """A defect type with the classifier's confidence; "normal" says only that the score is
    below the threshold: that is a distance from normal, not a probability, and "100 % sure"
    overstated it."""
    if predicted == NORMAL:
        return "normal (its score is below the threshold)"
    return predicted if confidence is None else f"{predicted}  ({confidence:.0%} sure)"


class ReviewPanel(QWidget):
    """Review and relabel the project's images, one key per decision."""

    current_changed = Signal(str)  # rel of the image under review
    labels_changed = Signal(list)  # rels whose human label changed (incl. by undo/redo)
    retrain_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project = None
        self.setFocusPolicy(Qt.StrongFocus)
        self._clear_state()
        self._generation = 0  # bumped per project: late thumbnails of an old one are dropped
        self._thumbs: OrderedDict[str, QPixmap] = OrderedDict()
        self._thumb_errors: dict[str, str] = {}
        self._pending: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one decoder is plenty and leaves the other core free
        self._sink = _ThumbSink(self)
        self._sink.loaded.connect(self._thumb_loaded)
        self._icons: dict[str, QIcon] = {}
        self._syncing_list = False
        self._build()
        self._show_empty()

    def _clear_state(self) -> None:
        self._rels: list[str] = []
        self._rel_set: set[str] = set()
        self._paths: dict[str, Path] = {}
        self._dataset_labels: dict[str, Optional[str]] = {}
        self._human: dict[str, str] = {}
        self._reviewed: set[str] = set()
        self._preds: dict[str, tuple[str, Optional[float]]] = {}
        self._scores: dict[str, float] = {}
        self._types: list = []
        self._items: dict[str, rq.QueueItem] = {}
        self._order: dict[str, int] = {}  # rel -> place in the full queue (frozen until refresh)
        self._counts: Counter = Counter()  # current label -> images
        self._reason_counts: Counter = Counter()
        self._current: Optional[str] = None

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()

        self.thumb = _Thumb()
        self.thumb.setAlignment(Qt.AlignCenter)
        self.thumb.setMinimumSize(120, 96)
        self.thumb.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.thumb.setStyleSheet("background: #20242a; color: #c5ccd6; border-radius: 3px;")

        self.info_image = ElidedLabel(mode=Qt.ElideMiddle)
        self.info_image.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info_label = ElidedLabel()
        self.info_pred = ElidedLabel()
        self.info_score = ElidedLabel()
        self.info_why = QLabel()
        self.info_why.setWordWrap(True)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(3)
        for title, widget in (
            ("Image", self.info_image),
            ("Label", self.info_label),
            ("Prediction", self.info_pred),
            ("Score", self.info_score),
            ("Why now", self.info_why),
        ):
            form.addRow(title + ":", widget)

        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setObjectName("hint")
        self.legend.setTextFormat(Qt.RichText)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()

        self.progress_text = QLabel()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.counts = QLabel()
        self.counts.setWordWrap(True)
        self.counts.setTextFormat(Qt.RichText)

        details = QWidget()
        column = QVBoxLayout(details)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(form)
        column.addWidget(self.message)
        column.addWidget(self.legend)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_text)
        progress_row.addWidget(self.progress, 1)
        column.addLayout(progress_row)
        column.addWidget(self.counts)
        column.addStretch(1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_queue_tab(), "Queue")
        self.tabs.addTab(self._build_retrain_tab(), "Last retrain")
        # The lists inside ask for a tall preferred size; ignoring it (with a floor) lets a
        # short bottom dock show everything without scrolling.
        self.tabs.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.tabs.setMinimumHeight(200)
        # Stacked in a tall dock, side by side in a wide one (see resizeEvent).
        self._body = QBoxLayout(QBoxLayout.TopToBottom)
        self._body.setSpacing(8)
        self._body.addWidget(self.thumb, 3)
        self._body.addWidget(details, 0)
        self._body.addWidget(self.tabs, 4)
        # In a scroll area so that the panel never forces its dock to a size: a short bottom
        # dock scrolls (rarely) instead of pushing the heat map out of the window.
        body = _NoHeightForWidth()
        body.setLayout(self._body)
        self._body.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(body)
        scroll.setFocusPolicy(Qt.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.banner)
        layout.addLayout(self._build_buttons())
        layout.addWidget(scroll, 1)
        self._route_keys()

    def _build_buttons(self) -> QHBoxLayout:
        self.label_button = QToolButton()
        self.label_button.setText("Label as")
        self.label_button.setToolTip("Set the label with the mouse (or clear it)")
        self.label_button.setPopupMode(QToolButton.InstantPopup)
        self.label_menu = QMenu(self.label_button)
        self.label_button.setMenu(self.label_menu)
        self.types_button = QPushButton("Defect types…")
        self.types_button.setToolTip("Add, rename, merge or recolour the project's defect types")
        self.types_button.clicked.connect(self.edit_types)
        self.more_button = QToolButton()
        self.more_button.setText("Import/Export")
        self.more_button.setPopupMode(QToolButton.InstantPopup)
        more = QMenu(self.more_button)
        more.addAction("Import labels CSV…", self._import)
        more.addAction("Export labels CSV…", lambda: export_labels_action(self, self.project))
        more.addAction(
            "Export report (CSV + JSON)…", lambda: export_report_action(self, self.project)
        )
        self.more_button.setMenu(more)
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setObjectName("primary")
        self.retrain_button.setToolTip(
            "Retrain the defect classifier from the current labels and show what changed"
        )
        self.retrain_button.clicked.connect(self.retrain_requested.emit)
        row = QHBoxLayout()
        row.setSpacing(4)
        for widget in (self.label_button, self.types_button, self.more_button):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.retrain_button)
        return row

    def _build_queue_tab(self) -> QWidget:
        self.filters: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(0)
        for i, reason in enumerate(rq.REASONS):
            box = QCheckBox(rq.REASON_TITLES[reason])
            box.setChecked(True)
            box.setToolTip(f"Show images in the queue because: {rq.REASON_TITLES[reason]}")
            box.toggled.connect(self._filter_changed)
            self.filters[reason] = box
            grid.addWidget(box, i // 2, i % 2)
        self.queue_view = QListView()
        self.queue_view.setMinimumHeight(80)
        self.queue_view.setUniformItemSizes(True)  # constant-time layout for long queues
        self.queue_view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.queue_view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.queue_view.setIconSize(QSize(12, 12))
        self.model = QueueModel(self)
        self.queue_view.setModel(self.model)
        self.queue_view.selectionModel().currentChanged.connect(self._list_current_changed)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.queue_view, 1)
        return tab

    def _build_retrain_tab(self) -> QWidget:
        self.retrain_summary = QLabel("Retrain to see what your corrections changed.")
        self.retrain_summary.setWordWrap(True)
        self.metrics_table = QTableWidget(4, 3)
        self.metrics_table.setHorizontalHeaderLabels(["Before", "After", "Change"])
        self.metrics_table.setVerticalHeaderLabels(["Accuracy", "Precision", "Recall", "F1"])
        self.metrics_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.metrics_table.setSelectionMode(QAbstractItemView.NoSelection)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.metrics_table.setFocusPolicy(Qt.NoFocus)
        rows = self.metrics_table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.Fixed)
        height = self.metrics_table.horizontalHeader().sizeHint().height()
        height += 4 * rows.defaultSectionSize() + 2 * self.metrics_table.frameWidth()
        self.metrics_table.setFixedHeight(height)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.changed_title = QLabel("Images whose prediction changed:")
        self.changed_list = QListWidget()
        self.changed_list.itemClicked.connect(
            lambda item: self.select(item.data(Qt.UserRole), focus_list=False)
        )
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.retrain_summary)
        layout.addWidget(self.metrics_table)
        layout.addWidget(self.changed_title)
        layout.addWidget(self.changed_list, 1)
        # Scrolled inside the tab: the table's fixed height made the tab taller than a short
        # dock, so the whole panel scrolled and the thumbnail was cut in half.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(tab)
        return scroll

    def _route_keys(self) -> None:
        """Review keys win anywhere inside the panel.

        Buttons and check boxes take no keyboard focus (Space would press them instead of
        accepting a prediction); the lists keep focus for scrolling, and an event filter hands
        our keys to the panel before the list sees them.
        """
        for widget in self.findChildren(QWidget):
            if isinstance(widget, QMenu):
                continue  # an open menu keeps its own arrow keys
            if isinstance(widget, (QPushButton, QToolButton, QCheckBox, QTabWidget)):
                widget.setFocusPolicy(Qt.NoFocus)
            widget.installEventFilter(self)
        self.tabs.tabBar().setFocusPolicy(Qt.NoFocus)

    # ------------------------------------------------------------------ project

    def set_project(self, project) -> None:
        """Show a project's queue (None clears the panel)."""
        self.project = project
        self._generation += 1
        self._thumbs.clear()
        self._thumb_errors.clear()
        self._pending.clear()
        self._clear_state()
        self._clear_retrain()
        if project is None:
            self.model.reset([])
            self._show_empty()
            return
        self._load_all()
        self._rebuild_rows(keep=None)
        self._show_readonly()
        self._update_progress()
        self._update_counts()

    def refresh(self) -> None:
        """Re-read labels, predictions, scores and types; rebuild the queue in review order.

        Emits labels_changed for images whose human label differs from what the panel showed
        (an import, a rename or an undo done elsewhere).
        """
        if self.project is None:
            return
        changed = self._load_all()
        self._rebuild_rows(keep=self._current)
        self._show_readonly()
        self._update_progress()
        self._update_counts()
        if changed:
            self.labels_changed.emit(changed)

    def _load_all(self) -> list[str]:
        """Read everything the queue needs in a few queries; return rels whose label changed."""
        before = {rel: (self._human.get(rel), rel in self._reviewed) for rel in self._rels}
        project = self.project
        data = rq.queue_inputs(project)
        self._rels = data.rels
        self._rel_set = set(data.rels)
        self._paths = {s.rel: s.path for s in project.dataset.samples}
        # Line images (NG and unsure parts from inspection) live outside the dataset: their
        # files are where the inspection log says, so their thumbnails load like the others.
        self._paths.update((rel, Path(path)) for rel, path in data.line_paths.items())
        self._dataset_labels = data.dataset_labels
        self._human = data.human_labels
        self._reviewed = data.reviewed
        self._preds = data.predictions
        self._scores = data.scores
        self._types = project.store.types()
        self._icons.clear()
        self._rebuild_type_ui()
        self._items = {rel: self._classify(rel) for rel in self._rels}
        self._counts = Counter(item.label for item in self._items.values())
        self._reason_counts = Counter(item.reason for item in self._items.values())
        return [
            rel
            for rel in self._rels
            if rel in before and before[rel] != (self._human.get(rel), rel in self._reviewed)
        ]

    def _classify(self, rel: str) -> rq.QueueItem:
        return rq.classify(
            rel,
            dataset_label=self._dataset_labels.get(rel),
            human=self._human.get(rel),
            prediction=self._preds.get(rel),
            score=self._scores.get(rel),
            reviewed=rel in self._reviewed,
        )

    def _rebuild_rows(self, keep: Optional[str]) -> None:
        """Sort the full queue and show the reasons that are switched on."""
        ordered = sorted(self._items.values(), key=rq.sort_key)
        self._order = {item.rel: i for i, item in enumerate(ordered)}
        wanted = {reason for reason, box in self.filters.items() if box.isChecked()}
        rows = [item.rel for item in ordered if item.reason in wanted]
        self.model.reset(rows)
        self._update_filter_titles()
        if keep is not None and keep in self._rel_set and keep not in rows:
            keep = None  # filtered out: start from the top of what is shown
        target = keep if keep is not None else (rows[0] if rows else None)
        self._current = None  # force the display (and current_changed) for the new state
        if target is None:
            self._show_item(None)
        else:
            self.select(target)

    # ------------------------------------------------------------------ public API

    def item(self, rel: str) -> Optional[rq.QueueItem]:
        return self._items.get(rel)

    @property
    def current(self) -> Optional[str]:
        return self._current

    def rows(self) -> list[str]:
        """The visible queue, in order."""
        return list(self.model.rows)

    def select(self, rel: str, *, focus_list: bool = True) -> None:
        """Make ``rel`` the image under review (emits current_changed when it changes).

        An image the filter hides is shown anyway, in its place in the queue: the inspector
        asked for it (e.g. by clicking it in the browser).
        """
        if self.project is None or rel not in self._rel_set:
            return
        rows = self.model.rows
        row = self._row_of(rel)
        if row is None:
            row = self._insert_position(rel)
            self.model.insert(row, rel)
        self._sync_list(row)
        if rel == self._current:
            return
        self._current = rel
        self._show_item(rel)
        self._prefetch(rows[row + 1 : row + 1 + PREFETCH])
        self.current_changed.emit(rel)

    def move(self, step: int) -> None:
        rows = self.model.rows
        if not rows:
            return
        row = self._row_of(self._current) if self._current is not None else None
        target = 0 if row is None else min(max(row + step, 0), len(rows) - 1)
        if row is not None and target == row:
            self._say("This is the " + ("last" if step > 0 else "first") + " image in the queue.")
            return
        self._say("")
        self.select(rows[target])

    def decide(self, label: Optional[str]) -> bool:
        """Save ``label`` as the current image's human label (None clears it) and move on."""
        rel = self._current
        if self.project is None or rel is None:
            self._say("Nothing to label: the queue is empty.", error=True)
            return False
        if self.project.readonly:
            # The banner above says why; the message only has to say what did not happen.
            self._say("Read-only project: the decision was not saved.", error=True)
            return False
        try:
            self.project.store.set_label(rel, label)
        except AfpsError as exc:
            self._say(str(exc), error=True)
            return False
        stored = self._stored_spelling(label)
        if self._set_local(rel, stored, stored is not None):
            self.labels_changed.emit([rel])
        self._say("")
        self._after_decision(rel)
        return True

    def accept_prediction(self) -> bool:
        """Space/Enter: the prediction becomes the label (or confirm the dataset's label)."""
        item = self._items.get(self._current) if self._current else None
        target = None if item is None else (item.predicted or item.label)
        if target is None:
            return self._nothing_to_accept()
        return self.decide(target)

    def decide_type(self, index: int) -> bool:
        """Keys 1-9: the index-th defect type in the project's order."""
        if index >= len(self._types):
            self._say(
                f"There is no defect type {index + 1}: this project has {len(self._types)}. "
                "Add types under Defect types….",
                error=True,
            )
            return False
        return self.decide(self._types[index].name)

    def undo(self) -> None:
        self._history_step(undo=True)

    def redo(self) -> None:
        self._history_step(undo=False)

    def show_retrain_result(self, result) -> None:
        """Show held-out metrics before/after and the images whose prediction changed."""
        self.refresh()  # the retrain wrote new predictions
        self._fill_metrics(result.metrics or {}, result.previous_metrics)
        seconds = getattr(result, "seconds", 0.0) or 0.0
        prev = "" if result.previous_metrics else " There was no earlier model to compare with."
        self.retrain_summary.setText(
            f"Trained on {result.n_train} labelled image(s), tested on {result.n_test} held-out "
            f"image(s) in {seconds:.0f} s. {len(result.changed)} image(s) changed prediction.{prev}"
        )
        self.changed_list.clear()
        for rel, old, new in result.changed:
            item = QListWidgetItem(self.label_icon(new), f"{rel}   {old or 'none'} → {new}")
            item.setData(Qt.UserRole, rel)
            item.setToolTip("Click to review this image")
            self.changed_list.addItem(item)
        self.changed_title.setText(
            f"Images whose prediction changed ({len(result.changed)}), click to review:"
            if result.changed
            else "No image changed prediction."
        )
        self.tabs.setCurrentIndex(1)

    def edit_types(self) -> None:
        """Open the defect types dialog (modal); every change there refreshes the panel."""
        if self.project is None:
            return
        dialog = self.types_dialog()
        dialog.exec()

    def types_dialog(self) -> DefectTypesDialog:
        """A DefectTypesDialog wired to this panel (tests use it without exec)."""
        project = self.project
        dialog = DefectTypesDialog(
            project.store,
            self,
            image_counts=lambda: Counter(item.label for item in rq.project_queue(project)),
        )
        dialog.types_changed.connect(self.refresh)
        return dialog

    def label_icon(self, label: Optional[str]) -> QIcon:
        key = label or ""
        icon = self._icons.get(key)
        if icon is None:
            icon = swatch(self._colour_of(label), 12)
            self._icons[key] = icon
        return icon

    # ------------------------------------------------------------------ decisions

    def _stored_spelling(self, label: Optional[str]) -> Optional[str]:
        """The spelling the store keeps ("spot" -> "Spot"), without asking the store again."""
        if label is None:
            return None
        if label.strip().casefold() == NORMAL:
            return NORMAL
        folded = label.strip().casefold()
        return next((t.name for t in self._types if t.name.casefold() == folded), label)

    def _set_local(self, rel: str, human: Optional[str], reviewed: bool) -> bool:
        """Apply one image's new human label to the panel's state; True if anything changed."""
        if (self._human.get(rel), rel in self._reviewed) == (human, reviewed):
            return False
        if human is None:
            self._human.pop(rel, None)
        else:
            self._human[rel] = human
        (self._reviewed.add if reviewed else self._reviewed.discard)(rel)
        old = self._items.get(rel)
        if old is not None:
            new = self._classify(rel)
            self._items[rel] = new
            self._counts[old.label] -= 1
            self._counts[new.label] += 1
            self._reason_counts[old.reason] -= 1
            self._reason_counts[new.reason] += 1
            row = self._row_of(rel)
            if row is not None:
                self.model.row_changed(row)
            self._update_progress()
            self._update_counts()
            self._update_filter_titles()
        return True

    def _after_decision(self, rel: str) -> None:
        rows = self.model.rows
        row = self._row_of(rel)
        if row is not None and row + 1 < len(rows):
            self.select(rows[row + 1])
        else:
            self._show_item(rel)
            self._say("That was the last image in the queue. Refresh to re-sort it.")

    def _nothing_to_accept(self) -> bool:
        self._say("No prediction to accept here: press a number key to label it.", error=True)
        return False

    def _history_step(self, *, undo: bool) -> None:
        if self.project is None:
            return
        what = "undo" if undo else "redo"
        if self.project.readonly:
            self._say(f"Read-only project: nothing to {what} here.", error=True)
            return
        store = self.project.store
        try:
            change = store.undo() if undo else store.redo()
        except AfpsError as exc:
            self._say(str(exc), error=True)
            return
        if change is None:
            self._say(f"Nothing to {what}.")
            return
        if change.kind == "label" and change.image:
            self._sync_one(change.image)
            self.select(change.image)  # show the image whose decision was undone/redone
        else:
            self.refresh()  # an import, rename or merge: many images and maybe the types
        self._say(f"{'Undid' if undo else 'Redid'}: {_describe_change(change)}")

    def _sync_one(self, rel: str) -> None:
        store = self.project.store
        human = store.label(rel)
        reviewed = human is not None and rel in store.reviewed()
        if self._set_local(rel, human, reviewed):
            self.labels_changed.emit([rel])

    def _import(self) -> None:
        if import_labels_action(self, self.project):
            self.refresh()

    # ------------------------------------------------------------------ keys

    def _key_action(self, event: QKeyEvent) -> Optional[Callable[[], object]]:
        """The review action of a key press, or None when the key is not ours."""
        key = event.key()
        mods = event.modifiers() & ~Qt.KeypadModifier
        ctrl = bool(mods & Qt.ControlModifier)
        shift = bool(mods & Qt.ShiftModifier)
        moves = {Qt.Key_Left: -1, Qt.Key_Up: -1, Qt.Key_A: -1}
        moves.update({Qt.Key_Right: 1, Qt.Key_Down: 1, Qt.Key_D: 1})
        if ctrl:
            if mods & ~(Qt.ControlModifier | Qt.ShiftModifier):
                return None
            if key == Qt.Key_Z:
                return self.redo if shift else self.undo
            if key == Qt.Key_Y and not shift:
                return self.redo
            return None
        if mods & ~Qt.ShiftModifier:
            return None  # Alt/Meta combinations belong to the window
        if key in moves:
            return partial(self.move, moves[key])
        if event.isAutoRepeat():
            return _ignore  # a held key must not label a run of images
        if Qt.Key_1 <= key <= Qt.Key_9:
            return partial(self.decide_type, key - Qt.Key_1)
        if key == Qt.Key_0:
            return partial(self.decide, NORMAL)
        if key in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Enter):
            return self.accept_prediction
        return None

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # Decided by width alone: a side dock is narrow, a bottom dock wide and short, and the
        # side-by-side layout is the one whose minimum height fits a short dock.
        wide = event.size().width() >= WIDE_LAYOUT
        direction = QBoxLayout.LeftToRight if wide else QBoxLayout.TopToBottom
        if self._body.direction() != direction:
            self._body.setDirection(direction)
            # Side by side the details column needs its share of the width; stacked it only
            # takes the height it needs.
            self._body.setStretch(0, 2 if wide else 3)
            self._body.setStretch(1, 3 if wide else 0)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._key_action(event)
        if action is None:
            super().keyPressEvent(event)
            return
        event.accept()
        action()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.ShortcutOverride and self._key_action(event) is not None:
            event.accept()  # our key: deliver it as a key press here, not as a window shortcut
            return True
        return super().event(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.KeyPress, QEvent.ShortcutOverride):
            action = self._key_action(event)
            if action is not None:
                event.accept()
                if kind == QEvent.KeyPress:
                    action()
                return True
        elif kind == QEvent.Resize and watched is self.thumb:
            self._fit_thumb()
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ list sync

    def _row_of(self, rel: Optional[str]) -> Optional[int]:
        """The visible row of ``rel``, or None. The visible rows always keep queue order, so
        this is a binary search, not a scan: it runs on every key press."""
        order = self._order.get(rel) if rel is not None else None
        if order is None:
            return None
        rows = self.model.rows
        row = bisect.bisect_left(rows, order, key=self._order.__getitem__)
        return row if row < len(rows) and rows[row] == rel else None

    def _insert_position(self, rel: str) -> int:
        return bisect.bisect_left(self.model.rows, self._order[rel], key=self._order.__getitem__)

    def _sync_list(self, row: int) -> None:
        index = self.model.index(row)
        self._syncing_list = True
        try:
            selection = self.queue_view.selectionModel()
            selection.setCurrentIndex(index, selection.SelectionFlag.ClearAndSelect)
            self.queue_view.scrollTo(index)
        finally:
            self._syncing_list = False

    def _list_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing_list or not current.isValid():
            return
        self.select(self.model.rows[current.row()])

    def _filter_changed(self) -> None:
        if self.project is not None:
            self._rebuild_rows(keep=self._current)

    # ------------------------------------------------------------------ display

    def _show_empty(self) -> None:
        self.thumb.setPixmap(QPixmap())
        self.thumb.setText("Open a project to review its images.")
        for label in (self.info_image, self.info_label, self.info_pred, self.info_score):
            label.setText("—")
        self.info_why.setText("—")
        self.banner.hide()
        self._say("")
        self.legend.setText("")
        self.progress_text.setText("Reviewed 0 / 0")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.counts.setText("")
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        writable = on and self.project is not None and not self.project.readonly
        for widget in (self.label_button, self.retrain_button):
            widget.setEnabled(writable)
        for widget in (self.types_button, self.more_button):
            widget.setEnabled(on)

    def _show_readonly(self) -> None:
        readonly = self.project is not None and self.project.readonly
        if readonly:
            self.banner.setText(
                _readonly_text(
                    self.project, "You can browse and export, but not change labels."
                ).replace("\n\n", " ")
            )
        self.banner.setVisible(readonly)
        self._set_enabled(self.project is not None)

    def _show_item(self, rel: Optional[str]) -> None:
        item = self._items.get(rel) if rel else None
        if item is None:
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText("The queue is empty." if self.project else "")
            for label in (self.info_image, self.info_label, self.info_pred, self.info_score):
                label.setText("—")
            self.info_why.setText("Nothing shown: switch on more reasons above the queue.")
            return
        self.info_image.setText(rel)
        self.info_label.setText(self._label_text(item))
        if item.predicted is None:
            self.info_pred.setText("none yet (score the images to get predictions)")
        else:
            self.info_pred.setText(prediction_text(item.predicted, item.confidence))
        self.info_score.setText("not scored" if item.score is None else f"{item.score:.4g}")
        self.info_why.setText(item.describe())
        self._show_thumb(rel)

    def _label_text(self, item: rq.QueueItem) -> str:
        if item.human is not None:
            who = "you, reviewed" if item.reviewed else "human label, not confirmed"
            return f"{item.human}  ({who})"
        if item.label is not None:
            return f"{item.label}  (from the dataset, not reviewed)"
        return "none"

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        colour = "#b42318" if error else "#1f2933"
        self.message.setStyleSheet(f"color: {colour};")
        self.message.setVisible(bool(text))

    def _colour_of(self, label: Optional[str]) -> str:
        if label is None:
            return UNLABELLED_COLOUR
        if label == NORMAL:
            return NORMAL_COLOUR
        folded = label.casefold()
        return next((t.colour for t in self._types if t.name.casefold() == folded), "#555555")

    def _rebuild_type_ui(self) -> None:
        """Key legend and the Label-as menu follow the project's types and their order."""
        keys = [f"<b>{i}</b>&nbsp;{_html(t.name)}" for i, t in enumerate(self._types[:9], 1)]
        keys.append(f"<b>0</b>&nbsp;{NORMAL}")
        lines = [
            "&nbsp;&nbsp; ".join(keys),
            "<b>Space</b>&nbsp;accept prediction &nbsp;&nbsp; <b>←/→</b> or <b>A/D</b>&nbsp;move",
            "<b>Ctrl+Z</b>&nbsp;undo &nbsp;&nbsp; <b>Ctrl+Shift+Z</b>&nbsp;redo",
        ]
        if len(self._types) > 9:
            lines.append("Types after the ninth: use Label as.")
        self.legend.setText("<br>".join(lines))
        self.label_menu.clear()
        for i, t in enumerate(self._types, 1):
            text = f"{t.name}\t{i}" if i <= 9 else t.name
            self.label_menu.addAction(swatch(t.colour, 12), text, partial(self.decide, t.name))
        self.label_menu.addAction(
            swatch(NORMAL_COLOUR, 12), f"{NORMAL}\t0", partial(self.decide, NORMAL)
        )
        self.label_menu.addSeparator()
        self.label_menu.addAction("Clear the human label", partial(self.decide, None))

    def _update_progress(self) -> None:
        total = len(self._rels)
        done = self._reason_counts.get(rq.REVIEWED, 0)
        self.progress_text.setText(f"Reviewed {done} / {total}")
        # QProgressBar.setValue repaints synchronously (the whole dock, list included) when
        # the bar grows by a pixel; with updates off it only schedules a normal paint.
        self.progress.setUpdatesEnabled(False)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setUpdatesEnabled(True)

    def _update_counts(self) -> None:
        names = [NORMAL] + [t.name for t in self._types]
        extra = sorted(k for k, n in self._counts.items() if n and k not in names and k)
        parts = []
        for name in names + extra + [None]:
            n = self._counts.get(name, 0)
            if name is None and not n:
                continue
            colour = self._colour_of(name)
            title = "unlabelled" if name is None else _html(name)
            parts.append(f"<span style='color:{colour}'>■</span>&nbsp;{title}&nbsp;<b>{n}</b>")
        self.counts.setText("&nbsp;&nbsp; ".join(parts))

    def _update_filter_titles(self) -> None:
        for reason, box in self.filters.items():
            box.setText(f"{rq.REASON_TITLES[reason]} ({self._reason_counts.get(reason, 0)})")

    # ------------------------------------------------------------------ thumbnails

    def _show_thumb(self, rel: str) -> None:
        pixmap = self._thumbs.get(rel)
        if pixmap is not None:
            self._thumbs.move_to_end(rel)
            self._fit_thumb(pixmap)
            return
        if rel in self._thumb_errors:
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText(f"Cannot show this image:\n{self._thumb_errors[rel]}")
            return
        self.thumb.setPixmap(QPixmap())
        self.thumb.setText("loading…")
        self._request_thumb(rel)

    def _request_thumb(self, rel: str) -> None:
        path = self._paths.get(rel)
        if path is None or rel in self._pending or rel in self._thumbs:
            return
        self._pending.add(rel)
        self._pool.start(_ThumbJob(self._sink, rel, str(path), self._generation))

    def _prefetch(self, rels: Iterable[str]) -> None:
        for rel in rels:
            self._request_thumb(rel)

    def _thumb_loaded(self, rel: str, generation: int, image: QImage, error: str) -> None:
        if generation != self._generation:
            return  # a thumbnail of a project that is no longer open
        self._pending.discard(rel)
        if image.isNull():
            self._thumb_errors[rel] = error or "unreadable image"
        else:
            self._thumbs[rel] = QPixmap.fromImage(image)
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.popitem(last=False)
        if rel == self._current:
            self._show_thumb(rel)

    def _fit_thumb(self, pixmap: Optional[QPixmap] = None) -> None:
        if pixmap is None:
            pixmap = self._thumbs.get(self._current) if self._current else None
            if pixmap is None:
                return
        size = self.thumb.contentsRect().size()
        if size.width() < 8 or size.height() < 8:
            size = QSize(240, 200)
        self.thumb.setPixmap(pixmap.scaled(size, Qt.KeepAspectRatio, Qt.SmoothTransformation))

    # ------------------------------------------------------------------ retrain result

    def _clear_retrain(self) -> None:
        self.retrain_summary.setText("Retrain to see what your corrections changed.")
        for r in range(4):
            for c in range(3):
                self.metrics_table.setItem(r, c, QTableWidgetItem("—"))
        self.changed_list.clear()
        self.changed_title.setText("Images whose prediction changed:")

    def _fill_metrics(self, after: dict, before: Optional[dict]) -> None:
        before = before or {}
        for r, key in enumerate(("accuracy", "precision", "recall", "f1")):
            old, new = before.get(key), after.get(key)
            cells = [_fmt(old), _fmt(new), "—"]
            colour = None
            if old is not None and new is not None:
                delta = new - old
                cells[2] = f"{delta:+.3f}"
                colour = "#027a48" if delta > 0.0005 else "#b42318" if delta < -0.0005 else None
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setTextAlignment(Qt.AlignCenter)
                if c == 2 and colour:
                    cell.setForeground(QColor(colour))
                self.metrics_table.setItem(r, c, cell)


class _NoHeightForWidth(QWidget):
    """The scroll area's content. Reporting no height-for-width makes the scroll area size it
    by its minimum, not by its preferred height: otherwise a short dock always scrolls."""

    def hasHeightForWidth(self) -> bool:
        return False


class _Thumb(QLabel):
    """A QLabel whose size hint ignores its pixmap.

    A plain QLabel asks for its pixmap's size; since the pixmap is scaled to the label, the
    label would only ever grow (and push its dock's scroll area into scrolling).
    """

    def sizeHint(self) -> QSize:
        return QSize(240, 180)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 96)


def _ignore() -> None:
    return None


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _describe_change(change) -> str:
    if change.kind == "label":
        before = change.before or "no label"
        after = change.after or "no label"
        return f"{change.image}: {before} → {after}"
    names = {
        "rename_type": "rename of a defect type",
        "merge_types": "merge of defect types",
        "add_type": "new defect type",
        "remove_type": "removal of a defect type",
        "recolour_type": "colour change",
        "import": "import of a labels file",
        "bulk": "change of many labels",
    }
    return names.get(change.kind, change.kind)
