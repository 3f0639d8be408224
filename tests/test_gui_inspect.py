"""The Inspect view drives the real watch job on a real fitted tiny project: images arriving in a
watched folder appear with their verdicts, the counters add up, NG parts enter the review queue
where a relabel is an ordinary undoable label change, and pause/resume records no part twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from test_gui_support import JOB_TIMEOUT_MS
from test_line_support import drop, images_of

from afps_gui.core.inspection_log import InspectionLog
from afps_gui.ui import inspect_control
from afps_gui.ui.inspect_control import TAKING, WATCHING
from afps_gui.ui.inspect_settings import load_settings

pytest_plugins = ["test_gui_support", "test_line_support"]


@pytest.fixture
def line_window(window, line_project_folder):
    assert window.open_project(line_project_folder)
    return window


def wait_posts(qtbot, control, n: int) -> None:
    qtbot.waitUntil(lambda: len(control.posts) >= n, timeout=JOB_TIMEOUT_MS)


def stop(qtbot, window) -> None:
    with qtbot.waitSignal(window.runner.finished, timeout=JOB_TIMEOUT_MS):
        window.inspect.pause()


def test_watch_show_count_review_relabel_pause_and_resume(
    qtbot, line_window, line_data, tmp_path, monkeypatch
):
    window, control, view = line_window, line_window.inspect, line_window.inspect.view
    line = tmp_path / "camera"
    line.mkdir()
    monkeypatch.setattr(
        inspect_control.QFileDialog, "getExistingDirectory", lambda *a, **k: str(line)
    )
    # One action from the fitted project: choose the folder, watch it, show the Inspect tab.
    assert window.actions["inspect_folder"].isEnabled()
    window.actions["inspect_folder"].trigger()
    assert window.runner.current == WATCHING and control.watching()
    assert view.start_button.text() == "Pause"
    assert not window.actions["fit"].isEnabled() and not window.actions["inspect_files"].isEnabled()
    assert load_settings(window.project.folder).folder == str(line)  # remembered per project

    drop(images_of(line_data, "good", 3) + images_of(line_data, "Spot", 2), line)
    wait_posts(qtbot, control, 5)
    posts = list(control.posts.values())
    assert {Path(p["file"]).name for p in posts} == {p.name for p in line.iterdir()}
    assert view.strip.count() == 5
    newest = posts[-1]
    assert view.verdict_label.text() == newest["verdict"]
    qtbot.waitUntil(view.pane.has_image, timeout=JOB_TIMEOUT_MS)  # drawn with its map
    qtbot.waitUntil(lambda: not control._wanted, timeout=JOB_TIMEOUT_MS)  # thumbnails made

    c = control.shift.counts
    assert c["parts"] == 5 and c["OK"] + c["NG"] == c["parts"]
    assert sum(c["ng_types"].values()) == c["NG"] and c["NG"] >= 1
    assert control.since_app.counts == c
    assert view.counters._rows["parts"][1].text() == "5"
    assert view.alarm_shown()

    # An NG part is in the review queue; relabelling it there is an undoable label change.
    ng = next(p for p in posts if p["verdict"] == "NG")
    review = window.review
    # The panel shows it when the inspector turns to it (the pointer comes to it).
    QApplication.sendEvent(review, QEvent(QEvent.Type.Enter))
    qtbot.waitUntil(lambda: review.item(ng["image"]) is not None, timeout=10_000)
    review.select(ng["image"])
    assert review.decide("Scratch")
    store = window.project.store
    assert store.label(ng["image"]) == "Scratch"
    window.undo()
    assert store.label(ng["image"]) is None

    # Pause stops the job; parts written meanwhile are inspected after resuming, none twice.
    stop(qtbot, window)
    assert not control.watching() and view.start_button.text() == "Start watching"
    assert window.actions["fit"].isEnabled()
    drop(images_of(line_data, "good", 5)[3:], line, prefix="late_")
    assert control.start()
    wait_posts(qtbot, control, 7)
    qtbot.wait(1500)  # a second look at the folder finds nothing new
    stop(qtbot, window)
    files = [p["file"] for p in control.posts.values()]
    assert len(files) == len(set(files)) == 7
    with InspectionLog.of_project(window.project.folder, readonly=True) as log:
        assert log.counts()["parts"] == 7
    assert control.shift.counts["parts"] == 7


def test_start_waits_for_another_job_and_counts_survive_a_reopen(
    qtbot, line_window, line_data, tmp_path
):
    window, control, view = line_window, line_window.inspect, line_window.inspect.view
    control.settings.folder = str(tmp_path)
    assert window.start_job("Another job", lambda ctx: ctx.cancel.wait(30))
    assert not view.start_button.isEnabled()
    assert "Another job is running" in view.start_button.toolTip()
    assert not control.start()
    with qtbot.waitSignal(window.runner.finished, timeout=JOB_TIMEOUT_MS):
        window.cancel_job()
    assert view.start_button.isEnabled()

    # Dropped files are inspected once; the job ends by itself.
    parts = drop(images_of(line_data, "good", 1) + images_of(line_data, "Scratch", 1), tmp_path)
    with qtbot.waitSignal(window.runner.finished, timeout=JOB_TIMEOUT_MS) as done:
        assert control.take_paths([str(p) for p in parts])
        assert window.runner.current == TAKING
    assert done.args[1] == "ok" and len(control.posts) == 2

    # A new shift counts from zero (and is remembered); since the app started does not.
    control.new_shift()
    assert control.shift.counts["parts"] == 0 and control.since_app.counts["parts"] == 2
    shift_start = control.shift.since
    folder = window.project.folder
    window.set_project(None)
    assert window.open_project(folder)
    assert window.inspect.shift.since == shift_start == load_settings(folder).shift_start
    qtbot.waitUntil(lambda: window.inspect.since_app.counts["parts"] == 2, timeout=10_000)
    assert window.inspect.shift.counts["parts"] == 0
    assert window.inspect.view.strip.count() == 0


def test_inspect_needs_a_fitted_writable_project(qtbot, window, demo_data, tmp_path):
    from test_gui_support import make_project

    assert not window.actions["inspect_folder"].isEnabled()
    assert "Open a fitted project" in window.inspect.view.start_button.toolTip()
    make_project(window, demo_data, tmp_path / "p")
    assert not window.actions["inspect_folder"].isEnabled()
    assert "Fit PaDiM first" in window.inspect.view.start_button.toolTip()
