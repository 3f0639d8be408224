"""Heavy jobs in a child process, supervised from a worker thread of the app.

Why a process: a job in a thread of the app shares the GIL with the UI thread. Torch releases
the GIL for its kernels, but a job also runs Python (data loading, patch selection, the
optimiser's bookkeeping), and on a 2-core inspection PC the UI thread then waits for the GIL
behind it: measured stalls of 80-160 ms while training. In its own process a job cannot hold
the UI's GIL, runs at a lower CPU priority than the UI, and a job that dies (out of memory, a
crash in a native library) takes only itself down: the app reports it and stays up.

This module imports no Qt: the child imports only what its job needs. ``ProcessJob`` names the
job function by "module:function" so that it can be found again in the child; the function is
called as ``fn(ctx, **kwargs)`` with a ``JobContext`` whose progress, posts and cancel flag
cross the process boundary through a pipe and an event.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Optional

from .core.errors import AfpsError, Cancelled
from .core.jobs import JobContext

log = logging.getLogger("afps.jobs")

# A progress report more often than this makes the main thread busy redrawing for nothing:
# 10 per second is smooth enough for a progress bar.
PROGRESS_INTERVAL_S = 0.1

# The child runs this much "nicer" than the app, so that on a busy CPU the UI gets the cores
# first; on an idle CPU the job loses nothing.
CHILD_NICENESS = 19

# The child starts this long after the click that asked for it, so that the window first
# redraws what the click changed (the job's tab, the status bar, the toolbar) on a quiet CPU:
# a starting job (a Python process importing torch) slowed that first redraw to 50-60 ms.
START_DELAY_S = 0.15

# A cancelled job stops at its next check (one batch, at most a few seconds); one that does not
# stop within this time (stuck in a native call) is terminated. Files are written atomically,
# so terminating one never leaves a half-written model.
KILL_AFTER_CANCEL_S = 20.0


@dataclass
class ProcessJob:
    """A job function to run in a child process: ``target`` is "package.module:function"."""

    target: str
    kwargs: dict = field(default_factory=dict)


@dataclass
class Failure:
    """A failed job or task, ready to show: the message the user reads and the details."""

    message: str
    details: str
    expected: bool  # an AfpsError (written for users) rather than a bug


def describe_failure(exc: BaseException) -> Failure:
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, AfpsError):
        return Failure(str(exc), details, True)
    if isinstance(exc, MemoryError):
        return Failure(
            "The computer ran out of memory. Try a smaller input size, a smaller d, or fewer "
            "images, then run it again.",
            details,
            False,
        )
    return Failure(
        f"Something unexpected went wrong ({type(exc).__name__}: {exc}). Nothing that was "
        "saved before has been changed; the details below are also in the log.",
        details,
        False,
    )


def died_failure(exitcode: Optional[int]) -> Failure:
    """The child ended without a word: killed (out of memory, most often) or crashed."""
    how = f"exit code {exitcode}" if exitcode is None or exitcode >= 0 else f"signal {-exitcode}"
    return Failure(
        "The job stopped unexpectedly (its process ended: "
        f"{how}). This usually means the computer ran out of memory: try fewer images, a "
        "smaller input size or a smaller d. Nothing that was saved before has been changed.",
        f"The job's process ended with {how} before it reported a result.",
        False,
    )


class Throttle:
    """Pass on at most one progress report per interval, plus the last one."""

    def __init__(self, emit: Callable[[int, int, str], None], interval: float):
        self._emit = emit
        self._interval = interval
        self._last = 0.0
        self._pending: Optional[tuple[int, int, str]] = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - self._last >= self._interval or (total and done >= total):
            self._last = now
            self._pending = None
            self._emit(int(done), int(total), str(message))
        else:
            self._pending = (int(done), int(total), str(message))

    def flush(self) -> None:
        if self._pending is not None:
            self._emit(*self._pending)
            self._pending = None


def resolve(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run_job(fn: Callable[[JobContext], object], progress, cancel, post) -> tuple:
    """Run ``fn`` with a throttled progress callback; return its outcome as a message:
    ("ok", result), ("failed", Failure) or ("cancelled",). A job never raises out of here:
    the app must survive any failure of a job, in a thread or in a child process."""
    throttle = Throttle(progress, PROGRESS_INTERVAL_S)
    try:
        result = fn(JobContext(throttle, cancel, post))
    except Cancelled:
        return ("cancelled",)
    except BaseException as exc:
        return ("failed", describe_failure(exc))
    throttle.flush()
    return ("ok", result)


def torch_threads_for_jobs() -> int:
    """All cores but one: the UI keeps a core to draw."""
    return max(1, (os.cpu_count() or 2) - 1)


# --- the child side ---------------------------------------------------------------------------


def _child_main(conn, cancel, job: ProcessJob) -> None:
    """Entry point of the child process: run the job, send ("progress" | "post" | "ok" |
    "failed" | "cancelled", ...) messages, then end."""
    step_aside_for_the_ui()
    _stop_when_the_app_is_gone(cancel)
    try:
        import torch

        torch.set_num_threads(torch_threads_for_jobs())
        target = resolve(job.target)
        outcome = run_job(
            lambda ctx: target(ctx, **job.kwargs),
            lambda d, t, m: conn.send(("progress", d, t, m)),
            cancel,
            lambda item: conn.send(("post", item)),
        )
    except BaseException as exc:  # torch or the job's module would not import: still a Failure
        outcome = ("failed", describe_failure(exc))
    try:
        conn.send(outcome)
    except Exception as exc:  # a result that cannot cross the pipe (not picklable)
        conn.send(("failed", describe_failure(exc)))
    finally:
        conn.close()


def step_aside_for_the_ui() -> None:
    """Lower this process's CPU priority as far as it goes, for every thread it has.

    On Linux the job runs under SCHED_IDLE: any other thread that wakes up (the UI thread
    above all) takes a core from it at once. At nice 19 alone the scheduler may first let the
    job finish its time slice, and the UI thread, which has just used more than its fair
    share drawing, could wait 10-30 ms for a core on a 2-core PC. An idle CPU still runs the job
    at full speed; other programs that keep every core busy leave it only their gaps (the
    inspection PC runs this app). Where SCHED_IDLE is missing (macOS) nice 19 is what is left;
    Windows has neither, and the job runs at normal priority there.

    Linux sets both per thread, and the child can have threads before this runs (one stayed
    at nice 0 when only the calling thread was lowered): each one is lowered; those started
    later inherit it.
    """
    for tid in _own_threads():
        lower_priority(tid, CHILD_NICENESS)
        if hasattr(os, "SCHED_IDLE"):
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except OSError:  # not allowed here (a container's seccomp profile): nice 19 stays
                pass


def lower_priority(tid: int, niceness: int) -> None:
    """Make thread ``tid`` (Linux; 0: the calling process elsewhere) at least this nice; one
    already nicer stays as it is. Where it is not allowed, the thread keeps its priority."""
    if not hasattr(os, "setpriority"):
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(current, niceness))
    except OSError:
        pass


def _own_threads() -> list[int]:
    """The native ids of this process's threads (Linux), or [0]: "this process" elsewhere."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except (OSError, ValueError):
        return [0]


def _stop_when_the_app_is_gone(cancel) -> None:
    """If the app dies, cancel the job: it stops at its next check, leaving no partial file
    (the app held the project's lock for it, and that lock went with the app)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        cancel.set()

    threading.Thread(target=watch, daemon=True, name="watch-app").start()


# --- the app side -----------------------------------------------------------------------------


def run_in_child(job: ProcessJob, stop: threading.Event) -> Iterator[tuple]:
    """Start ``job`` in a child process and yield its messages as they come; the last one is
    ("ok", result), ("failed", Failure) or ("cancelled",). Setting ``stop`` cancels the job."""
    if stop.wait(START_DELAY_S):
        yield ("cancelled",)  # cancelled before it began: no process to start
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe with Qt and torch threads
    receiver, sender = context.Pipe(duplex=False)
    cancel = context.Event()
    child = context.Process(
        target=_child_main, args=(sender, cancel, job), name=f"afps-job-{job.target}", daemon=True
    )
    child.start()
    sender.close()  # the child holds the only sending end: recv() sees EOF when it dies
    cancelled_at: Optional[float] = None
    try:
        while True:
            if stop.is_set() and cancelled_at is None:
                cancel.set()
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > KILL_AFTER_CANCEL_S:
                log.warning("Job %s did not stop when cancelled: terminating it", job.target)
                yield ("cancelled",)
                return
            if not receiver.poll(0.05):
                continue
            try:
                message = receiver.recv()
            except EOFError:
                child.join(5)
                yield ("failed", died_failure(child.exitcode))
                return
            yield message
            if message[0] in ("ok", "failed", "cancelled"):
                return
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.terminate()
            child.join(5)
