"""Shared fixtures of the line-inspection tests (``pytest_plugins = ["test_line_support"]``).

One tiny project is fitted and trained per session (real backbone, 64 px demo images); each
test gets its own copy of the folder, so that what one test records never shows in another.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from afps_gui.core import pipeline
from afps_gui.core.classifier import ClassifierConfig
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.padim import PadimConfig
from afps_gui.core.project import Project, ProjectSettings


@pytest.fixture(scope="session")
def line_data(tmp_path_factory) -> Path:
    return make_demo_dataset(
        tmp_path_factory.mktemp("line-data"), n_normal=14, n_per_type=6, size=(64, 64)
    )


@pytest.fixture(scope="session")
def fitted_line_project(line_data, tmp_path_factory) -> Path:
    """A project folder with a fitted anomaly model and a trained classifier (closed)."""
    settings = ProjectSettings(
        dataset_root=str(line_data),
        padim=PadimConfig(input_size=(64, 64)),
        classifier=ClassifierConfig(n=10, epochs=3, strategy="afps"),
        device="cpu",
    )
    folder = tmp_path_factory.mktemp("line-template") / "proj"
    with Project.create(folder, settings) as project:
        pipeline.fit_project(project)
        pipeline.train_project(project)
    return folder


@pytest.fixture
def line_project_folder(fitted_line_project, tmp_path) -> Path:
    target = tmp_path / "proj"
    shutil.copytree(fitted_line_project, target)
    for stale in target.glob(".afps-inspector.lock"):
        stale.unlink()
    return target


def images_of(data: Path, folder: str, n: int) -> list[Path]:
    return sorted((data / folder).glob("*.png"))[:n]


def drop(paths, folder: Path, prefix: str = "") -> list[Path]:
    """Copy images into the watched folder as a camera would (complete files)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        target = folder / f"{prefix}{p.name}"
        target.write_bytes(p.read_bytes())
        out.append(target)
    return out
