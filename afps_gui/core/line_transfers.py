"""Inspected files into ``OK/``, ``NG/<type>/`` and ``unreadable/`` folders, after they are recorded.

A file is moved only after its result is in the inspection log, whose ``stored`` column names
the target: a kill before the move is finished at the next start (``finish_transfers``), and a
kill after it cannot lose the part (its row is already there).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .inspection_log import NG, OK, Inspection, InspectionLog
from .line_sources import FileState

UNTYPED = "untyped"  # the NG folder of a defect the project cannot type (no classifier yet)
UNREADABLE = "unreadable"  # where files that never decoded go


def destination(item: Inspection, move_to: Path) -> Path:
    """Where a result's file goes; a name already taken there gets the file key's hash."""
    if item.verdict == OK:
        folder = move_to / OK
    elif item.verdict == NG:
        folder = move_to / NG / _folder_name(item.type or UNTYPED)
    else:
        folder = move_to / UNREADABLE
    name = Path(item.file).name
    target = folder / name
    if target.exists():
        state = FileState(Path(item.file), item.size, item.mtime_ns)
        target = folder / f"{Path(name).stem}-{state.key_hash}{Path(name).suffix}"
    return target


def _folder_name(type_name: str) -> str:
    cleaned = "".join("_" if c in '/\\:*?"<>|' else c for c in type_name).strip(" .")
    return cleaned or UNTYPED


def transfer(source: Path, target: Path, *, copy: bool) -> None:
    """Move (or copy) a file; the target appears complete or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.replace(source, target)
            return
        except OSError:
            pass  # another drive: copy, then remove
    part = target.with_name(f".{target.name}.part")
    shutil.copy2(source, part)
    os.replace(part, target)
    if not copy:
        source.unlink(missing_ok=True)


def finish_transfers(log: InspectionLog, *, copy: bool) -> int:
    """After a kill: move (or copy) the files recorded but not yet moved. Returns how many."""
    n = 0
    for item in log.unmoved():
        source, target = Path(item.file), Path(item.stored)
        same = _same_version(source, item)
        try:
            if not target.exists() and same:
                transfer(source, target, copy=copy)
                n += 1
            elif target.exists() and same and not copy:
                source.unlink()  # copied to the other drive before the kill; remove the original
        except OSError:
            continue  # tried again at the next start
        log.mark_moved(item.id)
    return n


def _same_version(path: Path, item: Inspection) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (item.size, item.mtime_ns)
