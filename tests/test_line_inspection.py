"""Line inspection in core: complete files only, one durable record each, batches through the
project's real models, results in the review queue (real decoding, a real fitted tiny project)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from fixtures_data import save_image
from test_line_support import drop, images_of

from afps_gui.core import pipeline
from afps_gui.core.inspection_log import Inspection, InspectionLog
from afps_gui.core.jobs import JobContext, no_progress
from afps_gui.core.line_inspection import (
    WatchOptions,
    is_line_image,
    line_samples,
    run_watch,
    watch_job,
)
from afps_gui.core.line_sources import ReadyFiles, scan_folder
from afps_gui.core.line_transfers import finish_transfers
from afps_gui.core.project import Project
from afps_gui.core.review_queue import project_queue, queue_inputs

pytest_plugins = ["test_line_support"]


def watcher(folder: Path, done=(), settle_s=0.5, **kwargs) -> ReadyFiles:
    done = set(done)
    return ReadyFiles(
        lambda: scan_folder(folder, **kwargs), done.__contains__, settle_s=settle_s, attempts=2
    )


def poll_until(files: ReadyFiles, seconds: float, want=lambda r, g: r or g):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, given_up = files.poll()
        if want(ready, given_up):
            return ready, given_up
        time.sleep(0.05)
    return [], []


# --- sources -----------------------------------------------------------------------------------


def test_a_file_being_written_is_read_only_when_complete(tmp_path):
    data = save_image(tmp_path / "src.png", (64, 48)).read_bytes()
    line = tmp_path / "line"
    line.mkdir()
    target = line / "part.png"
    target.write_bytes(data[: len(data) // 2])
    files = watcher(line, settle_s=5)
    for _ in range(4):  # stable but undecodable: waited for, not given up
        assert files.poll() == ([], [])
    with open(target, "ab") as fh:
        fh.write(data[len(data) // 2 :])
    ready, given_up = poll_until(files, 2)
    assert [r.state.path for r in ready] == [target] and not given_up
    assert ready[0].image.shape == (48, 64, 3) and ready[0].state.size == len(data)


def test_a_file_that_never_decodes_is_given_up_with_its_reason(tmp_path):
    line = tmp_path / "line"
    line.mkdir()
    (line / "notes.png").write_text("not an image")
    data = save_image(tmp_path / "src.png", (64, 48)).read_bytes()
    (line / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    files = watcher(line, settle_s=0.3)
    given = []
    end = time.monotonic() + 3
    while len(given) < 2 and time.monotonic() < end:
        given += files.poll()[1]
        time.sleep(0.05)
    reasons = {g.state.path.name: g.reason for g in given}
    assert "not an image" in reasons["notes.png"]
    assert "truncated" in reasons["cut.png"]
    assert files.waiting == 0


def test_names_that_are_not_parts_are_ignored_and_sub_folders_are_optional(tmp_path):
    line = tmp_path / "line"
    for name in (".hidden.png", "~lock.png", "a_mask.png"):
        save_image(line / name)
    for name in ("a.png.tmp", "b.png.part", "readme.txt"):
        (line / name).write_bytes(b"x")
    save_image(line / "sub" / "deep.png")
    save_image(line / "OK" / "sorted.png")
    save_image(line / "top.png")
    flat = {s.path.name for s in scan_folder(line)}
    assert flat == {"top.png"}
    deep = {s.path.name for s in scan_folder(line, recursive=True, exclude=[line / "OK"])}
    assert deep == {"top.png", "deep.png"}


def test_a_file_written_again_under_the_same_name_is_a_new_part(tmp_path):
    line = tmp_path / "line"
    first = save_image(line / "cam.png", seed=1)
    files = watcher(line)
    (r1,), _ = poll_until(files, 2)
    files.is_done = {r1.state.key}.__contains__
    assert files.poll() == ([], [])
    time.sleep(0.01)
    save_image(first, size=(40, 30), seed=2)
    (r2,), _ = poll_until(files, 2)
    assert r2.state.path == r1.state.path and r2.state.key != r1.state.key


# --- the log -----------------------------------------------------------------------------------


def test_the_log_records_a_key_once_and_exports_each_row_once(tmp_path):
    out = tmp_path / "results.jsonl"
    with InspectionLog(tmp_path / "inspections.sqlite") as log:
        log.start_export(out)
        row = Inspection("a.png", "a.png|1|2", 1, 2, verdict="OK", score=1.5)
        assert log.record(row) == 1
        assert log.record(Inspection("a.png", "a.png|1|2", 1, 2, verdict="NG")) is None
        log.record(Inspection("b.png", "b.png|3|4", 3, 4, error="it is not an image"))
        assert log.export_jsonl(out) == 2 and log.export_jsonl(out) == 0
        # A kill after the lines were written but before the log said so: cut and rewritten.
        log.record(Inspection("c.png", "c.png|5|6", 5, 6, verdict="NG", type="Spot"))
        with open(out, "a") as fh:
            fh.write('{"seq": 3, "file": "c.png", "ver')
        assert log.export_jsonl(out) == 1
        counts = log.counts()
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert [x["file"] for x in lines] == ["a.png", "b.png", "c.png"]
    assert lines[0]["confidence"] is None and lines[0]["type"] is None
    assert lines[1]["verdict"] is None and "not an image" in lines[1]["error"]
    assert counts == {"parts": 3, "OK": 1, "NG": 1, "errors": 1, "ng_types": {"Spot": 1}}
    # The log survives a reopen read-only (what the app's view does beside the watcher).
    with InspectionLog(tmp_path / "inspections.sqlite", readonly=True) as log:
        assert len(log.latest()) == 3 and log.done_keys() >= {"a.png|1|2"}


def test_a_foreign_database_is_refused_untouched(tmp_path):
    import sqlite3

    path = tmp_path / "inspections.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE x (y)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    from afps_gui.core.inspection_log import InspectionLogError

    with pytest.raises(InspectionLogError, match="not an AFPS Inspector inspection log"):
        InspectionLog(path)
    assert path.read_bytes() == before


# --- inspecting with the project's models ------------------------------------------------------


def test_once_scores_judges_types_and_queues_for_review(line_project_folder, line_data, tmp_path):
    line = tmp_path / "line"
    good = drop(images_of(line_data, "good", 4), line)
    bad = drop(images_of(line_data, "Spot", 2) + images_of(line_data, "Scratch", 2), line)
    (line / "junk.png").write_text("not an image")
    os.utime(line / "junk.png", (time.time() - 60, time.time() - 60))  # written long ago
    posts = []
    with Project.open(line_project_folder) as project:
        res = run_watch(
            project, WatchOptions(folder=str(line), once=True, settle_s=0.5), post=posts.append
        )
        padim = pipeline.load_padim(project)
        assert res.inspected == 9 and res.errors == 1 and not res.stopped
        by_name = {Path(p["file"]).name: p for p in posts}
        for p in posts:  # the one threshold rule decides every verdict
            if not p["error"]:
                assert p["verdict"] == ("NG" if padim.is_anomalous(p["score"]) else "OK")
        assert sum(by_name[p.name]["verdict"] == "NG" for p in bad) >= 3, posts
        assert sum(by_name[p.name]["verdict"] == "OK" for p in good) >= 3, posts
        assert "not an image" in by_name["junk.png"]["error"]
        ng = [p for p in posts if p["verdict"] == "NG"]
        assert all(p["type"] in ("Spot", "Scratch") for p in ng)
        assert all(p["patches"] and len(p["patches"]) == 10 for p in ng)
        # NG results are in the review queue, with their files
        data = queue_inputs(project)
        for p in ng:
            assert is_line_image(p["image"]) and p["image"] in data.rels
            assert data.line_paths[p["image"]] == p["file"]
        queued = {i.rel: i for i in project_queue(project)}
        first = ng[0]["image"]
        assert queued[first].predicted == ng[0]["type"] and queued[first].score == ng[0]["score"]
        # a relabel there is an ordinary, undoable label change that training can use
        project.store.set_label(first, "Scratch")
        assert [s.rel for s in line_samples(project)] == [first]
        project.store.undo()
        assert line_samples(project) == []
    with InspectionLog.of_project(line_project_folder, readonly=True) as log:
        row = log.by_image(first)
        assert row.patch_map.shape == (16, 16) and row.box == (0, 64, 0, 64)
        assert row.padim_id.startswith("padim-") and row.classifier_id.startswith("classifier-")


def test_a_second_run_skips_what_was_recorded(line_project_folder, line_data, tmp_path):
    line = tmp_path / "line"
    drop(images_of(line_data, "good", 3), line)
    with Project.open(line_project_folder) as project:
        assert run_watch(project, WatchOptions(folder=str(line), once=True)).inspected == 3
        drop(images_of(line_data, "Spot", 1), line)
        again = run_watch(project, WatchOptions(folder=str(line), once=True))
    assert again.inspected == 1 and again.ng == 1


def test_inspected_files_are_sorted_and_a_kill_before_the_move_is_finished(
    line_project_folder, line_data, tmp_path
):
    line, sorted_ = tmp_path / "line", tmp_path / "sorted"
    drop(images_of(line_data, "good", 2) + images_of(line_data, "Spot", 1), line)
    (line / "junk.png").write_text("nope")
    os.utime(line / "junk.png", (time.time() - 60, time.time() - 60))
    opts = WatchOptions(folder=str(line), once=True, move_to=str(sorted_))
    with Project.open(line_project_folder) as project:
        run_watch(project, opts)
    assert sorted(p.name for p in line.iterdir()) == []
    assert len(list((sorted_ / "OK").iterdir())) == 2
    assert [p.name for p in (sorted_ / "NG" / "Spot").iterdir()] == ["spot_000.png"]
    assert [p.name for p in (sorted_ / "unreadable").iterdir()] == ["junk.png"]
    # as if killed between the record and the move: the next start moves it
    back = line / "spot_000.png"
    os.replace(sorted_ / "NG" / "Spot" / "spot_000.png", back)
    with InspectionLog.of_project(line_project_folder) as log:
        row = next(r for r in log.latest(5) if r.verdict == "NG")
        log._conn.execute("UPDATE inspections SET moved = 0 WHERE id = ?", (row.id,))
        assert finish_transfers(log, copy=False) == 1
    assert not back.exists() and (sorted_ / "NG" / "Spot" / "spot_000.png").exists()


def test_the_job_posts_each_result_and_stops_on_cancel(line_project_folder, line_data, tmp_path):
    line = tmp_path / "line"
    drop(images_of(line_data, "good", 2), line)
    stop = threading.Event()
    posts = []

    def post(item):
        posts.append(item)
        if len(posts) == 2:
            stop.set()

    with Project.open(line_project_folder, readonly=True) as app_view:
        settings = app_view.settings.to_json()
    ctx = JobContext(no_progress, stop, post)
    summary = watch_job(
        ctx, str(line_project_folder), settings, False, {"folder": str(line), "poll_s": 0.05}
    )
    assert summary["stopped"] and summary["inspected"] == 2
    assert {p["verdict"] for p in posts} <= {"OK", "NG"}
    assert all(isinstance(p, dict) and "patch_map" not in p for p in posts)


def test_bad_options_say_what_to_do(tmp_path):
    from afps_gui.core.errors import AfpsError

    with pytest.raises(AfpsError, match="not a folder"):
        WatchOptions(folder=str(tmp_path / "missing"))
    with pytest.raises(AfpsError, match="a folder or a list of files"):
        WatchOptions()
