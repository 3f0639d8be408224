"""A relabelling process killed with SIGKILL at random moments loses no confirmed change.

The child process sets labels in a fixed sequence and prints "OK <seq> <image> <label>" after each
call returns: that line is the moment the GUI would show the change as saved. After each kill the
database must pass integrity_check and hold, for every image, its last confirmed label, or the
label of the one write that may have committed before its OK line was printed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from afps_gui.core.labels import LabelStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")

REPO = Path(__file__).resolve().parents[1]
KILLS = 24
IMAGES = 7
LABELS = ("Spot", "Scratch", "normal")

CHILD = """
import sys
from afps_gui.core.labels import LabelStore

IMAGES, LABELS = {images}, {labels!r}
store = LabelStore(sys.argv[1], user="child", backup_on_open=False)
seq = int(sys.argv[2])
print("READY", flush=True)
while True:
    image, label = f"img_{{seq % IMAGES}}.png", LABELS[(seq // IMAGES) % len(LABELS)]
    store.set_label(image, label)
    print(f"OK {{seq}} {{image}} {{label}}", flush=True)
    seq += 1
"""


def write_of(seq: int) -> tuple[str, str]:
    """The (image, label) the child writes at step ``seq`` (each differs from the last one)."""
    return f"img_{seq % IMAGES}.png", LABELS[(seq // IMAGES) % len(LABELS)]


def run_and_kill(script: Path, db: Path, start: int, delay: float) -> list[int]:
    """Start the child at step ``start``, SIGKILL it ``delay`` s after it is ready; its OK seqs."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # drain the pipe so the child never blocks on a full one
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(30):
            pytest.fail(f"the child did not start: {proc.stderr.read() if proc.poll() else ''}")
        time.sleep(delay)
        assert proc.poll() is None, proc.stderr.read()  # still writing: it never stops by itself
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        reader.join(10)
        proc.stderr.close()
    confirmed = []
    for line in lines:
        parts = line.split()
        if line.endswith("\n") and len(parts) == 4 and parts[0] == "OK":  # only whole lines
            seq = int(parts[1])
            assert (parts[2], parts[3]) == write_of(seq)
            confirmed.append(seq)
    assert confirmed == list(range(start, start + len(confirmed)))
    return confirmed


def test_killed_writer_loses_no_confirmed_change(tmp_path: Path):
    db = tmp_path / "labels.sqlite"
    LabelStore(db, backup_on_open=False).close()  # created once, as the app would
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(images=IMAGES, labels=LABELS))
    rng = random.Random(20240607)
    acceptable: dict[str, set[str | None]] = {}  # image -> labels it may hold now
    seq, total, started = 0, 0, time.monotonic()
    for run in range(1, KILLS + 1):
        confirmed = run_and_kill(script, db, seq, rng.uniform(0.0, 0.3))
        for done in confirmed:
            image, label = write_of(done)
            acceptable[image] = {label}
        # The write after the last confirmed one may have committed before its OK was printed.
        seq = confirmed[-1] + 1 if confirmed else seq
        image, label = write_of(seq)
        acceptable.setdefault(image, {None}).add(label)
        total += len(confirmed)

        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = dict(conn.execute("SELECT image, label FROM labels"))
            history = conn.execute("SELECT count(*) FROM changes WHERE kind = 'label'")
            # Each run's first write may repeat one that landed unconfirmed: a no-op, not recorded.
            assert history.fetchone()[0] >= total - run
        finally:
            conn.close()
        for image, allowed in acceptable.items():
            assert stored.get(image) in allowed, (image, stored.get(image), allowed)
    assert total > KILLS  # the kills really did land in the middle of writing
    assert time.monotonic() - started < 60
    with LabelStore(db) as store:  # and the app opens it normally afterwards
        assert store.can_undo()
