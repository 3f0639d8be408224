"""How fast review mode takes decisions, driven by real key events.

Builds a demo dataset of N small images, a project with random predictions and scores, opens
the review panel offscreen and presses decision keys (1, 2, 0, Space) through QTest.keyClick,
one per event-loop turn, until every image has been decided. A 2 ms QTimer probe records the
gaps between its ticks: the longest gap is the longest time the main thread could not react.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_review_speed.py [--n 500]

Targets: >= 20 decisions/s sustained, and no main-thread stall long enough to notice.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from afps_gui.core.demo import make_demo_dataset  # noqa: E402
from afps_gui.core.labels import Prediction  # noqa: E402
from afps_gui.core.project import Project, ProjectSettings  # noqa: E402
from afps_gui.ui.review import ReviewPanel  # noqa: E402

KEYS = (Qt.Key_1, Qt.Key_2, Qt.Key_0, Qt.Key_Space)


def make_project(folder: Path, n: int, size: int, seed: int) -> Project:
    n_per_type = n // 5
    root = make_demo_dataset(
        folder / "data", n_normal=n - 2 * n_per_type, n_per_type=n_per_type, size=(size, size)
    )
    project = Project.create(folder / "proj", ProjectSettings(dataset_root=str(root)))
    rng = random.Random(seed)
    rels = [s.rel for s in project.dataset.samples]
    labels = ["normal", "Spot", "Scratch"]
    project.store.set_predictions(
        Prediction(rel, rng.choice(labels), rng.uniform(0.2, 1.0), None, "bench") for rel in rels
    )
    project.cache.write_index(
        "bench", {rel: {"score": rng.uniform(0, 10), "box": [0, 1, 0, 1]} for rel in rels}
    )
    return project


class Probe:
    """A fast timer whose late ticks reveal how long the main thread was busy."""

    def __init__(self, interval_ms: int = 2):
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = None

    def start(self) -> None:
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.gaps.append((now - self._last) / 1e6)
        self._last = now


class GcPauses:
    """Times every full (generation 2) garbage collection: with torch, numpy and Qt loaded
    there are a great many objects, and one full collection can stall the UI for tens of ms."""

    def __init__(self):
        self.pauses: list[float] = []
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._t0) * 1000)


def drive(
    app: QApplication, panel: ReviewPanel, n: int, seed: int, interval_ms: int = 0
) -> list[float]:
    """Press one decision key per timer tick (0 ms: every event-loop turn, as fast as the UI
    goes) until n decisions; return each one's time in ms."""
    rng = random.Random(seed)
    latencies: list[float] = []
    done = {"n": 0}
    driver = QTimer()
    driver.setTimerType(Qt.PreciseTimer)
    driver.setInterval(interval_ms)

    def step() -> None:
        if done["n"] >= n:
            driver.stop()
            app.quit()
            return
        t0 = time.perf_counter()
        QTest.keyClick(panel, rng.choice(KEYS))
        latencies.append((time.perf_counter() - t0) * 1000)
        done["n"] += 1

    driver.timeout.connect(step)
    driver.start()
    app.exec()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="images (and decisions)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--paced", type=int, default=200, help="decisions of the paced run (at --rate keys/s)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="keys/s of the paced run")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after start-up, as the app should: full collections then skip the "
        "start-up objects (torch, Qt) and stop stalling the UI",
    )
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), args.n, args.size, args.seed)
        try:
            panel = ReviewPanel()
            panel.resize(400, 900)
            t0 = time.perf_counter()
            panel.set_project(project)
            load_ms = (time.perf_counter() - t0) * 1000
            panel.show()
            app.processEvents()
            if args.gc_freeze:
                gc.collect()
                gc.freeze()
            pauses = GcPauses()
            n_images = len(panel.rows())
            # 1. Flat out: one key per event-loop turn, every image once.
            flat = Probe()
            flat.start()
            t0 = time.perf_counter()
            latencies = drive(app, panel, min(args.n, n_images), args.seed)
            elapsed = time.perf_counter() - t0
            flat.stop()
            reviewed = len(project.store.reviewed())
            t1 = time.perf_counter()
            panel.refresh()
            refresh_ms = (time.perf_counter() - t1) * 1000
            # 2. Paced like a fast inspector: the probe now sees single decisions, so its
            #    longest gap is the longest the UI ever stops reacting.
            paced = Probe()
            paced.start()
            t0 = time.perf_counter()
            paced_lat = drive(
                app, panel, min(args.paced, n_images), args.seed + 1, int(1000 / args.rate)
            )
            paced_s = time.perf_counter() - t0
            paced.stop()
        finally:
            project.close()

    lat = sorted(latencies)
    print(f"images: {n_images}, decisions: {len(latencies)}, reviewed in the store: {reviewed}")
    print(f"open the queue: {load_ms:.0f} ms; refresh (re-sort) after the run: {refresh_ms:.0f} ms")
    print(f"sustained: {len(latencies) / elapsed:.1f} decisions/s (target >= 20)")
    print(
        f"per decision: median {statistics.median(lat):.1f} ms, "
        f"p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {lat[-1]:.1f} ms"
    )
    _print_gaps("flat out", flat.gaps)
    print(
        f"paced run: {len(paced_lat)} decisions at {len(paced_lat) / paced_s:.1f}/s, "
        f"max decision {max(paced_lat):.1f} ms"
    )
    _print_gaps("paced", paced.gaps)
    full = sorted(pauses.pauses)
    print(
        f"full garbage collections during the runs: {len(full)}, longest "
        f"{full[-1] if full else 0:.1f} ms"
        + (" (gc frozen after start-up)" if args.gc_freeze else "")
    )


def _print_gaps(title: str, gaps: list[float]) -> None:
    gaps = sorted(gaps)
    print(
        f"main-thread stall, {title} (2 ms probe): longest gap {gaps[-1]:.1f} ms, "
        f"p99 {gaps[int(0.99 * (len(gaps) - 1))]:.1f} ms over {len(gaps)} ticks"
    )


if __name__ == "__main__":
    main()
