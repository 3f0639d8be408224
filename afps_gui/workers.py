"""Run core jobs off the Qt main thread and turn their callbacks into Qt signals.

Two kinds of background work:

- *Jobs* (fit, score, train, sweep, demo creation): heavy, one at a time, cancellable, with
  progress. ``JobRunner`` owns the single running ``JobWorker`` (a QThread). A job given as a
  ``ProcessJob`` runs in a child process that the worker supervises (see job_process: the
  window's fit, score, train and sweep do); a plain function runs in the worker thread itself.
- *Tasks* (load a model for the heat map, classify one image for the inspector): light, and
  only the newest request per key matters. ``TaskRunner`` runs them on a one-thread pool and drops
  results that a newer request has made stale.

The main thread only ever receives signals; it never waits for a worker.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from .core.jobs import JobContext
from .job_process import (  # noqa: F401 - Failure is this module's API too (the window's)
    DEFAULT_JOB_PRIORITY,
    Failure,
    ProcessJob,
    describe_failure,
    lower_priority,
    run_in_child,
    run_job,
)

log = logging.getLogger("afps.workers")

# The GIL changes hands at least this often in the app. With Python's default (5 ms) a worker
# thread busy in Python-level code (a viewer task decoding an image or loading a model) makes
# the main thread wait up to 5 ms every time it takes the GIL back after a Qt call, and one
# repaint or a dock raised makes dozens of those: measured stalls of 100+ ms. At 0.5 ms the UI
# stays smooth and a worker thread loses ~2 %.
UI_SWITCH_INTERVAL_S = 0.0005


def tune_for_the_ui() -> None:
    """Called by the GUI at start-up, in the main thread, before any worker runs (never by the
    CLI, which has no UI to keep smooth).

    The app's own torch work is light (one image for the viewers: the heavy jobs run in a child
    process), so the app keeps torch on one thread: a second one would wake on every small op
    and take the core that the UI thread needs to draw. The count is set here once and never
    changed afterwards in this process: changing it while another thread runs torch can
    deadlock OpenMP and MKL, and the viewers' tasks run torch on pool threads. numpy's BLAS
    gets one thread for the same reasons (the viewers' matrix products are small)."""
    import torch

    sys.setswitchinterval(min(sys.getswitchinterval(), UI_SWITCH_INTERVAL_S))
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it BLAS keeps its own default
        return
    threadpool_limits(1, user_api="blas")


BACKGROUND_NICE = 5  # the app's helper threads (viewers, thumbnails) against its UI thread
_lowered = threading.local()


def behind_the_ui() -> None:
    """Lower the calling thread's CPU priority (Linux: per thread) once.

    On two cores, a viewer or thumbnail task and the job's child can hold both cores while the
    UI thread waits for one (15-35 ms seen at the end of a training run). At nice 5 the
    scheduler favours the UI thread over the task, which takes mostly what the UI leaves.
    """
    if getattr(_lowered, "done", False) or not sys.platform.startswith("linux"):
        return
    _lowered.done = True
    lower_priority(threading.get_native_id(), BACKGROUND_NICE)


# Modules the jobs import on first use. Importing them in a worker stalls the UI: loading a
# big extension library holds the GIL. Counting a classifier's FLOPs the first time pulls in
# torch's compiler stack (about 800 modules, sympy among them: 200+ ms of UI stall), so the
# app counts a tiny classifier's FLOPs (and loads a tiny tensor file) once at start-up,
# before the window is shown.
LAZY_JOB_IMPORTS = ("efficientnet_lite_pytorch", "sklearn.metrics")


def warm_up_imports() -> None:
    import importlib

    for name in LAZY_JOB_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional backbone package may be absent: its job will say so
            log.info("Could not pre-import %s", name)
    import io

    import torch

    from .core.classifier import ClassifierConfig, DefectClassifier

    tiny = ClassifierConfig(n=4, dim=8, depth=1, heads=2, mlp_dim=8)
    DefectClassifier(["a", "b"], 4, tiny, device="cpu").flops()
    buffer = io.BytesIO()  # the first torch.load imports more of torch, too
    torch.save({"t": torch.zeros(1)}, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)


class JobWorker(QThread):
    """One job function run in its own thread: fn(JobContext) -> result."""

    progress = Signal(int, int, str)
    posted = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # Failure
    cancelled = Signal()

    def __init__(
        self,
        name: str,
        fn: Callable[[JobContext], Any] | ProcessJob,
        parent=None,
        priority: str = DEFAULT_JOB_PRIORITY,
    ):
        super().__init__(parent)
        self.name = name
        self.fn = fn
        self.priority = priority
        self.serial = 0  # its number in the runner (JobRunner.serial)
        self.cancel_event = threading.Event()
        self.setObjectName(f"job:{name}")

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        log.info("Job started: %s", self.name)
        t0 = time.perf_counter()
        if isinstance(self.fn, ProcessJob):
            outcome = self._run_in_child(self.fn)
        else:
            outcome = self._run_here()
        kind = outcome[0]
        if kind == "ok":
            log.info("Job finished: %s (%.1f s)", self.name, time.perf_counter() - t0)
            self.succeeded.emit(outcome[1])
        elif kind == "cancelled":
            log.info("Job cancelled: %s", self.name)
            self.cancelled.emit()
        else:
            failure = outcome[1]
            if failure.expected:
                log.warning("Job failed: %s: %s", self.name, failure.message)
            else:
                log.error("Job crashed: %s\n%s", self.name, failure.details)
            self.failed.emit(failure)

    def _run_here(self) -> tuple:
        # A light job (reading a folder, making the demo's images): it runs on the app's torch
        # threads as they are (see tune_for_the_ui).
        return run_job(self.fn, self.progress.emit, self.cancel_event, self.posted.emit)

    def _run_in_child(self, job: ProcessJob) -> tuple:
        try:
            for message in run_in_child(job, self.cancel_event, self.priority):
                kind = message[0]
                if kind == "progress":
                    self.progress.emit(*message[1:])
                elif kind == "post":
                    self.posted.emit(message[1])
                else:
                    return message
        except Exception as exc:  # e.g. the process could not start: no memory, no fork
            return ("failed", describe_failure(exc))
        return ("failed", describe_failure(RuntimeError("the job ended without a result")))


@dataclass
class JobHandlers:
    on_result: Optional[Callable[[Any], None]] = None
    on_post: Optional[Callable[[Any], None]] = None
    on_error: Optional[Callable[[Failure], None]] = None
    on_cancel: Optional[Callable[[], None]] = None
    extra: dict = field(default_factory=dict)


class JobRunner(QObject):
    """Runs one heavy job at a time and tells the window what is going on."""

    started = Signal(str)
    progress = Signal(int, int, str)
    finished = Signal(str, str)  # job name, outcome: "ok", "failed" or "cancelled"
    failed = Signal(str, object)  # job name, Failure: the window shows it
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._worker: Optional[JobWorker] = None
        self._handlers = JobHandlers()
        self.serial = 0  # the number of the job started last (1, 2, ...)
        self.ended = 0  # the number of the job that ended last
        self.priority = DEFAULT_JOB_PRIORITY  # the user's preference: job_process.JOB_PRIORITIES

    @property
    def busy(self) -> bool:
        return self._worker is not None

    @property
    def current(self) -> str:
        return self._worker.name if self._worker else ""

    def start(self, name: str, fn: Callable[[JobContext], Any] | ProcessJob, **handlers) -> bool:
        """Start a job unless one is running (returns False then; the UI disables that case)."""
        if self._worker is not None:
            log.warning("Refused to start %s while %s runs", name, self._worker.name)
            return False
        worker = JobWorker(name, fn, self, self.priority)
        self.serial += 1
        worker.serial = self.serial
        self._handlers = JobHandlers(**handlers)
        worker.progress.connect(self.progress)
        worker.posted.connect(self._on_post)
        worker.succeeded.connect(self._on_success)
        worker.failed.connect(self._on_failure)
        worker.cancelled.connect(self._on_cancel)
        self._worker = worker
        self.started.emit(name)
        self.busy_changed.emit(True)
        worker.start()
        return True

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def wait(self, ms: int = 30000) -> bool:
        """Block until the running job ends (for closing the window and for tests)."""
        return self._worker.wait(ms) if self._worker is not None else True

    @Slot(object)
    def _on_post(self, item) -> None:
        if self._handlers.on_post:
            self._handlers.on_post(item)

    @Slot(object)
    def _on_success(self, result) -> None:
        handlers, name = self._end()
        if handlers.on_result:
            self._call(name, handlers.on_result, result)
        self.finished.emit(name, "ok")

    @Slot(object)
    def _on_failure(self, failure: Failure) -> None:
        handlers, name = self._end()
        if handlers.on_error:
            self._call(name, handlers.on_error, failure)
        self.failed.emit(name, failure)
        self.finished.emit(name, "failed")

    @Slot()
    def _on_cancel(self) -> None:
        handlers, name = self._end()
        if handlers.on_cancel:
            self._call(name, handlers.on_cancel)
        self.finished.emit(name, "cancelled")

    def _end(self) -> tuple[JobHandlers, str]:
        worker, handlers = self._worker, self._handlers
        worker.wait()  # the signal arrives as run() returns: this is immediate
        worker.deleteLater()
        self._worker, self._handlers = None, JobHandlers()
        self.ended = worker.serial
        self.busy_changed.emit(False)
        return handlers, worker.name

    def _call(self, name: str, fn, *args) -> None:
        # A bug in a result handler must not leave the runner stuck "busy": report it instead.
        try:
            fn(*args)
        except Exception as exc:
            failure = describe_failure(exc)
            log.error("Handling the result of %s failed\n%s", name, failure.details)
            self.failed.emit(name, failure)


# --- light tasks -----------------------------------------------------------------------------


class _Relay(QObject):
    done = Signal(str, int, object, object)  # key, generation, result, Failure or None


class _Task(QRunnable):
    def __init__(self, relay: _Relay, key: str, generation: int, fn: Callable[[], Any]):
        super().__init__()
        self.relay, self.key, self.generation, self.fn = relay, key, generation, fn

    def run(self) -> None:
        behind_the_ui()
        try:
            result, failure = self.fn(), None
        except BaseException as exc:
            result, failure = None, describe_failure(exc)
            log.log(
                logging.INFO if failure.expected else logging.ERROR,
                "Task %s failed: %s",
                self.key,
                failure.details if not failure.expected else failure.message,
            )
        self.relay.done.emit(self.key, self.generation, result, failure)


class TaskRunner(QObject):
    """Runs small background tasks one after another (in the order asked, or the newest
    first); only the newest result per key is kept.

    Clicking through images quickly queues many requests: the stale ones still run (Python
    cannot stop a thread) but their results are dropped, and a queued one whose key has moved
    on is skipped before it starts.
    """

    def __init__(self, parent=None, threads: int = 1, *, newest_first: bool = False):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._newest_first = newest_first  # the pool runs a higher priority first
        self._submitted = 0
        self._relay = _Relay(self)
        self._relay.done.connect(self._deliver)
        self._generation: dict[str, int] = {}
        self._callbacks: dict[str, tuple[int, Callable, Optional[Callable]]] = {}

    def submit(
        self,
        key: str,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Optional[Callable[[Failure], None]] = None,
    ) -> None:
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation

        def guarded():
            if self._generation.get(key) != generation:
                return None  # a newer request for this key is queued: do not waste the time
            return fn()

        self._callbacks[key] = (generation, on_done, on_error)
        self._submitted += 1
        priority = self._submitted if self._newest_first else 0
        self._pool.start(_Task(self._relay, key, generation, guarded), priority)

    def forget(self, key: str) -> None:
        """Drop any pending result for ``key`` (e.g. the project was closed)."""
        self._generation[key] = self._generation.get(key, 0) + 1
        self._callbacks.pop(key, None)

    def wait(self, ms: int = 30000) -> bool:
        return self._pool.waitForDone(ms)

    @Slot(str, int, object, object)
    def _deliver(self, key: str, generation: int, result, failure) -> None:
        entry = self._callbacks.get(key)
        if entry is None or entry[0] != generation:
            return
        del self._callbacks[key]
        _, on_done, on_error = entry
        if failure is None:
            on_done(result)
        elif on_error is not None:
            on_error(failure)
