"""The window's panels, project life cycle, preferences, browser, read-only mode and labels."""

from __future__ import annotations

import json
import math
import threading

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication
from test_gui_support import make_project

from afps_gui.core.labels import Prediction
from afps_gui.core.project import Project
from afps_gui.ui.browser_model import ANY, COL_IMAGE, NO_PREDICTION, UNLABELLED

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def test_every_panel_opens(qtbot, window, demo_data, tmp_path):
    make_project(window, demo_data, tmp_path / "proj")
    for dock in window.docks.values():
        dock.show()
        dock.raise_()
        qtbot.waitUntil(dock.widget().isVisible, timeout=5000)
    for i in range(window.training.tabs.count()):
        window.training.tabs.setCurrentIndex(i)
        assert window.training.tabs.currentWidget().isVisible()
    assert window.status.device_label.text().startswith("Device: CPU")
    assert window.toolbar.actions()
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&Model", "&Labels", "&View", "&Help"]


def test_dialogs_open(qtbot, window, boxes, demo_data, tmp_path):
    from afps_gui.ui.new_project_dialog import NewProjectDialog
    from afps_gui.ui.prefs_dialog import PreferencesDialog

    make_project(window, demo_data, tmp_path / "proj")
    dialog = NewProjectDialog(window)
    qtbot.addWidget(dialog)
    dialog.dataset_edit.setText(str(tmp_path / "missing"))
    dialog.preview()
    qtbot.waitUntil(lambda: "cannot be used" in dialog.summary.toPlainText(), timeout=30_000)
    assert not dialog.buttons.buttons()[0].isEnabled() or dialog.dataset is None
    prefs = PreferencesDialog(window.prefs, window.project, window)
    qtbot.addWidget(prefs)
    prefs.project_device.setCurrentText("cpu")
    assert prefs.apply() is True
    assert Project.open(window.project.folder, readonly=True).settings.device == "cpu"
    window.actions["about"].trigger()
    assert "AFPS Inspector" in boxes.boxes[-1].text()


def test_open_project_errors_are_shown(qtbot, window, boxes, tmp_path):
    assert window.open_project(tmp_path / "nothing-here") is False
    assert "not an AFPS Inspector project" in boxes.texts()[-1]
    assert window.project is None


def test_preferences_and_layout_persist(qtbot, home, boxes, demo_data, tmp_path):
    from afps_gui.ui.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    make_project(first, demo_data, tmp_path / "proj")
    first.docks["inspector"].raise_()
    first.heatmap.cmap_box.setCurrentText("viridis")
    first.close()
    data = json.loads((home / "config" / "prefs.json").read_text())
    assert data["recent_projects"] == [str((tmp_path / "proj").resolve())]
    assert data["window_state"] and data["colormap"] == "viridis"

    second = MainWindow()
    qtbot.addWidget(second)
    assert second.prefs.recent_projects == data["recent_projects"]
    assert [a.text() for a in second.recent_menu.actions()] == data["recent_projects"]
    assert second.heatmap.cmap_box.currentText() == "viridis"
    second.recent_menu.actions()[0].trigger()
    assert second.project is not None and second.project.folder == (tmp_path / "proj")
    second.close()


def fake_results(project):
    """Predictions and scores written straight into the project, as a scoring run would."""
    rels = [s.rel for s in project.dataset.samples]
    preds = []
    for i, rel in enumerate(rels):
        label = "normal" if rel.startswith("good") else ("Spot" if i % 2 else "Scratch")
        preds.append(Prediction(rel, label, 0.5 if i % 3 == 0 else 0.9, float(i), "test-model"))
    project.store.set_predictions(preds)
    project.cache.write_index(
        "test", {rel: {"score": float(i), "box": [0, 64, 0, 64]} for i, rel in enumerate(rels)}
    )
    return rels


def test_browser_sorts_filters_and_searches(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    rels = fake_results(project)
    browser = window.browser
    browser.refresh()
    assert browser.visible_rels()[0] == rels[-1]  # sorted by score, highest first
    rows = {r.rel: r for r in browser.model.rows}
    assert not math.isnan(rows[rels[0]].score)

    browser.search.setText("spot_00")
    assert browser.visible_rels() and all("spot_00" in r for r in browser.visible_rels())
    browser.search.clear()

    browser.label_box.setCurrentText("Spot")
    assert len(browser.visible_rels()) == 8
    browser.label_box.setCurrentText(ANY)

    browser.disagree_box.setChecked(True)
    disagree = browser.visible_rels()
    assert disagree and all(rows[r].label != rows[r].prediction for r in disagree)
    browser.disagree_box.setChecked(False)

    browser.lowconf_box.setChecked(True)
    assert all(rows[r].confidence < 0.6 for r in browser.visible_rels())
    browser.lowconf_box.setChecked(False)

    browser.split_box.setCurrentText("fit")
    assert all(rows[r].split == "fit" for r in browser.visible_rels())
    browser.split_box.setCurrentIndex(0)

    assert NO_PREDICTION in [browser.pred_box.itemText(i) for i in range(browser.pred_box.count())]
    assert UNLABELLED in [browser.label_box.itemText(i) for i in range(browser.label_box.count())]
    assert browser.count_label.text() == "32 images"


def test_browser_header_sorts_and_the_selection_stays_on_its_image(
    qtbot, window, demo_data, tmp_path
):
    project = make_project(window, demo_data, tmp_path / "proj")
    fake_results(project)
    browser = window.browser
    browser.refresh()
    scores = [browser.model.rows[browser.model.row_of(r)].score for r in browser.visible_rels()]
    assert scores == sorted(scores, reverse=True)
    chosen = browser.visible_rels()[5]
    assert browser.select(chosen)

    header = browser.view.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(COL_IMAGE) + 5, 5))  # fmt: skip
    names = browser.visible_rels()
    assert names in (sorted(names, key=str.casefold), sorted(names, key=str.casefold)[::-1])
    assert browser.current_rel() == chosen  # the user's image stays selected

    browser.refresh()  # new scores after a job re-sort by the same column
    assert browser.visible_rels() == names and browser.current_rel() == chosen


def test_browser_keyboard_navigation_moves_the_viewers(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    fake_results(project)
    window.browser.refresh()
    window.browser.view.setFocus()
    with qtbot.waitSignal(window.browser.current_changed, timeout=5000) as blocker:
        qtbot.keyClick(window.browser.view, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    first = blocker.args[0]
    assert first == window.browser.visible_rels()[0]
    with qtbot.waitSignal(window.browser.current_changed, timeout=5000) as blocker:
        qtbot.keyClick(window.browser.view, Qt.Key.Key_Down)
    second = blocker.args[0]
    assert second == window.browser.visible_rels()[1]
    qtbot.waitUntil(
        lambda: window.heatmap.view and window.heatmap.view.rel == second, timeout=30_000
    )


def test_pages_behind_tabs_are_laid_out_before_they_are_first_shown(qtbot, window):
    """Train brings the training tab forward as its job starts: its first layout must not
    happen then (a stall of 40-55 ms on a busy 2-core machine)."""
    tabs = window.training.tabs
    hidden = [
        tabs.widget(i) for i in range(tabs.count()) if tabs.widget(i) is not tabs.currentWidget()
    ]
    visible = tabs.currentWidget()
    qtbot.waitUntil(lambda: all(p.size() == visible.size() for p in hidden), timeout=5000)
    heatmap = window.docks["heatmap"].widget()
    behind = [window.docks[n].widget() for n in ("inspector", "training")]
    qtbot.waitUntil(lambda: all(p.size() == heatmap.size() for p in behind), timeout=5000)
    form_column = window.training.classifier_form.parentWidget()  # on the hidden Classifier tab
    assert form_column.geometry().width() > 0 and not hidden[0].isVisible()


def test_a_hidden_heat_map_loads_only_when_shown(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    fake_results(project)
    window.browser.refresh()
    window.docks["training"].raise_()  # the heat map's tab is behind
    qtbot.waitUntil(lambda: not window.heatmap._on_screen)
    rel = window.browser.visible_rels()[3]
    window.browser.select(rel)
    window.tasks.wait(10_000)
    assert window.heatmap.view is None or window.heatmap.view.rel != rel  # no work while hidden
    window.docks["heatmap"].raise_()
    qtbot.waitUntil(lambda: window.heatmap.view and window.heatmap.view.rel == rel, timeout=30_000)


def test_browser_refresh_updates_single_rows(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    rel = project.dataset.samples[0].rel
    project.store.set_label(rel, "Spot")
    window.browser.refresh([rel])
    row = window.browser.model.rows[window.browser.model.row_of(rel)]
    assert row.label == "Spot"


def test_undo_redo_from_the_labels_menu(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    rel = next(s.rel for s in project.dataset.samples if s.label == "Scratch")
    project.store.set_label(rel, "Spot")
    window.labels_changed([rel])
    model = window.browser.model
    assert model.rows[model.row_of(rel)].label == "Spot"
    assert window.actions["undo"].isEnabled()
    window.actions["undo"].trigger()
    assert model.rows[model.row_of(rel)].label == "Scratch"
    assert window.actions["redo"].isEnabled()
    window.actions["redo"].trigger()
    assert model.rows[model.row_of(rel)].label == "Spot"


def test_read_only_project_shows_banner_and_disables_writing(qtbot, window, demo_data, tmp_path):
    folder = tmp_path / "proj"
    Project.create(folder, make_settings(demo_data)).close()
    holder = Project.open(folder)  # "another instance" holds the lock
    try:
        assert window.open_project(folder)
        assert window.project.readonly
        assert window.banner_bar.isVisible() and window.banner.isVisible()
        assert "read-only" in window.banner.text()
        assert window.status.readonly_label.isVisible()
        for name in ("fit", "score", "train", "run_all", "import_labels", "types", "undo"):
            assert not window.actions[name].isEnabled(), name
        assert window.actions["export_labels"].isEnabled()
        assert not window.heatmap.save_button.isEnabled()
    finally:
        window.set_project(None)
        holder.close()
    assert not window.banner_bar.isVisible()


def make_settings(demo_data):
    from test_gui_support import tiny_settings

    return tiny_settings(demo_data)


def test_review_panel_is_wired(qtbot, window, demo_data, tmp_path):
    if window.review is None:
        pytest.skip("the review module is not available in this checkout")
    project = make_project(window, demo_data, tmp_path / "proj")
    rel = project.dataset.samples[3].rel
    window.review.select(rel)
    assert window.browser.current_rel() == rel
    qtbot.waitUntil(lambda: window.heatmap.view and window.heatmap.view.rel == rel, timeout=30_000)
    project.store.set_label(rel, "Spot")
    window.review.labels_changed.emit([rel])
    model = window.browser.model
    assert model.rows[model.row_of(rel)].label == "Spot"


def test_crash_in_a_worker_thread_reaches_a_dialog_on_the_gui_thread(qtbot, window, boxes):
    from afps_gui.app import install_reporter
    from afps_gui.ui.messages import CrashDialog

    reporter = install_reporter(QApplication.instance(), lambda: window)
    seen_threads = []
    boxes.handlers["CrashDialog"] = lambda box: seen_threads.append(threading.current_thread())
    thread = threading.Thread(target=reporter.report, args=("RuntimeError: boom", "Traceback…"))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(seen_threads), timeout=5000)
    assert seen_threads == [threading.main_thread()]
    dialog = boxes.boxes[-1]
    assert isinstance(dialog, CrashDialog)
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == "Traceback…"


def test_thumbnails_load_lazily_newest_first_and_are_cached(qtbot, demo_data):
    import threading

    from afps_gui.ui.thumbnails import ThumbnailCache

    cache = ThumbnailCache(side=32, capacity=4, newest_first=True)
    paths = sorted(str(p) for p in demo_data.rglob("*.png") if "masks" not in p.parts)[:6]
    # The decoder is busy while all six are asked for (else, on a loaded machine, it can take
    # the first request before the others arrive, and the order below is not defined).
    busy = threading.Event()
    cache.tasks.submit("busy", lambda: busy.wait(30), lambda _: None)
    order = []
    cache.ready.connect(order.append)
    for p in paths:
        assert cache.fetch(p, p) is None  # queued, not decoded on the caller's thread
    busy.set()
    qtbot.waitUntil(lambda: len(order) == 6, timeout=30_000)
    # Newest request first (what is on screen now); the cache keeps the 4 most recent.
    assert order == paths[::-1] and not cache.errors
    assert list(cache.pixmaps) == paths[::-1][2:]
    pixmap = cache.fetch(paths[0], paths[0])
    assert pixmap is not None and max(pixmap.width(), pixmap.height()) <= 32
    cache.wait()


def test_a_thumbnail_that_cannot_be_decoded_says_why_and_is_not_asked_again(qtbot, tmp_path):
    from afps_gui.ui.thumbnails import ThumbnailCache

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cache = ThumbnailCache(side=32)
    with qtbot.waitSignal(cache.ready, timeout=30_000):
        assert cache.fetch("broken", broken) is None
    assert "broken" in cache.errors and cache.get("broken") is None
    cache.request("broken", broken)  # a known failure: no second decoding
    assert cache.tasks._callbacks == {}
    cache.wait()


def test_colour_scale_widens_to_a_map_that_would_saturate():
    import numpy as np

    from afps_gui.ui.view_data import display_levels

    # a model whose scale is 17-30 and an image whose map runs 66-79 (seen on magnetic tiles)
    amap = np.linspace(66, 79, 400 * 300, dtype=np.float32).reshape(400, 300)
    lo, hi = display_levels((17.0, 30.0), amap)
    assert lo == 17.0 and hi > 78.8
    # a calm map inside the scale keeps the model's scale: colours compare across images
    assert display_levels((17.0, 30.0), np.full((40, 40), 20.0, np.float32)) == (17.0, 30.0)


def test_the_report_uses_the_heat_maps_threshold(qtbot, window, demo_data, tmp_path, monkeypatch):
    """Export report from the window passes the threshold the heat map shows (the slider's)."""
    from afps_gui.ui import window_labels

    make_project(window, demo_data, tmp_path / "proj")
    asked = []
    monkeypatch.setattr(
        window_labels,
        "export_report_action",
        lambda _p, _project, threshold: asked.append(threshold),
    )
    window.heatmap.threshold = 12.5  # where the slider was moved
    window.actions["export_report"].trigger()
    assert asked == [12.5]
