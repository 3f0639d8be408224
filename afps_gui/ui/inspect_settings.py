"""What the Inspect view remembers per project: the watched folder, its options, the shift start.

A small JSON file in the project folder (``inspect.json``), so that it travels with the project
and a second inspection PC opening the same project watches the same folder. Written whole to a
temporary file and renamed, so a crash never leaves half a file; an unreadable file means the
defaults (it only holds choices the user can make again in a click). Plain Python: no Qt.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

from ..core.labels import now_iso

log = logging.getLogger("afps.ui")

FILE_NAME = "inspect.json"
SORTED_FOLDER = "sorted"  # default place of the OK/ and NG/<type>/ folders, in the watched one
JSONL_NAME = "inspections.jsonl"  # default JSON-lines file, in the project folder


@dataclass
class InspectSettings:
    folder: str = ""  # the folder the camera writes
    recursive: bool = False
    sort: bool = False  # move inspected files into OK/ and NG/<type>/ under move_to
    move_to: str = ""  # "" = <folder>/sorted
    jsonl_on: bool = False
    jsonl: str = ""  # "" = <project>/inspections.jsonl
    beep: bool = False  # audible alarm on NG
    shift_start: str = ""  # ISO-8601 UTC, as the inspection log's times

    def sorted_folder(self) -> str:
        return self.move_to or (str(Path(self.folder) / SORTED_FOLDER) if self.folder else "")

    def jsonl_file(self, project_folder) -> str:
        return self.jsonl or str(Path(project_folder) / JSONL_NAME)

    def watch_options(self, project_folder, **extra) -> dict:
        """The ``WatchOptions`` of a watch (as a dict: it crosses to the job process)."""
        options = {"folder": self.folder, "recursive": self.recursive}
        if self.sort:
            options["move_to"] = self.sorted_folder()
        if self.jsonl_on:
            options["jsonl"] = self.jsonl_file(project_folder)
        options.update(extra)
        return options


def load_settings(project_folder) -> InspectSettings:
    path = Path(project_folder) / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as exc:
        log.warning("Inspect settings unreadable (%s): using the defaults", exc)
        data = {}
    known = {f.name for f in fields(InspectSettings)}
    settings = InspectSettings(**{k: v for k, v in data.items() if k in known})
    if not settings.shift_start:
        settings.shift_start = now_iso()
    return settings


def save_settings(project_folder, settings: InspectSettings) -> Optional[str]:
    """Save; returns why it could not be (a read-only folder), or None."""
    path = Path(project_folder) / FILE_NAME
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(asdict(settings), indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return f"the Inspect settings were not saved ({exc.strerror or exc})"
    return None
