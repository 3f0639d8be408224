"""Errors the user sees. Each message says what went wrong and what to do about it."""


class AfpsError(Exception):
    """Base class: the message is shown to the user as it is."""


class ImageError(AfpsError):
    """An image or mask file that cannot be used (names the file and the reason)."""


class DatasetError(AfpsError):
    """A dataset folder that cannot be read as any known layout, or is missing parts."""


class ModelFileError(AfpsError):
    """A model file that is corrupt, truncated, foreign or from an unknown format version."""


class WeightsNotFoundError(AfpsError):
    """Pretrained backbone weights that are not on this machine (says where to put them)."""


class LabelStoreError(AfpsError):
    """A labels database that cannot be opened or written."""


class ProjectError(AfpsError):
    """A project folder that cannot be opened, created or saved."""


class Cancelled(AfpsError):
    """A job stopped because the user cancelled it. Nothing half-written is left behind."""

    def __init__(self, message: str = "Cancelled by the user."):
        super().__init__(message)


class DatasetMissingError(DatasetError):
    """A project's dataset folder is not where the project expects it (moved, renamed, or on a
    drive that is not mounted). The UI catches it to ask for the new location and then calls
    ``afps_gui.core.project.relocate_dataset(project_folder, new_root)``.

    ``project_folder`` and ``dataset_root`` (the missing folder) name what is missing;
    ``suggestion`` is a folder of the same name below or beside the project, if there is one.
    """

    def __init__(self, message: str, project_folder=None, dataset_root=None, suggestion=None):
        super().__init__(message)
        self.project_folder = project_folder
        self.dataset_root = dataset_root
        self.suggestion = suggestion
