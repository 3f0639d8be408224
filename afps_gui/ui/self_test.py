"""``afps-gui --self-test``: the real window, offscreen, runs the whole pipeline on a small demo.

It goes through the same actions and workers a user triggers (demo creation, Fit, Score, Train)
and checks that predictions reach the browser and a heat map is drawn. Everything is written
to a temporary folder; the exit code says whether it all worked.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# A tiny demo: on 2 CPU cores the whole run takes well under two minutes.
SELF_TEST_DEMO = dict(
    n_normal=24, n_per_type=10, image_size=(96, 96), input_size=(64, 64), epochs=3, n_patches=30
)
JOB_TIMEOUT_MS = 120_000


class SelfTestFailure(Exception):
    pass


def wait_for_job(window, start, what: str) -> None:
    """Start a job with ``start()`` and spin the event loop until it ends."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome: list[str] = []

    def finished(name: str, result: str) -> None:
        outcome.append(result)
        loop.quit()

    window.runner.finished.connect(finished)
    try:
        if not start():
            raise SelfTestFailure(f"{what}: the action refused to start")
        QTimer.singleShot(JOB_TIMEOUT_MS, loop.quit)
        loop.exec()
    finally:
        window.runner.finished.disconnect(finished)
    if outcome != ["ok"]:
        raise SelfTestFailure(f"{what}: {outcome[0] if outcome else 'timed out'}")


def wait_until(predicate, timeout_s: float, what: str) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise SelfTestFailure(f"{what}: not seen within {timeout_s:.0f} s")
        QApplication.processEvents()
        time.sleep(0.02)


def run_self_test(device: str = "auto") -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="afps-self-test-"))
    os.environ["AFPS_HOME"] = str(tmp / "home")  # prefs and logs of the test stay in tmp
    try:
        return _run(tmp, device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(tmp: Path, device: str) -> int:
    from ..app import install_reporter, make_application
    from . import messages
    from .main_window import MainWindow

    app = make_application()
    shown: list[str] = []

    def answer(box) -> int:  # never block on a dialog: record it as a failure instead
        shown.append(getattr(box, "text", lambda: type(box).__name__)())
        return 0

    messages.exec_box = answer
    window = MainWindow(device_override=device if device != "auto" else "")
    reporter = install_reporter(app, lambda: window)
    window.show()
    t0 = time.monotonic()
    steps = []
    try:
        _steps(window, tmp, steps)
        if shown or reporter.reports:
            raise SelfTestFailure(
                f"unexpected messages: {shown + [r[0] for r in reporter.reports]}"
            )
    except SelfTestFailure as exc:
        print(f"AFPS Inspector self-test FAILED: {exc}", file=sys.stderr)
        for line in shown:
            print(f"  message shown: {line}", file=sys.stderr)
        for message, details in reporter.reports:
            print(f"  unexpected error: {message}\n{details}", file=sys.stderr)
        return 1
    finally:
        window.close()
    print(f"AFPS Inspector self-test passed in {time.monotonic() - t0:.0f} s: " + "; ".join(steps))
    return 0


def _steps(window, tmp: Path, steps: list[str]) -> None:
    wait_for_job(
        window,
        lambda: window.open_demo(tmp / "demo", run_pipeline=False, **SELF_TEST_DEMO),
        "creating the demo project",
    )
    if window.project is None:
        raise SelfTestFailure("the demo project did not open")
    steps.append(f"demo project with {len(window.project.dataset.samples)} images")
    wait_for_job(window, window.fit, "fit PaDiM")
    steps.append("fit")
    wait_for_job(window, window.score, "score")
    steps.append(f"scored {len(window.project.cache.scores())} images")
    wait_for_job(window, window.train, "train")
    rows = window.browser.model.rows
    predicted = sum(1 for r in rows if r.prediction)
    if not predicted:
        raise SelfTestFailure("no prediction appeared in the browser")
    steps.append(f"{predicted} of {len(rows)} images have a prediction in the browser")
    top = window.browser.visible_rels()[0]
    window.docks["heatmap"].raise_()  # as the user would: training brought its tab forward
    window.browser.select(top)
    wait_until(
        lambda: (
            window.heatmap.view is not None
            and window.heatmap.view.rel == top
            and window.heatmap.view.amap is not None
        ),
        30,
        "the heat map of the top-scoring image",
    )
    steps.append("heat map drawn")
