"""Projects that move: the dataset path is stored relative to the project folder when the
dataset lies below or beside it, a missing dataset is a DatasetMissingError, and
relocate_dataset points a project at the dataset's new folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from afps_gui.cli import main
from afps_gui.core import pipeline
from afps_gui.core.classifier import ClassifierConfig
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.errors import AfpsError, DatasetError, DatasetMissingError, ProjectError
from afps_gui.core.padim import PadimConfig
from afps_gui.core.project import SETTINGS_NAME, Project, ProjectSettings, relocate_dataset

LABELS = {"Spot/spot_000.png": "Scratch", "good/good_000.png": "normal"}


def _settings(data: Path) -> ProjectSettings:
    return ProjectSettings(
        dataset_root=str(data),
        padim=PadimConfig(input_size=(64, 64)),
        classifier=ClassifierConfig(n=10, epochs=2),
        device="cpu",
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """lab/proj (fitted, scored, trained, two human labels) beside lab/data."""
    lab = tmp_path_factory.mktemp("lab")
    data = make_demo_dataset(lab / "data", n_normal=12, n_per_type=5, size=(64, 64))
    with Project.create(lab / "proj", _settings(data)) as project:
        for image, label in LABELS.items():
            project.store.set_label(image, label)
        pipeline.fit_project(project)
        pipeline.score_project(project)
        pipeline.train_project(project)
    return lab


def _stored(folder: Path) -> dict:
    return json.loads((folder / SETTINGS_NAME).read_text(encoding="utf-8"))


def _state(folder: Path) -> dict:
    """What must survive a move: labels, predictions, models and cached scores."""
    with Project.open(folder) as project:
        cached = project.cache.get("Spot/spot_001.png")
        return {
            "labels": project.store.labels(),
            "predictions": {k: p.label for k, p in project.store.predictions().items()},
            "models": [project.padim_path.read_bytes(), project.classifier_path.read_bytes()],
            "scores": project.cache.scores(),
            "map": cached.patch_map.tolist(),
            "samples": len(project.dataset.samples),
        }


def test_dataset_beside_the_project_is_stored_relative(lab):
    stored = _stored(lab / "proj")
    assert stored["dataset_root"] == "../data"
    assert stored["dataset_root_absolute"] == str((lab / "data").absolute())


def test_moved_project_with_its_dataset_opens_with_labels_models_and_scores(lab, tmp_path):
    before = _state(lab / "proj")
    assert before["labels"] == LABELS and before["predictions"] and before["scores"]
    moved = tmp_path / "line PC" / "handed over"
    shutil.copytree(lab, moved)  # as copied to another PC: the lab's folder is not there
    shutil.rmtree(lab / "data.hidden", ignore_errors=True)
    (lab / "data").rename(lab / "data.hidden")
    try:
        assert _state(moved / "proj") == before
        with Project.open(moved / "proj") as project:
            assert Path(project.settings.dataset_root) == moved / "data"
            assert project.dataset.samples[0].path.is_relative_to(moved / "data")
            scored = pipeline.score_project(project)  # the moved models still work
            assert scored.n_scored == before["samples"]
            project.save_settings()
        assert _stored(moved / "proj")["dataset_root"] == "../data"
    finally:
        (lab / "data.hidden").rename(lab / "data")


def test_dataset_below_the_project_is_stored_relative(tmp_path):
    data = make_demo_dataset(tmp_path / "proj" / "images", n_normal=4, n_per_type=2, size=(32, 32))
    Project.create(tmp_path / "proj", _settings(data)).close()
    assert _stored(tmp_path / "proj")["dataset_root"] == "images"
    shutil.move(tmp_path / "proj", tmp_path / "elsewhere")
    with Project.open(tmp_path / "elsewhere") as project:
        assert len(project.dataset.samples) == 8


def test_far_dataset_stays_absolute(tmp_path):
    data = make_demo_dataset(tmp_path / "a" / "b" / "data", n_normal=4, n_per_type=2, size=(32, 32))
    Project.create(tmp_path / "x" / "y" / "proj", _settings(data)).close()
    stored = _stored(tmp_path / "x" / "y" / "proj")
    assert stored["dataset_root"] == str(data.absolute())
    assert "dataset_root_absolute" not in stored


def test_project_copied_without_its_dataset_still_finds_it(lab, tmp_path):
    shutil.copytree(lab / "proj", tmp_path / "my copy")
    with Project.open(tmp_path / "my copy") as project:
        assert Path(project.settings.dataset_root) == (lab / "data").absolute()


def test_old_project_with_an_absolute_path_opens(lab, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(lab / "proj", folder)
    stored = _stored(folder)
    stored["dataset_root"] = stored.pop("dataset_root_absolute")
    (folder / SETTINGS_NAME).write_text(json.dumps(stored), encoding="utf-8")
    assert _state(folder)["labels"] == LABELS


@pytest.fixture
def orphan(lab, tmp_path) -> Path:
    """A copy of the project whose dataset (beside it) was renamed to data-2024."""
    shutil.copytree(lab, tmp_path / "site")
    stored = _stored(tmp_path / "site" / "proj")
    stored["dataset_root_absolute"] = str(tmp_path / "gone")  # the lab PC's path is gone too
    (tmp_path / "site" / "proj" / SETTINGS_NAME).write_text(json.dumps(stored), encoding="utf-8")
    (tmp_path / "site" / "data").rename(tmp_path / "site" / "data-2024")
    return tmp_path / "site" / "proj"


def test_missing_dataset_is_a_specific_error_and_relocation_fixes_it(orphan):
    with pytest.raises(DatasetMissingError) as caught:
        Project.open(orphan)
    err = caught.value
    assert isinstance(err, AfpsError)
    assert Path(err.dataset_root) == orphan.parent / "data"
    assert "new folder" in str(err) and str(orphan.parent / "data") in str(err)
    new_root = orphan.parent / "data-2024"
    settings = relocate_dataset(orphan, new_root)
    assert Path(settings.dataset_root) == new_root
    assert _stored(orphan)["dataset_root"] == "../data-2024"
    assert not list(orphan.glob("*.tmp")) and not list(orphan.glob(".*tmp*"))
    state = _state(orphan)
    assert state["labels"] == LABELS and state["scores"]


def test_missing_dataset_suggests_a_folder_of_that_name(orphan):
    (orphan.parent / "data-2024").rename(orphan / "data")  # now below the project
    with pytest.raises(DatasetMissingError) as caught:
        Project.open(orphan)
    assert caught.value.suggestion == str((orphan / "data").absolute())


def test_relocation_refuses_a_folder_without_the_projects_images(orphan, tmp_path):
    other = make_demo_dataset(tmp_path / "other", n_normal=3, n_per_type=1, size=(32, 32))
    before = (orphan / SETTINGS_NAME).read_bytes()
    with pytest.raises(DatasetError, match="lacks"):
        relocate_dataset(orphan, other)
    with pytest.raises(DatasetError, match="not a folder"):
        relocate_dataset(orphan, tmp_path / "nowhere")
    assert (orphan / SETTINGS_NAME).read_bytes() == before


def test_relocation_refuses_while_another_instance_has_it_open(orphan):
    new_root = orphan.parent / "data-2024"
    with Project.open(orphan, require_dataset=False) as other:
        assert not other.readonly
        with pytest.raises(ProjectError):
            relocate_dataset(orphan, new_root)
        with pytest.raises(DatasetMissingError):
            _ = other.dataset  # labels only: the images are asked for when needed


def test_cli_names_the_missing_dataset_and_still_exports_labels(orphan, tmp_path, capsys):
    assert main(["report", "--project", str(orphan), "--csv", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "dataset folder" in err and "new folder" in err and "Traceback" not in err
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", "--project", str(orphan), str(out)]) == 0
    assert "Scratch" in out.read_text(encoding="utf-8")
