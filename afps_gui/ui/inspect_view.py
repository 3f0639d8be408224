"""The Inspect view: the newest part large with its heat map and verdict, a strip of the latest
results, the counters, the NG alarm and the watch controls.

This widget only draws and says what the user asked for (signals); ``inspect_control`` decides
what happens (jobs, files, the review queue). The verdict shown is the one the core posted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.inspection_log import NG
from .elided_label import ElidedLabel
from .inspect_counters import CountersWidget
from .inspect_image import THUMB_SIDE, VERDICT_COLOURS, ImagePane

STRIP_LENGTH = 40  # results kept in the strip
FLASHES = 6  # half-periods of the NG flash
FLASH_MS = 160
ALARM_STYLE = "background: #d92d20; color: white; font-weight: 700; padding: 6px 10px;"


def verdict_text(post: dict, sep: str = "   ·   ") -> tuple[str, str]:
    """(big word, the lines under it joined by ``sep``) of a posted result."""
    name = Path(post["file"]).name
    if post.get("verdict") is None:
        return "—", f"Unreadable: {post.get('error') or 'unknown reason'}{sep}{name}"
    parts = []
    if post["verdict"] == NG:
        conf = post.get("confidence")
        # An untyped NG part says why (the close look failed: line_inspection.UNTYPED).
        kind = post.get("type") or post.get("error") or "type unknown"
        parts.append(kind if conf is None else f"{kind}  {conf:.0%} sure")
    score, thr = post.get("score"), post.get("threshold")
    if score is not None:
        parts.append(f"score {score:.1f}" + ("" if thr is None else f" / threshold {thr:.1f}"))
    parts.append(name)
    return post["verdict"], sep.join(parts)


def _swatch(verdict: Optional[str]) -> QIcon:
    pixmap = QPixmap(THUMB_SIDE, THUMB_SIDE)
    pixmap.fill(QColor("#202124"))
    painter = QPainter(pixmap)
    painter.setPen(QPen(QColor(VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[None])), 6))
    painter.drawRect(3, 3, THUMB_SIDE - 6, THUMB_SIDE - 6)
    painter.end()
    return QIcon(pixmap)


class InspectView(QWidget):
    start_requested = Signal()
    pause_requested = Signal()
    choose_folder_requested = Signal()
    options_changed = Signal()
    new_shift_requested = Signal()
    result_clicked = Signal(int)  # a result's id in the strip
    follow_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._items: dict[int, QListWidgetItem] = {}
        self._swatches: dict[Optional[str], QIcon] = {}
        self._flash_left = 0
        self._verdict: Optional[str] = "none"
        self._watching = False
        self._build()

    # --- building -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._source_row())
        self.alarm_bar = self._alarm_bar()
        layout.addWidget(self.alarm_bar)
        middle = QHBoxLayout()  # the part as large as the dock allows; the rest beside it
        self.pane = ImagePane()
        middle.addWidget(self.pane, 1)
        middle.addWidget(self._side_scroll())
        layout.addLayout(middle, 1)
        layout.addWidget(self._strip())
        self.flash_timer = QTimer(self)
        self.flash_timer.setInterval(FLASH_MS)
        self.flash_timer.timeout.connect(self._flash_step)

    def _source_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("Start watching")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self._start_clicked)
        row.addWidget(self.start_button)
        row.addWidget(QLabel("Folder:"))
        self.folder_label = ElidedLabel("(none chosen)", mode=Qt.TextElideMode.ElideMiddle)
        self.folder_label.setObjectName("readout")
        row.addWidget(self.folder_label, 1)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setToolTip("The folder the camera writes a file per part into")
        self.choose_button.clicked.connect(self.choose_folder_requested)
        row.addWidget(self.choose_button)
        self.state_label = ElidedLabel("")
        self.state_label.setObjectName("hint")
        row.addWidget(self.state_label, 1)
        return row

    def _options(self) -> QVBoxLayout:
        row = QVBoxLayout()
        row.setSpacing(2)
        self.recursive_box = QCheckBox("Sub-folders")
        self.recursive_box.setToolTip("Also inspect images in folders inside the watched one")
        self.sort_box = QCheckBox("Sort into OK / NG folders")
        self.jsonl_box = QCheckBox("JSON-lines file")
        self.beep_box = QCheckBox("Sound on NG")
        self.beep_box.setToolTip("Beep for every NG part (the banner shows it either way)")
        self.follow_box = QCheckBox("Show the newest part")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Off while you look at an older result from the strip")
        self.follow_box.toggled.connect(self.follow_changed)
        for box in (self.recursive_box, self.sort_box, self.jsonl_box, self.beep_box):
            box.toggled.connect(lambda _=False: self.options_changed.emit())
            row.addWidget(box)
        row.addWidget(self.follow_box)
        return row

    def _alarm_bar(self) -> QFrame:
        bar = QFrame()
        bar.setStyleSheet(ALARM_STYLE)
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        self.alarm_label = QLabel("")
        self.alarm_label.setStyleSheet("background: transparent; color: white;")
        row.addWidget(self.alarm_label, 1)
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.setStyleSheet("background: white; color: #b42318; padding: 2px 10px;")
        self.ack_button.clicked.connect(self.acknowledge)
        row.addWidget(self.ack_button)
        bar.setVisible(False)
        self._alarm_count = 0
        return bar

    def _verdict_box(self) -> QFrame:
        box = QFrame()
        box.setObjectName("verdictBox")
        row = QVBoxLayout(box)
        row.setContentsMargins(6, 2, 6, 4)
        row.setSpacing(0)
        self.verdict_label = QLabel("—")
        font = self.verdict_label.font()
        font.setPointSize(max(font.pointSize() * 3, 24))
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignLeft)
        row.addWidget(self.verdict_label)
        self.detail_label = QLabel("Start watching a folder to inspect the line.")
        self.detail_label.setWordWrap(True)
        self.detail_label.setMinimumHeight(3 * self.detail_label.fontMetrics().height())
        self.detail_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        dfont = self.detail_label.font()
        dfont.setPointSize(int(dfont.pointSize() * 1.15))
        self.detail_label.setFont(dfont)
        row.addWidget(self.detail_label)
        self.verdict_box = box
        return box

    def _side_scroll(self) -> QScrollArea:
        """The side column scrolls when the dock is short, so that the Inspect tab never makes
        the docks below it smaller than they need (the review panel at 1280 x 800)."""
        area = QScrollArea()
        area.setWidget(self._side_panel())
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setFixedWidth(300 + area.verticalScrollBar().sizeHint().width() + 6)
        return area

    def _side_panel(self) -> QWidget:
        side = QWidget()
        side.setFixedWidth(292)
        col = QVBoxLayout(side)
        col.setContentsMargins(4, 0, 0, 0)
        col.addWidget(self._verdict_box())
        title = QLabel("Counters")
        title.setStyleSheet("font-weight: 600;")
        col.addWidget(title)
        self.counters = CountersWidget()
        col.addWidget(self.counters)
        self.new_shift_button = QPushButton("New shift")
        self.new_shift_button.setToolTip(
            "Start the shift's counters from now (saved in the project)"
        )
        self.new_shift_button.clicked.connect(self.new_shift_requested)
        shift_row = QHBoxLayout()
        shift_row.addWidget(self.new_shift_button)
        self.shift_label = QLabel("")
        self.shift_label.setObjectName("hint")
        shift_row.addWidget(self.shift_label, 1)
        col.addLayout(shift_row)
        col.addStretch(1)
        col.addLayout(self._options())
        return side

    def _strip(self) -> QListWidget:
        strip = QListWidget()
        strip.setViewMode(QListWidget.ViewMode.IconMode)
        strip.setFlow(QListWidget.Flow.LeftToRight)
        strip.setWrapping(False)
        strip.setMovement(QListWidget.Movement.Static)
        strip.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        strip.setGridSize(QSize(THUMB_SIDE + 16, THUMB_SIDE + 26))
        strip.setFixedHeight(THUMB_SIDE + 42)
        strip.setUniformItemSizes(True)
        strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        strip.itemClicked.connect(lambda item: self._clicked(item))
        self.strip = strip
        return strip

    # --- state ----------------------------------------------------------------------------

    def set_state(self, watching: bool, can_start: bool, why_not: str, status: str) -> None:
        """Watching or not, whether Start may be pressed (and if not, why), a status line."""
        self._watching = watching
        self.start_button.setText("Pause" if watching else "Start watching")
        self.start_button.setEnabled(watching or can_start)
        self.start_button.setToolTip(
            "Stop inspecting; Start again resumes with the files not yet inspected"
            if watching else (why_not or "Inspect each new image in the folder as it arrives")
        )  # fmt: skip
        for widget in (self.choose_button, self.recursive_box, self.sort_box, self.jsonl_box):
            widget.setEnabled(not watching)  # they take effect at the next start
        self.state_label.setText(status)

    def _start_clicked(self) -> None:
        (self.pause_requested if self._watching else self.start_requested).emit()

    def set_folder(self, folder: str) -> None:
        self.folder_label.setText(folder or "(none chosen)")

    def set_options(self, recursive: bool, sort: bool, jsonl: bool, beep: bool, tips: dict):
        for box, on in ((self.recursive_box, recursive), (self.sort_box, sort),
                        (self.jsonl_box, jsonl), (self.beep_box, beep)):  # fmt: skip
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        self.sort_box.setToolTip(tips.get("sort", ""))
        self.jsonl_box.setToolTip(tips.get("jsonl", ""))

    def clear(self) -> None:
        self.strip.clear()
        self._items.clear()
        self.pane.show_image(None, "No part inspected yet.")
        self._show_verdict(None, "Start watching a folder to inspect the line.")
        self.acknowledge()

    # --- results --------------------------------------------------------------------------

    def add_result(self, post: dict) -> None:
        """A new result at the strip's left end (the oldest falls off the right)."""
        verdict = post.get("verdict")
        item = QListWidgetItem(self._swatch(verdict), verdict or "—")
        item.setData(Qt.ItemDataRole.UserRole, post["id"])
        item.setToolTip(verdict_text(post)[1])
        self.strip.insertItem(0, item)
        self._items[post["id"]] = item
        while self.strip.count() > STRIP_LENGTH:
            old = self.strip.takeItem(self.strip.count() - 1)
            self._items.pop(old.data(Qt.ItemDataRole.UserRole), None)

    def set_thumbnail(self, post_id: int, image) -> None:
        item = self._items.get(post_id)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def show_result(self, post: dict) -> None:
        word, detail = verdict_text(post, "\n")
        self._show_verdict(post.get("verdict"), detail, word)

    def show_picture(self, image, note: str = "") -> None:
        self.pane.show_image(image, note)

    def _show_verdict(self, verdict: Optional[str], detail: str, word: str = "—") -> None:
        self.verdict_label.setText(word)
        self.detail_label.setText(detail)
        if verdict != self._verdict:  # a style sheet costs a re-polish: only on a change
            self._verdict = verdict
            colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[None])
            self.verdict_label.setStyleSheet(f"color: {colour};")

    def _clicked(self, item: QListWidgetItem) -> None:
        self.follow_box.setChecked(False)
        self.result_clicked.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _swatch(self, verdict: Optional[str]) -> QIcon:
        icon = self._swatches.get(verdict)
        if icon is None:
            icon = self._swatches[verdict] = _swatch(verdict)
        return icon

    # --- the alarm ------------------------------------------------------------------------

    def alarm(self, post: dict) -> None:
        """An NG part: the banner says so until acknowledged, and the verdict flashes."""
        self._alarm_count += 1
        more = f"   ({self._alarm_count} NG since acknowledged)" if self._alarm_count > 1 else ""
        self.alarm_label.setText(f"NG: {verdict_text(post)[1]}{more}")
        self.alarm_bar.setVisible(True)
        if not self.flash_timer.isActive():
            self._flash_left = FLASHES
            self.flash_timer.start()

    def acknowledge(self) -> None:
        self._alarm_count = 0
        self.alarm_bar.setVisible(False)

    def alarm_shown(self) -> bool:
        return self.alarm_bar.isVisibleTo(self)

    def _flash_step(self) -> None:
        self._flash_left -= 1
        on = self._flash_left % 2 == 1
        self.verdict_box.setStyleSheet("QFrame#verdictBox { background: #fee4e2; }" if on else "")
        if self._flash_left <= 0:
            self.flash_timer.stop()
            self.verdict_box.setStyleSheet("")
