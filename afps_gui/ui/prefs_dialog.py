"""The preferences dialog: default device for new projects, this project's device, viewer look."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel

from ..core.devices import describe_device, resolve_device
from ..core.errors import AfpsError
from ..job_process import JOB_PRIORITIES, torch_threads_for_jobs
from .heatmap import COLORMAPS
from .prefs import DEVICES, Preferences


def device_names() -> str:
    names = []
    for choice in DEVICES:
        try:
            names.append(
                f"{choice}: {describe_device(resolve_device(choice), torch_threads_for_jobs())}"
            )
        except AfpsError:
            names.append(f"{choice}: not available here")
    return "\n".join(names)


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, project=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.prefs = prefs
        self.project = project
        form = QFormLayout(self)
        self.default_device = self._device_box(prefs.default_device)
        form.addRow("Default device for new projects", self.default_device)
        self.project_device = self._device_box(project.settings.device if project else "auto")
        self.project_device.setEnabled(project is not None and not project.readonly)
        form.addRow("Device for this project", self.project_device)
        hint = QLabel(device_names())
        hint.setObjectName("hint")
        form.addRow("", hint)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.setCurrentText(prefs.colormap)
        form.addRow("Heat-map colours", self.colormap)
        self.job_priority = QComboBox()
        self.job_priority.addItems(JOB_PRIORITIES)
        self.job_priority.setCurrentText(prefs.job_priority)
        self.job_priority.setToolTip(
            "How far fitting, scoring and training give way to other programs.\n"
            "below normal (default): the window stays smooth and jobs still progress\n"
            "on a busy PC. lowest: jobs use only what other programs leave, which can\n"
            "be nothing. normal: jobs compete with other programs as equals."
        )
        form.addRow("Job priority", self.job_priority)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _device_box(current: str) -> QComboBox:
        box = QComboBox()
        box.addItems(DEVICES)
        box.setCurrentText(current if current in DEVICES else "auto")
        return box

    def apply(self) -> bool:
        """Write the choices into the preferences (and the project); True if the project's
        device changed."""
        self.prefs.default_device = self.default_device.currentText()
        self.prefs.colormap = self.colormap.currentText()
        self.prefs.job_priority = self.job_priority.currentText()
        if self.project is None or self.project.readonly:
            return False
        device = self.project_device.currentText()
        if device == self.project.settings.device:
            return False
        resolve_device(device)  # refuse 'cuda' without a GPU before saving it
        self.project.settings.device = device
        self.project.save_settings()
        return True
