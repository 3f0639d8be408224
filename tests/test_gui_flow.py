"""The whole flow from the UI on a tiny generated dataset: new project, fit, score, train."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QDialog, QDialogButtonBox
from test_gui_support import JOB_TIMEOUT_MS, trigger

from afps_gui.core import pipeline
from afps_gui.core.classifiers import load_classifier_file
from afps_gui.ui.browser_model import COL_PRED
from afps_gui.ui.new_project_dialog import NewProjectDialog

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def fill_new_project_dialog(qtbot, demo_data, folder):
    """What the user does in the dialog: pick folders, small input, preview, create."""

    def drive(dialog: NewProjectDialog) -> int:
        dialog.dataset_edit.setText(str(demo_data))
        dialog.project_edit.setText(str(folder))
        dialog.auto_tune.setChecked(False)  # the user chooses the settings: no tuning
        dialog.input_size.set_value((64, 64))
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert not ok.isEnabled()  # nothing can be created before the preview
        qtbot.mouseClick(dialog.preview_button, qtbot_left())
        qtbot.waitUntil(ok.isEnabled, timeout=JOB_TIMEOUT_MS)
        text = dialog.summary.toPlainText()
        assert "normal 16" in text and "Spot 8" in text and "Scratch 8" in text
        assert "masks" in text.lower()
        assert not folder.exists()  # the preview wrote nothing
        return QDialog.DialogCode.Accepted

    return drive


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_new_project_fit_score_train_from_the_ui(qtbot, window, boxes, demo_data, tmp_path):
    folder = tmp_path / "proj"
    boxes.handlers["NewProjectDialog"] = fill_new_project_dialog(qtbot, demo_data, folder)
    window.actions["new"].trigger()
    assert window.project is not None and (folder / "project.json").is_file()
    assert window.browser.model.rowCount() == 32
    assert not window.actions["score"].isEnabled()  # nothing to score with before a fit

    form = window.training.classifier_form
    form.epochs.setValue(3)
    form.n.setValue(20)
    window.training.padim_form.n_fit.setValue(10)

    assert trigger(qtbot, window, "fit") == "ok"
    assert window.project.padim_path.is_file()
    assert window.project.settings.n_fit == 10  # the form was saved to the project
    assert "Fitted on 10 normal images" in window.training.fit_summary.text()

    assert trigger(qtbot, window, "score") == "ok"
    rows = window.browser.model.rows
    assert all(not math.isnan(r.score) for r in rows)

    assert trigger(qtbot, window, "train") == "ok"
    assert window.project.classifier_path.is_file()
    # A new project lets cross-validation choose the classifier; the panel says which won.
    clf = load_classifier_file(window.project.classifier_path, device="cpu")
    assert window.project.settings.classifier.strategy == "auto"
    choice = window.training.results.choice.text()
    assert "cross-validation" in choice and clf.extra["choice"]["chosen"] in choice
    epochs = 1 if clf.config.strategy in ("pooled", "region") else 3
    assert len(window.training.curves.epochs) == epochs  # live curves got every epoch
    assert window.training.results.metrics.item(0, 0).text().endswith("%")
    assert window.training.results.confusion.rowCount() == 2

    # Predictions appear in the browser, beside the human labels.
    preds = {r.rel: r.prediction for r in window.browser.model.rows}
    assert all(preds.values())
    shown = [
        window.browser.proxy.index(i, COL_PRED).data()
        for i in range(window.browser.proxy.rowCount())
    ]
    assert any(s in ("Spot", "Scratch") for s in shown)
    assert not boxes.boxes[1:], boxes.texts()  # only the dialog: no error on the way


def test_heat_map_threshold_and_patch_inspector_follow_the_browser(
    qtbot, window, boxes, demo_data, tmp_path
):
    from test_gui_support import make_project

    make_project(window, demo_data, tmp_path / "proj")
    window.training.classifier_form.epochs.setValue(2)
    window.training.classifier_form.n.setValue(20)
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "train") == "ok"  # training scores every image too

    top = window.browser.visible_rels()[0]  # sorted by score, highest first
    window.docks["heatmap"].raise_()  # training brought its own tab to the front
    window.browser.select(top)
    heat = window.heatmap
    qtbot.waitUntil(
        lambda: heat.view is not None and heat.view.rel == top and heat.view.amap is not None,
        timeout=30_000,
    )
    assert heat.view.amap.shape == heat.view.image.shape[:2]
    assert heat.decision_label.text() == "ANOMALOUS"
    model_threshold = pipeline.load_padim(window.project).threshold
    assert heat.threshold == model_threshold

    assert heat.contour.image[..., 3].any()  # the anomalous region is outlined
    # A threshold above the image's score flips the decision live, without any job.
    heat.threshold_slider.setValue(heat.threshold_slider.maximum())
    assert heat.decision_label.text() == "normal"
    assert not heat.contour.image[..., 3].any()  # nothing above the threshold: no outline
    assert heat.save_button.isEnabled()

    # Hovering reads out the patch under the mouse.
    centre = heat.plot.vb.mapViewToScene(heat.image_item.boundingRect().center())
    heat._hover(centre)
    assert heat.hover_label.text().startswith("patch (")

    # "Save as project threshold" writes the model's threshold, then re-scores.
    new = heat.threshold
    with qtbot.waitSignal(window.runner.finished, timeout=JOB_TIMEOUT_MS):
        heat.save_button.click()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=JOB_TIMEOUT_MS)
    assert abs(pipeline.load_padim(window.project).threshold - new) < 1e-6

    # The patch inspector draws the selection and, with a classifier, the attention.
    window.docks["inspector"].raise_()
    insp = window.inspector
    qtbot.waitUntil(lambda: insp.clf_view is not None and insp.clf_view.rel == top, timeout=60_000)
    assert len(insp.left.dots.data) == len(insp.clf_view.prediction.positions)
    assert "Classifier:" in insp.prediction_label.text()
    insp.attention_box.setChecked(False)
    insp.strategy_box.setCurrentText("afps")
    insp.n_spin.setValue(15)
    assert len(insp.left.dots.data) == 15 and len(insp.right.dots.data) == 15
    before = np.array(insp.left.dots.getData()).copy()
    insp.resample_button.click()
    assert not np.array_equal(before, np.array(insp.left.dots.getData()))
    assert not boxes.boxes, boxes.texts()


def test_patch_inspector_shows_the_close_look_of_a_region_classifier(
    qtbot, window, boxes, demo_data, tmp_path
):
    from test_gui_support import make_project

    make_project(window, demo_data, tmp_path / "proj")
    window.training.classifier_form.strategy.setCurrentText("region")
    window.training.classifier_form.n.setValue(20)
    assert not window.training.classifier_form.epochs.isEnabled()  # a linear head: no epochs
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "train") == "ok"
    assert window.project.settings.classifier.strategy == "region"

    top = window.browser.visible_rels()[0]
    window.docks["inspector"].raise_()
    window.browser.select(top)
    insp = window.inspector
    qtbot.waitUntil(lambda: insp.clf_view is not None and insp.clf_view.rel == top, timeout=60_000)
    cv = insp.clf_view
    assert cv.look is not None and cv.look.image.shape[:2] == (
        cv.window[1] - cv.window[0],
        cv.window[3] - cv.window[2],
    )
    assert insp.right.isVisible() and insp.right.title.text().startswith("Close look")
    assert len(insp.right.dots.data) == len(cv.look_cells) == 20
    assert not boxes.boxes, boxes.texts()
