"""One rule each for the project's labels (issue 16): the one door into a labels CSV
(Project.import_labels), the one spelling of a type (canonical_label), the one list of normal
images (Project.normals)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from afps_gui.core import project as project_module
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.project import Project, ProjectSettings
from afps_gui.core.taxonomy import NORMAL


@pytest.fixture
def line_files(tmp_path) -> dict[str, tuple[str, None]]:
    """Two line images as the inspection log lists them (label key -> file, score)."""
    folder = tmp_path / "camera"
    folder.mkdir()
    files = {}
    for name in ("part-1.png", "part-2.png"):
        (folder / name).write_bytes(b"not decoded here")
        files[f"line/2026-01-01/{name}"] = (str(folder / name), None)
    return files


@pytest.fixture
def project(tmp_path, monkeypatch, line_files):
    data = make_demo_dataset(tmp_path / "data", n_normal=4, n_per_type=2, size=(32, 32))
    monkeypatch.setattr(project_module, "line_image_paths", lambda folder: dict(line_files))
    with Project.create(tmp_path / "proj", ProjectSettings(dataset_root=str(data))) as p:
        yield p


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_labels_takes_back_what_export_wrote_line_images_included(project, tmp_path):
    line = sorted(project.known_images() - {s.rel for s in project.dataset.samples})
    project.store.set_labels({"Spot/spot_000.png": "Scratch", line[0]: "Spot", line[1]: NORMAL})
    out = tmp_path / "labels.csv"
    project.store.export_csv(out)
    project.store.set_labels({rel: None for rel in project.store.labels()})
    report = project.import_labels(out)
    assert report.applied == 3 and report.unknown_images == []
    assert project.store.labels() == {
        "Spot/spot_000.png": "Scratch",
        line[0]: "Spot",
        line[1]: NORMAL,
    }


def test_import_labels_matches_paths_as_the_dataset_door_does(project, tmp_path):
    """Exact, then ignoring case; absolute paths under the dataset root made relative."""
    root = project.dataset.root
    csv = write(
        tmp_path / "in.csv",
        f"image,label\nspot/SPOT_001.png,scratch\n{root / 'good' / 'good_000.png'},ok\n"
        "nowhere/x.png,Spot\n",
    )
    report = project.import_labels(csv)
    assert report.applied == 2 and report.unknown_images == ["nowhere/x.png"]
    assert project.store.labels() == {"Spot/spot_001.png": "Scratch", "good/good_000.png": NORMAL}


@pytest.fixture
def lower_project(tmp_path):
    """A dataset whose folder is "spot" (lower case) for the project's type "Spot"."""
    data = make_demo_dataset(
        tmp_path / "data", n_normal=4, n_per_type=3, size=(32, 32), types=("spot", "Scratch")
    )
    with Project.create(tmp_path / "proj", ProjectSettings(dataset_root=str(data))) as p:
        yield p


def test_a_dataset_label_takes_the_spelling_of_the_stored_type(lower_project):
    p = lower_project
    assert p.store.type_names() == ["Spot", "Scratch"]  # "spot" did not become a second type
    spot = p.dataset.by_rel()["spot/spot_000.png"]
    assert spot.label == "spot" and p.label_of(spot) == "Spot"
    assert p.labels()["spot/spot_000.png"] == "Spot"
    typed = {s.rel: s.label for s in p.typed_defects()}
    assert typed["spot/spot_000.png"] == "Spot" and len(typed) == 6
    train, test = p.classifier_split()
    assert {s.label for s in train + test} == {"Spot", "Scratch"} and len(train + test) == 6
    from afps_gui.core.review_queue import image_inputs, queue_inputs

    # The review queue reads the same spelling, for the whole queue and for one image.
    assert queue_inputs(p).dataset_labels["spot/spot_000.png"] == "Spot"
    assert image_inputs(p, ["spot/spot_000.png"]).dataset_labels == {"spot/spot_000.png": "Spot"}


def test_the_browser_colours_a_dataset_label_of_another_case(qtbot, lower_project):
    from PySide6.QtCore import QObject, Signal

    from afps_gui.ui.browser_model import COL_LABEL, ImageTableModel

    class Thumbs(QObject):
        ready = Signal(str)

        def fetch(self, key, path):
            return None

    model = ImageTableModel(Thumbs())
    model.set_project(lower_project)
    row = model.row_of("spot/spot_001.png")
    assert model.rows[row].label == "Spot"
    assert model.data(model.index(row, COL_LABEL), Qt.ItemDataRole.ForegroundRole) is not None
    model.refresh(["spot/spot_001.png"])  # the one-row path reads the same label
    assert model.rows[row].label == "Spot"


def test_one_count_of_normal_images_line_images_not_among_them(qtbot, project, line_files):
    from PySide6.QtGui import QAction

    from afps_gui.ui.training_panel import TrainingPanel

    line = sorted(line_files)
    project.store.set_labels({line[0]: NORMAL, line[1]: "Spot", "good/good_000.png": "Scratch"})
    normals = project.normals()
    assert len(normals) == 3 and "good/good_000.png" not in {s.rel for s in normals}
    assert line[0] not in {s.rel for s in normals} and project.labels()[line[0]] == NORMAL
    split = project.normal_split()
    assert sorted(s.rel for s in split.fit + split.val + split.test) == [s.rel for s in normals]
    panel = TrainingPanel({name: QAction(name) for name in ("tune", "fit", "score", "train")})
    qtbot.addWidget(panel)
    panel.project = project
    panel.update_counts()
    assert panel.padim_form.normals.text().startswith("3 images are labelled normal")
    # the types as the classifier trains on them: the line image's Spot, the relabelled Scratch
    assert panel.classifier_form.types.text() == "Scratch (3), Spot (3)"
