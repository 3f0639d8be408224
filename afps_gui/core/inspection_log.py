"""The inspection log: one row per part the line produced, in ``<project>/inspections.sqlite``.

The same durability rules as the labels (``labels.py``): WAL, ``synchronous=FULL``, one
``BEGIN IMMEDIATE ... COMMIT`` per result, so a result that was reported is on disk and a kill
loses at most the one in flight. Each row carries the file's *key* (path + size + mtime,
``line_sources.FileState.key``) under a UNIQUE constraint: a part is recorded at most once, and
after a kill the watcher skips every key already here and resumes with the rest.

A row holds what the Inspect view draws later without the models: the verdict, the type and
its confidence, the model ids, the patch map (float16, as the score cache keeps it) with the
valid box, and the selected patches. Unreadable files get a row with ``error`` set.

The JSON-lines export is written *from* this table, never beside it: the file's byte offset
and the last row exported are kept in ``meta`` and advanced in one transaction after the lines
are on disk. A kill between the two leaves lines past the recorded offset; the next export cuts
them off and writes them again, so each row is in the file exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import AfpsError
from .labels import _why, now_iso

LOG_NAME = "inspections.sqlite"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x4146504C  # "AFPL": an AFPS line log
BUSY_TIMEOUT_MS = 5000
OK, NG = "OK", "NG"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE inspections (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " key TEXT NOT NULL UNIQUE, file TEXT NOT NULL, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, time TEXT NOT NULL, seconds REAL,"
    " verdict TEXT, score REAL, threshold REAL, type TEXT, confidence REAL,"
    " padim_id TEXT, classifier_id TEXT, error TEXT, image TEXT,"
    " grid BLOB, grid_h INTEGER, grid_w INTEGER, box TEXT, patches TEXT,"
    " stored TEXT, moved INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX inspections_by_time ON inspections(time)",
    "CREATE INDEX inspections_by_image ON inspections(image) WHERE image IS NOT NULL",
    "CREATE INDEX inspections_to_move ON inspections(id) WHERE stored IS NOT NULL AND moved = 0",
)


class InspectionLogError(AfpsError):
    """The inspection log cannot be opened or written; the message says what to do."""


@dataclass
class Inspection:
    """One recorded part. ``verdict`` is OK or NG, or None with ``error`` for a file that could
    not be read; ``image`` is its key in the label store when it went to the review queue."""

    file: str
    key: str
    size: int
    mtime_ns: int
    verdict: Optional[str] = None
    score: Optional[float] = None
    threshold: Optional[float] = None
    type: Optional[str] = None
    confidence: Optional[float] = None
    padim_id: str = ""
    classifier_id: str = ""
    error: Optional[str] = None
    image: Optional[str] = None
    patch_map: Optional[np.ndarray] = None  # (gh, gw) float32 patch distances
    box: Optional[tuple[int, int, int, int]] = None  # valid input region y0, y1, x0, x1
    patches: Optional[list[tuple[int, int]]] = None  # the classifier's selected grid cells
    stored: Optional[str] = None  # where the file goes (OK/, NG/<type>/), when it is moved
    seconds: Optional[float] = None  # from found complete to recorded
    id: Optional[int] = None
    time: str = ""

    def path_now(self) -> str:
        """Where the file is now (see ``path_now``)."""
        return path_now(self.file, self.stored)

    def summary(self) -> dict:
        """The small, picklable dict a front end shows (no arrays)."""
        out = {k: v for k, v in asdict(self).items() if k != "patch_map"}
        out["box"] = list(self.box) if self.box else None
        out["patches"] = [list(p) for p in self.patches] if self.patches else None
        return out

    def json_line(self) -> dict:
        """The JSON-lines record the line's other systems read."""
        return {
            "seq": self.id,
            "file": self.file,
            "time": self.time,
            "verdict": self.verdict,
            "score": self.score,
            "type": self.type if self.verdict == NG else None,
            "confidence": self.confidence if self.verdict == NG else None,
            "error": self.error,
            "padim": self.padim_id or None,
            "classifier": self.classifier_id or None,
            "stored": self.stored,
        }


def path_now(file: str, stored: Optional[str]) -> str:
    """Where an inspected file is now: its ``OK/``/``NG/`` place once it is there, else where
    it was found (a kill may have left the move for the next start)."""
    return stored if stored and os.path.exists(stored) else file


_COLUMNS = (
    "id, key, file, size, mtime_ns, time, seconds, verdict, score, threshold, type, confidence,"
    " padim_id, classifier_id, error, image, grid, grid_h, grid_w, box, patches, stored"
)


def _row_to_inspection(row: tuple) -> Inspection:
    (id_, key, file, size, mtime, time_, seconds, verdict, score, thr, type_, conf) = row[:12]
    padim_id, clf_id, error, image, grid, gh, gw, box, patches, stored = row[12:]
    pmap = None
    if grid is not None and gh and gw:
        pmap = np.frombuffer(grid, dtype=np.float16).reshape(gh, gw).astype(np.float32)
    return Inspection(
        file, key, size, mtime, verdict, score, thr, type_, conf, padim_id or "", clf_id or "",
        error, image, pmap, tuple(json.loads(box)) if box else None,
        [tuple(p) for p in json.loads(patches)] if patches else None,
        stored, seconds, id_, time_,
    )  # fmt: skip


class InspectionLog:
    """The inspection log of one project. Safe to share between threads (one lock)."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False):
        self._path = Path(path)
        self._readonly = readonly
        self._lock = threading.RLock()
        if readonly and not self._path.exists():
            raise InspectionLogError(f"There is no inspection log at {self._path} yet.")
        try:
            self._conn = self._connect()
            self._open()
        except sqlite3.DatabaseError as exc:
            raise InspectionLogError(self._message(exc, "open the inspection log")) from exc

    @classmethod
    def of_project(cls, folder: str | os.PathLike, *, readonly: bool = False) -> InspectionLog:
        return cls(Path(folder) / LOG_NAME, readonly=readonly)

    @property
    def path(self) -> Path:
        return self._path

    def _connect(self) -> sqlite3.Connection:
        target = self._path.resolve().as_uri() + "?mode=ro" if self._readonly else str(self._path)
        conn = sqlite3.connect(
            target, uri=self._readonly, isolation_level=None, check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _open(self) -> None:
        conn = self._conn
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables and app_id != APPLICATION_ID:
            raise InspectionLogError(
                f"{self._path} is not an AFPS Inspector inspection log. It has not been changed; "
                "move it aside to start a new log."
            )
        if version > SCHEMA_VERSION:
            raise InspectionLogError(
                f"The inspection log {self._path} was written by a newer AFPS Inspector; update "
                "the app to read it."
            )
        if self._readonly:
            return
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        if not tables:
            with self._write() as c:
                if c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                    for statement in _SCHEMA:
                        c.execute(statement)
                    c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _message(self, exc: sqlite3.Error, action: str) -> str:
        return f"Could not {action} in {self._path}: {_why(exc, self._path, action)}."

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> InspectionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of the block is saved, or none of it."""
        if self._readonly:
            raise InspectionLogError("The inspection log is open read-only: nothing was saved.")
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise InspectionLogError(self._message(exc, "save the result")) from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise InspectionLogError(self._message(exc, "read the inspection log")) from exc

    # --- recording --------------------------------------------------------------------------

    def record(self, item: Inspection) -> Optional[int]:
        """Save one result in its own transaction; returns its id, or None when this key was
        recorded before (then nothing changes: a part is never recorded twice)."""
        pmap = item.patch_map
        grid = None if pmap is None else np.asarray(pmap, dtype=np.float16).tobytes()
        gh, gw = (None, None) if pmap is None else pmap.shape
        item.time = item.time or now_iso()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO inspections(key, file, size, mtime_ns, time, seconds,"
                " verdict, score, threshold, type, confidence, padim_id, classifier_id, error,"
                " image, grid, grid_h, grid_w, box, patches, stored)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.key, item.file, item.size, item.mtime_ns, item.time, item.seconds,
                    item.verdict, item.score, item.threshold, item.type, item.confidence,
                    item.padim_id, item.classifier_id, item.error, item.image, grid, gh, gw,
                    json.dumps(list(item.box)) if item.box else None,
                    json.dumps([list(map(int, p)) for p in item.patches]) if item.patches else None,
                    item.stored,
                ),
            )  # fmt: skip
            if cur.rowcount == 0:
                return None
            item.id = cur.lastrowid
        return item.id

    def done_keys(self) -> set[str]:
        return {row[0] for row in self._query("SELECT key FROM inspections")}

    def is_done(self, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM inspections WHERE key = ?", (key,)))

    # --- moving files -----------------------------------------------------------------------

    def unmoved(self) -> list[Inspection]:
        """Rows whose file was to be moved or copied and is not known to be (after a kill)."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM inspections WHERE stored IS NOT NULL AND moved = 0 ORDER BY id"
        )
        return [_row_to_inspection(r) for r in rows]

    def mark_moved(self, row_id: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE inspections SET moved = 1 WHERE id = ?", (row_id,))

    # --- reading ----------------------------------------------------------------------------

    def get(self, row_id: int) -> Optional[Inspection]:
        rows = self._query(f"SELECT {_COLUMNS} FROM inspections WHERE id = ?", (row_id,))
        return _row_to_inspection(rows[0]) if rows else None

    def by_image(self, image: str) -> Optional[Inspection]:
        """The row of a label-store key ("line/..."), for the review panel's image and map."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM inspections WHERE image = ? ORDER BY id DESC LIMIT 1",
            (image,),
        )
        return _row_to_inspection(rows[0]) if rows else None

    def after(self, row_id: int = 0, limit: int = 1000) -> list[Inspection]:
        """Rows newer than ``row_id``, oldest first: what a view polls for."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM inspections WHERE id > ? ORDER BY id LIMIT ?",
            (row_id, limit),
        )
        return [_row_to_inspection(r) for r in rows]

    def latest(self, n: int = 20) -> list[Inspection]:
        rows = self._query(f"SELECT {_COLUMNS} FROM inspections ORDER BY id DESC LIMIT ?", (n,))
        return [_row_to_inspection(r) for r in rows]

    def queued_images(self) -> dict[str, tuple[str, Optional[float]]]:
        """Label-store key -> (path of the file now, score) of every part sent to review."""
        rows = self._query(
            "SELECT image, file, stored, score FROM inspections WHERE image IS NOT NULL ORDER BY id"
        )
        return {image: (path_now(file, stored), score) for image, file, stored, score in rows}

    def counts(self, since: Optional[str] = None) -> dict:
        """Parts, OK, NG (and NG per type) and unreadable files recorded since an ISO time."""
        return self.counts_upto(since)[0]

    def counts_upto(self, since: Optional[str] = None) -> tuple[dict, int]:
        """``counts`` and the id of the newest row they hold (0 for none), from one query (one
        snapshot): a view that adds results as they are posted adds only those with a larger id."""
        where, params = ("WHERE time >= ?", (since,)) if since else ("", ())
        rows = self._query(
            f"SELECT verdict, type, count(*), max(id) FROM inspections {where}"
            " GROUP BY verdict, type",
            params,
        )
        out, last_id = {"parts": 0, OK: 0, NG: 0, "errors": 0, "ng_types": {}}, 0
        for verdict, type_, n, last in rows:
            out["parts"] += n
            last_id = max(last_id, last)
            if verdict is None:
                out["errors"] += n
                continue
            out[verdict] += n
            if verdict == NG:
                name = type_ or "untyped"
                out["ng_types"][name] = out["ng_types"].get(name, 0) + n
        return out, last_id

    # --- JSON lines -------------------------------------------------------------------------

    def _meta(self, conn: sqlite3.Connection, key: str) -> Optional[str]:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def start_export(self, path: str | os.PathLike) -> None:
        """Make ``path`` an export target: the rows recorded from now on go into it (a new
        target does not receive the log's history)."""
        key = "jsonl:" + os.path.abspath(path)
        with self._write() as conn:
            if self._meta(conn, key) is None:
                last = conn.execute("SELECT coalesce(max(id), 0) FROM inspections").fetchone()[0]
                size = _size(path)
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    (key, json.dumps({"offset": size, "last_id": last})),
                )

    def export_jsonl(self, path: str | os.PathLike) -> int:
        """Append the rows not yet in ``path`` (one JSON object a line); returns how many."""
        key = "jsonl:" + os.path.abspath(path)
        with self._lock:
            value = self._meta(self._conn, key)
            if value is None:
                raise InspectionLogError(f"{path} is not an export target yet (start_export).")
            state = json.loads(value)
            rows = self._query(
                f"SELECT {_COLUMNS} FROM inspections WHERE id > ? ORDER BY id",
                (state["last_id"],),
            )
            if not rows:
                return 0
            items = [_row_to_inspection(r) for r in rows]
            text = "".join(json.dumps(i.json_line(), ensure_ascii=False) + "\n" for i in items)
            offset = _append_at(path, state["offset"], text.encode("utf-8"))
            with self._write() as conn:
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = ?",
                    (json.dumps({"offset": offset, "last_id": items[-1].id}), key),
                )
        return len(items)


def line_image_paths(project_folder: str | os.PathLike) -> dict[str, tuple[str, Optional[float]]]:
    """Label key -> (the file's path now, its score) of every line image sent to review; {}
    for a project that never inspected the line. Read-only: safe beside a running watcher."""
    path = Path(project_folder) / LOG_NAME
    if not path.exists():
        return {}
    try:
        with InspectionLog(path, readonly=True) as log:
            return log.queued_images()
    except InspectionLogError:
        return {}  # a damaged or foreign log must not cost the review of the dataset's images


def _size(path: str | os.PathLike) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _append_at(path: str | os.PathLike, offset: int, data: bytes) -> int:
    """Write ``data`` at ``offset`` (cutting off whatever a killed export left after it), make
    it durable, and return the new end. A file shorter than ``offset`` was rotated or emptied by
    its reader: the lines go at its end."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise InspectionLogError(
            f"Cannot write the JSON-lines file {path}: {exc.strerror or exc}. Check the path and "
            "its permissions; the results are kept in the inspection log and exported later."
        ) from exc
    try:
        end = os.fstat(fd).st_size
        start = min(offset, end)
        os.ftruncate(fd, start)
        os.lseek(fd, start, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return start + len(data)
    finally:
        os.close(fd)
