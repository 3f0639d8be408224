"""Jobs from the UI: cancelling leaves no partial model; a failing job is shown, not fatal."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time

import pytest
from test_gui_support import make_project, run_job, trigger

from afps_gui.job_process import ProcessJob

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A fit slow enough (one 224 x 224 image per batch) that a cancel sent at its first progress
# report always lands before it ends. The fit runs in a child process: nothing here can patch it.
SLOW_FIT = {"batch_size": 1, "input_size": (224, 224)}


def cancel_on_first_progress(window):
    def cancel(done, total, message):
        window.runner.progress.disconnect(cancel)
        window.actions["cancel"].trigger()

    window.runner.progress.connect(cancel)


def test_tune_stores_the_best_settings_and_shows_the_table(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj")
    project.settings.tune_budget_s = 1  # the first, cheapest group of candidates only
    assert trigger(qtbot, window, "tune") == "ok"
    s = window.project.settings
    assert s.tuning is not None and not s.auto_tune
    assert list(s.padim.input_size) == s.tuning["best"]["input_size"]
    table = window.training.tuning_table.text()
    assert "Tuned in" in table and "not tried: the time budget ran out" in table
    saved = json.loads((project.folder / "project.json").read_text())
    assert saved["tuning"]["best"] == s.tuning["best"]  # the job saved what the window shows
    assert window.training.padim_form.input_size.value() == tuple(s.padim.input_size)


def test_cancel_during_fit_leaves_no_model(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj", **SLOW_FIT)
    assert not window.actions["cancel"].isEnabled()
    cancel_on_first_progress(window)
    assert trigger(qtbot, window, "fit") == "cancelled"
    assert not project.padim_path.exists()
    assert not list(project.padim_path.parent.glob("*.part"))
    assert "cancelled" in window.status.job_label.text()
    assert window.actions["fit"].isEnabled()  # usable again at once


def test_cancel_during_refit_keeps_the_old_model(qtbot, window, demo_data, tmp_path):
    project = make_project(window, demo_data, tmp_path / "proj", **SLOW_FIT)
    assert trigger(qtbot, window, "fit") == "ok"
    before = digest(project.padim_path)
    cancel_on_first_progress(window)
    assert trigger(qtbot, window, "fit") == "cancelled"
    assert digest(project.padim_path) == before
    assert not list(project.padim_path.parent.glob("*.part"))


def test_failing_fit_shows_the_message_and_app_stays_usable(
    qtbot, window, boxes, demo_data, tmp_path
):
    project = make_project(window, demo_data, tmp_path / "proj")
    moved = demo_data.with_name(demo_data.name + "-moved")
    demo_data.rename(moved)  # the dataset's drive is unplugged
    try:
        assert trigger(qtbot, window, "fit") == "failed"
    finally:
        moved.rename(demo_data)
    assert len(boxes.boxes) == 1
    box = boxes.boxes[0]
    assert str(demo_data) in box.text()  # the user's message names what is missing
    assert "Traceback" in box.detailedText()  # the traceback is behind "Details"
    assert not project.padim_path.exists()
    assert not window.runner.busy and window.actions["fit"].isEnabled()
    assert trigger(qtbot, window, "fit") == "ok"  # the real fit works right after the failure
    assert project.padim_path.is_file()


@pytest.mark.parametrize(
    "target, shown, detail",
    [
        ("boom", "unexpected", "RuntimeError: boom"),
        ("die", "stopped unexpectedly", "signal 9"),  # killed, e.g. out of memory
    ],
)
def test_a_job_that_crashes_or_dies_is_reported(
    qtbot, window, boxes, demo_data, tmp_path, target, shown, detail
):
    make_project(window, demo_data, tmp_path / "proj")
    job = ProcessJob(f"gui_job_targets:{target}")
    assert run_job(qtbot, window, lambda: window.start_job("Probe", job)) == "failed"
    assert len(boxes.boxes) == 1
    assert shown in boxes.boxes[0].text()
    assert detail in boxes.boxes[0].detailedText()
    assert not window.runner.busy
    assert trigger(qtbot, window, "fit") == "ok"  # the app carries on


def test_a_job_process_reports_progress_posts_and_its_result(qtbot, window):
    posts, progress, results = [], [], []
    window.runner.progress.connect(lambda d, t, m: progress.append((d, t, m)))
    job = ProcessJob("gui_job_targets:report", {"items": 3})

    def start():
        return window.start_job("Probe", job, on_post=posts.append, on_result=results.append)

    assert run_job(qtbot, window, start) == "ok"
    assert posts == [{"item": 0}, {"item": 1}, {"item": 2}]
    assert progress[-1] == (3, 3, "item 3")
    child = results[0]
    assert child["pid"] != os.getpid()
    assert child["threads"] == max(1, (os.cpu_count() or 2) - 1)  # a core left for the UI
    if hasattr(os, "nice"):
        assert child["nice"] > os.nice(0)  # the UI wins a contested core
    if hasattr(os, "SCHED_IDLE"):  # not SCHED_IDLE: a busy PC must not starve the job
        assert child["policy"] == {os.SCHED_OTHER}
    app_cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if app_cores and len(app_cores) > 1:  # one core is always free of the job for the UI
        assert child["cores"] == app_cores[1:]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_the_job_priority_is_the_users_preference(qtbot, window, monkeypatch, tmp_path):
    from afps_gui.ui import prefs_dialog

    monkeypatch.setattr("afps_gui.ui.main_window.save_prefs", lambda prefs: None)
    dialog_seen = []

    def choose_lowest(dialog):
        dialog.job_priority.setCurrentText("lowest")
        dialog_seen.append(dialog)
        return prefs_dialog.PreferencesDialog.DialogCode.Accepted

    monkeypatch.setattr("afps_gui.ui.messages.exec_box", choose_lowest)
    window.edit_preferences()
    assert dialog_seen and window.prefs.job_priority == "lowest"
    results = []
    job = ProcessJob("gui_job_targets:report", {"items": 1})
    assert (
        run_job(qtbot, window, lambda: window.start_job("Probe", job, on_result=results.append))
        == "ok"
    )
    assert results[0]["policy"] == {os.SCHED_IDLE}
    assert results[0]["nice"] == 19


def test_on_windows_the_job_asks_for_the_below_normal_priority_class(monkeypatch):
    import ctypes

    from afps_gui import job_process

    calls = []

    class Kernel32:
        def GetCurrentProcess(self):
            return -1  # Windows' pseudo-handle of the calling process

        def SetPriorityClass(self, handle, value):
            calls.append((handle, value))
            return 1

    monkeypatch.setattr(job_process.sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WinDLL", lambda name, **kw: Kernel32(), raising=False)
    job_process.set_job_priority(job_process.DEFAULT_JOB_PRIORITY)
    job_process.set_job_priority("lowest")
    assert calls == [(-1, 0x4000), (-1, 0x0040)]  # BELOW_NORMAL_ and IDLE_PRIORITY_CLASS


def test_a_job_deaf_to_cancel_is_terminated(qtbot, window, monkeypatch):
    from afps_gui import job_process

    monkeypatch.setattr(job_process, "KILL_AFTER_CANCEL_S", 1.0)
    cancel_on_first_progress(window)
    t0 = time.monotonic()
    job = ProcessJob("gui_job_targets:deaf")
    assert run_job(qtbot, window, lambda: window.start_job("Probe", job)) == "cancelled"
    assert time.monotonic() - t0 < 30
    assert multiprocessing.active_children() == []


def test_one_heavy_job_at_a_time(qtbot, window, demo_data, tmp_path):
    make_project(window, demo_data, tmp_path / "proj", **SLOW_FIT)
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        window.actions["fit"].trigger()
        assert window.runner.busy
        for name in ("fit", "train", "run_all", "open", "new", "demo", "close"):
            assert not window.actions[name].isEnabled(), name
        assert window.actions["cancel"].isEnabled()
        assert window.start_job("another", lambda ctx: None) is False
        assert window.status.progress.isVisible()
    assert window.actions["fit"].isEnabled() and window.actions["score"].isEnabled()


def test_run_all_chains_fit_score_train(qtbot, window, demo_data, tmp_path):
    make_project(window, demo_data, tmp_path / "proj")
    with qtbot.waitSignal(window.pipeline_finished, timeout=240_000) as blocker:
        window.actions["run_all"].trigger()
    assert blocker.args == [True]
    assert window.project.classifier_path.is_file()
    assert all(r.prediction for r in window.browser.model.rows)


def test_the_window_keeps_torch_on_one_thread_that_no_worker_changes(
    qtbot, window, demo_data, tmp_path
):
    """The UI process sets torch's thread count once, in the main thread (changing it while
    another thread runs torch can deadlock OpenMP/MKL): a job in the worker thread and a
    classifier's cpu_threads(1) in a viewer task leave it as it is."""
    import torch

    from afps_gui.core import devices

    assert torch.get_num_threads() == 1
    make_project(window, demo_data, tmp_path / "proj")
    calls = []
    real = torch.set_num_threads
    torch.set_num_threads = lambda n: calls.append(n) or real(n)
    try:
        seen = []

        def probe(ctx):
            with devices.cpu_threads(1):
                seen.append(torch.get_num_threads())

        assert run_job(qtbot, window, lambda: window.start_job("probe", probe)) == "ok"
    finally:
        torch.set_num_threads = real
    assert seen == [1] and calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_tasks_run_behind_the_ui_thread():
    from afps_gui.workers import BACKGROUND_NICE, behind_the_ui

    seen = {}

    def task():
        behind_the_ui()
        behind_the_ui()  # a second call changes nothing
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, 0)
    thread = threading.Thread(target=task)
    thread.start()
    thread.join()
    assert seen["nice"] == max(before, BACKGROUND_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # this thread's


def test_the_demo_runs_fit_score_and_train_on_first_open(qtbot, window, tmp_path):
    """The demo's set-up job starts the chain from its result, before its own end is signalled:
    that end is not the chain's, so fit, score and train all run (they stopped after the fit
    when any job's end moved the chain on)."""
    ended = []
    window.runner.finished.connect(lambda name, outcome: ended.append((name, outcome)))
    with qtbot.waitSignal(window.pipeline_finished, timeout=240_000) as blocker:
        window.open_demo(
            tmp_path, n_normal=16, n_per_type=6, image_size=(64, 64), epochs=2, n_patches=10
        )
    assert blocker.args == [True], ended
    assert [name for name, _ in ended] == [
        "Preparing the demo project",
        "Fitting PaDiM",
        "Scoring images",
        "Training the classifier",
    ]
    assert window.project.classifier_path.is_file()
