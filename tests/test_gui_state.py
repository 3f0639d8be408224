"""State an inspector can trust (issue 13): what the window shows after project changes."""

from __future__ import annotations

import pytest
from test_gui_support import tiny_settings

from afps_gui.core.demo import make_demo_dataset

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def test_undo_does_not_reach_into_project_creation(qtbot, window, boxes, tmp_path):
    # A dataset with its own types: creating the project replaces the default Spot/Scratch.
    data = make_demo_dataset(tmp_path / "data", n_normal=6, n_per_type=3, size=(48, 48))
    for old, new in (("Spot", "Blowhole"), ("Scratch", "Crack")):  # folders name the types
        for parent in (data, data / "masks"):
            if (parent / old).is_dir():
                (parent / old).rename(parent / new)
    assert window.create_project(tmp_path / "proj", tiny_settings(data))
    store = window.project.store
    assert store.type_names() == ["Blowhole", "Crack"]
    assert not store.can_undo()
    window.actions["undo"].trigger()
    assert store.type_names() == ["Blowhole", "Crack"]  # no "Scratch" back, keys unchanged
    # The setup is still in the trail, for the audit.
    assert any(c.kind == "setup" for c in store.history())


def test_a_normal_start_reopens_the_users_project_not_the_demo(window, home, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from afps_gui.app import open_at_start

    opened = []
    demo = str(home / "data" / "demo-project")

    def fake_demo(*args, **kwargs):  # what open_demo leaves behind, without the demo's job
        opened.append("demo")
        window.prefs.add_recent(demo)

    monkeypatch.setattr(window, "open_demo", fake_demo)
    monkeypatch.setattr(window, "open_project", lambda f, **kw: opened.append(str(f)))
    open_at_start(window, SimpleNamespace(project=None, demo=True))  # the demo script, once
    mine = str((tmp_path / "mine").resolve())
    window.prefs.add_recent(mine)  # then the user opened a project of their own
    opened.clear()
    open_at_start(window, SimpleNamespace(project=None, demo=False))  # a plain start
    assert opened == [mine]
    assert window.prefs.recent_projects[0] == mine


def test_results_belong_to_their_project_and_survive_a_restart(qtbot, window, boxes, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    first = make_project(window, data, tmp_path / "a")
    window.training.classifier_form.epochs.setValue(2)
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "train") == "ok"
    results = window.training.results
    accuracy = results.metrics.item(0, 0).text()
    assert accuracy.endswith("%") and results.confusion.rowCount() == 2

    # Another project: none of the first one's figures stay on screen.
    make_project(window, data, tmp_path / "b")
    assert results.metrics.rowCount() == 0 and results.confusion.rowCount() == 0
    assert "No classifier trained yet" in results.choice.text()
    assert "No anomaly model yet" in window.training.fit_summary.text()

    # Back to the first (as after a restart): its model files say what they were.
    assert window.open_project(first.folder)
    assert results.metrics.item(0, 0).text() == accuracy
    assert len(window.training.curves.epochs) == 2  # the curves come back too
    assert results.confusion.rowCount() == 2
    assert "Fitted on" in window.training.fit_summary.text()
    assert not boxes.boxes, boxes.texts()


def test_progress_names_each_phase_and_runs_once_from_start_to_end(qtbot, window, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "p")
    window.training.classifier_form.epochs.setValue(2)
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "score") == "ok"
    reports = []
    window.runner.progress.connect(lambda d, t, m: reports.append((d, t, m)))
    assert trigger(qtbot, window, "train") == "ok"
    messages = [m for _, _, m in reports]
    assert any(m.startswith("Embedding training images: ") for m in messages)
    assert any(m.startswith("Classifying anomalous images") for m in messages)
    assert not any(m.startswith("Scoring") for m in messages)  # nothing re-scored
    assert {t for _, t, _ in reports} == {1000}  # one bar for the whole job
    fractions = [d for d, _, _ in reports]
    assert fractions == sorted(fractions)  # it never starts again


def test_time_left_reads_like_a_person_would_say_it():
    from afps_gui.ui.status import time_left

    assert time_left(2, 10, 100) == ""  # too early to tell
    assert time_left(30, 1, 100) == ""  # too little done to tell
    assert time_left(30, 50, 100) == "30 s left"
    assert time_left(60, 20, 100) == "about 4 min left"


def test_colour_bar_and_status_texts_do_not_outlive_their_project(qtbot, window, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "a")
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "score") == "ok"
    window.docks["heatmap"].raise_()
    top = window.browser.visible_rels()[0]
    window.browser.select(top)
    heat = window.heatmap
    qtbot.waitUntil(lambda: heat.view is not None and heat.view.rel == top, timeout=30_000)
    assert tuple(heat.colorbar.levels()) != (0, 1)
    assert window.status.currentMessage().startswith("Scored")  # said once, on the left
    assert window.status.job_label.text() == ""  # not twice (it was, on both sides)
    make_project(window, data, tmp_path / "b")
    assert tuple(heat.colorbar.levels()) == (0, 1)
    assert window.status.job_label.text() == "" and window.status.currentMessage() == ""


def test_threshold_mark_sits_at_its_value_and_the_handle_stays_put(qtbot, window, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "a")
    assert trigger(qtbot, window, "fit") == "ok"
    assert trigger(qtbot, window, "score") == "ok"
    window.docks["heatmap"].raise_()
    heat = window.heatmap
    rels = window.browser.visible_rels()
    handles = []
    for rel in (rels[0], rels[-1]):  # the most and the least anomalous: different map levels
        window.browser.select(rel)
        qtbot.waitUntil(lambda r=rel: heat.view is not None and heat.view.rel == r, timeout=30_000)
        lo, hi = heat.colorbar.levels()
        # The cyan mark on the colour bar is where the threshold's value is on its axis.
        axis_value = lo + (hi - lo) * heat.bar_line.value() / 256
        assert abs(axis_value - heat.threshold) < 1e-6 * max(1.0, abs(heat.threshold))
        handles.append(heat.threshold_slider.value())
    assert handles[0] == handles[1]  # the threshold did not change, nor does its handle


def test_the_types_dialog_counts_images_as_the_review_panel_does(qtbot, window, tmp_path):
    from test_gui_support import make_project

    data = make_demo_dataset(tmp_path / "data", n_normal=6, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "a")  # labels from the dataset's folders, none by hand
    panel = window.review
    qtbot.waitUntil(lambda: panel.counts.text() != "", timeout=30_000)
    assert "Spot&nbsp;<b>4</b>" in panel.counts.text()
    dialog = panel.types_dialog()
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert any(t.endswith("Spot   (4 images)") for t in texts), texts
    dialog.close()


def _laid_out_at(qtbot, window, size):
    window.resize(*size)
    qtbot.wait(50)
    window._default_sizes()  # as the first show does for a user without a saved layout
    qtbot.wait(200)


def test_panels_fit_the_window_at_inspection_pc_sizes(qtbot, window, tmp_path):
    from test_gui_support import make_project

    from afps_gui.ui.browser_model import COL_IMAGE, COLUMNS

    data = make_demo_dataset(tmp_path / "data", n_normal=6, n_per_type=3, size=(48, 48))
    make_project(window, data, tmp_path / "a")
    review = window.review
    for size in ((1600, 1000), (1280, 800)):
        _laid_out_at(qtbot, window, size)
        # The PaDiM form is never cut on the right: its scroll area is as wide as it needs.
        window.docks["training"].raise_()
        window.training.tabs.setCurrentIndex(0)
        qtbot.wait(100)
        form_area = window.training.padim_form.parentWidget().parentWidget().parentWidget()
        form = form_area.widget()
        assert form_area.viewport().width() >= form.minimumSizeHint().width(), size
        # The "Last retrain" tab does not make the review panel scroll (the thumbnail was cut).
        review.tabs.setCurrentIndex(1)
        qtbot.wait(100)
        outer = review.thumb.parentWidget().parentWidget().parentWidget()
        assert outer.verticalScrollBar().maximum() == 0, size
        review.tabs.setCurrentIndex(0)
    # At 1600 px every browser column shows its whole title without scrolling sideways.
    _laid_out_at(qtbot, window, (1600, 1000))
    view = window.browser.view
    header = view.horizontalHeader()
    assert header.length() <= view.viewport().width()
    for col, title in enumerate(COLUMNS):
        if col != COL_IMAGE:
            assert header.sectionSize(col) >= header.fontMetrics().horizontalAdvance(title), title
    assert header.sectionSize(COL_IMAGE) >= 120  # room for the thumbnail and a name


def test_the_sweep_plot_is_in_percent_before_any_result(window):
    view = window.training.sweep.plot.getViewBox()
    low, high = view.viewRange()[1]
    assert low <= 0 and high >= 100  # not pyqtgraph's 0-1 under "accuracy (%)"


def test_after_scoring_the_next_step_is_not_scoring(qtbot, window, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "a")
    assert trigger(qtbot, window, "fit") == "ok"
    assert "Next: <i>Score images</i>" in window.training.fit_summary.text()
    assert trigger(qtbot, window, "score") == "ok"
    text = window.training.fit_summary.text()
    assert "Score images" not in text and "Next: <i>Train classifier</i>" in text
    assert "Fitted on" in text  # the fit's own summary stays


def test_a_project_whose_images_moved_asks_for_their_folder(qtbot, window, boxes, tmp_path):
    import shutil

    from afps_gui.core.project import Project, ProjectSettings
    from afps_gui.ui import relocate

    data = make_demo_dataset(tmp_path / "far" / "data", n_normal=6, n_per_type=3, size=(48, 48))
    with Project.create(tmp_path / "proj", ProjectSettings(dataset_root=str(data))) as project:
        project.store.set_label("Spot/spot_000.png", "Scratch")
    moved = tmp_path / "elsewhere" / "images"
    shutil.move(str(data), str(moved))
    chosen = []
    qtbot_patch = pytest.MonkeyPatch()
    qtbot_patch.setattr(relocate.messages, "confirm", lambda *a, **k: True)
    qtbot_patch.setattr(
        relocate, "choose_folder", lambda parent, start: chosen.append(1) or str(moved)
    )
    try:
        assert not window.open_project(tmp_path / "proj", quiet=True)  # start-up: no dialog
        assert not chosen and "missing" in window.status.currentMessage()
        assert window.open_project(tmp_path / "proj")  # asked, pointed at the new folder
    finally:
        qtbot_patch.undo()
    assert chosen == [1]
    assert window.project.store.labels()["Spot/spot_000.png"] == "Scratch"
    assert len(window.project.dataset.samples) == 12


def test_quitting_after_a_job_warns_of_nothing(qtbot, qtlog, window, tmp_path):
    from test_gui_support import make_project, trigger

    data = make_demo_dataset(tmp_path / "data", n_normal=8, n_per_type=4, size=(48, 48))
    make_project(window, data, tmp_path / "a")
    assert trigger(qtbot, window, "fit") == "ok"
    window.browser.select(window.browser.visible_rels()[0])
    for dock in ("inspector", "training", "heatmap"):
        window.docks[dock].raise_()
        qtbot.wait(50)
    window.close()
    qtbot.wait(200)
    warnings = [r.message for r in qtlog.records if "QObject" in r.message]
    assert not warnings  # e.g. "shared QObject was deleted directly"
