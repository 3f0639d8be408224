"""The paper's sweep from the UI: a small plan, the tables (core's markdown) and Fig. 1 in pyqtgraph."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .. import resources
from ..core.errors import AfpsError
from ..core.experiment import ExperimentPlan
from ..core.project_jobs import SweepResult, default_plan
from ..core.selection import STRATEGIES
from .training_forms import spin

STRATEGY_PENS = {"afps": "#d62728", "random": "#1f77b4", "top": "#ff7f0e"}
STRATEGY_NAMES = {"afps": "AFPS", "random": "random (baseline)", "top": "top-N"}


def _numbers(text: str, kind=int) -> tuple:
    try:
        values = tuple(kind(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError as exc:
        raise AfpsError(f"'{text}' is not a comma-separated list of numbers.") from exc
    if not values:
        raise AfpsError("Give at least one value.")
    return values


class SweepPanel(QWidget):
    run_requested = Signal(object)  # ExperimentPlan

    def __init__(self, parent=None):
        super().__init__(parent)
        self.base = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plan_form())
        split = QSplitter()
        self.tables = QTextBrowser()
        self.tables.setPlaceholderText(
            "Run the sweep to fill Table I (metrics by N and strategy) and Table II (AFPS "
            "accuracy by sd)."
        )
        self.plot = pg.PlotWidget(background="w", title="Accuracy against N")
        self.plot.setLabel("bottom", "patches per image N")
        self.plot.setLabel("left", "accuracy (%)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(-8, 8))
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        # Accuracy is a percentage: the axis runs 0-100 before any result too (an empty plot
        # showed pyqtgraph's default 0-1 under "accuracy (%)").
        self.plot.setYRange(0, 100, padding=0.02)
        self.plot.getViewBox().setLimits(yMin=-2, yMax=102)
        self._frame_ns()
        self.ns.textChanged.connect(self._frame_ns)
        split.addWidget(self.tables)
        split.addWidget(self.plot)
        layout.addWidget(split, 1)

    def _plan_form(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        form = QFormLayout()
        plan = default_plan(_default_base())
        self.ns = QLineEdit(", ".join(map(str, plan.ns)))
        self.sds = QLineEdit(", ".join(f"{s:.2f}" for s in plan.sds))
        self.seeds = spin(1, 20, plan.seeds)
        self.epochs = spin(1, 1000, plan.base.epochs)
        self.strategy_boxes = {s: QCheckBox(s) for s in STRATEGIES}
        row = QHBoxLayout()
        for b in self.strategy_boxes.values():
            b.setChecked(True)
            row.addWidget(b)
        form.addRow("N values", self.ns)
        form.addRow("Strategies", row)
        form.addRow("sd values (N sweep uses 0.15)", self.sds)
        form.addRow("Seeds", self.seeds)
        form.addRow("Epochs per run", self.epochs)
        column.addLayout(form)
        self.run_button = QPushButton(resources.icon("sweep"), "Run sweep")
        self.run_button.clicked.connect(self._request)
        column.addWidget(self.run_button)
        column.addStretch(1)
        return box

    def set_base(self, config) -> None:
        self.base = config

    def plan(self) -> ExperimentPlan:
        strategies = tuple(s for s, b in self.strategy_boxes.items() if b.isChecked())
        if not strategies:
            raise AfpsError("Tick at least one strategy.")
        ns = _numbers(self.ns.text())
        base = replace(self.base or _default_base(), epochs=self.epochs.value())
        sd_ns = sorted(ns)
        return ExperimentPlan(
            ns=ns,
            strategies=strategies,
            sds=_numbers(self.sds.text(), float),
            sd=0.15,
            sd_sweep_n=sd_ns[len(sd_ns) // 2],
            seeds=self.seeds.value(),
            base=base,
        )

    def _frame_ns(self) -> None:
        """Before a result, the N axis spans the N values the sweep would try."""
        if self.plot.listDataItems():
            return
        try:
            ns = _numbers(self.ns.text())
        except AfpsError:
            return
        if ns:
            self.plot.setXRange(min(ns), max(ns), padding=0.05)

    def _request(self) -> None:
        try:
            plan = self.plan()
        except AfpsError as exc:
            from . import messages

            messages.error(self, str(exc))
            return
        self.run_requested.emit(plan)

    def show_result(self, result: SweepResult) -> None:
        self.tables.setMarkdown(result.markdown)
        self.plot.clear()
        plan = result.plan
        for strategy in plan.strategies:
            pts = sorted(
                (e["n"], e["accuracy"], e["accuracy_std"])
                for e in result.summary
                if e["strategy"] == strategy
                and e["n"] in plan.ns
                and (strategy != "afps" or abs(e["sd"] - plan.sd) < 1e-9)
            )
            if not pts:
                continue
            n, acc, std = (np.array(v, dtype=float) for v in zip(*pts))
            pen = pg.mkPen(STRATEGY_PENS[strategy], width=2)
            self.plot.plot(n, 100 * acc, pen=pen, symbol="o", symbolBrush=STRATEGY_PENS[strategy],
                           name=STRATEGY_NAMES[strategy])  # fmt: skip
            self.plot.addItem(pg.ErrorBarItem(x=n, y=100 * acc, height=200 * std, pen=pen))


def _default_base():
    from ..core.classifier import ClassifierConfig

    return ClassifierConfig()
