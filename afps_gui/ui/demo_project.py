"""The built-in demo project: images the app draws itself, set up to be quick on a CPU."""

from __future__ import annotations

from pathlib import Path

from ..core.backbones import DEFAULT_BACKBONE
from ..core.classifier import ClassifierConfig
from ..core.demo import make_demo_dataset
from ..core.jobs import no_progress
from ..core.padim import PadimConfig
from ..core.project import SETTINGS_NAME, Project, ProjectSettings
from ..logs import user_dirs

DEMO_INPUT = (128, 128)
DEMO_NAME = "Demo project"


def demo_folders(base: Path | None = None) -> tuple[Path, Path]:
    """(dataset folder, project folder) of the demo, in the per-user data folder by default."""
    base = Path(base) if base else user_dirs()["data"]
    return base / "demo-data", base / "demo-project"


def ensure_demo_project(
    data_dir: Path,
    project_dir: Path,
    *,
    n_normal: int = 60,
    n_per_type: int = 20,
    image_size: tuple[int, int] = (160, 160),
    input_size: tuple[int, int] = DEMO_INPUT,
    epochs: int = 20,
    n_patches: int = 50,
    progress=no_progress,
    cancel=None,
) -> Path:
    """Draw the demo images (if not there yet) and make the project (if not there yet)."""
    make_demo_dataset(
        data_dir,
        n_normal=n_normal,
        n_per_type=n_per_type,
        size=image_size,
        progress=progress,
        cancel=cancel,
    )
    if (Path(project_dir) / SETTINGS_NAME).is_file():
        return Path(project_dir)
    settings = ProjectSettings(
        dataset_root=str(data_dir),
        layout="folders",
        padim=PadimConfig(backbone=DEFAULT_BACKBONE, input_size=input_size, batch_size=8),
        classifier=ClassifierConfig(epochs=epochs, n=n_patches, batch_size=8),
        name=DEMO_NAME,
    )
    Project.create(project_dir, settings).close()
    return Path(project_dir)
