"""The settings forms of the training panel, mapped one to one onto ProjectSettings.

``PadimForm`` edits ProjectSettings.padim and n_fit; ``ClassifierForm`` edits
ProjectSettings.classifier, the test fraction and the split seed. Each reads the project's
settings in and writes a validated copy out (core's dataclasses check the values).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from ..core.backbones import DEFAULT_BACKBONE, available_backbones
from ..core.classifiers import AUTO, CLASSIFIER_STRATEGIES
from ..core.padim import PadimConfig
from ..core.pooled_classifier import POOLED_STRATEGIES
from ..core.preprocess import RESIZE_MODES
from ..core.tuning import stride_for


def spin(lo: int, hi: int, value: int, step: int = 1, special: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)  # shown at the minimum: "all", "auto"
    return box


def dspin(lo: float, hi: float, value: float, step: float, decimals: int = 3) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def backbone_combo() -> QComboBox:
    box = QComboBox()
    for name, description in available_backbones().items():
        box.addItem(name, name)
        box.setItemData(box.count() - 1, description, 3)  # 3 = ToolTipRole
        if "missing" in description:
            box.setItemText(box.count() - 1, f"{name} (weights missing)")
    box.setCurrentIndex(max(0, box.findData(DEFAULT_BACKBONE)))
    return box


class InputSize(QWidget):
    def __init__(self, size=(256, 256), parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.h = spin(32, 2048, size[0], 32)
        self.w = spin(32, 2048, size[1], 32)
        for w in (self.h, QLabel("×"), self.w, QLabel("px (h × w)")):
            row.addWidget(w)
        row.addStretch(1)

    def value(self) -> tuple[int, int]:
        return self.h.value(), self.w.value()

    def set_value(self, size) -> None:
        self.h.setValue(int(size[0]))
        self.w.setValue(int(size[1]))


class PadimForm(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        self.backbone = backbone_combo()
        self.input_size = InputSize()
        self.d = spin(0, 4096, 0, 10, special="all channels")
        self.resize_mode = QComboBox()
        self.resize_mode.addItems(RESIZE_MODES)
        self.resize_mode.setToolTip(
            "squash: resize to the input size; fit: keep the aspect ratio and pad (long parts "
            "stay long, so a classifier cannot learn the photo's shape)"
        )
        self.normal_model = QComboBox()
        self.normal_model.addItem("Gaussian per position (PaDiM)", "gaussian")
        self.normal_model.addItem("Memory of normal patches (kNN)", "knn")
        self.normal_model.setToolTip(
            "Gaussian per position: for parts that always sit in the same place. Memory: the "
            "nearest normal patch from anywhere in the image, for parts that move or lie "
            "several to a picture. Tune compares both on your images."
        )
        self.n_fit = spin(0, 100000, 0, 10, special="auto (80 % of normals)")
        self.normals = QLabel()
        self.normals.setObjectName("hint")
        self.normals.setWordWrap(True)  # one long line made the form 700 px wide
        form.addRow("Backbone", self.backbone)
        form.addRow("Input size", self.input_size)
        form.addRow("Channels d", self.d)
        form.addRow("Resize", self.resize_mode)
        form.addRow("Normal model", self.normal_model)
        form.addRow("Normal images to fit", self.n_fit)
        form.addRow("", self.normals)

    def load(self, settings) -> None:
        p = settings.padim
        idx = self.backbone.findData(p.backbone)
        if idx < 0:
            self.backbone.addItem(f"{p.backbone} (unknown)", p.backbone)
            idx = self.backbone.count() - 1
        self.backbone.setCurrentIndex(idx)
        self.input_size.set_value(p.input_size)
        self.d.setValue(p.d or 0)
        self.resize_mode.setCurrentText(p.resize)
        self.normal_model.setCurrentIndex(max(0, self.normal_model.findData(p.normal_model)))
        self.n_fit.setValue(settings.n_fit or 0)

    def show_normals(self, n_normals: int) -> None:
        self.normals.setText(
            f"{n_normals} images are labelled normal (human labels count); "
            "some are kept aside to set the threshold."
        )

    def apply(self, settings) -> None:
        """Write the form into ``settings`` (raises AfpsError for values core refuses). Settings
        the user changed here are theirs: the project is no longer tuned automatically."""
        size = self.input_size.value()
        chosen = PadimConfig(
            **{
                **settings.padim.__dict__,
                "backbone": self.backbone.currentData(),
                "input_size": size,
                "d": self.d.value() or None,
                "resize": self.resize_mode.currentText(),
                "normal_model": self.normal_model.currentData(),
            }
        )
        if chosen != settings.padim:
            if chosen.input_size != settings.padim.input_size:
                chosen = replace(chosen, stride=stride_for(size))
            settings.auto_tune = False
        settings.padim = chosen
        settings.n_fit = self.n_fit.value() or None


STRATEGY_HELP = {
    AUTO: "Cross-validation on the training labels chooses among a linear head on pooled "
    "patches, the same with the close look at the defect, and the ViT with AFPS",
    "afps": "The paper's ViT on N patches drawn around the most anomalous patch",
    "random": "The paper's baseline: the ViT on N patches drawn anywhere",
    "top": "The ViT on the N most anomalous patches",
    "pooled": "A linear head on the mean and max of the N most anomalous patches and the "
    "image's mean patch (best with a few dozen labels)",
    "region": "As pooled, plus the same of a window cut around the defect from the original "
    "image at full resolution, and the region's shape",
}


class ClassifierForm(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        self.types = QLabel()
        self.types.setWordWrap(True)
        self.strategy = QComboBox()
        for name in (AUTO,) + CLASSIFIER_STRATEGIES:
            self.strategy.addItem(name)
            self.strategy.setItemData(
                self.strategy.count() - 1, STRATEGY_HELP[name], Qt.ItemDataRole.ToolTipRole
            )
        self.n = spin(1, 10000, 100, 10)
        self.sd = dspin(0.01, 1.0, 0.15, 0.05, 2)
        self.epochs = spin(1, 10000, 40)
        self.lr = dspin(1e-5, 1.0, 1e-3, 1e-4, 5)
        self.batch = spin(1, 4096, 16)
        self.test_fraction = dspin(0.05, 0.9, 0.4, 0.05, 2)
        self.seed = spin(0, 1_000_000, 0)
        self.strategy.currentTextChanged.connect(self._enable_fields)
        form.addRow("Defect types", self.types)
        form.addRow("Strategy", self.strategy)
        form.addRow("Patches N", self.n)
        form.addRow("AFPS sd", self.sd)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Batch size", self.batch)
        form.addRow("Test fraction", self.test_fraction)
        form.addRow("Seed", self.seed)

    def _enable_fields(self, strategy: str) -> None:
        # The linear heads have no epochs; auto uses them for the ViT candidate.
        vit = strategy not in POOLED_STRATEGIES
        self.sd.setEnabled(strategy in ("afps", AUTO))
        for w in (self.epochs, self.lr, self.batch):
            w.setEnabled(vit)

    def show_types(self, type_counts: dict[str, int]) -> None:
        self.types.setText(
            ", ".join(f"{t} ({n})" for t, n in type_counts.items()) or "none labelled yet"
        )

    def load(self, settings) -> None:
        c = settings.classifier
        self.strategy.setCurrentText(c.strategy)
        self._enable_fields(c.strategy)
        self.n.setValue(c.n)
        self.sd.setValue(c.sd)
        self.epochs.setValue(c.epochs)
        self.lr.setValue(c.lr)
        self.batch.setValue(c.batch_size)
        self.test_fraction.setValue(settings.test_fraction)
        self.seed.setValue(c.seed)

    def apply(self, settings) -> None:
        settings.classifier = replace(
            settings.classifier,
            strategy=self.strategy.currentText(),
            n=self.n.value(),
            sd=self.sd.value(),
            epochs=self.epochs.value(),
            lr=self.lr.value(),
            batch_size=self.batch.value(),
            seed=self.seed.value(),
        )
        settings.test_fraction = self.test_fraction.value()
