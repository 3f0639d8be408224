"""Review mode: walk the images in the order that needs eyes first and decide each in one key.

Keys (inside the panel): 1-9 a defect type in the project's type order, 0 normal, Space or Enter
accept the prediction, Left/Right (or Up/Down, or A/D) previous/next, Ctrl+Z undo and
Ctrl+Shift+Z (or Ctrl+Y) redo.

The queue, its counts and the decisions are a Qt-free ``ReviewSession``
(afps_gui/core/review_session.py); this panel only draws what the session says, in the parts of
review_widgets.py. Speed matters: an inspector decides hundreds of images in a row. A decision
is one ``LabelStore.set_label`` (one durable transaction) plus a redraw of the few things that
depend on that one image (its queue row, the counts, the progress). Nothing reloads the whole
label set or rebuilds the queue on a key press; that only happens on ``refresh()``, a filter
change, or an undo of a change that touched many images (an import, a rename, a merge).

Thumbnails are decoded in the background and the next images are prefetched, so a large photo
never stalls the key that moves to it. Label import and export live in review_files.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QLabel,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import review_queue as rq
from ..core.errors import AfpsError
from ..core.review_session import ReviewSession
from .actions import enabled_actions
from .history import History
from .review_files import (  # noqa: F401 - the panel's import/export, as they were imported
    ask_yes_no,
    choose_open_path,
    choose_save_path,
    export_labels_action,
    export_report_action,
    format_import_report,
    import_labels_action,
    known_threshold,
    readonly_text,
    report_rows,
    show_error,
    show_info,
)
from .review_keys import install_review_shortcuts, key_action
from .review_widgets import (  # noqa: F401 - prediction_text is part of this module's API
    ActionRow,
    LabelIcons,
    QueueList,
    RetrainTab,
    ReviewDetails,
    Thumb,
    describe_change,
    label_menu_entries,
    prediction_text,
    scrolled,
)
from .thumbnails import ThumbnailCache
from .types_dialog import DefectTypesDialog

THUMB_MAX_SIDE = 512
THUMB_CACHE = 48
PREFETCH = 3
WIDE_LAYOUT = 860  # px: from this panel width on, image, details and queue sit side by side


class ReviewPanel(QWidget):
    """Review and relabel the project's images, one key per decision."""

    current_changed = Signal(str)  # rel of the image under review
    labels_changed = Signal(list)  # rels whose human label changed (incl. by undo/redo)
    retrain_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project = None
        self.session = ReviewSession()
        self.icons = LabelIcons(self.session)
        self._current: Optional[str] = None
        self.busy = False  # a job runs (see set_busy)
        self.setFocusPolicy(Qt.StrongFocus)
        # Decoded at most this size (the label scales it down to fit the dock), in the order
        # asked: the image shown, then the next ones.
        self.thumbs = ThumbnailCache(THUMB_MAX_SIDE, THUMB_CACHE, enlarge=False, parent=self)
        self.thumbs.ready.connect(self._thumb_ready)
        self.history = History(self.session, self)
        self.history.changed.connect(self._history_applied)
        self.history.said.connect(lambda text, error: self._say(text, error=error))
        self._build()
        self._show_empty()

    # The thumbnail cache under the names the line tests read.
    _thumbs = property(lambda self: self.thumbs.pixmaps)
    _thumb_errors = property(lambda self: self.thumbs.errors)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.thumb = Thumb()
        self.thumb.resized.connect(self._fit_thumb)
        self.details = ReviewDetails(self.session, self.icons)
        self.queue = QueueList(self.session, self.icons)
        self.queue.picked.connect(self.select)
        self.queue.filters_changed.connect(self._filter_changed)
        self.retrain = RetrainTab(self.icons)
        self.retrain.picked.connect(lambda rel: self.select(rel, focus_list=False))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.queue, "Queue")
        self.tabs.addTab(self.retrain, "Last retrain")
        # The lists inside ask for a tall preferred size; ignoring it (with a floor) lets a
        # short bottom dock show everything without scrolling.
        self.tabs.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.tabs.setMinimumHeight(200)
        # Stacked in a tall dock, side by side in a wide one (see resizeEvent).
        self._body = QBoxLayout(QBoxLayout.TopToBottom)
        self._body.setSpacing(8)
        self._body.addWidget(self.thumb, 3)
        self._body.addWidget(self.details, 0)
        self._body.addWidget(self.tabs, 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.banner)
        layout.addWidget(self._build_actions())
        layout.addWidget(scrolled(self._body), 1)
        self._alias_parts()
        self.shortcuts = install_review_shortcuts(self)
        self.tabs.tabBar().setFocusPolicy(Qt.NoFocus)

    def _build_actions(self) -> ActionRow:
        self.action_row = actions = ActionRow()
        actions.types_button.clicked.connect(self.edit_types)
        actions.retrain_button.clicked.connect(self.retrain_requested.emit)
        actions.add_file_actions(
            import_labels=self._import,
            export_labels=lambda: export_labels_action(self, self.project),
            export_report=lambda: export_report_action(self, self.project),
        )
        self.label_button, self.label_menu = actions.label_button, actions.label_menu
        self.types_button, self.more_button = actions.types_button, actions.more_button
        self.retrain_button = actions.retrain_button
        return actions

    def _alias_parts(self) -> None:
        """The parts' widgets under the panel's names (tests and the main window use them)."""
        d, r = self.details, self.retrain
        self.info_image, self.info_label, self.info_pred = d.info_image, d.info_label, d.info_pred
        self.info_score, self.info_why, self.legend = d.info_score, d.info_why, d.legend
        self.message, self.progress_text, self.progress = d.message, d.progress_text, d.progress
        self.counts, self.filters, self.queue_view = d.counts, self.queue.filters, self.queue.view
        self.model = self.queue.model
        self.metrics_table, self.retrain_summary = r.table, r.summary
        self.changed_list, self.changed_title = r.changed_list, r.changed_title

    # ------------------------------------------------------------------ project

    def set_project(self, project) -> None:
        """Show a project's queue (None clears the panel)."""
        self.project = project
        self.session.project = project
        self.thumbs.clear()
        self.retrain.clear()
        self._current = None
        self.session.load()
        if project is None:
            self.queue.model.reset([])
            self._show_empty()
            return
        self._types_changed()
        self._rebuild_rows(keep=None)
        self._show_readonly()
        self._show_totals()

    def refresh(self) -> None:
        """Re-read labels, predictions, scores and types; rebuild the queue in review order.

        Emits labels_changed for images whose human label differs from what the panel showed
        (an import, a rename or an undo done elsewhere).
        """
        if self.project is None:
            return
        changed = self.session.load()
        self._types_changed()
        self._rebuild_rows(keep=self._current)
        self._show_readonly()
        self._show_totals()
        if changed:
            self.labels_changed.emit(changed)

    def refresh_images(self, rels: Iterable[str]) -> None:
        """Show what changed for a few images (parts the line just sent to review) without
        re-reading the whole queue."""
        if self.project is None:
            return
        added, changed = self.session.refresh_images(rels)
        for rel in added:
            self.queue.add(rel)
        for rel in changed:
            self.queue.redraw(rel)
        if added or changed:
            self._show_totals()
            if self._current is None and self.queue.rows:
                self.select(self.queue.rows[0])
            elif self._current in changed:
                self._show_item(self._current)

    def _types_changed(self) -> None:
        self.icons.clear()
        self.details.show_legend()
        self.label_menu.clear()
        for icon, text, callback in label_menu_entries(self.session, self.icons, self.decide):
            self.label_menu.addAction(icon, text, callback)
        self.label_menu.addSeparator()
        self.label_menu.addAction("Clear the human label", partial(self.decide, None))

    def _rebuild_rows(self, keep: Optional[str]) -> None:
        """Show the reasons that are switched on, in the session's order."""
        self.queue.reset()
        rows = self.queue.rows
        if keep is not None and keep in self.session and keep not in rows:
            keep = None  # filtered out: start from the top of what is shown
        target = keep if keep is not None else (rows[0] if rows else None)
        self._current = None  # force the display (and current_changed) for the new state
        if target is None:
            self._show_item(None)
        else:
            self.select(target)

    def _filter_changed(self) -> None:
        if self.project is not None:
            self._rebuild_rows(keep=self._current)

    # ------------------------------------------------------------------ public API

    def item(self, rel: str) -> Optional[rq.QueueItem]:
        return self.session.item(rel)

    @property
    def current(self) -> Optional[str]:
        return self._current

    def rows(self) -> list[str]:
        """The visible queue, in order."""
        return list(self.queue.rows)

    def select(self, rel: str, *, focus_list: bool = True) -> None:
        """Make ``rel`` the image under review (emits current_changed when it changes).

        An image the filter hides is shown anyway, in its place in the queue: the inspector
        asked for it (e.g. by clicking it in the browser).
        """
        if self.project is None or rel not in self.session:
            return
        row = self.queue.show_row(rel)
        self.queue.make_current(row)
        if rel == self._current:
            return
        self._current = rel
        self._show_item(rel)
        paths = self.session.paths
        for ahead in self.queue.rows[row + 1 : row + 1 + PREFETCH]:
            self.thumbs.request(ahead, paths.get(ahead))
        self.current_changed.emit(rel)

    def move(self, step: int) -> None:
        rows = self.queue.rows
        if not rows:
            return
        row = self.queue.row_of(self._current)
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
        try:
            changed = self.session.decide(rel, label)
        except AfpsError as exc:  # read-only (the banner says why) or refused by the store
            self._say(str(exc), error=True)
            return False
        self._redraw(changed)
        self._say("")
        self._after_decision(rel)
        return True

    def accept_prediction(self) -> bool:
        """Space/Enter: the prediction becomes the label (or confirm the dataset's label)."""
        item = self.session.item(self._current)
        target = None if item is None else (item.predicted or item.label)
        if target is None:
            self._say("No prediction to accept here: press a number key to label it.", error=True)
            return False
        return self.decide(target)

    def decide_type(self, index: int) -> bool:
        """Keys 1-9: the index-th defect type in the project's order."""
        name = self.session.type_at(index)
        if name is None:
            self._say(
                f"There is no defect type {index + 1}: this project has "
                f"{len(self.session.types)}. Add types under Defect types….",
                error=True,
            )
            return False
        return self.decide(name)

    def undo(self) -> None:
        self.history.undo()

    def redo(self) -> None:
        self.history.redo()

    def show_retrain_result(self, result) -> None:
        """Show held-out metrics before/after and the images whose prediction changed."""
        self.refresh()  # the retrain wrote new predictions
        self.retrain.show_result(result)
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
            image_counts=lambda: self.session.counts,
        )
        dialog.types_changed.connect(self.refresh)
        return dialog

    # ------------------------------------------------------------------ decisions

    def _redraw(self, rels: list[str]) -> None:
        """Redraw what depends on these images after the session changed them."""
        if not rels:
            return
        for rel in rels:
            self.queue.redraw(rel)
        self._show_totals()
        self.labels_changed.emit(list(rels))

    def _after_decision(self, rel: str) -> None:
        rows = self.queue.rows
        row = self.queue.row_of(rel)
        if row is not None and row + 1 < len(rows):
            self.select(rows[row + 1])
        else:
            self._show_item(rel)
            self._say("That was the last image in the queue. Refresh to re-sort it.")

    def _history_applied(self, step) -> None:
        """An undo or redo (from a key here or the window's menu) changed the labels."""
        if step.many:  # an import, rename or merge: many images and maybe the types
            self._types_changed()
            self._rebuild_rows(keep=self._current)
            self._show_readonly()
            self._show_totals()
            if step.changed:
                self.labels_changed.emit(step.changed)
        else:
            self._redraw(step.changed)
            self.select(step.change.image)  # show the image whose decision was undone/redone
        undid = "Undid" if step.undo else "Redid"
        self._say(f"{undid}: {describe_change(step.change)}")

    def _import(self) -> None:
        if import_labels_action(self, self.project):
            self.refresh()

    # ------------------------------------------------------------------ keys

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
        action = key_action(self, event)
        if action is None:
            super().keyPressEvent(event)
            return
        event.accept()
        action()

    # ------------------------------------------------------------------ display

    def _say(self, text: str, *, error: bool = False) -> None:
        self.details.say(text, error=error)

    def _show_empty(self) -> None:
        self.thumb.say("Open a project to review its images.")
        self.details.show_empty()
        self.banner.hide()
        self.set_busy(self.busy)

    def set_busy(self, busy: bool, enabled: Optional[dict[str, bool]] = None) -> None:
        """Enable the buttons by the window's rule (actions.enabled_actions); busy: a job runs.
        ``enabled``: that rule's answer when the window has just asked it."""
        self.busy = busy
        self.action_row.show_enabled(enabled or enabled_actions(self.project, busy))

    def _show_readonly(self) -> None:
        readonly = self.session.readonly
        if readonly:
            self.banner.setText(
                readonly_text(
                    self.project, "You can browse and export, but not change labels."
                ).replace("\n\n", " ")
            )
        self.banner.setVisible(readonly)
        self.set_busy(self.busy)

    def _show_totals(self) -> None:
        self.details.show_progress()
        self.details.show_counts()
        self.queue.update_titles()

    def _show_item(self, rel: Optional[str]) -> None:
        item = self.session.item(rel)
        self.details.show_item(item)
        if item is None:
            self.thumb.say("The queue is empty." if self.project else "")
        else:
            self._show_thumb(rel)

    def _show_thumb(self, rel: str) -> None:
        self.thumb.show_cached(self.thumbs, rel, self.session.paths.get(rel))

    def _thumb_ready(self, rel: str) -> None:
        if rel == self._current:
            self._show_thumb(rel)

    def _fit_thumb(self) -> None:
        pixmap = self.thumbs.pixmaps.get(self._current) if self._current else None
        if pixmap is not None:
            self.thumb.fit(pixmap)
