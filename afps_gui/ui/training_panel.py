"""The training panel: PaDiM and classifier settings, their jobs' buttons, curves and results.

The buttons are the window's own actions (Fit, Score, Train), so that one place enables and
disables them while a job runs; the panel only turns its forms into ProjectSettings.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.classifier import EpochStats
from ..core.errors import AfpsError
from ..core.pipeline import saved_models_summary
from .sweep_panel import SweepPanel
from .training_forms import ClassifierForm, PadimForm
from .training_results import TrainingCurves, TrainingResults


def action_button(action) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setMinimumWidth(130)
    return button


def _rich_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def tuning_html(tuning: dict) -> str:
    """The tuning table (TuneResult.as_dict()), compact enough for half a panel: the chosen
    settings in bold, candidates the time budget left out counted in one line."""
    defects = "synthetic defects pasted into them" if tuning["synthetic"] else "labelled defects"
    head = (
        f"<b>Tuned in {tuning['seconds']:.0f} s</b> on {tuning['n_fit']} normal images, scored "
        f"on {tuning['n_val_normal']} held-out normals and {tuning['n_val_defect']} {defects}. "
        "AUROC here is on the tuning images, not a test figure."
    )
    header = (
        "Model",
        "Backbone",
        "Input/stride",
        "Resize",
        "Pool",
        "Blur",
        "Edges",
        "Image",
        "Pixel",
    )
    cells = "".join(f"<th align='left'>{h}</th>" for h in header)
    rows, skipped = [], 0
    for r in tuning["rows"]:
        if r["note"].startswith("not tried"):
            skipped += 1
            continue
        st = r["settings"]
        tag = ("<b>", "</b>") if st == tuning["best"] else ("", "")
        values = (
            "kNN memory" if st["normal_model"] == "knn" else "Gaussian",
            st["backbone"].replace("efficientnet-", ""),
            f"{st['input_size'][0]}×{st['input_size'][1]}/{st['stride']}",
            st["resize"],
            st["feature_pool"],
            f"{st['sigma']:g}",
            "on" if st.get("edge_correction", True) else "off",
            _auroc(r["image_auroc"]),
            _auroc(r["pixel_auroc"]),
        )
        rows.append("<tr>" + "".join(f"<td>{tag[0]}{v}{tag[1]}</td>" for v in values) + "</tr>")
    foot = f"<br>{skipped} more candidates not tried: the time budget ran out." if skipped else ""
    return f"{head}<table cellspacing='4'><tr>{cells}</tr>{''.join(rows)}</table>{foot}"


def _auroc(v) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"


def scrolled(widget: QWidget, area: QScrollArea | None = None) -> QScrollArea:
    area = area or QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class _ScrolledDown(QScrollArea):
    """A scroll area as wide as its widget needs, scrolling only vertically: a form in a plain
    one was cut on the right (half-width fields, a hidden button) at 1280 px."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        bar = self.verticalScrollBar().sizeHint().width()
        # The widget's size hint: at its minimum, the buttons under the form elide their text.
        return QSize(self.widget().sizeHint().width() + bar, hint.height())

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint().expandedTo(QSize(0, super().sizeHint().height()))

    def eventFilter(self, watched, event) -> bool:
        # The form grows when it is filled (a project's settings, longer hints): the layout
        # around must ask for the new width, which a scroll area does not do by itself.
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)


def scrolled_down(widget: QWidget) -> QScrollArea:
    area = scrolled(widget, _ScrolledDown())
    widget.installEventFilter(area)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class TrainingPanel(QWidget):
    def __init__(self, actions: dict, parent=None):
        super().__init__(parent)
        self.project = None
        self._fit_html = ""  # the fit summary without its "Next" line
        self.tabs = QTabWidget()
        self.tabs.addTab(self._padim_tab(actions), "Anomaly model (PaDiM)")
        self.tabs.addTab(self._classifier_tab(actions), "Classifier")
        self.sweep = SweepPanel()
        self.tabs.addTab(self.sweep, "Sweep (paper)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)

    def _padim_tab(self, actions: dict) -> QWidget:
        page = QWidget()
        row = QHBoxLayout(page)
        self.padim_form = PadimForm()
        left = QVBoxLayout()
        left.addWidget(self.padim_form)
        buttons = QHBoxLayout()
        buttons.addWidget(action_button(actions["tune"]))
        buttons.addWidget(action_button(actions["fit"]))
        buttons.addWidget(action_button(actions["score"]))
        buttons.addStretch(1)
        left.addLayout(buttons)
        left.addStretch(1)
        holder = QWidget()
        holder.setLayout(left)
        row.addWidget(scrolled_down(holder), 0)
        right = QVBoxLayout()
        self.fit_summary = _rich_label("No anomaly model yet.")
        self.tuning_table = _rich_label("")
        right.addWidget(self.fit_summary)
        right.addWidget(self.tuning_table)
        right.addStretch(1)
        holder = QWidget()
        holder.setLayout(right)
        row.addWidget(scrolled(holder), 1)
        return page

    def _classifier_tab(self, actions: dict) -> QWidget:
        page = QSplitter(Qt.Orientation.Horizontal)
        self.classifier_form = ClassifierForm()
        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.classifier_form)
        column.addWidget(action_button(actions["train"]))
        column.addStretch(1)
        page.addWidget(scrolled(left))
        right = QSplitter(Qt.Orientation.Vertical)
        self.curves = TrainingCurves()
        self.results = TrainingResults()
        right.addWidget(self.curves)
        right.addWidget(self.results)
        page.addWidget(right)
        page.setStretchFactor(0, 0)
        page.setStretchFactor(1, 1)
        page.setSizes([300, 900])
        return page

    # --- project ----------------------------------------------------------------------------

    def set_project(self, project) -> None:
        self.project = project
        self.setEnabled(project is not None)
        if project is None:
            return
        self.load_settings()
        self.curves.clear()
        self.sweep.set_base(project.settings.classifier)
        saved = saved_models_summary(project)
        padim = saved["padim"]
        self.fit_summary.setText(
            f"<b>Fitted on {padim['n_train']} normal images.</b><br>Threshold: "
            f"{padim['threshold']:.2f}. Fit again after changing the settings."
            if padim and padim["threshold"] is not None
            else "No anomaly model yet: choose the settings (or <i>Tune</i>) and press Fit PaDiM."
            + (
                " The settings are tuned on the project's images before the first fit."
                if project.settings.auto_tune and project.settings.tuning is None
                else ""
            )
        )
        self._fit_html = self.fit_summary.text()  # what scoring adds its line to
        self.show_tuning(project.settings.tuning)
        if saved["classifier"]:
            self.results.show_saved(saved["classifier"])
            for epoch in saved["classifier"]["extra"].get("history") or []:
                try:
                    self.curves.add(EpochStats(**epoch))
                except TypeError:  # a file from another version: no curves, nothing worse
                    break
        else:
            self.results.clear()

    def load_settings(self) -> None:
        """Fill the forms from the project's saved settings."""
        self.padim_form.load(self.project.settings)
        self.classifier_form.load(self.project.settings)
        self.update_counts()

    def update_counts(self) -> None:
        """Labels changed: update how many normals and defects of each type there are (the
        forms keep what the user typed)."""
        if self.project is None:
            return
        normals, typed = self.project.training_images()
        counts = Counter(s.label for s in typed)
        self.padim_form.show_normals(len(normals))
        self.classifier_form.show_types(dict(sorted(counts.items())))

    def apply_padim_settings(self) -> bool:
        """Form -> project settings in memory (raises AfpsError for refused values); the job
        that uses them saves them."""
        self.padim_form.apply(self.project.settings)
        return True

    def apply_classifier_settings(self):
        self.classifier_form.apply(self.project.settings)
        return self.project.settings.classifier

    # --- results ----------------------------------------------------------------------------

    def show_fit_result(self, result) -> None:
        skipped = "".join(f"<br>• {r}: {why}" for r, why in result.skipped[:10])
        self.fit_summary.setText(
            f"<b>Fitted on {result.n_images} normal images</b> in {result.seconds:.1f} s.<br>"
            f"Threshold: {result.threshold:.2f} (set on held-out normals"
            " and the training defects).<br>"
            + (f"{len(result.skipped)} images skipped:{skipped}" if result.skipped else "")
        )
        self._fit_html = self.fit_summary.text()
        self.fit_summary.setText(
            self._fit_html + "<br>Next: <i>Score images</i> to see every image's anomaly map."
        )

    def show_score_result(self, result, has_classifier: bool) -> None:
        """Scoring replaces the fit's "Next" line with the step after it."""
        after = (
            "review the predictions (Review mode), then <i>Retrain</i> from your corrections."
            if has_classifier
            else "<i>Train classifier</i> (Classifier tab) to type the anomalies."
        )
        self.fit_summary.setText(
            self._fit_html
            + f"<br>Scored {result.n_scored} images: {result.n_anomalous} anomalous."
            + f"<br>Next: {after}"
        )

    def show_tuning(self, tuning) -> None:
        self.tuning_table.setText(tuning_html(tuning) if tuning else "")

    def training_started(self) -> None:
        self.tabs.setCurrentIndex(1)
        self.curves.clear()

    def show_train_result(self, result) -> None:
        self.results.show_result(result)

    def check_ready(self) -> None:
        if self.project is None:
            raise AfpsError("Open a project first.")
