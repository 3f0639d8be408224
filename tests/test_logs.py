"""The shared log file: two processes write and rotate it at once, and nothing is lost."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from afps_gui import logs

WRITER = textwrap.dedent(
    """
    import logging, sys, time
    from afps_gui.logs import SharedRotatingFileHandler
    path, who, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    handler = SharedRotatingFileHandler(path, max_bytes=3000, backup_count=1000)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("w")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    while not __import__("os").path.exists(go):  # start together
        time.sleep(0.01)
    for i in range(n):
        log.info("%s record %04d %s", who, i, "x" * 40)
    """
)


def _all_lines(folder: Path) -> list[str]:
    lines = []
    for f in folder.glob("shared.log*"):
        if not f.name.endswith(".lock"):
            lines += f.read_text(encoding="utf-8").splitlines()
    return lines


def test_two_processes_write_and_rotate_one_log(tmp_path):
    path, go, n = tmp_path / "shared.log", tmp_path / "go", 400
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), who, str(n), str(go)],
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("A", "B")
    ]
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert errors == ["", ""]  # no "--- Logging error ---" from a failed rotation
    lines = _all_lines(tmp_path)
    for who in ("A", "B"):  # every record once, whole, from both writers
        mine = sorted(line for line in lines if line.startswith(f"{who} record"))
        assert mine == [f"{who} record {i:04d} {'x' * 40}" for i in range(n)]
    assert len(lines) == 2 * n
    rotated = [f for f in tmp_path.glob("shared.log.*") if not f.name.endswith(".lock")]
    assert len(rotated) > 5  # it did rotate, under both writers
    assert all(f.stat().st_size <= 3000 for f in rotated)


def _handler(path: Path, **kw) -> tuple[logging.Logger, logs.SharedRotatingFileHandler]:
    handler = logs.SharedRotatingFileHandler(path, **kw)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"test-{path}")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log, handler


def test_rotation_blocked_by_another_holder_is_retried_later(tmp_path, monkeypatch, capsys):
    """Windows refuses to rename a file another process holds open: the handler keeps
    appending, says nothing, and rotates once the rename works again."""
    path = tmp_path / "app.log"
    log, handler = _handler(path, max_bytes=200, backup_count=3)
    real_replace = logs.os.replace

    def refused(src, dst):
        raise PermissionError(32, "The process cannot access the file", str(src))

    monkeypatch.setattr(logs.os, "replace", refused)
    for i in range(10):
        log.info("line %d %s", i, "y" * 30)
    assert not (tmp_path / "app.log.1").exists()
    assert path.stat().st_size > 200  # grew past the limit rather than losing records
    monkeypatch.setattr(logs.os, "replace", real_replace)
    log.info("after")
    assert (tmp_path / "app.log.1").exists()
    assert path.read_text().splitlines() == ["after"]
    assert "Logging error" not in capsys.readouterr().err
    log.removeHandler(handler)


def test_backups_are_capped(tmp_path):
    log, handler = _handler(tmp_path / "app.log", max_bytes=100, backup_count=2)
    for i in range(30):
        log.info("line %02d %s", i, "z" * 40)
    names = sorted(f.name for f in tmp_path.iterdir() if not f.name.endswith(".lock"))
    assert names == ["app.log", "app.log.1", "app.log.2"]
    assert (tmp_path / "app.log").read_text().splitlines()[-1].startswith("line 29")
    log.removeHandler(handler)


def test_setup_logging_uses_the_shared_handler(tmp_path, monkeypatch):
    monkeypatch.setenv("AFPS_HOME", str(tmp_path))
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        for h in before:
            if getattr(h, "_afps", False):
                root.removeHandler(h)
        path = logs.setup_logging()
        ours = [h for h in root.handlers if getattr(h, "_afps", False)]
        assert path == tmp_path / "logs" / logs.LOG_NAME
        assert isinstance(ours[0], logs.SharedRotatingFileHandler)
        logging.getLogger("afps.test").warning("hello from the test")
        assert "hello from the test" in path.read_text(encoding="utf-8")
    finally:
        for h in root.handlers[:]:
            if getattr(h, "_afps", False) and h not in before:
                root.removeHandler(h)
        for h in before:
            if h not in root.handlers:
                root.addHandler(h)
