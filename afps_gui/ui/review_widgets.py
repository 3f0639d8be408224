"""The review panel's parts, each only drawing what the review session says: the queue list
with its reason filters, the details of the image under review, and the last retrain's result.
"""

from __future__ import annotations

import bisect
from functools import partial
from html import escape
from typing import Optional

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
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
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import review_queue as rq
from ..core.review_session import ReviewSession
from ..core.taxonomy import NORMAL
from .actions import REDO_KEYS, UNDO_KEYS
from .elided_label import ElidedLabel
from .review_keys import TYPE_KEYS
from .types_dialog import swatch

NORMAL_COLOUR = "#9AA5B1"  # grey-blue: normal is the absence of a defect, not a colour of its own
UNLABELLED_COLOUR = "#FFFFFF"


def prediction_text(predicted: str, confidence) -> str:
    """The prediction in the details (review_queue.prediction_words, long)."""
    return rq.prediction_words(predicted, confidence, long=True)


def short_reason(item: rq.QueueItem) -> str:
    if item.reason == rq.DISAGREE:
        return f"model {item.predicted} ≠ {item.label}"
    if item.reason == rq.LOW_CONFIDENCE:
        return f"unsure: {rq.prediction_words(item.predicted, item.confidence)}"
    if item.reason == rq.UNLABELLED:
        return "no label" if item.score is None else f"score {item.score:.3g}"
    if item.reason == rq.REVIEWED:
        return f"{item.label}"
    return f"{item.label}, unconfirmed"


class LabelIcons:
    """A swatch per label in the session's colours, made once per set of types."""

    def __init__(self, session: ReviewSession):
        self.session = session
        self._icons: dict[str, QIcon] = {}

    def colour(self, label: Optional[str]) -> str:
        return self.session.colour_of(label, normal=NORMAL_COLOUR, unlabelled=UNLABELLED_COLOUR)

    def icon(self, label: Optional[str]) -> QIcon:
        key = label or ""
        icon = self._icons.get(key)
        if icon is None:
            icon = self._icons[key] = swatch(self.colour(label), 12)
        return icon

    def clear(self) -> None:
        self._icons.clear()


# --------------------------------------------------------------------------- the queue


class QueueModel(QAbstractListModel):
    """The visible queue rows (rels), drawn from the session's items."""

    def __init__(self, session: ReviewSession, icons: LabelIcons, parent=None):
        super().__init__(parent)
        self.session, self.icons = session, icons
        self.rows: list[str] = []
        self._text: dict[str, str] = {}

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        rel = self.rows[index.row()]
        item = self.session.items.get(rel)  # a paint asks for every visible row: no detour
        if item is None:
            return None
        if role == Qt.DisplayRole:
            text = self._text.get(rel)
            if text is None:  # cached: a paint asks for every visible row, every frame
                text = f"{'✓ ' if item.reviewed else ''}{rel}   ·   {short_reason(item)}"
                self._text[rel] = text
            return text
        if role == Qt.DecorationRole:
            return self.icons.icon(item.label)
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


class QueueList(QWidget):
    """The reason filters and the list of the visible queue."""

    picked = Signal(str)  # the user chose a row (click or list keys)
    filters_changed = Signal()

    def __init__(self, session: ReviewSession, icons: LabelIcons, parent=None):
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self.filters: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(0)
        for i, reason in enumerate(rq.REASONS):
            box = QCheckBox(rq.REASON_TITLES[reason])
            box.setChecked(True)
            box.setToolTip(f"Show images in the queue because: {rq.REASON_TITLES[reason]}")
            box.toggled.connect(self._filter_toggled)
            self.filters[reason] = box
            grid.addWidget(box, i // 2, i % 2)
        self.view = QListView()
        self.view.setMinimumHeight(80)
        self.view.setUniformItemSizes(True)  # constant-time layout for long queues
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setIconSize(QSize(12, 12))
        self.model = QueueModel(session, icons, self)
        self.view.setModel(self.model)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.view, 1)

    @property
    def rows(self) -> list[str]:
        return self.model.rows

    def _filter_toggled(self) -> None:
        self.session.wanted = {r for r, box in self.filters.items() if box.isChecked()}
        self.filters_changed.emit()

    def reset(self) -> None:
        self.model.reset(self.session.visible())
        self.update_titles()

    def update_titles(self) -> None:
        counts = self.session.reason_counts
        for reason, box in self.filters.items():
            box.setText(f"{rq.REASON_TITLES[reason]} ({counts.get(reason, 0)})")

    def row_of(self, rel: Optional[str]) -> Optional[int]:
        """The visible row of ``rel``, or None. The visible rows always keep queue order, so
        this is a binary search, not a scan: it runs on every key press."""
        if rel is None or rel not in self.session.order:
            return None
        row = self._place(rel)
        rows = self.model.rows
        return row if row < len(rows) and rows[row] == rel else None

    def _place(self, rel: str) -> int:
        order = self.session.order
        return bisect.bisect_left(self.model.rows, order[rel], key=order.__getitem__)

    def show_row(self, rel: str) -> int:
        """The visible row of ``rel``, inserting it in its place when the filter hid it."""
        row = self.row_of(rel)
        if row is None:
            row = self._place(rel)
            self.model.insert(row, rel)
        return row

    def redraw(self, rel: str) -> None:
        row = self.row_of(rel)
        if row is not None:
            self.model.row_changed(row)

    def add(self, rel: str) -> None:
        """A new image joined the queue: show it in its place when its reason is wanted."""
        if self.session.item(rel).reason in self.session.wanted and self.row_of(rel) is None:
            self.model.insert(self._place(rel), rel)

    def make_current(self, row: int) -> None:
        index = self.model.index(row)
        self._syncing = True
        try:
            selection = self.view.selectionModel()
            selection.setCurrentIndex(index, selection.SelectionFlag.ClearAndSelect)
            self.view.scrollTo(index)
        finally:
            self._syncing = False

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not self._syncing and current.isValid():
            self.picked.emit(self.model.rows[current.row()])


# --------------------------------------------------------------------------- the details


class Thumb(QLabel):
    """A QLabel whose size hint ignores its pixmap.

    A plain QLabel asks for its pixmap's size; since the pixmap is scaled to the label, the
    label would only ever grow (and push its dock's scroll area into scrolling).
    """

    resized = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(120, 96)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.setStyleSheet("background: #20242a; color: #c5ccd6; border-radius: 3px;")

    def sizeHint(self) -> QSize:
        return QSize(240, 180)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 96)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit()

    def fit(self, pixmap: QPixmap) -> None:
        size = self.contentsRect().size()
        if size.width() < 8 or size.height() < 8:
            size = QSize(240, 200)
        self.setPixmap(pixmap.scaled(size, Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def show_cached(self, cache, key: str, path) -> None:
        """The image of ``key`` from a ThumbnailCache, why it cannot be shown, or "loading…"
        while the cache decodes it."""
        pixmap = cache.get(key)
        if pixmap is not None:
            self.fit(pixmap)
        elif key in cache.errors:
            self.say(f"Cannot show this image:\n{cache.errors[key]}")
        else:
            self.say("loading…")
            cache.request(key, path)

    def say(self, text: str) -> None:
        self.setPixmap(QPixmap())
        self.setText(text)


class ReviewDetails(QWidget):
    """What is known of the image under review, the key legend, progress and counts."""

    def __init__(self, session: ReviewSession, icons: LabelIcons, parent=None):
        super().__init__(parent)
        self.session, self.icons = session, icons
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
        self.legend = _rich_label("hint")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        self.progress_text = QLabel()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.counts = _rich_label()
        column = QVBoxLayout(self)
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

    def _blank(self, why: str) -> None:
        for label in (self.info_image, self.info_label, self.info_pred, self.info_score):
            label.setText("—")
        self.info_why.setText(why)

    def show_empty(self) -> None:
        self._blank("—")
        self.say("")
        self.legend.setText("")
        self.progress_text.setText("Reviewed 0 / 0")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.counts.setText("")

    def show_item(self, item: Optional[rq.QueueItem]) -> None:
        if item is None:
            self._blank("Nothing shown: switch on more reasons above the queue.")
            return
        self.info_image.setText(item.rel)
        self.info_label.setText(label_text(item))
        if item.predicted is None:
            self.info_pred.setText("none yet (score the images to get predictions)")
        else:
            self.info_pred.setText(prediction_text(item.predicted, item.confidence))
        self.info_score.setText("not scored" if item.score is None else f"{item.score:.4g}")
        self.info_why.setText(item.describe())

    def say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        colour = "#b42318" if error else "#1f2933"
        self.message.setStyleSheet(f"color: {colour};")
        self.message.setVisible(bool(text))

    def show_legend(self) -> None:
        types = self.session.types
        keys = [f"<b>{i}</b>&nbsp;{escape(t.name)}" for i, t in enumerate(types[:TYPE_KEYS], 1)]
        keys.append(f"<b>0</b>&nbsp;{NORMAL}")
        lines = [
            "&nbsp;&nbsp; ".join(keys),
            "<b>Space</b>&nbsp;accept prediction &nbsp;&nbsp; <b>←/→</b> or <b>A/D</b>&nbsp;move",
            f"{_keys(UNDO_KEYS)}&nbsp;undo &nbsp;&nbsp; {_keys(REDO_KEYS)}&nbsp;redo",
        ]
        if len(types) > TYPE_KEYS:
            lines.append(f"Types after the first {TYPE_KEYS}: use Label as.")
        self.legend.setText("<br>".join(lines))

    def show_progress(self) -> None:
        total, done = self.session.total, self.session.reviewed_count
        self.progress_text.setText(f"Reviewed {done} / {total}")
        # QProgressBar.setValue repaints synchronously (the whole dock, list included) when
        # the bar grows by a pixel; with updates off it only schedules a normal paint.
        self.progress.setUpdatesEnabled(False)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setUpdatesEnabled(True)

    def show_counts(self) -> None:
        counts = self.session.counts
        names = [NORMAL] + [t.name for t in self.session.types]
        extra = sorted(k for k, n in counts.items() if n and k not in names and k)
        parts = []
        for name in names + extra + [None]:
            n = counts.get(name, 0)
            if name is None and not n:
                continue
            colour = self.icons.colour(name)
            title = "unlabelled" if name is None else escape(name)
            parts.append(f"<span style='color:{colour}'>■</span>&nbsp;{title}&nbsp;<b>{n}</b>")
        self.counts.setText("&nbsp;&nbsp; ".join(parts))


def _keys(keys) -> str:
    return " or ".join(f"<b>{key}</b>" for key in keys)


def _rich_label(name: str = "") -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    if name:
        label.setObjectName(name)
    return label


def label_text(item: rq.QueueItem) -> str:
    if item.human is not None:
        who = "you, reviewed" if item.reviewed else "human label, not confirmed"
        return f"{item.human}  ({who})"
    if item.label is not None:
        return f"{item.label}  (from the dataset, not reviewed)"
    return "none"


def label_menu_entries(session: ReviewSession, icons: LabelIcons, decide):
    """(icon, text, callback) of each entry of the Label-as menu, in the type order."""
    entries = []
    for i, t in enumerate(session.types, 1):
        text = f"{t.name}\t{i}" if i <= TYPE_KEYS else t.name
        entries.append((swatch(t.colour, 12), text, partial(decide, t.name)))
    entries.append((swatch(NORMAL_COLOUR, 12), f"{NORMAL}\t0", partial(decide, NORMAL)))
    return entries


# --------------------------------------------------------------------------- last retrain


class RetrainTab(QScrollArea):
    """Held-out metrics before and after a retrain, and the images whose prediction changed."""

    picked = Signal(str)

    def __init__(self, icons: LabelIcons, parent=None):
        super().__init__(parent)
        self.icons = icons
        self.summary = QLabel("Retrain to see what your corrections changed.")
        self.summary.setWordWrap(True)
        self.table = _metrics_table()
        self.changed_title = QLabel("Images whose prediction changed:")
        self.changed_list = QListWidget()
        self.changed_list.itemClicked.connect(lambda item: self.picked.emit(item.data(Qt.UserRole)))
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addWidget(self.changed_title)
        layout.addWidget(self.changed_list, 1)
        # Scrolled inside the tab: the table's fixed height made the tab taller than a short
        # dock, so the whole panel scrolled and the thumbnail was cut in half.
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setWidget(tab)

    def clear(self) -> None:
        self.summary.setText("Retrain to see what your corrections changed.")
        for r in range(4):
            for c in range(3):
                self.table.setItem(r, c, QTableWidgetItem("—"))
        self.changed_list.clear()
        self.changed_title.setText("Images whose prediction changed:")

    def show_result(self, result) -> None:
        self._fill_metrics(result.metrics or {}, result.previous_metrics)
        seconds = getattr(result, "seconds", 0.0) or 0.0
        prev = "" if result.previous_metrics else " There was no earlier model to compare with."
        self.summary.setText(
            f"Trained on {result.n_train} labelled image(s), tested on {result.n_test} held-out "
            f"image(s) in {seconds:.0f} s. {len(result.changed)} image(s) changed prediction.{prev}"
        )
        self.changed_list.clear()
        for rel, old, new in result.changed:
            item = QListWidgetItem(self.icons.icon(new), f"{rel}   {old or 'none'} → {new}")
            item.setData(Qt.UserRole, rel)
            item.setToolTip("Click to review this image")
            self.changed_list.addItem(item)
        self.changed_title.setText(
            f"Images whose prediction changed ({len(result.changed)}), click to review:"
            if result.changed
            else "No image changed prediction."
        )

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
                self.table.setItem(r, c, cell)


def _metrics_table() -> QTableWidget:
    table = QTableWidget(4, 3)
    table.setHorizontalHeaderLabels(["Before", "After", "Change"])
    table.setVerticalHeaderLabels(["Accuracy", "Precision", "Recall", "F1"])
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.NoSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
    table.setFocusPolicy(Qt.NoFocus)
    rows = table.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.Fixed)
    height = table.horizontalHeader().sizeHint().height()
    height += 4 * rows.defaultSectionSize() + 2 * table.frameWidth()
    table.setFixedHeight(height)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    return table


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


# The Import/Export menu's entries: the window's action name -> the entry's text.
FILE_ACTIONS = {
    "import_labels": "Import labels CSV…",
    "export_labels": "Export labels CSV…",
    "export_report": "Export report (CSV + JSON)…",
}


class ActionRow(QWidget):
    """The buttons above the panel: Label as, Defect types, Import/Export, Retrain."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label_button = QToolButton()
        self.label_button.setText("Label as")
        self.label_button.setToolTip("Set the label with the mouse (or clear it)")
        self.label_button.setPopupMode(QToolButton.InstantPopup)
        self.label_menu = QMenu(self.label_button)
        self.label_button.setMenu(self.label_menu)
        self.types_button = QPushButton("Defect types…")
        self.types_button.setToolTip("Add, rename, merge or recolour the project's defect types")
        self.more_button = QToolButton()
        self.more_button.setText("Import/Export")
        self.more_button.setPopupMode(QToolButton.InstantPopup)
        self.more_button.setMenu(QMenu(self.more_button))
        self.file_actions = {}
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setObjectName("primary")
        self.retrain_button.setToolTip(
            "Retrain the defect classifier from the current labels and show what changed"
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for widget in (self.label_button, self.types_button, self.more_button):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.retrain_button)

    def add_file_actions(self, **callbacks) -> None:
        """The Import/Export menu: name -> callback for each of FILE_ACTIONS, each entry
        enabled as the window's action of that name."""
        menu = self.more_button.menu()
        self.file_actions = {
            name: menu.addAction(text, callbacks[name]) for name, text in FILE_ACTIONS.items()
        }

    def show_enabled(self, enabled: dict[str, bool]) -> None:
        """Enable the buttons as actions.enabled_actions says for the window's actions: Label
        as is "decide", Retrain "train", Defect types "types", the menu its entries'."""
        self.label_button.setEnabled(enabled["decide"])
        self.retrain_button.setEnabled(enabled["train"])
        self.types_button.setEnabled(enabled["types"])
        self.more_button.setEnabled(enabled["export_labels"])
        for name, action in self.file_actions.items():
            action.setEnabled(enabled[name])


def scrolled(body_layout) -> QScrollArea:
    """The panel's body in a scroll area, so that the panel never forces its dock to a size: a
    short bottom dock scrolls (rarely) instead of pushing the heat map out of the window."""
    body = NoHeightForWidth()
    body.setLayout(body_layout)
    body_layout.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setWidget(body)
    scroll.setFocusPolicy(Qt.NoFocus)
    return scroll


class NoHeightForWidth(QWidget):
    """The scroll area's content. Reporting no height-for-width makes the scroll area size it
    by its minimum, not by its preferred height: otherwise a short dock always scrolls."""

    def hasHeightForWidth(self) -> bool:
        return False


def describe_change(change) -> str:
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
