"""What every long core job shares: a progress callback, a cancel flag, and atomic file writes.

A job takes ``progress(done, total, message)`` and ``cancel`` (a ``threading.Event`` or None).
The Qt workers turn the callback into signals; the CLI turns it into a progress bar.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import AfpsError, Cancelled

Progress = Callable[[int, int, str], None]


@dataclass
class JobContext:
    """What a job function of the app receives: the core callbacks plus a way to post partial
    results (a training epoch's curves) while it runs."""

    progress: Progress
    cancel: Any  # threading.Event or multiprocessing.Event: only is_set() is used
    post: Callable[[Any], None]


def no_progress(done: int, total: int, message: str = "") -> None:
    """The default progress callback: ignores every report."""


def check_cancel(cancel: Optional[threading.Event]) -> None:
    """Raise Cancelled if the user asked the job to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A cancelled or failed job (or a full disk) therefore never leaves a half-written file, and
    an older file at ``path`` survives until the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600; the finished file gets the user's normal permissions
        # (as open() would give it), so that other users of the PC can read the project.
        if os.name == "posix":
            os.chmod(tmp_path, 0o666 & ~current_umask())
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if _disk_full(exc):
            raise AfpsError(
                f"The disk is full: could not write {target}. Free some space and try again; "
                "the previous file, if any, is unchanged."
            ) from exc
        raise


class OverwriteRefused(AfpsError, FileExistsError):
    """An export that would replace an existing file; repeat with overwrite=True to replace it."""


def refuse_overwrite(target: str | os.PathLike, overwrite: bool) -> None:
    """The one rule for writing a file the user named: an existing file is replaced only when
    the caller says so (``overwrite``, after asking); otherwise OverwriteRefused."""
    if Path(target).exists() and not overwrite:
        raise OverwriteRefused(
            f"{target} already exists. Choose another file name, or confirm that it may be "
            "replaced."
        )


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux), else by the
    classic set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from is "no space left on device". Writers
    can wrap it: torch.save's zip writer raises a RuntimeError ("unexpected pos ...") while
    handling the OSError that a full disk gave it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
