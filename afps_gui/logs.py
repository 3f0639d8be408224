"""Logs and crashes: a rotating log in the per-user log folder, and a last-resort hook.

An unhandled exception anywhere (main thread or a worker thread) is written to the log and
handed to a reporter (the GUI shows a dialog with a copy button) instead of the app vanishing.
Labels are never touched here: they are committed per change by the labels store.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import traceback
from collections.abc import Callable
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


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to a rotating file (5 x 2 MB) and to stderr; returns the log file's path."""
    path = log_path()
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_afps", False) for h in root.handlers):
        return path
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
        )
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
