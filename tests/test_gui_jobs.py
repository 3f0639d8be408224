"""Jobs from the UI: cancelling leaves no partial model; a failing job is shown, not fatal."""

from __future__ import annotations

import hashlib
import time

import pytest
from test_gui_support import make_project, run_job, trigger

from afps_gui.core import padim as padim_module
from afps_gui.core import pipeline
from afps_gui.core.errors import AfpsError

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def slow_fit(monkeypatch):
    """Each batch of the real fit takes a little longer, so a cancel lands mid-fit for sure."""
    real = padim_module.PadimModel.embed

    def embed(self, batch):
        time.sleep(0.15)
        return real(self, batch)

    monkeypatch.setattr(padim_module.PadimModel, "embed", embed)


def cancel_on_first_progress(window):
    def cancel(done, total, message):
        window.runner.progress.disconnect(cancel)
        window.actions["cancel"].trigger()

    window.runner.progress.connect(cancel)


def test_cancel_during_fit_leaves_no_model(qtbot, window, demo_data, tmp_path, slow_fit):
    project = make_project(window, demo_data, tmp_path / "proj", batch_size=2)
    assert not window.actions["cancel"].isEnabled()
    cancel_on_first_progress(window)
    assert trigger(qtbot, window, "fit") == "cancelled"
    assert not project.padim_path.exists()
    assert not list(project.padim_path.parent.glob("*.part"))
    assert "cancelled" in window.status.job_label.text()
    assert window.actions["fit"].isEnabled()  # usable again at once


def test_cancel_during_refit_keeps_the_old_model(qtbot, window, demo_data, tmp_path, slow_fit):
    project = make_project(window, demo_data, tmp_path / "proj", batch_size=2)
    assert trigger(qtbot, window, "fit") == "ok"
    before = digest(project.padim_path)
    cancel_on_first_progress(window)
    assert trigger(qtbot, window, "fit") == "cancelled"
    assert digest(project.padim_path) == before
    assert not list(project.padim_path.parent.glob("*.part"))


@pytest.mark.parametrize(
    "error, shown",
    [
        (AfpsError("The disk holding the project is full: free some space."), "disk"),
        (RuntimeError("boom"), "unexpected"),
    ],
)
def test_failing_job_shows_error_and_app_stays_usable(
    qtbot, window, boxes, demo_data, tmp_path, monkeypatch, error, shown
):
    project = make_project(window, demo_data, tmp_path / "proj")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "fit_project", fail)
    assert trigger(qtbot, window, "fit") == "failed"
    assert len(boxes.boxes) == 1
    box = boxes.boxes[0]
    assert shown in box.text().lower()
    if isinstance(error, AfpsError):
        assert box.text() == str(error)  # user messages are shown as they are
    assert type(error).__name__ in box.detailedText()  # the traceback is behind "Details"
    assert not project.padim_path.exists()
    assert not window.runner.busy and window.actions["fit"].isEnabled()

    monkeypatch.undo()  # the real fit works right after the failure
    assert trigger(qtbot, window, "fit") == "ok"
    assert project.padim_path.is_file()


def test_one_heavy_job_at_a_time(qtbot, window, demo_data, tmp_path, slow_fit):
    make_project(window, demo_data, tmp_path / "proj", batch_size=2)
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


def test_torch_threads_leave_a_core_for_the_ui(qtbot, window, demo_data, tmp_path):
    import os

    import torch

    make_project(window, demo_data, tmp_path / "proj")
    seen = []
    assert run_job(
        qtbot, window, lambda: window.start_job("probe", lambda ctx: seen.append(torch.get_num_threads()))
    ) == "ok"  # fmt: skip
    assert seen == [max(1, (os.cpu_count() or 2) - 1)]
