"""Line images are first-class in review, the viewers and retraining (issue 15): an NG part from
a watched folder is in the review queue with its file, the review panel shows and relabels it
(undoably), the heat map and the patch inspector show its recorded map, and once labelled it is
a training sample. Real decoding, the real tiny fitted project of test_line_support."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_line_support import drop, images_of

from afps_gui.core import pipeline
from afps_gui.core.inspection_log import InspectionLog
from afps_gui.core.line_inspection import WatchOptions, is_line_image, run_watch
from afps_gui.core.project import Project
from afps_gui.core.review_queue import queue_inputs
from afps_gui.core.taxonomy import NORMAL

pytest_plugins = ["test_line_support"]

WAIT_MS = 60_000


@pytest.fixture
def watched(line_project_folder, line_data, tmp_path):
    """The project after a watched folder was taken once: 2 good parts, 3 defective ones.
    Returns (project folder, the NG results' posts)."""
    line = tmp_path / "camera"
    drop(images_of(line_data, "good", 2), line)
    drop(images_of(line_data, "Spot", 2) + images_of(line_data, "Scratch", 1), line, "part-")
    posts = []
    with Project.open(line_project_folder) as project:
        run_watch(
            project, WatchOptions(folder=str(line), once=True, settle_s=0.2), post=posts.append
        )
    ng = [p for p in posts if p["verdict"] == "NG" and p["image"]]
    assert len(ng) >= 2, posts
    return line_project_folder, ng


@pytest.fixture
def project(watched):
    with Project.open(watched[0]) as p:
        yield p


def test_an_ng_part_is_queued_with_its_file(watched, project):
    _, ng = watched
    data = queue_inputs(project)
    for p in ng:
        assert is_line_image(p["image"]) and p["image"] in data.rels
        assert data.line_paths[p["image"]] == p["file"] and Path(p["file"]).is_file()


def test_the_review_panel_shows_it_and_a_relabel_is_undoable(qtbot, watched, project):
    from afps_gui.ui.review import ReviewPanel

    rel = watched[1][0]["image"]
    panel = ReviewPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    panel.show()
    assert rel in panel.rows()
    panel.select(rel)
    assert panel.current == rel and panel.info_image.text() == rel
    qtbot.waitUntil(lambda: rel in panel._thumbs or rel in panel._thumb_errors, timeout=WAIT_MS)
    assert rel not in panel._thumb_errors, panel._thumb_errors.get(rel)
    assert not panel._thumbs[rel].isNull() and panel.thumb.pixmap() is not None
    changed = []
    panel.labels_changed.connect(changed.append)
    other = "Scratch" if panel.item(rel).predicted != "Scratch" else "Spot"
    QTest.keyClick(panel, Qt.Key_2 if other == "Scratch" else Qt.Key_1)
    assert project.store.label(rel) == other and changed == [[rel]]
    assert rel in {s.rel for s in project.line_samples()}
    QTest.keyClick(panel, Qt.Key_Z, Qt.ControlModifier)
    assert project.store.label(rel) is None and panel.current == rel
    assert rel not in {s.rel for s in project.line_samples()}
    panel.set_project(None)


def test_view_data_gives_the_recorded_map_and_a_prediction(watched, project):
    from afps_gui.ui.model_cache import ModelCache
    from afps_gui.ui.view_data import classify_image, load_image_view

    rel = watched[1][0]["image"]
    models = ModelCache(project)
    view = load_image_view(project, models, rel)
    with InspectionLog.of_project(project.folder, readonly=True) as log:
        row = log.by_image(rel)
    assert view.image.shape == (64, 64, 3) and view.mask is None and not view.notes
    assert view.score == pytest.approx(row.score) and view.patch_map.shape == (16, 16)
    assert view.amap.shape == (64, 64) and np.isfinite(view.amap).all()
    assert view.amap.max() > view.model.threshold  # an NG part's map crosses the threshold
    clf = classify_image(project, models, rel)
    assert clf.prediction.label in ("Spot", "Scratch") and len(clf.prediction.positions) == 10
    with pytest.raises(Exception, match="dataset or its inspection log"):
        load_image_view(project, models, "line/2000-01-01/0000000000-gone.png")


def test_the_heat_map_and_the_inspector_show_it(qtbot, watched, project):
    from afps_gui.ui.heatmap import HeatmapViewer
    from afps_gui.ui.model_cache import ModelCache
    from afps_gui.ui.patch_inspector import PatchInspector
    from afps_gui.workers import TaskRunner

    rel = watched[1][0]["image"]
    tasks, models = TaskRunner(), ModelCache(project)
    heat, inspector = HeatmapViewer(tasks), PatchInspector(tasks)
    for w in (heat, inspector):
        qtbot.addWidget(w)
        w.set_project(project, models)
        w.show()
        w.show_image(rel)
    qtbot.waitUntil(lambda: heat.view is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: inspector.clf_view is not None, timeout=WAIT_MS)
    assert heat.view.rel == rel and heat.view.amap is not None and heat.overlay.isVisible()
    assert inspector.view.rel == rel and inspector.clf_view.rel == rel
    assert "not in this project" not in inspector.note_label.text()
    tasks.wait(WAIT_MS)


def test_labelled_line_images_train_the_classifier(watched, project):
    ng = watched[1]
    before = {s.rel for s in project.classifier_split()[0]}
    n_fit = len(project.normal_split().fit)
    spot, normal = ng[0]["image"], ng[1]["image"]
    project.store.set_label(spot, "Spot")
    project.store.set_label(normal, NORMAL)
    labels = project.labels()
    assert labels[spot] == "Spot" and labels[normal] == NORMAL
    # a type with one line image trains on it; the dataset's split is as it was
    train, test = project.classifier_split()
    assert {s.rel for s in train} == before | {spot} and spot not in {s.rel for s in test}
    sample = next(s for s in train if s.rel == spot)
    assert sample.label == "Spot" and sample.path == Path(ng[0]["file"])
    assert spot in {s.rel for s in project.typed_defects()}
    # a line image labelled normal counts as normal but does not join the anomaly model's fit
    assert len(project.normal_split().fit) == n_fit
    assert normal not in {s.rel for s in project.typed_defects()}
    result = pipeline.train_project(project)  # embeds the image from outside the dataset root
    assert result.n_train == len(train) == len(before) + 1


def test_a_project_without_line_images_is_unchanged(line_project_folder):
    with Project.open(line_project_folder) as project:
        assert project.line_samples() == []
        assert set(project.labels()) == {s.rel for s in project.dataset.samples}
        train, test = project.classifier_split()
        assert all(not is_line_image(s.rel) for s in train + test)
