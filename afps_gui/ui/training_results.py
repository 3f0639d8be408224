"""What training shows: live loss and accuracy curves, the metrics table, the confusion matrix."""

from __future__ import annotations

import math
from types import SimpleNamespace

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.classifier import EpochStats
from .line_chart import LineChart

METRIC_ROWS = (("accuracy", "Accuracy"), ("precision", "Precision (macro)"),
               ("recall", "Recall (macro)"), ("f1", "F1 (macro)"))  # fmt: skip


class TrainingCurves(QWidget):
    """Loss and accuracy per epoch, drawn as the epochs arrive."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = LineChart("Training loss", "epoch", "loss")
        self.acc_plot = LineChart("Accuracy", "epoch", "accuracy")
        self.loss_curve = self.loss_plot.add_series("loss", "#1f77b4")
        self.train_curve = self.acc_plot.add_series("train", "#1f77b4")
        self.val_curve = self.acc_plot.add_series("held-out test", "#d62728", square=True)
        for plot in (self.loss_plot, self.acc_plot):
            plot.integer_x = True
            plot.empty_text = "Curves appear as epochs finish."
            row.addWidget(plot)
        self.clear()

    def clear(self) -> None:
        self.epochs: list[EpochStats] = []
        self._loss_top = 0.0
        for plot in (self.loss_plot, self.acc_plot):
            plot.clear()
        self.acc_plot.set_ranges(y=(0.0, 1.02))

    def add(self, stats: EpochStats) -> None:
        self.epochs.append(stats)
        self._fix_ranges(stats)
        x = [s.epoch for s in self.epochs]
        self.loss_plot.set_points(self.loss_curve, x, [s.loss for s in self.epochs])
        self.acc_plot.set_points(self.train_curve, x, [s.train_accuracy for s in self.epochs])
        val = [(s.epoch, s.val_accuracy) for s in self.epochs if s.val_accuracy is not None]
        self.acc_plot.set_points(self.val_curve, [v[0] for v in val], [v[1] for v in val])

    def _fix_ranges(self, stats: EpochStats) -> None:
        """The whole run on the x axis from the first epoch on; the loss axis grows only when
        a loss goes above it, so the curve does not jump about as it falls."""
        for plot in (self.loss_plot, self.acc_plot):
            plot.set_ranges(x=(0.5, stats.epochs + 0.5))
        if stats.loss > self._loss_top:
            self._loss_top = max(stats.loss * 1.25, 1e-3)
            self.loss_plot.set_ranges(y=(0.0, self._loss_top))


class TrainingResults(QWidget):
    """Metrics (with the previous model's beside them) and the confusion matrix."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(QLabel("Held-out test images"))
        self.metrics = QTableWidget(0, 2)
        self.metrics.setHorizontalHeaderLabels(["this model", "previous"])
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        left.addWidget(self.metrics)
        right = QVBoxLayout()
        right.addWidget(QLabel("Confusion matrix (rows: true type, columns: predicted)"))
        self.confusion = QTableWidget(0, 0)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        right.addWidget(self.confusion, 1)
        row.addLayout(left, 1)
        row.addLayout(right, 1)
        self.choice = QLabel()
        self.choice.setWordWrap(True)
        self.choice.setTextFormat(Qt.TextFormat.RichText)
        self.choice.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # In a short dock the table scrolls instead of pushing the confusion matrix away.
        holder = QScrollArea()
        holder.setWidget(self.choice)
        holder.setWidgetResizable(True)
        holder.setFrameShape(QScrollArea.Shape.NoFrame)
        right.addWidget(holder, 1)
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)

    def clear(self) -> None:
        """Nothing trained in this project yet: no other project's figures stay on screen."""
        self.metrics.setRowCount(0)
        self.confusion.setRowCount(0)
        self.confusion.setColumnCount(0)
        self.choice.setText("No classifier trained yet.")

    def show_saved(self, saved: dict) -> None:
        """The figures the classifier file keeps about itself (after a restart)."""
        extra, config = saved.get("extra") or {}, saved.get("config") or {}
        metrics = extra.get("metrics") or {}
        n_test = sum(map(sum, metrics.get("confusion") or [])) or None
        self.show_result(
            SimpleNamespace(
                metrics=metrics,
                previous_metrics=None,
                flops=None,
                n_train=extra.get("n_train"),
                n_test=n_test,
                seconds=None,
                choice=extra.get("choice"),
                config=config,
            )
        )

    def show_result(self, result) -> None:
        m, prev = result.metrics or {}, result.previous_metrics or {}
        rows = [(label, m.get(key), prev.get(key), _pct) for key, label in METRIC_ROWS]
        rows.append(("FLOPs per image", result.flops, None, _flops))
        rows.append(("Training images", result.n_train, None, str))
        rows.append(("Test images", result.n_test, None, str))
        rows.append(("Time", result.seconds, None, lambda s: f"{s:.1f} s"))
        self.metrics.setRowCount(len(rows))
        self.metrics.setVerticalHeaderLabels([r[0] for r in rows])
        for i, (_, now, before, fmt) in enumerate(rows):
            self._cell(self.metrics, i, 0, "–" if now is None else fmt(now))
            self._cell(self.metrics, i, 1, "–" if before is None else fmt(before))
        self._show_confusion(m.get("confusion") or [], m.get("classes") or [])
        self.choice.setText(choice_html(result.choice, result.config))

    def _show_confusion(self, matrix: list[list[int]], classes: list[str]) -> None:
        n = len(classes)
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        self.confusion.setHorizontalHeaderLabels(classes)
        self.confusion.setVerticalHeaderLabels(classes)
        peak = max((max(r) for r in matrix if r), default=1) or 1
        for i in range(n):
            for j in range(n):
                value = matrix[i][j] if i < len(matrix) and j < len(matrix[i]) else 0
                item = self._cell(self.confusion, i, j, str(value))
                # Diagonal (right) in blue, off-diagonal (wrong) in red, darker for more images.
                base = QColor("#2b6cb0") if i == j else QColor("#c53030")
                base.setAlphaF(0.12 + 0.6 * value / peak if value else 0.0)
                item.setBackground(QBrush(base))

    @staticmethod
    def _cell(table: QTableWidget, row: int, col: int, text: str) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        table.setItem(row, col, item)
        return item


def choice_html(choice, config) -> str:
    """Which classifier was trained, and the cross-validation table that chose it."""
    config = config or {}
    what = _classifier_name(config.get("strategy", "?"), config.get("n"))
    if not choice:
        return f"<b>Classifier:</b> {what} (chosen in the settings)."
    if not choice.get("rows"):
        return (
            f"<b>Classifier:</b> {what}. Too few labels of some type to cross-validate: "
            "label at least 2 images of every type to let the labels choose."
        )
    head = (
        f"<b>Classifier: {what}</b>, chosen by {choice['folds']}-fold cross-validation on the "
        "training labels (the test images were not used):"
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{'<b>' if r['chosen'] else ''}{v}{'</b>' if r['chosen'] else ''}</td>"
            for v in (r["name"], r["head"], f"{100 * r['accuracy']:.1f} ± {100 * r['sd']:.1f} %")
        )
        + "</tr>"
        for r in choice["rows"]
    )
    header = "<tr><th align='left'>Candidate</th><th align='left'>Head</th><th align='left'>CV accuracy</th></tr>"
    return f"{head}<table cellspacing='4'>{header}{rows}</table>"


def _classifier_name(strategy: str, n) -> str:
    if strategy in ("pooled", "region"):
        return f"linear head on {strategy} patches, N = {n}"
    return f"ViT, {strategy} N = {n}"


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f} %"


def _flops(v) -> str:
    return f"{v / 1e6:.2f} M" if v >= 10_000 else f"{v / 1e3:.1f} k"
