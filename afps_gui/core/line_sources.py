"""Where line images come from: a watched folder, a list of files, or a folder taken once.

A camera writes one file per part, and a file appears before it is complete. A file is handed
on only when it is *ready*: its size and modification time were the same on two polls in a row
AND it decodes with the project's image loader (``images.load_image``). A file that is stable
but does not decode is tried again on later polls (the writer may only have paused); once it
has been left unchanged for ``settle_s`` seconds and has failed at least ``attempts`` times it
is *given up* with the loader's reason, and the stream goes on. A file rewritten later (new size
or time) is a new file: its key changes.

Polling, not OS notifications: it is portable (network shares send no events), and one
``scandir`` of a folder that the line empties is cheap.

Names ignored: hidden files (".name", the pattern of this app's own atomic writes), editor and
copy temporaries ("~name", "*.tmp", "*.part", ...; they fail the image-extension test anyway),
mask files ("*_mask.png", as ``afps predict`` skips them), and any folder given in ``exclude``
(the OK/NG folders when they lie inside the watched one).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import ImageError
from .images import is_image_file, load_image

POLL_S = 0.1  # how often a folder is listed: the latency target is 1 s at p99
SETTLE_S = 10.0  # a stable file that will not decode is given up after this long unchanged
ATTEMPTS = 3  # ... and after at least this many decode attempts


@dataclass(frozen=True)
class FileState:
    """A file as one poll saw it. The key names this version of the file: a file written
    again under the same name (new size or time) is a new part."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return f"{os.fspath(self.path)}|{self.size}|{self.mtime_ns}"

    @property
    def key_hash(self) -> str:
        return hashlib.sha1(self.key.encode("utf-8", "surrogateescape")).hexdigest()[:10]


@dataclass
class Ready:
    """A complete file and its decoded pixels (decoded once, here, and reused for scoring)."""

    state: FileState
    image: np.ndarray
    seen_at: float  # time.time() when the file was found complete


@dataclass
class GivenUp:
    """A file that never became readable, with the reason the loader gave."""

    state: FileState
    reason: str
    seen_at: float


@dataclass
class _Pending:
    state: FileState
    stable_polls: int = 0
    failures: int = 0
    changed_at: float = field(default_factory=time.monotonic)
    reason: str = ""


def ignored_name(name: str) -> bool:
    """Hidden files, temporaries and masks are never parts."""
    lowered = name.lower()
    return (
        name.startswith((".", "~"))
        or lowered.endswith((".tmp", ".part", ".partial", ".crdownload", ".filepart", ".download"))
        or not is_image_file(name)
        or Path(name).stem.endswith("_mask")
    )


def scan_folder(
    folder: Path, *, recursive: bool = False, exclude: Iterable[Path] = ()
) -> Iterator[FileState]:
    """Every candidate file under ``folder`` with its size and time; unreadable entries and
    folders that vanish mid-scan are passed over (the next poll sees them again)."""
    skip = {os.path.normcase(os.path.abspath(p)) for p in exclude}
    stack = [Path(folder)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and not entry.name.startswith("."):
                        if os.path.normcase(os.path.abspath(entry.path)) not in skip:
                            stack.append(Path(entry.path))
                    continue
                if ignored_name(entry.name) or not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue
            yield FileState(Path(entry.path), st.st_size, st.st_mtime_ns)


def stat_files(paths: Iterable[Path]) -> Iterator[FileState]:
    """The given files as they are now (a missing one is waited for like a growing one)."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        yield FileState(Path(path), st.st_size, st.st_mtime_ns)


Decoder = Callable[[Path], np.ndarray]


class ReadyFiles:
    """Decides, poll by poll, which files are complete (``Ready``) and which are hopeless
    (``GivenUp``). ``listing`` returns the files as they are now; ``is_done(key)`` says which
    ones were already recorded (they are never handed on again)."""

    def __init__(
        self,
        listing: Callable[[], Iterable[FileState]],
        is_done: Callable[[str], bool],
        *,
        decode: Decoder = load_image,
        settle_s: float = SETTLE_S,
        attempts: int = ATTEMPTS,
    ):
        self.listing, self.is_done, self.decode = listing, is_done, decode
        self.settle_s, self.attempts = settle_s, attempts
        self.pending: dict[Path, _Pending] = {}
        self.polls = 0

    @property
    def waiting(self) -> int:
        return len(self.pending)

    def poll(self, limit: Optional[int] = None) -> tuple[list[Ready], list[GivenUp]]:
        """Look once; decode at most ``limit`` ready files (the rest wait for the next poll,
        so that a flood of files does not delay the ones already decoded)."""
        self.polls += 1
        now = time.monotonic()
        seen = set()
        ready: list[Ready] = []
        given_up: list[GivenUp] = []
        for state in self.listing():
            seen.add(state.path)
            if self.is_done(state.key):
                self.pending.pop(state.path, None)
                continue
            entry = self._update(state, now)
            if entry.stable_polls < 1 or (limit is not None and len(ready) >= limit):
                continue
            outcome = self._try(entry, now)
            if isinstance(outcome, Ready):
                ready.append(outcome)
            elif outcome is not None:
                given_up.append(outcome)
        for gone in set(self.pending) - seen:  # deleted or renamed before it was complete
            del self.pending[gone]
        return ready, given_up

    def _update(self, state: FileState, now: float) -> _Pending:
        entry = self.pending.get(state.path)
        if entry is None or entry.state != state:
            entry = _Pending(state, changed_at=now)
            self.pending[state.path] = entry
            if not self._untouched_for_long(state):
                return entry
        entry.stable_polls += 1
        return entry

    def _untouched_for_long(self, state: FileState) -> bool:
        """A file last written long ago (found at start-up, or by a one-off folder scan)
        needs no second poll: nobody is writing it."""
        return time.time() - state.mtime_ns / 1e9 > self.settle_s

    def _try(self, entry: _Pending, now: float):
        try:
            image = self.decode(entry.state.path)
        except ImageError as exc:
            if not entry.state.path.exists():  # moved or deleted by someone else: not a part
                del self.pending[entry.state.path]
                return None
            entry.failures += 1
            entry.reason = getattr(exc, "reason", None) or str(exc)
            if self._hopeless(entry, now):
                del self.pending[entry.state.path]
                return GivenUp(entry.state, entry.reason, time.time())
            return None
        del self.pending[entry.state.path]
        return Ready(entry.state, image, time.time())

    def _hopeless(self, entry: _Pending, now: float) -> bool:
        # A file last written long ago still gets ``attempts`` polls: on a share whose clock
        # is behind, a file being written looks old too, but its size keeps changing.
        if entry.failures < self.attempts:
            return False
        return self._untouched_for_long(entry.state) or now - entry.changed_at >= self.settle_s
