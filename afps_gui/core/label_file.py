"""The labels database file: opening, checking, creating, upgrading and backing it up, and the
one way to write it.

Labels are the one thing in a project that must never be lost, so:

- Every write is one ``BEGIN IMMEDIATE ... COMMIT`` transaction on a WAL journal with
  ``synchronous=FULL``: a call that returned is on disk; a kill or a power cut loses at most the
  change that was still in flight, never half of one.
- A file that is not ours, is damaged, is newer than this version or has vanished while a backup
  still holds labels is refused unchanged, with what to do about it.
- Opening for writing keeps a copy of the file as it was (``.bak-open``), and an upgrade keeps
  one of the old format, so the damage messages always have a backup to point to.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .errors import LabelStoreError
from .taxonomy import DEFAULT_TYPES, NORMAL, colour_for, is_normal_word

SCHEMA_VERSION = 1
APPLICATION_ID = 0x41465053  # "AFPS": marks the file as ours (PRAGMA application_id)
BUSY_TIMEOUT_MS = 5000

_TABLES = {"meta", "types", "labels", "predictions", "changes"}

READ_ONLY_MESSAGE = (
    "read-only: these labels are open read-only (another AFPS Inspector has the project open, "
    "or the folder cannot be written), so the change was not saved."
)


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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
        if label.casefold() not in known and not is_normal_word(label):
            conn.execute(
                "INSERT INTO types(name, colour, position) VALUES (?, ?, ?)",
                (label, colour_for(position), position),
            )
            known.add(label.casefold())
            position += 1
    stamp = now_iso()
    conn.executemany(
        "INSERT OR REPLACE INTO labels(image, label, reviewed, time, user) VALUES (?, ?, 1, ?, ?)",
        [(image, NORMAL if is_normal_word(label) else label, stamp, user) for image, label in rows],
    )
    conn.execute("DROP TABLE labels_v0")


# Each entry upgrades the schema from its key to key + 1, inside one transaction.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, str], None]] = {0: _migrate_0_to_1}


def _insert_change(
    conn: sqlite3.Connection,
    user: str,
    kind: str,
    image: str | None,
    before: str | None,
    after: str | None,
    diff: dict | None,
    ref: int | None = None,
) -> int:
    """Append one row to the trail. The file's own rows (an upgrade) come straight here; what a
    new change does to the redo branch is label_history's rule, kept there."""
    cur = conn.execute(
        "INSERT INTO changes(time, user, kind, image, before, after, ref, diff)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now_iso(),
            user,
            kind,
            image,
            before,
            after,
            ref,
            None if diff is None else _json(diff),
        ),
    )
    return cur.lastrowid


# ----------------------------------------------------------------------------- the file

_File = TypeVar("_File", bound="LabelFile")


class LabelFile:
    """One open labels database: refuses a file it must not touch, creates or upgrades one it
    may, and gives the subclasses one lock, reads that say what went wrong, and ``_write``.

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
                _insert_change(
                    conn, self._user, "migrate", None, f"v{old}", f"v{SCHEMA_VERSION}", None
                )
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

    def __enter__(self: _File) -> _File:
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
