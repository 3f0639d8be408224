"""The labels store: defect types, human labels, model predictions and their history, in SQLite.

Labels are the one thing in a project that must never be lost, so:

- Every write is one ``BEGIN IMMEDIATE ... COMMIT`` transaction on a WAL journal with
  ``synchronous=FULL``: a call that returned is on disk; a kill or a power cut loses at most the
  change that was still in flight, never half of one.
- Every change to types or labels is one row of ``changes`` that holds the exact rows it replaced
  and the rows it wrote (its *diff*). Undo writes the old rows back, redo the new ones, so undo,
  redo and the audit trail all come from that one table. Undo and redo are recorded as rows of
  their own, so the trail shows them too.
- Model predictions live in their own table, outside the history: a model run replaces them, each
  one names the model that made it, and a human label always wins over a prediction.

Image keys are paths relative to the dataset root, in POSIX form (``"crack/img_001.png"``).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import getpass
import json
import math
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .csv_cells import escape_row
from .errors import AfpsError, LabelStoreError
from .jobs import atomic_write
from .label_csv import clean_image, is_normal_word, read_label_rows
from .taxonomy import DEFAULT_TYPES, NORMAL, PALETTE, colour_for

SCHEMA_VERSION = 1
APPLICATION_ID = 0x41465053  # "AFPS": marks the file as ours (PRAGMA application_id)
BUSY_TIMEOUT_MS = 5000
MAX_TYPE_NAME = 64

# Kinds recorded in the trail that are not themselves undoable.
# "setup": the types a new project takes from its dataset (undo must not reach into creation).
_NOT_UNDOABLE = ("undo", "redo", "migrate", "setup")
_TABLES = {"meta", "types", "labels", "predictions", "changes"}

READ_ONLY_MESSAGE = (
    "read-only: these labels are open read-only (another AFPS Inspector has the project open, "
    "or the folder cannot be written), so the change was not saved."
)


class OverwriteRefused(AfpsError, FileExistsError):
    """An export that would replace an existing file; repeat with overwrite=True to replace it."""


@dataclass(frozen=True)
class DefectType:
    name: str
    colour: str
    position: int


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str
    confidence: float
    score: float | None
    model_id: str
    created: str = ""  # ISO-8601 UTC; filled in by set_predictions when empty


@dataclass(frozen=True)
class Change:
    """One row of the audit trail.

    For "label" changes ``before``/``after`` are the plain labels (None = no human label). For
    changes that touch many rows (bulk, import, merge_types, recolour_type) they hold JSON.
    "undo"/"redo" rows name the change they reverted or re-applied in ``ref``.
    """

    id: int
    time: str
    user: str
    kind: str
    image: str | None
    before: str | None
    after: str | None
    undone: bool
    ref: int | None = None  # for "undo"/"redo": the id of the change they act on
    discarded: bool = False  # undone and then superseded by a new change: no longer redoable


@dataclass(frozen=True)
class LabelRecord:
    """A human label with who set it and when (for reports and the browser's tooltips)."""

    image: str
    label: str
    reviewed: bool
    time: str
    user: str


@dataclass(frozen=True)
class ImportReport:
    applied: int
    unchanged: int
    unknown_images: list[str]
    unknown_types: list[str]
    bad_rows: list[str]  # "line N: reason" for every row that was not used
    created_types: list[str] = field(default_factory=list)
    change_id: int | None = None  # the one undoable change, or None when nothing changed


# ---------------------------------------------------------------------------- small helpers


def now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds (sorts as text, parses on 3.10)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def os_user() -> str:
    """The logged-in user's name; getuser() fails in some containers and services."""
    try:
        name = getpass.getuser()
    except Exception:  # no LOGNAME/USER and no passwd entry
        name = ""
    return name or "unknown"


_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def clean_type_name(name: str) -> str:
    """A defect type name as stored: trimmed, non-empty, printable, and never a word that means
    defect-free ("normal", "good", "ok", "free"): a labels file with that word reads as normal,
    so such a type would not survive its own export and import."""
    if not isinstance(name, str):
        raise LabelStoreError("A defect type name must be text.")
    name = name.strip()
    if not name:
        raise LabelStoreError("A defect type name cannot be empty.")
    if len(name) > MAX_TYPE_NAME:
        raise LabelStoreError(f"A defect type name can have at most {MAX_TYPE_NAME} characters.")
    if any(not ch.isprintable() for ch in name):
        raise LabelStoreError(f"The defect type name {name!r} contains control characters.")
    if is_normal_word(name):
        raise LabelStoreError(f'"{name}" means defect-free; it cannot be a defect type name.')
    return name


def clean_colour(colour: str) -> str:
    if not isinstance(colour, str) or not _COLOUR.match(colour.strip()):
        raise LabelStoreError(f"{colour!r} is not a colour; use the form #RRGGBB.")
    return colour.strip().upper()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _same_label(old: list | None, new: list | None) -> bool:
    """Equal label and reviewed flag: who set it and when do not make a change."""
    if old is None or new is None:
        return old is None and new is None
    return old[0] == new[0] and bool(old[1]) == bool(new[1])


# Below this much free space, a "disk I/O error" is taken to mean that the disk is full: SQLite
# reports a -shm file it could not grow that way.
NEARLY_FULL_BYTES = 16 * 1024 * 1024


def _disk_nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _why(exc: BaseException, path: Path, action: str = "") -> str:
    """What an SQLite error means for the user, and what to do about it."""
    text = str(exc)
    again = "open the project again" if action.startswith("open") else "try again"
    if "locked" in text or "busy" in text:
        return "another program is writing to it; try again in a moment"
    if "full" in text or ("disk I/O" in text and _disk_nearly_full(path.parent)):
        return f"the disk is full: free some space and {again}"
    if "disk I/O" in text:
        return (
            "the disk could not be read or written (disk I/O error): check that the drive is "
            f"still connected and working, then {again}"
        )
    if "readonly" in text or "read-only" in text:
        return "the file or its folder cannot be written"
    if "unable to open" in text:
        return "the file cannot be opened; check that its folder exists and can be read"
    return text


def _remove_stub(shm: Path) -> None:
    """Remove a -shm file that a failed open made and could not finish (a full disk leaves a
    few bytes): a -shm file in use is at least 32 KiB, so a smaller one serves nobody."""
    with contextlib.suppress(OSError):
        if shm.stat().st_size < 32 * 1024:
            shm.unlink()


def _backups_of(path: Path) -> list[Path]:
    """Backup files made beside the database, newest first."""
    found = [
        p
        for p in path.parent.glob(path.name + ".bak-*")
        if not p.name.endswith((".part", "-wal", "-shm", "-journal"))
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _content_of(path: Path) -> tuple[int, int] | None:
    """(rows of history, labels) in a labels database file that nobody writes (a backup), or
    None if it cannot be read. Read as immutable: no -wal or -shm file is made beside it."""
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    except (OSError, sqlite3.Error):
        return None
    try:
        return _content(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _content(conn: sqlite3.Connection) -> tuple[int, int]:
    """(rows of history, labels) in an open labels database (0 for a missing table: the
    prototype's layout has no history)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    changes = (
        conn.execute("SELECT count(*) FROM changes").fetchone()[0] if "changes" in tables else 0
    )
    labels = conn.execute("SELECT count(*) FROM labels").fetchone()[0] if "labels" in tables else 0
    return changes, labels


def _emptier(new: tuple[int, int], old: tuple[int, int]) -> bool:
    """Whether a database holding ``new`` has lost something that one holding ``old`` has. The
    history only grows, so fewer rows of it means an older or a new, empty file; with as much
    history, fewer labels means rows were removed behind the app's back."""
    return new[0] < old[0] or (new[0] == old[0] and new[1] < old[1])


def _vanished(path: Path) -> str | None:
    """ "missing" or "empty (0 bytes)" when the database file is gone or was truncated, else
    None. A new database is 0 bytes with its schema still in the -wal file: that is not empty."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError:
        return None  # let opening it say what is wrong
    if size:
        return None
    wal = path.with_name(path.name + "-wal")
    try:
        if wal.stat().st_size > 0:
            return None
    except OSError:
        pass
    return "empty (0 bytes)"


def _fullest_backup(path: Path) -> tuple[Path, tuple[int, int]] | None:
    """The backup beside the database with the most history and labels, if any holds some."""
    best = None
    for backup in _backups_of(path):  # newest first: the newest wins a tie
        content = _content_of(backup)
        if content is None or content == (0, 0):
            continue
        if best is None or _emptier(best[1], content):
            best = (backup, content)
    return best


def _vanished_message(path: Path, state: str, backup: Path, content: tuple[int, int]) -> str:
    changes, labels = content
    return (
        f"The labels database {path} is {state}, but its backup {backup.name} (in the same "
        f"folder) holds {labels} label{'' if labels == 1 else 's'} and {changes} change"
        f"{'' if changes == 1 else 's'} of history: the labels were deleted or lost outside "
        f"AFPS Inspector. Nothing was changed and the project was not opened. To restore "
        f"them, close AFPS Inspector and copy {backup.name} over {path.name}. To start again "
        f"with no labels on purpose, first move {backup.name} out of the project folder."
    )


def _damaged_message(path: Path, reason: str) -> str:
    backups = _backups_of(path)
    if backups:
        advice = (
            f"Close AFPS Inspector and restore a backup: copy {backups[0].name} (in the same "
            f"folder) over {path.name}."
        )
    else:
        advice = (
            "No backup of it was found. Keep the file (it may still be recoverable) and move it "
            "aside to start with empty labels."
        )
    return f"The labels database {path} cannot be used: {reason}. It has not been changed. {advice}"


# --------------------------------------------------------------------------- schema


_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Type names are unique whatever their case; labels store the name exactly as it is here.
    "CREATE TABLE types (name TEXT PRIMARY KEY COLLATE NOCASE, colour TEXT NOT NULL,"
    " position INTEGER NOT NULL)",
    "CREATE TABLE labels (image TEXT PRIMARY KEY, label TEXT NOT NULL,"
    " reviewed INTEGER NOT NULL, time TEXT NOT NULL, user TEXT NOT NULL)",
    "CREATE INDEX labels_by_label ON labels(label)",
    "CREATE TABLE predictions (image TEXT PRIMARY KEY, label TEXT NOT NULL, confidence REAL,"
    " score REAL, model_id TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX predictions_by_label ON predictions(label)",
    "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,"
    " user TEXT NOT NULL, kind TEXT NOT NULL, image TEXT, before TEXT, after TEXT,"
    " undone INTEGER NOT NULL DEFAULT 0, discarded INTEGER NOT NULL DEFAULT 0,"
    " ref INTEGER, diff TEXT)",
    # The redo branch: every new change marks it discarded, so finding it must stay cheap.
    "CREATE INDEX changes_redo ON changes(id) WHERE undone = 1 AND discarded = 0",
)


def _create_schema(conn: sqlite3.Connection, user: str) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?)",
        [("created", now_iso()), ("created_by", user)],
    )
    conn.executemany(
        "INSERT INTO types(name, colour, position) VALUES (?, ?, ?)",
        [(name, colour_for(i), i) for i, name in enumerate(DEFAULT_TYPES)],
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _migrate_0_to_1(conn: sqlite3.Connection, user: str) -> None:
    """Version 0, the prototype's layout, was one table: labels(image, label), no history."""
    conn.execute("ALTER TABLE labels RENAME TO labels_v0")
    _create_schema(conn, user)
    known = {name.casefold() for name in DEFAULT_TYPES}
    position = len(DEFAULT_TYPES)
    rows = conn.execute("SELECT image, label FROM labels_v0 WHERE label IS NOT NULL").fetchall()
    for _image, label in rows:  # every label the prototype used becomes a type
        if label.casefold() not in known and label.casefold() != NORMAL:
            conn.execute(
                "INSERT INTO types(name, colour, position) VALUES (?, ?, ?)",
                (label, colour_for(position), position),
            )
            known.add(label.casefold())
            position += 1
    stamp = now_iso()
    conn.executemany(
        "INSERT OR REPLACE INTO labels(image, label, reviewed, time, user) VALUES (?, ?, 1, ?, ?)",
        [
            (image, NORMAL if label.casefold() == NORMAL else label, stamp, user)
            for image, label in rows
        ],
    )
    conn.execute("DROP TABLE labels_v0")


# Each entry upgrades the schema from its key to key + 1, inside one transaction.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, str], None]] = {0: _migrate_0_to_1}


# ----------------------------------------------------------------------------- the store


class LabelStore:
    """The labels of one project, in ``<project>/labels.sqlite``.

    Safe to share between threads (one lock serialises the calls). Open it with
    ``readonly=True`` when another instance holds the project lock.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        readonly: bool = False,
        user: str | None = None,
        backup_on_open: bool = True,
    ):
        self._path = Path(path)
        self._readonly = readonly
        self._user = user or os_user()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        state = _vanished(self._path)
        if state is not None:
            # A new, empty file would replace the labels, and the next backup would copy it
            # over the last good one: refuse while a backup still holds them.
            found = _fullest_backup(self._path)
            if found is not None:
                raise LabelStoreError(_vanished_message(self._path, state, *found))
        if readonly and not self._path.exists():
            raise LabelStoreError(f"There is no labels database at {self._path} yet.")
        if not readonly:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        shm = self._path.with_name(self._path.name + "-shm")
        had_shm = shm.exists()
        try:
            self._conn = self._connect()
            try:
                self._open()
            except UnicodeDecodeError as exc:
                # Damaged bytes inside a text value: the page structure passed its check.
                raise LabelStoreError(
                    _damaged_message(self._path, f"a text in it is not valid UTF-8 ({exc.reason})")
                ) from exc
            if backup_on_open and not readonly:
                self._backup_session()
        except BaseException:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if not had_shm:
                _remove_stub(shm)
            raise

    # ------------------------------------------------------------------ opening

    def _connect(self, immutable: bool = False) -> sqlite3.Connection:
        # isolation_level=None: this class writes its own BEGIN IMMEDIATE / COMMIT.
        target = str(self._path)
        if self._readonly:
            target = (
                self._path.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")
            )
        conn = None
        try:
            conn = sqlite3.connect(
                target,
                uri=self._readonly,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self._readonly and not immutable:
                # A WAL database needs its -shm file, which a folder the user may not write
                # cannot hold. With no -wal file nobody is writing it: read it as it is.
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                except sqlite3.OperationalError as exc:
                    wal = self._path.with_name(self._path.name + "-wal")
                    if "unable to open" not in str(exc) or wal.exists():
                        raise
                    conn.close()
                    return self._connect(immutable=True)
                except sqlite3.DatabaseError:
                    pass  # not a database, damaged: _open says so
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._error(exc, "open the labels") from exc
        return conn

    def _open(self) -> None:
        """Check what the file is, then create, migrate or refuse it; never damage it."""
        conn = self._conn
        try:
            # The first read of the header: a file that is not SQLite fails here.
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            }
        except sqlite3.OperationalError as exc:  # cannot open, busy: not a verdict on the file
            raise self._error(exc, "open the labels") from exc
        except sqlite3.DatabaseError as exc:
            raise LabelStoreError(_damaged_message(self._path, str(exc))) from exc
        if check != "ok":
            raise LabelStoreError(_damaged_message(self._path, f"its integrity check says {check}"))
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and version != 0):
            raise LabelStoreError(self._foreign_message())
        if version > SCHEMA_VERSION:
            raise LabelStoreError(
                f"The labels database {self._path} was written by a newer version of AFPS "
                f"Inspector (labels format {version}; this version reads up to "
                f"{SCHEMA_VERSION}). Update AFPS Inspector to open this project; the file has "
                "not been changed."
            )
        if version == SCHEMA_VERSION and not _TABLES <= tables:
            raise LabelStoreError(_damaged_message(self._path, "some of its tables are missing"))
        fresh = version == 0 and not tables
        if version == 0 and not fresh and not self._looks_like_v0(tables):
            raise LabelStoreError(self._foreign_message())
        if fresh and self._readonly:
            raise LabelStoreError(f"The labels database {self._path} is empty.")
        if not self._readonly:  # only now that the file is known to be ours (or new)
            self._set_write_pragmas()
        if fresh:
            self._create()
        elif version < SCHEMA_VERSION:
            self._migrate(version)

    def _foreign_message(self) -> str:
        return (
            f"{self._path} is an SQLite database but not an AFPS Inspector labels database. It "
            "has not been changed; move it aside or choose another project folder."
        )

    def _looks_like_v0(self, tables: set[str]) -> bool:
        if tables != {"labels"}:
            return False
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(labels)")}
        return columns == {"image", "label"}

    def _set_write_pragmas(self) -> None:
        # If WAL is refused (it needs shared memory, which some network drives lack) SQLite
        # keeps its rollback journal: just as safe, only slower, so carry on either way.
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise self._error(exc, "open the labels for writing") from exc

    def _create(self) -> None:
        with self._write() as conn:
            # Another process may have created it between our check and this lock.
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                _create_schema(conn, self._user)

    def _migrate(self, old: int) -> None:
        if self._readonly:
            raise LabelStoreError(
                f"The labels database {self._path} is in an older format (version {old}) and "
                "must be upgraded, which a read-only project cannot do. Open the project "
                "normally once to upgrade it."
            )
        backup = self._backup_to(f"v{old}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
        try:
            with self._write() as conn:
                for version in range(old, SCHEMA_VERSION):
                    _MIGRATIONS[version](conn, self._user)
                self._record(conn, "migrate", None, f"v{old}", f"v{SCHEMA_VERSION}", None)
        except (LabelStoreError, sqlite3.Error) as exc:
            raise LabelStoreError(
                f"Could not upgrade the labels database {self._path} from version {old}: {exc}. "
                f"It has not been changed; a copy is in {backup.name}."
            ) from exc

    def _backup_to(self, suffix: str) -> Path:
        """Copy the database (consistently, through SQLite) to ``<name>.bak-<suffix>``."""
        target = self._path.with_name(f"{self._path.name}.bak-{suffix}")
        n = 2
        while target.exists():
            target = self._path.with_name(f"{self._path.name}.bak-{suffix}-{n}")
            n += 1
        self._copy_database(target)
        return target

    def _backup_session(self) -> None:
        """Keep a copy of the labels as they were when the project was opened.

        If the file is ever damaged, the damage message points to this copy: at worst one
        session's work is lost instead of all of it.
        """
        target = self._path.with_name(self._path.name + ".bak-open")
        kept = _content_of(target) if target.exists() else None
        if kept is not None:
            with self._lock:
                try:
                    current = _content(self._connection())
                except sqlite3.Error as exc:
                    raise self._error(exc, "read the labels") from exc
            if _emptier(current, kept):
                return  # never replace the backup with a copy that has lost labels
        self._copy_database(target)

    def _copy_database(self, target: Path) -> None:
        part = target.with_name(target.name + ".part")  # fixed name: a kill leaves one, not many
        part.unlink(missing_ok=True)
        try:
            dest = sqlite3.connect(str(part))
            try:
                with self._lock:
                    self._conn.backup(dest)
            finally:
                dest.close()
            os.replace(part, target)
        except (OSError, sqlite3.Error) as exc:
            part.unlink(missing_ok=True)
            why = _why(exc, target) if isinstance(exc, sqlite3.Error) else str(exc)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                why = "the disk is full: free some space and try again"
            raise LabelStoreError(
                f"Could not make a backup of {self._path} at {target}: {why}. Nothing was changed."
            ) from exc

    # ------------------------------------------------------------------ plumbing

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def user(self) -> str:
        return self._user

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LabelStoreError(f"The labels database {self._path} is closed.")
        return self._conn

    def _error(self, exc: sqlite3.Error, action: str) -> LabelStoreError:
        return LabelStoreError(
            f"Could not {action} in {self._path}: {_why(exc, self._path, action)}. Nothing was "
            "changed."
        )

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, "read the labels") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of the block is saved, or none of it."""
        if self._readonly:
            raise LabelStoreError(READ_ONLY_MESSAGE)
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not half-way
            except sqlite3.Error as exc:
                raise self._error(exc, "save the change") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise self._error(exc, "save the change") from exc
            except BaseException:
                self._rollback(conn)
                raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ changes and diffs
    #
    # A diff is {"types": {name: [before, after]}, "labels": {image: [before, after]},
    # "predictions": {image: [before, after]}} where a type row is [colour, position], a label
    # row is [label, reviewed, time, user] and None means "no row". Prediction entries only
    # rename the label of a prediction that still has the other value.

    @staticmethod
    def _apply(conn: sqlite3.Connection, diff: dict, side: int) -> None:
        """Write one side of a diff: 0 = before (undo), 1 = after (do, redo)."""
        types = diff.get("types", {})
        # Deletions first, so that a rename that only changes case ("spot" -> "Spot") can
        # insert the new spelling into a name column that ignores case.
        for name, pair in types.items():
            if pair[side] is None:
                conn.execute("DELETE FROM types WHERE name = ?", (name,))
        for name, pair in types.items():
            if pair[side] is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO types(name, colour, position) VALUES (?, ?, ?)",
                    (name, *pair[side]),
                )
        for image, pair in diff.get("labels", {}).items():
            if pair[side] is None:
                conn.execute("DELETE FROM labels WHERE image = ?", (image,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO labels(image, label, reviewed, time, user)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (image, *pair[side]),
                )
        for image, pair in diff.get("predictions", {}).items():
            conn.execute(
                "UPDATE predictions SET label = ? WHERE image = ? AND label = ?",
                (pair[side], image, pair[1 - side]),
            )

    def _record(
        self,
        conn: sqlite3.Connection,
        kind: str,
        image: str | None,
        before: str | None,
        after: str | None,
        diff: dict | None,
        ref: int | None = None,
    ) -> int:
        if kind not in _NOT_UNDOABLE:
            # A new change after an undo: the undone ones can no longer be redone.
            conn.execute("UPDATE changes SET discarded = 1 WHERE undone = 1 AND discarded = 0")
        cur = conn.execute(
            "INSERT INTO changes(time, user, kind, image, before, after, ref, diff)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now_iso(),
                self._user,
                kind,
                image,
                before,
                after,
                ref,
                None if diff is None else _json(diff),
            ),
        )
        return cur.lastrowid

    def _commit(
        self,
        conn: sqlite3.Connection,
        kind: str,
        image: str | None,
        before: str | None,
        after: str | None,
        diff: dict,
    ) -> int:
        self._apply(conn, diff, 1)
        return self._record(conn, kind, image, before, after, diff)

    # ------------------------------------------------------------------ defect types

    def types(self) -> list[DefectType]:
        rows = self._query("SELECT name, colour, position FROM types ORDER BY position, name")
        return [DefectType(*row) for row in rows]

    def type_names(self) -> list[str]:
        return [t.name for t in self.types()]

    @staticmethod
    def _find_type(conn: sqlite3.Connection, name: str) -> tuple | None:
        if not isinstance(name, str):
            return None
        return conn.execute(
            "SELECT name, colour, position FROM types WHERE name = ?", (name.strip(),)
        ).fetchone()

    def _type_required(self, conn: sqlite3.Connection, name: str) -> tuple:
        row = self._find_type(conn, name)
        if row is None:
            raise LabelStoreError(f'There is no defect type "{name}". {self._known(conn)}')
        return row

    @staticmethod
    def _known(conn: sqlite3.Connection) -> str:
        names = [r[0] for r in conn.execute("SELECT name FROM types ORDER BY position, name")]
        return f"Known types: {', '.join(names) or '(none)'} (and {NORMAL!r})."

    @staticmethod
    def _next_position(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT coalesce(max(position) + 1, 0) FROM types").fetchone()[0]

    @staticmethod
    def _free_colour(conn: sqlite3.Connection, position: int) -> str:
        used = {row[0].upper() for row in conn.execute("SELECT colour FROM types")}
        return next((c for c in PALETTE if c.upper() not in used), colour_for(position))

    def add_type(self, name: str, colour: str | None = None) -> DefectType:
        name = clean_type_name(name)
        colour = None if colour is None else clean_colour(colour)
        with self._write() as conn:
            clash = self._find_type(conn, name)
            if clash is not None:
                raise LabelStoreError(f'A defect type named "{clash[0]}" already exists.')
            position = self._next_position(conn)
            colour = colour or self._free_colour(conn, position)
            diff = {"types": {name: [None, [colour, position]]}}
            self._commit(conn, "add_type", None, None, name, diff)
        return DefectType(name, colour, position)

    def adopt_types(self, add: list[str], drop: list[str]) -> None:
        """Project setup: add the dataset's types and remove unused default ones, recorded in
        the trail as one "setup" change that undo does not reach (the user did not make it)."""
        with self._write() as conn:
            diff: dict = {"types": {}}
            for name in map(clean_type_name, add):
                if self._find_type(conn, name) is None:
                    position = self._next_position(conn)
                    step = {"types": {name: [None, [self._free_colour(conn, position), position]]}}
                    self._apply(conn, step, 1)  # one at a time: each takes the next place
                    diff["types"].update(step["types"])
            for name in drop:
                row = self._find_type(conn, name)
                used = (
                    row
                    and conn.execute(
                        "SELECT count(*) FROM labels WHERE label = ?", (row[0],)
                    ).fetchone()[0]
                )
                if row and not used:
                    step = {"types": {row[0]: [[row[1], row[2]], None]}}
                    self._apply(conn, step, 1)
                    diff["types"].update(step["types"])
            if diff["types"]:
                self._record(conn, "setup", None, None, None, diff)

    def remove_type(self, name: str) -> None:
        """Remove a type that no human label uses (otherwise merge it into another one)."""
        with self._write() as conn:
            old, colour, position = self._type_required(conn, name)
            used = conn.execute("SELECT count(*) FROM labels WHERE label = ?", (old,)).fetchone()[0]
            if used:
                raise LabelStoreError(
                    f'{used} image(s) are labelled "{old}". Merge "{old}" into another type '
                    f"(or into {NORMAL!r}) instead of removing it."
                )
            diff = {"types": {old: [[colour, position], None]}}
            self._commit(conn, "remove_type", None, old, None, diff)

    def rename_type(self, old: str, new: str) -> None:
        """Rename a type and every label and prediction that uses it: one undoable change."""
        new = clean_type_name(new)
        with self._write() as conn:
            name, colour, position = self._type_required(conn, old)
            if name == new:
                return
            clash = self._find_type(conn, new)
            if clash is not None and clash[0] != name:
                raise LabelStoreError(
                    f'A defect type named "{clash[0]}" already exists. To combine "{name}" with '
                    "it, merge the two types instead."
                )
            diff = {
                "types": {name: [[colour, position], None], new: [None, [colour, position]]},
                "labels": self._relabel_rows(conn, [name], new),
                "predictions": self._relabel_predictions(conn, [name], new),
            }
            self._commit(conn, "rename_type", None, name, new, diff)

    def merge_types(self, sources: list[str], target: str) -> None:
        """Relabel every image of ``sources`` as ``target`` and remove the sources.

        ``target`` may be an existing type, a new name (created with the first source's colour
        and place) or "normal". One undoable change; undo restores the types and every label.
        """
        if isinstance(sources, str):
            sources = [sources]
        with self._write() as conn:
            rows = {}
            for source in sources:
                row = self._type_required(conn, source)
                rows[row[0]] = row
            new_type = None
            if isinstance(target, str) and target.strip().casefold() == NORMAL:
                goal = NORMAL
            elif (found := self._find_type(conn, target)) is not None:
                goal = found[0]
            else:
                goal = clean_type_name(target)
                first = next(iter(rows.values()), None)
                new_type = [first[1], first[2]] if first else None
            rows.pop(goal, None)
            if not rows:
                raise LabelStoreError(f'Choose at least one type other than "{goal}" to merge.')
            diff = {
                "types": {name: [[c, p], None] for name, c, p in rows.values()},
                "labels": self._relabel_rows(conn, list(rows), goal),
                "predictions": self._relabel_predictions(conn, list(rows), goal),
            }
            if new_type is not None:
                diff["types"][goal] = [None, new_type]
            before = {
                "types": list(rows),
                "labels": {i: p[0][0] for i, p in diff["labels"].items()},
            }
            after = {"type": goal, "labels": {i: goal for i in diff["labels"]}}
            self._commit(conn, "merge_types", None, _json(before), _json(after), diff)

    def recolour_type(self, name: str, colour: str) -> None:
        colour = clean_colour(colour)
        with self._write() as conn:
            name, old, position = self._type_required(conn, name)
            if old.upper() == colour:
                return
            diff = {"types": {name: [[old, position], [colour, position]]}}
            before = _json({"name": name, "colour": old})
            after = _json({"name": name, "colour": colour})
            self._commit(conn, "recolour_type", None, before, after, diff)

    @staticmethod
    def _relabel_rows(conn: sqlite3.Connection, olds: list[str], new: str) -> dict:
        marks = ",".join("?" * len(olds))
        rows = conn.execute(
            f"SELECT image, label, reviewed, time, user FROM labels WHERE label IN ({marks})", olds
        ).fetchall()
        # Renaming a type is not a new decision about the image: keep who labelled it and when.
        return {r[0]: [list(r[1:]), [new, *r[2:]]] for r in rows}

    @staticmethod
    def _relabel_predictions(conn: sqlite3.Connection, olds: list[str], new: str) -> dict:
        marks = ",".join("?" * len(olds))
        rows = conn.execute(
            f"SELECT image, label FROM predictions WHERE label IN ({marks})", olds
        ).fetchall()
        return {image: [label, new] for image, label in rows}

    # ------------------------------------------------------------------ human labels

    def _resolve_label(self, conn: sqlite3.Connection, label: str | None) -> str | None:
        """The stored spelling of a label: "normal", a known type name, or None (no label)."""
        if label is None:
            return None
        if isinstance(label, str) and label.strip().casefold() == NORMAL:
            return NORMAL
        row = self._find_type(conn, label)
        if row is None:
            raise LabelStoreError(f'Unknown defect type "{label}". {self._known(conn)}')
        return row[0]

    @staticmethod
    def _label_row(conn: sqlite3.Connection, image: str) -> list | None:
        row = conn.execute(
            "SELECT label, reviewed, time, user FROM labels WHERE image = ?", (image,)
        ).fetchone()
        return None if row is None else list(row)

    def set_label(self, image: str, label: str | None) -> None:
        """Set (and mark reviewed) or, with None, clear the human label of one image.

        Clearing returns the image to "not reviewed" and lets its prediction show again. Setting
        the label it already has records nothing.
        """
        image = clean_image(image)
        with self._write() as conn:
            label = self._resolve_label(conn, label)
            old = self._label_row(conn, image)
            new = None if label is None else [label, 1, now_iso(), self._user]
            if _same_label(old, new):
                return
            diff = {"labels": {image: [old, new]}}
            self._commit(conn, "label", image, old and old[0], label, diff)

    def set_labels(
        self, mapping: dict[str, str | None], kind: str = "bulk", *, reviewed: bool = True
    ) -> int:
        """Set many labels in one transaction and ONE undoable change; returns how many changed."""
        if kind in _NOT_UNDOABLE:
            raise LabelStoreError(f'"{kind}" is not a kind of change that set_labels can make.')
        cleaned = {clean_image(image): label for image, label in mapping.items()}
        with self._write() as conn:
            change = self._bulk(conn, cleaned, kind, reviewed, new_types=[])
        return 0 if change is None else change[1]

    def _bulk(
        self,
        conn: sqlite3.Connection,
        mapping: dict[str, str | None],
        kind: str,
        reviewed: bool,
        new_types: list[str],
    ) -> tuple[int, int] | None:
        """Write many labels (and any new types) as one change: (change id, images changed)."""
        diff: dict = {"types": {}, "labels": {}}
        position = self._next_position(conn)
        for name in new_types:
            colour = self._free_colour(conn, position)
            diff["types"][name] = [None, [colour, position]]
            conn.execute(  # visible to _resolve_label below; the whole diff is re-applied after
                "INSERT INTO types(name, colour, position) VALUES (?, ?, ?)",
                (name, colour, position),
            )
            position += 1
        stamp = now_iso()
        for image, label in mapping.items():
            label = self._resolve_label(conn, label)
            old = self._label_row(conn, image)
            new = None if label is None else [label, int(reviewed), stamp, self._user]
            if not _same_label(old, new):
                diff["labels"][image] = [old, new]
        if not diff["labels"] and not diff["types"]:
            return None
        before = {i: p[0] and p[0][0] for i, p in diff["labels"].items()}
        after = {i: p[1] and p[1][0] for i, p in diff["labels"].items()}
        if diff["types"]:
            after = {"types": list(diff["types"]), "labels": after}
        change_id = self._commit(conn, kind, None, _json(before), _json(after), diff)
        return change_id, len(diff["labels"])

    def label(self, image: str) -> str | None:
        rows = self._query("SELECT label FROM labels WHERE image = ?", (clean_image(image),))
        return rows[0][0] if rows else None

    def labels(self) -> dict[str, str]:
        return dict(self._query("SELECT image, label FROM labels ORDER BY image"))

    def label_records(self) -> dict[str, LabelRecord]:
        rows = self._query("SELECT image, label, reviewed, time, user FROM labels ORDER BY image")
        return {r[0]: LabelRecord(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows}

    def reviewed(self) -> set[str]:
        return {row[0] for row in self._query("SELECT image FROM labels WHERE reviewed = 1")}

    # ------------------------------------------------------------------ predictions

    def set_predictions(self, preds: Iterable[Prediction], *, replace: bool = False) -> int:
        """Store model predictions in one transaction (outside the undo history).

        Each image's prediction replaces its previous one; ``replace=True`` first drops every
        stored prediction (a run over the whole dataset). Returns how many were stored.
        """
        stamp = now_iso()
        rows = []
        for p in preds:
            if not isinstance(p.label, str) or not p.label.strip():
                raise LabelStoreError(f"The prediction for {p.image!r} has no label.")
            if not isinstance(p.model_id, str) or not p.model_id:
                raise LabelStoreError(f"The prediction for {p.image!r} does not name its model.")
            rows.append(
                (
                    clean_image(p.image),
                    p.label,
                    _finite_or_none(p.confidence),
                    _finite_or_none(p.score),
                    p.model_id,
                    p.created or stamp,
                )
            )
        with self._write() as conn:
            if replace:
                conn.execute("DELETE FROM predictions")
            conn.executemany(
                "INSERT OR REPLACE INTO predictions(image, label, confidence, score, model_id,"
                " created) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def predictions(self) -> dict[str, Prediction]:
        rows = self._query(
            "SELECT image, label, confidence, score, model_id, created FROM predictions"
            " ORDER BY image"
        )
        return {r[0]: self._prediction(r) for r in rows}

    def prediction(self, image: str) -> Prediction | None:
        rows = self._query(
            "SELECT image, label, confidence, score, model_id, created FROM predictions"
            " WHERE image = ?",
            (clean_image(image),),
        )
        return self._prediction(rows[0]) if rows else None

    @staticmethod
    def _prediction(row: tuple) -> Prediction:
        confidence = math.nan if row[2] is None else row[2]  # SQLite stores NaN as NULL
        return Prediction(row[0], row[1], confidence, row[3], row[4], row[5])

    def clear_predictions(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM predictions")

    def effective_label(self, image: str) -> str | None:
        """The human label if there is one, else the model's prediction, else None."""
        image = clean_image(image)
        rows = self._query(
            "SELECT coalesce((SELECT label FROM labels WHERE image = ?),"
            " (SELECT label FROM predictions WHERE image = ?))",
            (image, image),
        )
        return rows[0][0]

    def effective_labels(self) -> dict[str, str]:
        """effective_label for every image that has a label or a prediction."""
        result = dict(self._query("SELECT image, label FROM predictions"))
        result.update(self._query("SELECT image, label FROM labels"))
        return result

    # ------------------------------------------------------------------ history

    _CHANGE_COLUMNS = "id, time, user, kind, image, before, after, undone, ref, discarded"

    @staticmethod
    def _change(row: tuple) -> Change:
        return Change(*row[:7], bool(row[7]), row[8], bool(row[9]))

    def _change_by_id(self, conn: sqlite3.Connection, change_id: int) -> Change:
        row = conn.execute(
            f"SELECT {self._CHANGE_COLUMNS} FROM changes WHERE id = ?", (change_id,)
        ).fetchone()
        return self._change(row)

    def _next_undo(self, conn: sqlite3.Connection) -> tuple | None:
        return conn.execute(
            "SELECT id, image, before, after, diff FROM changes WHERE undone = 0 AND discarded = 0"
            f" AND kind NOT IN {_NOT_UNDOABLE!r} ORDER BY id DESC LIMIT 1"
        ).fetchone()

    def _next_redo(self, conn: sqlite3.Connection) -> tuple | None:
        return conn.execute(
            "SELECT id, image, before, after, diff FROM changes WHERE undone = 1 AND discarded = 0"
            " ORDER BY id LIMIT 1"
        ).fetchone()

    def undo(self) -> Change | None:
        """Revert the newest change that is not undone; returns it (now undone), or None."""
        with self._write() as conn:
            row = self._next_undo(conn)
            if row is None:
                return None
            change_id, image, before, after, diff = row
            self._apply(conn, json.loads(diff), 0)
            conn.execute("UPDATE changes SET undone = 1 WHERE id = ?", (change_id,))
            self._record(conn, "undo", image, after, before, None, ref=change_id)
            return self._change_by_id(conn, change_id)

    def redo(self) -> Change | None:
        """Re-apply the change undone last; returns it, or None when there is nothing to redo."""
        with self._write() as conn:
            row = self._next_redo(conn)
            if row is None:
                return None
            change_id, image, before, after, diff = row
            self._apply(conn, json.loads(diff), 1)
            conn.execute("UPDATE changes SET undone = 0 WHERE id = ?", (change_id,))
            self._record(conn, "redo", image, before, after, None, ref=change_id)
            return self._change_by_id(conn, change_id)

    def can_undo(self) -> bool:
        with self._lock:
            return not self._readonly and self._next_undo(self._connection()) is not None

    def can_redo(self) -> bool:
        with self._lock:
            return not self._readonly and self._next_redo(self._connection()) is not None

    def history(self, limit: int = 200) -> list[Change]:
        """The audit trail, newest first (undo and redo included, as rows of their own)."""
        rows = self._query(
            f"SELECT {self._CHANGE_COLUMNS} FROM changes ORDER BY id DESC LIMIT ?", (int(limit),)
        )
        return [self._change(row) for row in rows]

    # ------------------------------------------------------------------ CSV

    def import_csv(
        self,
        path: str | os.PathLike,
        known_images: set[str] | None = None,
        *,
        root: str | os.PathLike | None = None,
        create_types: bool = False,
        reviewed: bool = True,
    ) -> ImportReport:
        """Apply an ``image,label`` CSV as ONE undoable change ("import").

        Rows naming images outside ``known_images`` (when given) or unknown types are reported
        and skipped, as are malformed rows; only a file that cannot be read, or has no
        ``image``/``label`` header, is an error. Absolute paths under ``root`` are made relative.
        With ``create_types=True`` unknown types are added (in the same change) instead.
        """
        rows, bad = read_label_rows(path, root)
        with self._write() as conn:
            wanted, unknown_images, unknown_types, new_types = {}, [], [], []
            for row in rows:
                image, label = row.image, row.label
                if known_images is not None and image not in known_images:
                    unknown_images.append(image)
                    continue
                canonical = self._canonical_or_none(conn, label, new_types)
                if canonical is None and create_types:
                    canonical = self._new_import_type(label, row.line, new_types, bad)
                if canonical is None:
                    if label.casefold() not in {t.casefold() for t in unknown_types}:
                        unknown_types.append(label)
                    continue
                wanted[image] = canonical
            change = self._bulk(conn, wanted, "import", reviewed, new_types)
        applied = 0 if change is None else change[1]
        return ImportReport(
            applied=applied,
            unchanged=len(wanted) - applied,
            unknown_images=sorted(set(unknown_images)),
            unknown_types=[] if create_types else unknown_types,
            bad_rows=bad,
            created_types=new_types if change is not None else [],
            change_id=None if change is None else change[0],
        )

    def _canonical_or_none(
        self, conn: sqlite3.Connection, label: str, new: list[str]
    ) -> str | None:
        if label.casefold() == NORMAL:
            return NORMAL
        row = self._find_type(conn, label)
        if row is not None:
            return row[0]
        return next((n for n in new if n.casefold() == label.casefold()), None)

    @staticmethod
    def _new_import_type(label: str, line: int, new: list[str], bad: list[str]) -> str | None:
        try:
            name = clean_type_name(label)
        except LabelStoreError as exc:
            bad.append(f"line {line}: {exc}")
            return None
        new.append(name)
        return name

    def export_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> int:
        """Write every human label as ``image,label`` (sorted); returns the number of rows."""
        target = Path(path)
        refuse_overwrite(target, overwrite)
        labels = self.labels()
        with atomic_write(target) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["image", "label"])
                writer.writerows(escape_row(item) for item in sorted(labels.items()))
        return len(labels)


# ------------------------------------------------------------------------- CSV reading


def refuse_overwrite(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise OverwriteRefused(
            f"{target} already exists. Choose another file name, or confirm that it may be "
            "replaced."
        )
