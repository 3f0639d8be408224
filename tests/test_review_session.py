"""The review session without Qt: queue order, counts, filters, decide / undo, per-image refresh."""
# ruff: noqa: F811 - test arguments named after the imported fixtures

import pytest
from review_fixtures import data_root, project  # noqa: F401 - the shared fixtures

from afps_gui.core.errors import AfpsError
from afps_gui.core.labels import Prediction
from afps_gui.core.project import Project
from afps_gui.core.review_queue import DISAGREE, REVIEWED, UNLABELLED, project_queue
from afps_gui.core.review_session import ReadOnlyError, ReviewSession


def test_queue_order_and_counts_follow_the_core_queue(project):
    session = ReviewSession(project)
    expected = [item.rel for item in project_queue(project)]
    assert session.visible() == expected
    assert session.total == 22 and session.reviewed_count == 0
    assert session.item(expected[0]).reason == DISAGREE
    assert sum(session.counts.values()) == 22


def test_filters_hide_reasons_but_keep_the_order(project):
    session = ReviewSession(project)
    everything = session.visible()
    session.wanted = {UNLABELLED}
    shown = session.visible()
    assert shown and all(session.item(r).reason == UNLABELLED for r in shown)
    assert shown == [r for r in everything if r in set(shown)]


def test_decide_uses_the_stores_spelling_and_returns_the_changed_image(project):
    session = ReviewSession(project)
    rel = session.visible()[0]
    assert session.decide(rel, "spot") == [rel]
    item = session.item(rel)
    assert item.human == "Spot" and item.reviewed and item.reason == REVIEWED
    assert session.reviewed_count == 1 and session.counts["Spot"] >= 1
    assert session.decide(rel, "Spot") == []  # the same label: nothing changed
    assert session.visible()[0] == rel  # the order is frozen until the next load


def test_undo_and_redo_return_the_image_they_touched(project):
    session = ReviewSession(project)
    rel = session.visible()[0]
    session.decide(rel, "Scratch")
    step = session.step_history(undo=True)
    assert step.changed == [rel] and not step.many and step.change.image == rel
    assert session.item(rel).human is None and session.reviewed_count == 0
    step = session.step_history(undo=False)
    assert step.changed == [rel] and session.item(rel).human == "Scratch"
    session.step_history(undo=True)
    assert session.step_history(undo=True) is None  # nothing left to undo


def test_a_change_of_many_images_reloads_the_session(project):
    session = ReviewSession(project)
    rels = session.visible()[:3]
    project.store.set_labels({rel: "normal" for rel in rels})
    step = session.after_change(project.store.undo())
    assert step.many and session.item(rels[0]).human is None
    project.store.redo()
    assert sorted(session.load()) == sorted(rels)


def test_refresh_images_updates_one_image_without_a_load(project):
    session = ReviewSession(project)
    rel = session.visible()[-1]
    project.store.set_label(rel, "Scratch")  # written elsewhere (another panel, the CLI)
    added, changed = session.refresh_images([rel])
    assert added == [] and changed == [rel]
    assert session.item(rel).human == "Scratch" and session.reviewed_count == 1
    assert session.refresh_images([rel]) == ([], [])


def test_refresh_images_adds_a_new_image_in_its_sorted_place(project, monkeypatch):
    session = ReviewSession(project)
    line = "line/ng/part-1.png"
    path = project.folder / "part-1.png"
    path.write_bytes(b"")
    monkeypatch.setattr(
        "afps_gui.core.inspection_log.line_image_paths",
        lambda folder: {line: (str(path), 1e6)},  # the highest score of all
    )
    added, _ = session.refresh_images([line, "not/an/image.png"])
    assert added == [line] and session.total == 23 and line in session.visible()
    assert session.paths[line] == path and session.item(line).reason == UNLABELLED
    unlabelled = [r for r in session.visible() if session.item(r).reason == UNLABELLED]
    assert unlabelled[0] == line  # the clearest defect leads its tier


def test_refresh_reads_images_by_the_queues_rules(project, monkeypatch):
    """A refresh and a load read an image the same way (review_queue.image_inputs): a line key
    that is also a dataset image stays the dataset's, and a score comes from the cache, else
    the stored prediction, else the inspection log."""
    session = ReviewSession(project)
    dataset_rel = session.visible()[0]
    dataset_path = session.paths[dataset_rel]
    line = "line/ng/part-2.png"
    path = project.folder / "part-2.png"
    path.write_bytes(b"")
    monkeypatch.setattr(
        "afps_gui.core.inspection_log.line_image_paths",
        lambda folder: {line: (str(path), 1e6), dataset_rel: (str(path), 1e6)},
    )
    project.store.set_predictions([Prediction(line, "Spot", 0.9, 5.0, "test-model")])
    added, _ = session.refresh_images([line, dataset_rel])
    assert added == [line] and session.paths[dataset_rel] == dataset_path
    refreshed = {rel: session.item(rel) for rel in (line, dataset_rel)}
    assert refreshed[line].score == 5.0  # the prediction's score before the log's
    session.load()
    assert {rel: session.item(rel) for rel in refreshed} == refreshed
    assert session.paths[dataset_rel] == dataset_path and session.paths[line] == path


def test_a_read_only_project_refuses_decisions_and_undo(project):
    second = Project.open(project.folder)  # the first one holds the lock
    try:
        session = ReviewSession(second)
        rel = session.visible()[0]
        with pytest.raises(ReadOnlyError, match="not saved"):
            session.decide(rel, "Spot")
        with pytest.raises(AfpsError, match="[Rr]ead-only"):
            session.step_history(undo=True)
        assert second.store.label(rel) is None
    finally:
        second.close()


def test_no_project_is_an_empty_session():
    session = ReviewSession()
    assert session.visible() == [] and session.total == 0 and session.load() == []
    assert session.refresh_images(["a.png"]) == ([], [])
    assert session.step_history(undo=True) is None
