"""Data safety of a project folder: vanished labels, read-only folders, file permissions and a
full disk. Labels are the one thing that must never be lost."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from afps_gui.cli import main
from afps_gui.core import jobs, labels, pipeline, project_lock
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.errors import AfpsError, LabelStoreError
from afps_gui.core.labels import LabelStore
from afps_gui.core.project import Project, ProjectSettings

LABELLED = {"Spot/a.png": "Spot", "Scratch/b.png": "Scratch", "good/c.png": "normal"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A project with three human labels (and its .bak-open backup holding them)."""
    root = tmp_path_factory.mktemp("safety")
    data = make_demo_dataset(root / "data", n_normal=4, n_per_type=2, size=(32, 32))
    folder = root / "proj"
    with Project.create(folder, ProjectSettings(dataset_root=str(data))) as project:
        for image, label in LABELLED.items():
            project.store.set_label(image, label)
    with Project.open(folder):  # the next session's backup holds the three labels
        pass
    return folder


@pytest.fixture
def proj(template, tmp_path) -> Path:
    folder = tmp_path / "proj"
    shutil.copytree(template, folder)
    return folder


def count_labels(path: Path) -> int:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM labels").fetchone()[0]
    finally:
        conn.close()


def run(*args) -> int:
    return main([str(a) for a in args])


# --------------------------------------------------------------- 1. vanished labels database


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_vanished_labels_refuse_to_open_and_keep_the_backup(proj, tmp_path, capsys, how):
    db = proj / "labels.sqlite"
    backup = proj / "labels.sqlite.bak-open"
    assert count_labels(backup) == 3
    if how == "truncated":
        db.write_bytes(b"")
    else:
        db.unlink()
    out = tmp_path / "o.csv"

    assert run("labels", "export", out, "--project", proj) == 2

    err = capsys.readouterr().err
    assert "labels.sqlite.bak-open" in err and "holds 3 labels" in err
    assert "copy labels.sqlite.bak-open over labels.sqlite" in err
    assert ("is empty" in err) if how == "truncated" else ("is missing" in err)
    assert not out.exists()
    assert count_labels(backup) == 3  # the only copy of the labels is untouched
    if how == "truncated":
        assert db.stat().st_size == 0
    else:
        assert not db.exists()  # no new, empty database was made in its place
    assert not list(proj.glob("labels.sqlite*-shm")) and not list(proj.glob("*-wal"))

    # doing what the message says brings the labels back
    shutil.copyfile(backup, db)
    assert run("labels", "export", out, "--project", proj) == 0
    assert len(out.read_text().splitlines()) == 1 + 3


def test_vanished_labels_refuse_read_only_too(proj):
    (proj / "labels.sqlite").unlink()
    with pytest.raises(LabelStoreError, match=r"bak-open.*holds 3 labels"):
        Project.open(proj, readonly=True)


def test_a_new_database_without_a_backup_still_opens(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        store.set_label("a.png", "normal")
    with LabelStore(tmp_path / "other.sqlite", backup_on_open=False):
        pass


def test_the_backup_is_never_replaced_by_an_emptier_copy(proj):
    db = proj / "labels.sqlite"
    backup = proj / "labels.sqlite.bak-open"
    # an older copy of the labels put back by hand: one label, less history
    older = proj / "older.sqlite"
    with LabelStore(older, backup_on_open=False) as store:
        store.set_label("Spot/a.png", "Spot")
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copyfile(older, db)

    with Project.open(proj) as project:
        assert project.store.labels() == {"Spot/a.png": "Spot"}
    assert count_labels(backup) == 3  # the fuller backup was kept

    # a session that only goes on from the backup's state replaces it as before
    shutil.copyfile(backup, db)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with Project.open(proj) as project:
        project.store.set_label("Spot/a.png", None)  # fewer labels, more history: real work
    with Project.open(proj):
        pass
    assert count_labels(backup) == 2


# --------------------------------------------------------------- 2. a folder the user may not write


@pytest.fixture
def unwritable(monkeypatch):
    """The project folder refuses new files, as it does for a user without write permission
    (tests run as root, whom permission bits do not stop)."""
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path).endswith(project_lock.LOCK_NAME) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(project_lock.os, "open", refusing_open)


def test_a_read_only_folder_opens_read_only(proj, tmp_path, unwritable):
    def files():  # SQLite's shared memory files aside: a real read-only folder gets none
        return {p.name: p.stat().st_mtime_ns for p in proj.iterdir() if p.suffix != ".sqlite-shm"}

    before = files()
    with Project.open(proj) as project:
        assert project.readonly
        assert "cannot be written" in project.readonly_reason
        assert "read-only" in project.readonly_reason
        assert project.store.labels() == LABELLED  # reading works
        out = tmp_path / "o.csv"
        assert project.store.export_csv(out) == 3
        with pytest.raises(LabelStoreError, match="read-only"):
            project.store.set_label("good/c.png", "Spot")
        with pytest.raises(AfpsError, match="cannot be written"):
            pipeline._writable(project)  # what every writing job checks first
    after = files()
    after.pop("labels.sqlite-wal", None)
    assert after == before  # nothing was written


def test_read_only_labels_without_a_shared_memory_file(proj, monkeypatch):
    """In a folder the user may not write, SQLite cannot make the -shm file that reading a WAL
    database needs ("unable to open database file"): with no -wal file nobody is writing it,
    so the labels are read as the file holds them."""
    for suffix in ("-wal", "-shm"):
        assert not (proj / f"labels.sqlite{suffix}").exists()
    real_connect = sqlite3.connect

    class NoShm:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if not sql.startswith("PRAGMA busy_timeout"):
                raise sqlite3.OperationalError("unable to open database file")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    def connect(target, *args, **kwargs):
        conn = real_connect(target, *args, **kwargs)
        if "mode=ro" in str(target) and "immutable=1" not in str(target):
            return NoShm(conn)
        return conn

    monkeypatch.setattr(labels.sqlite3, "connect", connect)
    with LabelStore(proj / "labels.sqlite", readonly=True) as store:
        assert store.labels() == LABELLED
    assert not (proj / "labels.sqlite-shm").exists()


def test_cli_writing_command_on_a_read_only_folder_says_why(proj, tmp_path, capsys, unwritable):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("image,label\ngood/c.png,Spot\n")
    before = (proj / "labels.sqlite").read_bytes()
    assert run("labels", "import", csv_path, "--project", proj) == 2
    err = capsys.readouterr().err
    assert "cannot be written" in err and "read-only" in err
    assert "Cannot create the lock file" not in err
    assert (proj / "labels.sqlite").read_bytes() == before


def test_cli_export_and_report_read_a_read_only_project(proj, tmp_path, capsys, unwritable):
    out = tmp_path / "o.csv"
    assert run("labels", "export", out, "--project", proj) == 0
    assert len(out.read_text().splitlines()) == 1 + 3
    assert "read-only" in capsys.readouterr().err  # said, not hidden
    report = tmp_path / "report.csv"
    assert run("report", "--project", proj, "--csv", report) == 0
    assert report.is_file()


# --------------------------------------------------------------- 3. file permissions


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_honours_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert jobs.current_umask() == mask
        target = tmp_path / "file.json"
        with jobs.atomic_write(target) as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_project_settings_are_readable_by_other_users(proj):
    old = os.umask(0o022)
    try:
        with Project.open(proj) as project:
            project.save_settings()
    finally:
        os.umask(old)
    assert stat.S_IMODE((proj / "project.json").stat().st_mode) == 0o644


# --------------------------------------------------------------- 4. a full disk


@pytest.fixture
def failing_sqlite(monkeypatch):
    """sqlite3.connect for the labels database gives a connection that fails like a full disk;
    returns a function to choose the error text."""
    real_connect = sqlite3.connect
    state = {"error": "database or disk is full"}

    class Failing:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            # the first read of the file, which makes the -shm file of a WAL database
            if sql.upper().startswith(("PRAGMA APPLICATION_ID", "SELECT COUNT(*) FROM SQLITE_M")):
                Path(state["shm"]).write_bytes(b"\0\0\0")  # what a full disk leaves
                raise sqlite3.OperationalError(state["error"])
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    def connect(target, *args, **kwargs):
        conn = real_connect(target, *args, **kwargs)
        if str(target).endswith("labels.sqlite"):
            state["shm"] = str(target) + "-shm"
            return Failing(conn)
        return conn

    monkeypatch.setattr(labels.sqlite3, "connect", connect)
    return state


@pytest.mark.parametrize("error", ["database or disk is full", "disk I/O error"])
def test_open_on_a_full_disk_says_so(proj, capsys, failing_sqlite, monkeypatch, error):
    failing_sqlite["error"] = error
    free = SimpleNamespace(total=10**9, used=10**9 - 4096, free=4096)
    monkeypatch.setattr(labels.shutil, "disk_usage", lambda path: free)
    out = proj / "o.csv"
    assert run("labels", "export", out, "--project", proj) == 2
    err = capsys.readouterr().err
    assert "the disk is full: free some space and open the project again" in err
    assert "Nothing was changed" in err
    assert not (proj / "labels.sqlite-shm").exists()  # no 3-byte stub left behind
    assert not out.exists()
    assert count_labels(proj / "labels.sqlite.bak-open") == 3
    # the lock was given back: the project opens once there is space again
    monkeypatch.undo()
    with Project.open(proj) as project:
        assert not project.readonly and project.store.labels() == LABELLED


def test_disk_io_error_with_free_space_is_not_called_full(proj, failing_sqlite, monkeypatch):
    failing_sqlite["error"] = "disk I/O error"
    free = SimpleNamespace(total=10**12, used=10**9, free=10**12 - 10**9)
    monkeypatch.setattr(labels.shutil, "disk_usage", lambda path: free)
    with pytest.raises(LabelStoreError, match="disk I/O error.*still connected") as info:
        Project.open(proj)
    assert "disk is full" not in str(info.value)
