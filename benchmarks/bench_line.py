"""Inspect the line: how fast the watcher keeps up with a camera, and how late its verdicts are.

A simulated camera writes magnetic-tile images (``../shared/data/magnetic-tile``; the demo
images when that is absent) into a folder: most whole, some slowly in two pieces, some cut off
for good, some not images at all. The watcher runs as the app runs it: ``watch_job`` in a job
process (``job_process.run_in_child``), with the project's models loaded once. Two phases:

1. latency: images at ``--rate`` per second (default 5); the time from a file's completion
   (the camera closed it) to its recorded verdict (the log's commit time), p50 and p99;
2. throughput: images at ``--flood-rate`` per second (default 40); the sustained rate is what
   was recorded over the time from the first write to the last record.

    .venv/bin/python benchmarks/bench_line.py [--project DIR] [--rate 5] [--seconds 30]

The first run fits a project at 224 px on 200 normal tiles and trains its classifier (a few
minutes); later runs reuse it (``--project``, default under the temp folder).
Targets on a 2-core CPU at 224 px: sustained >= 15 images/s, p99 latency <= 1 s at 5 images/s.
``run_benchmark(..., ui_probe=...)`` is the hook for the UI's longest stall: give it a context
manager factory (an event-loop probe beside the Inspect view) and its result is printed too.

``--ui`` runs the same phases through the real window (offscreen, 1600 x 1000): the watch job is
started by the Inspect view, every result is drawn there (picture, strip, counters, the review
queue), and a 10 ms QTimer on the UI thread (``bench_gui_responsiveness.StallProbe``) measures
the longest stall in each phase. Target: <= 50 ms at 5 images/s.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_line.py --ui
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MT = REPO.parent / "shared" / "data" / "magnetic-tile"
TARGET_RATE, TARGET_P99 = 15.0, 1.0


# --- the project -----------------------------------------------------------------------------


def ensure_project(folder: Path, strategy: str) -> Path:
    """A fitted and trained project for the data, made once and reused."""
    from afps_gui.core import pipeline
    from afps_gui.core.classifier import ClassifierConfig
    from afps_gui.core.project import Project, ProjectSettings

    if (folder / "models" / "classifier.pt").is_file():
        return folder
    root, n_fit = data_root(folder.parent)
    settings = ProjectSettings(
        dataset_root=str(root),
        n_fit=n_fit,
        classifier=ClassifierConfig(strategy=strategy, epochs=15),
        device="cpu",
    )
    t0 = time.perf_counter()
    with Project.create(folder, settings) as project:
        pipeline.fit_project(project)
        pipeline.train_project(project)
    print(f"project fitted and trained in {time.perf_counter() - t0:.0f} s: {folder}")
    return folder


def data_root(work: Path) -> tuple[Path, int]:
    if MT.is_dir():
        return MT, 200
    from afps_gui.core.demo import make_demo_dataset

    print(f"{MT} is absent: using the demo images (figures are not comparable)")
    return make_demo_dataset(work / "demo-data", size=(224, 224)), 40


def camera_sources(project_folder: Path) -> tuple[list[Path], list[Path]]:
    """(normal images, defect images) the camera draws its parts from."""
    from afps_gui.core.project import Project
    from afps_gui.core.taxonomy import NORMAL

    with Project.open(project_folder, readonly=True) as project:
        samples = project.dataset.samples
    normal = [s.path for s in samples if s.label == NORMAL]
    defects = [s.path for s in samples if s.label not in (NORMAL, None)]
    return normal, defects


# --- the camera ------------------------------------------------------------------------------


@dataclass
class Camera:
    """Writes parts at a rate; remembers when each complete part was finished."""

    folder: Path
    normal: list[Path]
    defects: list[Path]
    seed: int = 0
    done_at: dict[str, float] = field(default_factory=dict)  # name -> completion time
    n_broken: int = 0
    n: int = 0

    def write_for(self, rate: float, seconds: float, tag: str) -> None:
        rng = random.Random(f"{self.seed}-{tag}")
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            self._write_one(rng, tag)
            k += 1
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _write_one(self, rng: random.Random, tag: str) -> None:
        self.n += 1
        source = rng.choice(self.defects if rng.random() < 0.1 else self.normal)
        data = source.read_bytes()
        path = self.folder / f"{tag}_{self.n:05d}{source.suffix}"
        kind = rng.choices(["whole", "slow", "cut", "junk"], [85, 8, 4, 3])[0]
        if kind in ("cut", "junk"):
            self.n_broken += 1
            path.write_bytes(data[: len(data) // 2] if kind == "cut" else b"\x00log\n" * 50)
            return
        with open(path, "wb") as fh:
            if kind == "slow":  # written in pieces: the watcher must wait for the end
                fh.write(data[: len(data) // 3])
                fh.flush()
                threading.Event().wait(0.15)
                data = data[len(data) // 3 :]
            fh.write(data)
        self.done_at[path.name] = time.time()


# --- the watcher, as the app runs it ---------------------------------------------------------


class Watcher(threading.Thread):
    """``watch_job`` in a job process; collects each posted result."""

    def __init__(self, project: Path, folder: Path, settle_s: float):
        super().__init__(daemon=True)
        from afps_gui.core.project import Project

        with Project.open(project, readonly=True) as p:
            settings = p.settings.to_json()
        self.kwargs = {
            "folder": str(project),
            "settings": settings,
            "readonly": False,
            "options": {"folder": str(folder), "settle_s": settle_s},
        }
        self.stop = threading.Event()
        self.results: dict[str, dict] = {}
        self.outcome = None

    def run(self) -> None:
        from afps_gui.job_process import ProcessJob, run_in_child

        job = ProcessJob("afps_gui.core.line_inspection:watch_job", self.kwargs)
        for message in run_in_child(job, self.stop):
            if message[0] == "post":
                item = message[1]
                self.results[Path(item["file"]).name] = item
            elif message[0] in ("ok", "failed", "cancelled"):
                self.outcome = message

    def wait_for(self, names, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not set(names) <= set(self.results):
            time.sleep(0.05)


def recorded_at(item: dict) -> float:
    return datetime.fromisoformat(item["time"]).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- the phases ------------------------------------------------------------------------------


def latency_phase(camera: Camera, watcher: Watcher, rate: float, seconds: float) -> dict:
    before = set(camera.done_at)
    camera.write_for(rate, seconds, "lat")
    names = [n for n in camera.done_at if n not in before]
    watcher.wait_for(names, 30)
    lat = [recorded_at(watcher.results[n]) - camera.done_at[n] for n in names
           if n in watcher.results]  # fmt: skip
    return {
        "images": len(names),
        "recorded": len(lat),
        "p50": percentile(lat, 0.5) if lat else float("nan"),
        "p99": percentile(lat, 0.99) if lat else float("nan"),
        "max": max(lat) if lat else float("nan"),
    }


def throughput_phase(camera: Camera, watcher: Watcher, rate: float, seconds: float) -> dict:
    before = set(camera.done_at)
    t0 = time.time()
    camera.write_for(rate, seconds, "flood")
    written = time.time() - t0
    names = [n for n in camera.done_at if n not in before]
    watcher.wait_for(names, 120)
    got = [watcher.results[n] for n in names if n in watcher.results]
    last = max(recorded_at(r) for r in got) if got else t0
    return {
        "images": len(names),
        "recorded": len(got),
        "written_per_s": len(names) / written,
        "sustained_per_s": len(got) / max(last - t0, 1e-9),
        "drain_s": last - t0 - written,
    }


def prepared(args) -> tuple[Path, Path, list[Path], list[Path]]:
    work = Path(args.work or tempfile.gettempdir()) / "afps-bench-line"
    project = ensure_project(Path(args.project) if args.project else work / "proj", args.strategy)
    work.mkdir(parents=True, exist_ok=True)  # with --project nothing else made it
    return work, project, *camera_sources(project)


def run_benchmark(args, ui_probe=None) -> dict:
    """Both phases; ``ui_probe``: a callable returning a context manager whose ``result`` (after
    the block) is the UI's longest stall in ms, measured while the watcher works."""
    work, project, normal, defects = prepared(args)
    with tempfile.TemporaryDirectory(prefix="camera-", dir=work) as folder:
        camera = Camera(Path(folder), normal, defects, seed=args.seed)
        watcher = Watcher(project, Path(folder), settle_s=args.settle)
        probe = ui_probe() if ui_probe else contextlib.nullcontext()
        watcher.start()
        with probe:
            warm_up(camera, watcher)
            latency = latency_phase(camera, watcher, args.rate, args.seconds)
            flood = throughput_phase(camera, watcher, args.flood_rate, args.flood_seconds)
        watcher.stop.set()
        watcher.join(60)
    out = {"latency": latency, "throughput": flood, "broken_written": camera.n_broken}
    if ui_probe:
        out["ui_stall_ms"] = getattr(probe, "result", None)
    return out


def warm_up(camera: Camera, watcher: Watcher) -> None:
    """The job process starts, imports torch and loads the models: not part of the figures."""
    camera.write_for(2, 1.0, "warm")
    watcher.wait_for(list(camera.done_at), 180)


# --- the UI: the watcher run by the real window's Inspect view ------------------------------


class WindowWatcher:
    """The watch job as the Inspect view starts it; collects each result the view is given."""

    def __init__(self, window, folder: Path, settle_s: float):
        self.results: dict[str, dict] = {}
        control = window.inspect
        shown = control.add_result

        def add_result(post: dict) -> None:
            self.results[Path(post["file"]).name] = post
            shown(post)

        control.add_result = add_result  # what the view's start hands the job as on_post
        control.settings.folder = str(folder)
        if not control.start(settle_s=settle_s):
            raise SystemExit("The Inspect view did not start watching (see the status bar).")

    wait_for = Watcher.wait_for


def run_ui_benchmark(args) -> dict:
    """Both phases with the watcher in the real window; the UI's stalls per phase."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["AFPS_HOME"] = tempfile.mkdtemp(prefix="afps-bench-line-home-")
    from bench_gui_responsiveness import StackSampler, StallProbe, settle

    if args.explain:
        StallProbe.sampler = StackSampler()

    from afps_gui.app import make_application
    from afps_gui.ui import messages
    from afps_gui.ui.main_window import MainWindow

    work, project, normal, defects = prepared(args)
    app = make_application()
    messages.exec_box = lambda box: print("message:", getattr(box, "text", str)()) or 0
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    if not window.open_project(project):
        raise SystemExit(f"Could not open {project}")
    settle(app, 2.0)
    with tempfile.TemporaryDirectory(prefix="camera-", dir=work) as folder:
        camera = Camera(Path(folder), normal, defects, seed=args.seed)
        watcher = WindowWatcher(window, Path(folder), args.settle)
        probe, out, spans = StallProbe(), {}, {}
        probe.start()
        _in_loop(app, lambda: _camera_phases(camera, watcher, args, out, spans))
        probe.stop()
        t0 = probe._t0  # the probe's clock: its gaps end at t0 + ends
        window.inspect.pause()
        _in_loop(app, lambda: _wait(lambda: not window.runner.busy, 60))
    out["ui"] = {name: _stalls(probe, t0, span) for name, span in spans.items()}
    out["broken_written"] = camera.n_broken
    window.close()
    return out


def _camera_phases(camera, watcher, args, out: dict, spans: dict) -> None:
    spans["warm-up"] = [time.perf_counter()]
    warm_up(camera, watcher)
    spans["warm-up"].append(time.perf_counter())
    spans[f"{args.rate:g}/s"] = [time.perf_counter()]
    out["latency"] = latency_phase(camera, watcher, args.rate, args.seconds)
    spans[f"{args.rate:g}/s"].append(time.perf_counter())
    spans[f"flood {args.flood_rate:g}/s"] = [time.perf_counter()]
    out["throughput"] = throughput_phase(camera, watcher, args.flood_rate, args.flood_seconds)
    spans[f"flood {args.flood_rate:g}/s"].append(time.perf_counter())


def _wait(condition, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.05)


def _in_loop(app, work) -> None:
    """Run ``work`` in a thread while the Qt event loop runs here (the UI stays live)."""
    from PySide6.QtCore import QEventLoop, QTimer

    thread = threading.Thread(target=work, daemon=True)
    loop = QEventLoop()
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: thread.is_alive() or loop.quit())
    thread.start()
    timer.start()
    loop.exec()
    timer.stop()


def _stalls(probe, t0: float, span: list[float]) -> dict:
    """The probe's gaps that ended inside ``span``: longest, p99, and where the longest went."""
    inside = [
        (g, i)
        for i, (g, e) in enumerate(zip(probe.gaps, probe.ends))
        if span[0] <= t0 + e <= span[1]
    ]
    if not inside:
        return {"max_ms": float("nan"), "p99_ms": float("nan"), "over_50": 0, "why": ""}
    gaps = sorted(g for g, _ in inside)
    longest, index = max(inside)
    return {
        "max_ms": round(longest, 1),
        "p99_ms": round(percentile(gaps, 0.99), 1),
        "over_50": sum(g > 50 for g in gaps),
        "ticks": len(gaps),
        "why": probe.why.get(index, ""),
    }


def report(result: dict, args) -> None:
    lat, flood = result["latency"], result["throughput"]
    print(
        f"latency at {args.rate:g} images/s: p50 {lat['p50'] * 1000:.0f} ms, "
        f"p99 {lat['p99'] * 1000:.0f} ms, max {lat['max'] * 1000:.0f} ms "
        f"({lat['recorded']}/{lat['images']} complete images recorded)  "
        f"target p99 <= {TARGET_P99 * 1000:.0f} ms: {'met' if lat['p99'] <= TARGET_P99 else 'MISSED'}"
    )
    limited = flood["sustained_per_s"] >= 0.95 * flood["written_per_s"]
    print(
        f"sustained: {flood['sustained_per_s']:.1f} images/s while the camera wrote "
        f"{flood['written_per_s']:.1f}/s ({flood['recorded']}/{flood['images']} recorded, "
        f"backlog drained {max(flood['drain_s'], 0):.1f} s after the last write)"
        + (" - kept up: the camera was the limit" if limited else "")
        + f"  target >= {TARGET_RATE:g}: "
        + ("met" if flood["sustained_per_s"] >= TARGET_RATE else "MISSED")
    )
    if "ui_stall_ms" in result:
        print(f"UI longest stall: {result['ui_stall_ms']} ms")
    for phase, st in result.get("ui", {}).items():
        verdict = ""
        if phase == f"{args.rate:g}/s":
            verdict = f"  target <= 50 ms: {'met' if st['max_ms'] <= 50 else 'MISSED'}"
        print(
            f"UI while {phase}: longest stall {st['max_ms']} ms, p99 {st['p99_ms']} ms, "
            f"{st['over_50']} tick(s) over 50 ms of {st.get('ticks', 0)}{verdict}"
        )
        if st["why"]:
            print(f"    longest: {st['why']}")
    print(f"({result['broken_written']} cut or non-image files were written as well)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", help="a fitted project (default: made once under --work)")
    ap.add_argument("--work", help="folder for the cached project and the camera folder")
    ap.add_argument("--strategy", default="region", help="classifier of a new project")
    ap.add_argument("--rate", type=float, default=5.0, help="images/s in the latency phase")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--flood-rate", type=float, default=40.0)
    ap.add_argument("--flood-seconds", type=float, default=15.0)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before giving up a file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ui", action="store_true", help="run it through the real window's "
                    "Inspect view and measure the UI's longest stall (offscreen)")  # fmt: skip
    ap.add_argument("--explain", action="store_true", help="with --ui: what each thread did "
                    "during the longest stalls (samples every thread's stack)")  # fmt: skip
    args = ap.parse_args(argv)
    result = run_ui_benchmark(args) if args.ui else run_benchmark(args)
    report(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
