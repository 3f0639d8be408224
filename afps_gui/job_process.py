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
import sys
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

# How far a job gives way to other programs: a preference (Preferences > Job priority).
# "below normal", the default, makes the child nice 2 (Windows: the below-normal class). Against
# the UI thread at nice 0 it loses a contested core about 3:2 (CFS weights 1024 : 655), and a
# program that keeps every core busy at normal priority still leaves it a good share: 0.44 of
# its idle throughput measured (bench_job_priority.py; nice 3 gave 0.29).
# "lowest" is Linux's SCHED_IDLE (nice 19 elsewhere, Windows' idle class): the UI always wins
# at once, but a busy PC starves the job (a demo fit got 5 s of CPU in 139 s), which is why it
# is no longer the default. "normal" competes as an equal.
JOB_PRIORITIES = ("normal", "below normal", "lowest")
DEFAULT_JOB_PRIORITY = "below normal"
_NICENESS = {"normal": 0, "below normal": 2, "lowest": 19}
# SetPriorityClass's values (winbase.h): NORMAL, BELOW_NORMAL and IDLE_PRIORITY_CLASS
_WINDOWS_CLASS = {"normal": 0x0020, "below normal": 0x4000, "lowest": 0x0040}

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


def _child_main(conn, cancel, job: ProcessJob, priority: str = DEFAULT_JOB_PRIORITY) -> None:
    """Entry point of the child process: run the job, send ("progress" | "post" | "ok" |
    "failed" | "cancelled", ...) messages, then end."""
    set_job_priority(priority)
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


def set_job_priority(priority: str) -> None:
    """Give this process the job priority ``priority`` (one of JOB_PRIORITIES), every thread.

    Linux sets nice and the policy per thread, and the child can have threads before this runs
    (one stayed at nice 0 when only the calling thread was lowered): each one is set; those
    started later inherit it. The UI keeps its responsiveness by other means too: torch in the
    job uses all cores but one, and the app's own helper threads run behind its UI thread.
    """
    if priority not in JOB_PRIORITIES:
        log.warning("Unknown job priority %r: using %r", priority, DEFAULT_JOB_PRIORITY)
        priority = DEFAULT_JOB_PRIORITY
    if sys.platform == "win32":
        _set_windows_priority_class(_WINDOWS_CLASS[priority])
        return
    if priority != "normal":
        keep_off_the_ui_core()
    for tid in _own_threads():
        lower_priority(tid, _NICENESS[priority])
        if priority == "lowest" and hasattr(os, "SCHED_IDLE"):
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            except OSError:  # not allowed here (a container's seccomp profile): nice 19 stays
                pass


def keep_off_the_ui_core() -> None:
    """Run the job's threads on every core but one (Linux), so the UI thread always finds one
    free of the job: at nice 2 the job no longer gives way at once as it did under SCHED_IDLE.
    Torch already uses all cores but one; this keeps the job's other threads (decoding, the
    interpreter's own) off the last one too. On a single core there is nothing to leave."""
    if not hasattr(os, "sched_setaffinity"):
        return
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        return
    for tid in _own_threads():
        try:
            os.sched_setaffinity(tid, cores - {min(cores)})
        except OSError:  # a thread that ended meanwhile, or a container that forbids it
            pass


def _set_windows_priority_class(value: int) -> None:
    """SetPriorityClass on this process (ctypes: no extra package for one call)."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    if not kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), value):
        log.warning("Could not set the job's priority class (error %d)", ctypes.get_last_error())


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


def run_in_child(
    job: ProcessJob, stop: threading.Event, priority: str = DEFAULT_JOB_PRIORITY
) -> Iterator[tuple]:
    """Start ``job`` in a child process at ``priority`` and yield its messages as they come; the
    last one is ("ok", result), ("failed", Failure) or ("cancelled",). Setting ``stop`` cancels
    the job."""
    if stop.wait(START_DELAY_S):
        yield ("cancelled",)  # cancelled before it began: no process to start
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe with Qt and torch threads
    receiver, sender = context.Pipe(duplex=False)
    cancel = context.Event()
    child = context.Process(
        target=_child_main,
        args=(sender, cancel, job, priority),
        name=f"afps-job-{job.target}",
        daemon=True,
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
