"""Logs and crashes: a rotating log in the per-user log folder, and a last-resort hook.

Several app instances (and their job processes) may write the one log file at once. The
standard RotatingFileHandler keeps the file open and renames it at rotation, which fails on
Windows while another instance holds it, and on Linux leaves the other instance writing into
the renamed file. ``SharedRotatingFileHandler`` opens the file only to append one record and
rotates under a lock that every writer takes, so any number of processes share it.

An unhandled exception anywhere (main thread or a worker thread) is written to the log and
handed to a reporter (the GUI shows a dialog with a copy button) instead of the app vanishing.
Labels are never touched here: they are committed per change by the labels store.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import appdirs

APP_NAME = "AFPS Inspector"
APP_AUTHOR = "AFPS"
LOG_NAME = "afps-inspector.log"
Reporter = Callable[[str, str], None]  # (short message, full traceback text)

_reporter: Optional[Reporter] = None


def user_dirs() -> dict[str, Path]:
    """Per-user folders as the OS expects them (AFPS_HOME overrides all, for tests and kiosks)."""
    home = os.environ.get("AFPS_HOME")
    if home:
        base = Path(home)
        return {
            "data": base / "data",
            "config": base / "config",
            "logs": base / "logs",
            "cache": base / "cache",
        }
    return {
        "data": Path(appdirs.user_data_dir(APP_NAME, APP_AUTHOR)),
        "config": Path(appdirs.user_config_dir(APP_NAME, APP_AUTHOR)),
        "logs": Path(appdirs.user_log_dir(APP_NAME, APP_AUTHOR)),
        "cache": Path(appdirs.user_cache_dir(APP_NAME, APP_AUTHOR)),
    }


def log_path() -> Path:
    return user_dirs()["logs"] / LOG_NAME


LOCK_WAIT_S = 2.0  # a writer that cannot get the lock this long writes without it


class SharedRotatingFileHandler(logging.Handler):
    """A rotating log file that many processes append to at the same time.

    Each record is appended with the file opened just for it, under an inter-process lock
    (``<log>.lock``), and rotation (log -> log.1 -> ... -> log.N) happens under the same lock
    when the file would pass ``max_bytes``. A rotation that fails (on Windows, while another
    program such as a viewer holds the file) is skipped and tried again at the next record:
    the log may grow past its limit for a while but no record is lost and nothing is printed.
    """

    def __init__(self, path, max_bytes: int = 2_000_000, backup_count: int = 5):
        super().__init__()
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        with open(self.path, "ab"):  # fail now (read-only home) rather than at the first record
            pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
            with _interprocess_lock(self.lock_path):
                if self.max_bytes > 0 and self._size() + len(data) > self.max_bytes:
                    self._rotate()
                with open(self.path, "ab") as fh:
                    fh.write(data)
        except Exception:
            self.handleError(record)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _rotate(self) -> None:
        if self._size() == 0:
            return
        try:
            for i in range(self.backup_count - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            if self.backup_count > 0:
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            else:
                self.path.unlink()
        except OSError:
            pass  # held open elsewhere (Windows): keep appending, rotate at a later record


@contextmanager
def _interprocess_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` shared by all processes (flock / msvcrt.locking).

    If it cannot be had within LOCK_WAIT_S the body runs anyway: a log line written without
    the lock is better than a program that hangs on its log."""
    fh = open(path, "a+b")
    try:
        locked = _lock(fh)
        try:
            yield
        finally:
            if locked:
                _unlock(fh)
    finally:
        fh.close()


def _lock(fh) -> bool:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            if sys.platform.startswith("win"):
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


def _unlock(fh) -> None:
    if sys.platform.startswith("win"):
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to a rotating file (5 x 2 MB) shared by all instances; returns its path."""
    path = log_path()
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_afps", False) for h in root.handlers):
        return path
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = SharedRotatingFileHandler(path, 2_000_000, 5)
    except OSError as exc:  # a read-only home must not stop the app
        handler = logging.StreamHandler(sys.stderr)
        print(
            f"AFPS Inspector: cannot write the log at {path} ({exc}); logging to stderr.",
            file=sys.stderr,
        )
    handler.setFormatter(fmt)
    handler._afps = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return path


def format_exception(exc_type, exc, tb) -> str:
    return "".join(traceback.format_exception(exc_type, exc, tb))


def report_exception(exc_type, exc, tb, where: str = "") -> None:
    """Log an unexpected exception and hand it to the reporter (if any)."""
    text = format_exception(exc_type, exc, tb)
    logging.getLogger("afps.crash").error(
        "Unhandled exception%s:\n%s", f" in {where}" if where else "", text
    )
    if _reporter is not None:
        try:
            _reporter(f"{exc_type.__name__}: {exc}", text)
        except Exception:  # the reporter itself failing must not recurse
            logging.getLogger("afps.crash").exception("The crash reporter failed")


def install_crash_handler(reporter: Optional[Reporter] = None) -> None:
    """Route unhandled exceptions of every thread to the log and the reporter."""
    global _reporter
    _reporter = reporter

    def excepthook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        report_exception(exc_type, exc, tb, "the main thread")

    def thread_hook(args: threading.ExceptHookArgs):
        report_exception(
            args.exc_type,
            args.exc_value,
            args.exc_traceback,
            f"thread {args.thread.name if args.thread else '?'}",
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_hook
