"""Job functions for the job-process tests: the child process imports them by name, so they
live in a module of their own (tests/ is on the path that the child inherits)."""

from __future__ import annotations

import os
import signal
import time


def boom(ctx):
    raise RuntimeError("boom")


def die(ctx):
    """As the kernel's out-of-memory killer would end it."""
    os.kill(os.getpid(), signal.SIGKILL)


def report(ctx, items: int):
    """Posts items, reports progress, and returns what the child process looks like."""
    import torch

    for i in range(items):
        ctx.post({"item": i})
        ctx.progress(i + 1, items, f"item {i + 1}")
    policy = None
    if hasattr(os, "sched_getscheduler"):  # every thread's, torch's and numpy's workers too
        policy = {os.sched_getscheduler(int(tid)) for tid in os.listdir("/proc/self/task")}
    return {
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "nice": _niceness(),
        "policy": policy,
        "cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def deaf(ctx):
    """Never looks at the cancel flag (as if stuck in a native call)."""
    ctx.progress(0, 1, "stuck")
    time.sleep(600)


def _niceness() -> int:
    return os.nice(0) if hasattr(os, "nice") else 0
