"""Per-user preferences: recent projects, window layout, default device, viewer choices.

Stored as one JSON file in the per-user config folder (``logs.user_dirs()["config"]``), written
atomically so that a crash while saving never leaves a half-written file. A missing or damaged
file gives the defaults: preferences are a convenience, never a reason not to start.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.errors import AfpsError
from ..core.jobs import atomic_write
from ..job_process import DEFAULT_JOB_PRIORITY, JOB_PRIORITIES
from ..logs import user_dirs

log = logging.getLogger("afps.prefs")

PREFS_NAME = "prefs.json"
MAX_RECENT = 8
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Preferences:
    recent_projects: list[str] = field(default_factory=list)
    window_geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""  # base64 of QMainWindow.saveState() (dock layout)
    default_device: str = "auto"
    colormap: str = "inferno"
    overlay_opacity: float = 0.55
    last_dataset_dir: str = ""
    demo_offered: bool = False  # the demo project is made on the very first launch only
    job_priority: str = DEFAULT_JOB_PRIORITY  # how far jobs give way to other programs

    def add_recent(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        self.recent_projects = [folder] + [p for p in self.recent_projects if p != folder]
        del self.recent_projects[MAX_RECENT:]

    def remove_recent(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        self.recent_projects = [p for p in self.recent_projects if p != folder]


def prefs_path() -> Path:
    return user_dirs()["config"] / PREFS_NAME


def load_prefs(path: Path | None = None) -> Preferences:
    path = path or prefs_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Preferences()
    except (OSError, ValueError) as exc:
        log.warning("Preferences at %s unreadable (%s): using defaults", path, exc)
        return Preferences()
    known = {f.name for f in fields(Preferences)}
    prefs = Preferences(**{k: v for k, v in data.items() if k in known})
    if prefs.default_device not in DEVICES:
        prefs.default_device = "auto"
    if prefs.job_priority not in JOB_PRIORITIES:
        prefs.job_priority = DEFAULT_JOB_PRIORITY
    return prefs


def save_prefs(prefs: Preferences, path: Path | None = None) -> None:
    path = path or prefs_path()
    try:
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(asdict(prefs), indent=2), encoding="utf-8")
    except (OSError, AfpsError) as exc:  # a read-only or full home must not stop the app
        log.warning("Could not save preferences to %s: %s", path, exc)
