"""`afps watch` end to end: the real entry point in a child process, a real fitted project,
files written while it runs, Ctrl+C, and SIGKILL at random moments (each part recorded once)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_line_support import drop, images_of

from afps_gui.cli import main
from afps_gui.core.inspection_log import InspectionLog

pytest_plugins = ["test_line_support"]

REPO = Path(__file__).resolve().parents[1]
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="signals as POSIX sends them")


def afps_watch(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "afps_gui.cli", "watch", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_once_writes_one_json_line_per_image(line_project_folder, line_data, tmp_path, capsys):
    line, out = tmp_path / "line", tmp_path / "out" / "results.jsonl"
    drop(images_of(line_data, "good", 2) + images_of(line_data, "Spot", 1), line)
    (line / "junk.png").write_text("not an image")
    args = ["watch", line_project_folder, line, "--once", "--jsonl", out, "--settle", "0.3"]
    assert main([str(a) for a in args]) == 0
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert len(lines) == 4 and len({x["file"] for x in lines}) == 4
    for x in lines:
        assert {"file", "verdict", "score", "type", "confidence", "error"} <= set(x)
        if x["verdict"] == "OK":
            assert x["type"] is None and x["confidence"] is None
    junk = next(x for x in lines if x["file"].endswith("junk.png"))
    assert junk["verdict"] is None and "not an image" in junk["error"]
    printed = capsys.readouterr()
    assert "ERR " in printed.out and "inspected 4 images" in printed.err
    # Nothing new: a second pass records and exports nothing again.
    assert main([str(a) for a in args]) == 0
    assert len(out.read_text().splitlines()) == 4


def test_bad_input_exits_2_saying_what_to_do(line_project_folder, tmp_path, capsys):
    assert main(["watch", str(tmp_path), str(tmp_path)]) == 2
    assert "is not an AFPS Inspector project" in capsys.readouterr().err
    assert main(["watch", str(line_project_folder), str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["watch", str(line_project_folder), str(tmp_path), "--copy"]) == 2
    assert "--copy: needs --move-to" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["watch", str(line_project_folder), str(tmp_path), "--poll", "0"])
    assert exc.value.code == 2 and "--poll" in capsys.readouterr().err


@POSIX_ONLY
def test_ctrl_c_stops_cleanly_with_130(line_project_folder, line_data, tmp_path):
    line = tmp_path / "line"
    drop(images_of(line_data, "good", 1), line)
    proc = afps_watch(line_project_folder, line, "--poll", "0.05")
    assert proc.stdout.readline().startswith("OK")  # running, and has recorded one part
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "inspected 1 images" in err and "Traceback" not in err


# --- SIGKILL at random moments while a camera writes ------------------------------------------


class Camera(threading.Thread):
    """Writes parts into the folder: most complete, some slowly in pieces, some cut off for
    good, some not images at all. Remembers what each file is."""

    def __init__(self, folder: Path, sources: list[Path], seed: int):
        super().__init__(daemon=True)
        self.folder, self.sources = folder, sources
        self.rng = random.Random(seed)
        self.kinds: dict[str, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            data = self.rng.choice(self.sources).read_bytes()
            kind = self.rng.choices(["whole", "slow", "cut", "junk"], [6, 2, 1, 1])[0]
            path = self.folder / f"part_{n:04d}.png"
            self.kinds[path.name] = kind
            if kind == "whole":
                path.write_bytes(data)
            elif kind == "slow":
                with open(path, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    time.sleep(0.3)  # a pause shorter than --settle: waited for
                    fh.write(data[len(data) // 2 :])
            elif kind == "cut":
                path.write_bytes(data[: len(data) * 3 // 5])
            else:
                path.write_bytes(b"camera log line\n" * 20)
            time.sleep(self.rng.uniform(0.05, 0.3))


def _kill_at_random(cmd_args, rng: random.Random, after_output: bool) -> None:
    proc = afps_watch(*cmd_args)
    printed = threading.Event()

    def drain():  # a full pipe must not stall the watcher between kills
        for _ in proc.stdout:
            printed.set()

    threading.Thread(target=drain, daemon=True).start()
    if after_output:  # during the work itself: after it reported a part
        printed.wait(15)
        time.sleep(rng.uniform(0, 0.5))
    else:  # any moment: importing, loading the models, opening the logs, working
        time.sleep(rng.uniform(0.3, 3.5))
    proc.kill()
    proc.wait(10)
    proc.stderr.close()


@POSIX_ONLY
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    line_project_folder, line_data, tmp_path
):
    line, sorted_, out = tmp_path / "line", tmp_path / "sorted", tmp_path / "results.jsonl"
    line.mkdir()
    sources = images_of(line_data, "good", 6) + images_of(line_data, "Spot", 3)
    camera = Camera(line, sources, seed=15)
    rng = random.Random(15)
    args = [line_project_folder, line, "--jsonl", out, "--move-to", sorted_]
    args += ["--poll", "0.05", "--settle", "1"]
    camera.start()
    grew = 0
    try:
        for i in range(20):
            before = _rows(line_project_folder)
            _kill_at_random(args, rng, after_output=i % 2 == 1)
            grew += _rows(line_project_folder) > before
    finally:
        camera.stop.set()
        camera.join()
    assert grew >= 8, "too few kills landed while the watcher was recording"
    time.sleep(1.2)  # let the cut files age past --settle
    done = subprocess.run(
        [sys.executable, "-m", "afps_gui.cli", "watch", *map(str, args), "--once"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    _check_each_part_once(camera.kinds, line_project_folder, line, sorted_, out)


def _rows(project: Path) -> int:
    if not (project / "inspections.sqlite").exists():
        return 0
    with InspectionLog.of_project(project, readonly=True) as log:
        return log.counts()["parts"]


def _check_each_part_once(kinds, project, line, sorted_, out) -> None:
    with InspectionLog.of_project(project, readonly=True) as log:
        rows = log.after(0, limit=100_000)
    names = [Path(r.file).name for r in rows]
    assert len(names) == len(set(names)), "a part was recorded twice"
    assert set(names) == set(kinds), "a part was lost (or one that was never written appeared)"
    for r in rows:
        kind = kinds[Path(r.file).name]
        if kind in ("whole", "slow"):
            assert r.verdict in ("OK", "NG") and r.error is None, (kind, r)
        else:
            assert r.verdict is None and r.error, (kind, r)
        assert Path(r.stored).is_file() and not Path(r.file).exists()
    assert not any(line.iterdir()), "files were left unsorted"
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert sorted(x["seq"] for x in lines) == sorted(r.id for r in rows)
    assert len({x["file"] for x in lines}) == len(lines) == len(rows)
    assert sum(1 for _ in sorted_.rglob("*.png")) == len(rows)
