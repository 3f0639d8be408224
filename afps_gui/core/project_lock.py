"""One writer per project: an exclusive lock on a file in the project folder.

The lock is an OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows), so the OS drops
it when the holding process dies, however it dies: there are no stale locks to clean up. The
holder writes its pid, user and host into the file so that a second instance can say who has
the project open; that text is only a description, the OS lock is what counts.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from .errors import ProjectError
from .labels import now_iso, os_user

LOCK_NAME = ".afps-inspector.lock"


class FolderNotWritable(ProjectError):
    """The lock file cannot be made because the user may not write the project folder (or it
    is on a read-only drive): the project can still be opened read-only."""


# Windows locks are mandatory byte ranges: lock one byte past the holder text, so that the
# text stays readable by the instance that was refused.
_LOCK_OFFSET = 4096
_HOLDER_MAX = 1024  # bytes of holder text written and read, well before the locked byte

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ProjectLock:
    """``acquire()`` is False while another process (or another ProjectLock) holds the folder.

    Typical use: if ``lock.acquire()`` fails, open the labels read-only and show
    ``lock.read_only_message()``. As a context manager it raises ProjectError instead.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            kind = (
                FolderNotWritable
                if isinstance(exc, PermissionError) or exc.errno == errno.EROFS
                else ProjectError
            )
            raise kind(
                f"Cannot create the lock file {self.path}: {exc.strerror or exc}. The project "
                "folder must be writable to edit the project."
            ) from exc

    def acquire(self) -> bool:
        """Take the lock without waiting; True if this object now holds it."""
        if self._fd is not None:
            return True
        fd = self._open()
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        self._write_holder(fd)
        return True

    def _write_holder(self, fd: int) -> None:
        text = f"pid={os.getpid()}\nuser={os_user()}\nhost={socket.gethostname()}\n"
        data = (text + f"since={now_iso()}\n").encode("utf-8")[:_HOLDER_MAX]
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, data)
            os.ftruncate(fd, len(data))
        except OSError:
            pass  # the description is a courtesy; the lock itself is held

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a later reader must not name us as the holder
        except OSError:
            pass
        try:
            _unlock(fd)
        finally:
            os.close(fd)
        # The file itself stays: deleting it would let two processes lock two different files.

    def holder(self) -> str | None:
        """ "user@host, pid N" of the process holding the lock, or None when nobody holds it."""
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR)
            except OSError:
                return None  # no lock file: nobody has ever opened the project
            try:
                if _try_lock(fd):  # free: whatever the file says is left from a dead process
                    _unlock(fd)
                    return None
            finally:
                os.close(fd)
        return self._describe()

    def _describe(self) -> str:
        # One small unbuffered read: on Windows a buffered read could reach the locked byte.
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                text = os.read(fd, _HOLDER_MAX).decode("utf-8", errors="replace")
            finally:
                os.close(fd)
        except OSError:
            text = ""
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        if "pid" not in fields:
            return "unknown user"  # held, but the holder is still writing its description
        return f"{fields.get('user', '?')}@{fields.get('host', '?')}, pid {fields['pid']}"

    def read_only_message(self) -> str:
        who = self.holder()
        where = f" ({who})" if who else ""
        return f"This project is open in another AFPS Inspector{where}; opened read-only."

    def __enter__(self) -> ProjectLock:
        if not self.acquire():
            raise ProjectError(
                f"This project is open in another AFPS Inspector ({self.holder() or 'unknown'})."
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __del__(self) -> None:
        # Closing the descriptor releases the OS lock; do it if the owner forgot.
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
