"""A project whose images moved: ask where they are now, once, and point the project there.

Projects travel (from the lab to the line, to another PC); their dataset may sit elsewhere on
the new machine, or on a drive that is not mounted yet. Refusing to open them would strand the
labels and models; guessing would mix in the wrong images. So the user is asked, and core's
``relocate_dataset`` checks the chosen folder holds the images the project knows first.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from ..core.errors import AfpsError, DatasetMissingError
from ..core.project import relocate_dataset
from . import messages


def ask_for_dataset(parent: QWidget, error: DatasetMissingError) -> bool:
    """Ask for the dataset's new folder; True once the project points there."""
    missing = error.dataset_root or "its old folder"
    if not messages.confirm(
        parent,
        f"This project's images are not in {missing} any more (moved, renamed, or on a drive "
        "that is not connected).\n\nChoose the folder that holds them now? The project's labels, "
        "models and scores stay as they are.",
        title="Where are the images?",
    ):
        return False
    start = error.suggestion or (Path(str(missing)).parent if error.dataset_root else Path.home())
    chosen = choose_folder(parent, str(start))
    if not chosen:
        return False
    try:
        relocate_dataset(error.project_folder, chosen)
    except AfpsError as exc:
        messages.error(parent, str(exc))
        return False
    return True


def choose_folder(parent: QWidget, start: str) -> str:
    """The folder dialog (monkeypatched in tests)."""
    return QFileDialog.getExistingDirectory(parent, "Folder that holds the project's images", start)
