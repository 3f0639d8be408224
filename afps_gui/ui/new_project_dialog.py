"""New project from a dataset folder: the layout is read and previewed before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.datasets import LAYOUTS, Dataset, load_dataset
from ..core.padim import PadimConfig
from ..core.project import ProjectSettings
from ..core.tuning import stride_for
from ..workers import JobRunner
from .training_forms import InputSize, backbone_combo

AUTO = "auto-detect"


def folder_row(edit: QLineEdit, on_browse) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(on_browse)
    row.addWidget(button)
    return holder


class NewProjectDialog(QDialog):
    """Pick dataset folder, project folder, layout, input size and backbone; preview; create.

    The preview reads (and validates) every image in a worker; OK stays disabled until the
    preview of the current choices succeeded, so what is created is what was shown.
    """

    def __init__(self, parent=None, start_dir: str = ""):
        super().__init__(parent)
        self.setWindowTitle("New project from a dataset folder")
        self.resize(760, 620)
        self.dataset: Optional[Dataset] = None
        self.runner = JobRunner(self)
        self.runner.progress.connect(self._progress)
        self._build(start_dir)

    def _build(self, start_dir: str) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.dataset_edit = QLineEdit(start_dir)
        self.project_edit = QLineEdit()
        self.layout_box = QComboBox()
        self.layout_box.addItems([AUTO, *LAYOUTS])
        self.auto_tune = QCheckBox(
            "Choose input size and normal model from this dataset's images (tuned before the "
            "first fit, a few minutes)"
        )
        self.auto_tune.setChecked(True)
        self.input_size = InputSize((224, 224))
        self.backbone = backbone_combo()
        self.auto_tune.toggled.connect(self._sync_input_size)
        self._sync_input_size()
        form.addRow("Dataset folder", folder_row(self.dataset_edit, self._browse_dataset))
        form.addRow("Project folder", folder_row(self.project_edit, self._browse_project))
        form.addRow("Layout", self.layout_box)
        form.addRow("Detection settings", self.auto_tune)
        form.addRow("Input size", self.input_size)
        form.addRow("Backbone", self.backbone)
        layout.addLayout(form)
        preview_row = QHBoxLayout()
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(self.preview)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        preview_row.addWidget(self.preview_button)
        preview_row.addWidget(self.progress, 1)
        layout.addLayout(preview_row)
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText(
            "Press Preview: the folder is read and checked, nothing is written yet."
        )
        layout.addWidget(self.summary, 2)
        layout.addWidget(QLabel("Skipped files and why"))
        self.skipped = QTreeWidget()
        self.skipped.setHeaderLabels(["File", "Reason"])
        self.skipped.setColumnWidth(0, 260)
        layout.addWidget(self.skipped, 1)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create project")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        for edit in (self.dataset_edit, self.project_edit):
            edit.textChanged.connect(self._invalidate)
        self.layout_box.currentTextChanged.connect(self._invalidate)
        self._invalidate()

    # --- choices ----------------------------------------------------------------------------

    def _sync_input_size(self) -> None:
        self.input_size.setEnabled(not self.auto_tune.isChecked())

    def _browse_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder", self.dataset_edit.text())
        if folder:
            self.dataset_edit.setText(folder)
            if not self.project_edit.text():
                self.project_edit.setText(str(Path(folder).parent / f"{Path(folder).name}-project"))

    def _browse_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Project folder", self.project_edit.text())
        if folder:
            self.project_edit.setText(folder)

    def chosen_layout(self) -> Optional[str]:
        text = self.layout_box.currentText()
        return None if text == AUTO else text

    def _invalidate(self, *args) -> None:
        self.dataset = None
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(False)

    # --- preview ----------------------------------------------------------------------------

    def preview(self) -> None:
        root = self.dataset_edit.text().strip()
        if not root:
            self.summary.setPlainText("Choose the dataset folder first.")
            return
        layout = self.chosen_layout()
        self._invalidate()
        self.summary.setPlainText("Reading the folder…")
        self.skipped.clear()
        self.preview_button.setEnabled(False)
        self.progress.setVisible(True)
        self.runner.start(
            "Reading the dataset",
            lambda ctx: load_dataset(root, layout, progress=ctx.progress, cancel=ctx.cancel),
            on_result=self._previewed,
            on_error=lambda f: self._preview_failed(f.message),
        )
        self.runner.finished.connect(self._preview_done)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(message or "%p %")

    def _preview_done(self, *args) -> None:
        self.runner.finished.disconnect(self._preview_done)
        self.preview_button.setEnabled(True)
        self.progress.setVisible(False)

    def _previewed(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.summary.setPlainText(dataset.summary(max_listed=20))
        for rel, reason in dataset.skipped:
            QTreeWidgetItem(self.skipped, [rel, reason])
        if not self.project_edit.text().strip():
            self.project_edit.blockSignals(True)
            self.project_edit.setText(str(dataset.root.parent / f"{dataset.root.name}-project"))
            self.project_edit.blockSignals(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)

    def _preview_failed(self, message: str) -> None:
        self.summary.setPlainText(f"This folder cannot be used:\n\n{message}")

    # --- result -----------------------------------------------------------------------------

    def project_folder(self) -> Path:
        return Path(self.project_edit.text().strip())

    def settings(self) -> ProjectSettings:
        """The settings for Project.create (raises AfpsError for values core refuses)."""
        return ProjectSettings(
            dataset_root=str(self.dataset.root),
            layout=self.dataset.layout,
            padim=PadimConfig(
                backbone=self.backbone.currentData(),
                input_size=self.input_size.value(),
                stride=stride_for(self.input_size.value()),
            ),
            auto_tune=self.auto_tune.isChecked(),
        )

    def reject(self) -> None:
        self.runner.cancel()
        self.runner.wait(5000)
        super().reject()
