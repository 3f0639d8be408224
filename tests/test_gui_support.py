"""Shared fixtures and helpers of the GUI tests (imported by the other test_gui_* modules).

Every GUI test runs offscreen (tests/conftest.py), with AFPS_HOME in a temporary folder so that
preferences, logs and the demo never touch the real user folders, and with every message box
answered at once by a recorder instead of blocking.
"""

from __future__ import annotations

import pytest

from afps_gui.core.classifier import ClassifierConfig
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.padim import PadimConfig
from afps_gui.core.project import ProjectSettings

JOB_TIMEOUT_MS = 120_000  # generous: a loaded 2-core machine can be slow
TINY_INPUT = (64, 64)


class BoxRecorder:
    """Stands in for messages.exec_box: records each box and answers with ``answer``."""

    def __init__(self):
        self.boxes = []
        self.answer = 0
        self.handlers = {}  # box class name -> function(box) -> result

    def __call__(self, box) -> int:
        self.boxes.append(box)
        handler = self.handlers.get(type(box).__name__)
        return handler(box) if handler else self.answer

    def texts(self) -> list[str]:
        return [b.text() for b in self.boxes if hasattr(b, "text")]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("gui-demo") / "data", n_normal=16, n_per_type=8, size=(64, 64)
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AFPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def boxes(monkeypatch):
    from afps_gui.ui import messages

    recorder = BoxRecorder()
    monkeypatch.setattr(messages, "exec_box", recorder)
    return recorder


@pytest.fixture
def window(qtbot, home, boxes):
    from afps_gui.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.runner.cancel()
    win.runner.wait(JOB_TIMEOUT_MS)
    win.tasks.wait(JOB_TIMEOUT_MS)
    win.browser.thumbnails.wait(10_000)
    win.set_project(None)  # as closing the window does: every panel lets it go


def tiny_settings(demo_data, **padim) -> ProjectSettings:
    return ProjectSettings(
        dataset_root=str(demo_data),
        padim=PadimConfig(**{"input_size": TINY_INPUT, "batch_size": 8, **padim}),
        classifier=ClassifierConfig(epochs=2, n=20, batch_size=8),
    )


def make_project(window, demo_data, folder, **padim):
    assert window.create_project(folder, tiny_settings(demo_data, **padim))
    return window.project


def run_job(qtbot, window, start, timeout: int = JOB_TIMEOUT_MS) -> str:
    """Start a job through ``start()`` and return its outcome ("ok", "failed", "cancelled")."""
    with qtbot.waitSignal(window.runner.finished, timeout=timeout) as blocker:
        assert start() is not False
    return blocker.args[1]


def trigger(qtbot, window, action: str, timeout: int = JOB_TIMEOUT_MS) -> str:
    """Trigger a window action that starts a job, as a click would, and wait for the job."""
    act = window.actions[action]
    assert act.isEnabled(), f"{action} is disabled"
    return run_job(qtbot, window, act.trigger, timeout)
