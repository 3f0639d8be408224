"""The main window's images and labels: which image every panel shows, undo and redo, the
defect types, label import and export. A part of MainWindow (a mixin)."""

from __future__ import annotations

from ..core.errors import AfpsError
from . import messages
from .review_files import export_labels_action, export_report_action, import_labels_action


class WindowLabels:
    """Images and labels of a MainWindow (which holds browser, heatmap, inspector, review)."""

    def show_image(self, rel: str) -> None:
        self.heatmap.show_image(rel)
        self.inspector.show_image(rel)
        if self.review.current != rel:
            self.review.select(rel, focus_list=False)

    def _review_moved(self, rel: str) -> None:
        if self.browser.current_rel() != rel and self.browser.select(rel):
            return  # the browser's signal updates the viewers
        # The same image, or one the browser does not list (a part inspected on the line)
        self.heatmap.show_image(rel)
        self.inspector.show_image(rel)

    def labels_changed(self, rels: list) -> None:
        self.browser.refresh(list(rels) if rels else None)
        self.training.update_counts()
        self.update_actions()

    def undo(self) -> None:
        self.review.history.undo()

    def redo(self) -> None:
        self.review.history.redo()

    def _history_changed(self, step) -> None:
        """After an undo or redo (menu or review keys): the panel emits labels_changed for
        the images it knows changed; a change of many images or of the types redraws all."""
        if step.many:
            self.labels_changed([])
        self.update_actions()

    def show_review(self) -> None:
        self.docks["review"].show()
        self.docks["review"].raise_()
        widget = self.docks["review"].widget()
        widget.setFocus()

    def edit_types(self) -> None:
        if self.project is None:
            return
        messages.exec_box(self.review.types_dialog())
        self.labels_changed([])  # every row: a rename or merge relabels many images

    def import_labels(self) -> None:
        if self._label_action(import_labels_action):
            self.browser.refresh()
            self.review.refresh()
            self.training.update_counts()

    def export_labels(self) -> None:
        self._label_action(export_labels_action)

    def export_report(self) -> None:
        """The report at the heat map's threshold: the saved one, or where the slider is."""
        threshold = self.heatmap.threshold
        self._label_action(lambda parent, project: export_report_action(parent, project, threshold))

    def _label_action(self, action) -> bool:
        """Run an import/export action on the open project; True when labels changed."""
        if self.project is None:
            return False
        try:
            return bool(action(self, self.project))
        except AfpsError as exc:
            messages.error(self, str(exc))
            return False
