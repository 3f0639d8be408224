"""The entry point: command-line flags, the demo on first launch, and --self-test end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from test_gui_support import JOB_TIMEOUT_MS

from afps_gui.app import open_at_start, parse_args

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def test_flags():
    args = parse_args(["--project", "/x", "--device", "cpu"])
    assert args.project == "/x" and args.device == "cpu" and not args.demo
    assert parse_args(["--demo"]).demo
    assert parse_args(["--self-test"]).self_test


def test_first_launch_makes_and_opens_the_demo(qtbot, window, home, monkeypatch):
    from afps_gui.ui import demo_project

    real = demo_project.ensure_demo_project

    def small(data_dir, project_dir, **kw):
        kw.update(n_normal=12, n_per_type=6, image_size=(64, 64), input_size=(64, 64))
        return real(data_dir, project_dir, **kw)

    monkeypatch.setattr(demo_project, "ensure_demo_project", small)
    monkeypatch.setattr(window, "run_all", lambda: True)  # the pipeline is tested elsewhere
    args = SimpleNamespace(project=None, demo=False)
    with qtbot.waitSignal(window.project_changed, timeout=JOB_TIMEOUT_MS):
        open_at_start(window, args)
    assert window.prefs.demo_offered
    assert window.project.folder == home / "data" / "demo-project"
    assert window.project.settings.padim.backbone == "efficientnet-lite0"
    assert (home / "data" / "demo-data" / "good").is_dir()


def test_self_test_passes(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFPS_HOME=str(tmp_path))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--self-test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "self-test passed" in out.stdout


def test_a_window_shows_before_the_heavy_libraries_load(tmp_path):
    """The start-up window is drawn before torch is imported; the main window follows it."""
    probe = (
        "import sys, runpy\n"
        "from afps_gui.ui import startup\n"
        "seen = []\n"
        "real = startup.StartupWindow.paintEvent\n"
        "def paint(self, event):\n"
        "    seen.append('torch' in sys.modules)\n"
        "    real(self, event)\n"
        "startup.StartupWindow.paintEvent = paint\n"
        "from afps_gui.app import main\n"
        "code = main(['--startup-probe'])\n"
        "print('torch at first paint:', seen[0])\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFPS_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_MS / 1000,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["visible", "ready", "torch at first paint: False"]
