"""The labels store: types, labels, predictions, undo/redo, audit trail, CSV, safety on open."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from afps_gui.core.errors import AfpsError, LabelStoreError, ProjectError
from afps_gui.core.labels import (
    SCHEMA_VERSION,
    LabelStore,
    OverwriteRefused,
    Prediction,
)
from afps_gui.core.project_lock import LOCK_NAME, ProjectLock
from afps_gui.core.taxonomy import DEFAULT_TYPES, NORMAL

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "labels.sqlite"


@pytest.fixture
def store(db: Path):
    with LabelStore(db, user="alice") as s:
        yield s


def label_kinds(store: LabelStore) -> list[str]:
    return [c.kind for c in store.history()]


# ------------------------------------------------------------------------- types and labels


def test_new_store_has_default_types_and_nothing_else(store: LabelStore):
    assert [t.name for t in store.types()] == list(DEFAULT_TYPES)
    assert [t.position for t in store.types()] == [0, 1]
    assert store.labels() == {} and store.reviewed() == set() and store.predictions() == {}
    assert store.history() == [] and not store.can_undo() and not store.can_redo()


def test_set_label_marks_reviewed_and_accepts_any_case(store: LabelStore):
    store.set_label("crack/a.png", "spot")  # stored in the type's own spelling
    store.set_label("ok/b.png", "Normal")
    assert store.labels() == {"crack/a.png": "Spot", "ok/b.png": NORMAL}
    assert store.reviewed() == {"crack/a.png", "ok/b.png"}
    assert store.label("crack/a.png") == "Spot" and store.label("nope.png") is None


def test_unknown_type_is_refused_and_nothing_is_written(store: LabelStore):
    with pytest.raises(LabelStoreError, match="Unknown defect type.*Known types: Spot, Scratch"):
        store.set_label("a.png", "Dent")
    assert store.labels() == {} and store.history() == []


def test_image_paths_are_normalised_and_absolute_paths_refused(store: LabelStore):
    store.set_label("crack\\a.png", "Spot")
    store.set_label("./ok//b.png", NORMAL)
    assert set(store.labels()) == {"crack/a.png", "ok/b.png"}
    for bad in ("/abs/a.png", "C:\\data\\a.png", "../a.png", ""):
        with pytest.raises(LabelStoreError):
            store.set_label(bad, "Spot")


def test_unchanged_label_records_nothing(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.set_label("a.png", "spot")
    assert len(store.history()) == 1


def test_clearing_a_label_forgets_the_review(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.set_label("a.png", None)
    assert store.labels() == {} and store.reviewed() == set()
    store.set_label("a.png", None)  # already clear: nothing to record
    assert [c.kind for c in store.history()] == ["label", "label"]


def test_history_records_user_time_before_and_after(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.set_label("a.png", "Scratch")
    newest, oldest = store.history()
    assert (oldest.before, oldest.after) == (None, "Spot")
    assert (newest.before, newest.after) == ("Spot", "Scratch")
    assert newest.user == "alice" and newest.kind == "label" and newest.image == "a.png"
    stamp = datetime.fromisoformat(newest.time)
    assert stamp.utcoffset().total_seconds() == 0
    assert abs(time.time() - stamp.timestamp()) < 60
    assert newest.id > oldest.id and not newest.undone


def test_user_defaults_to_the_os_user(db: Path):
    with LabelStore(db) as s:
        s.set_label("a.png", "Spot")
        assert s.history()[0].user == s.user and s.user


def test_type_names_are_validated(store: LabelStore):
    for bad in ("", "  ", "normal", "NORMAL", "x" * 65, "a\nb"):
        with pytest.raises(LabelStoreError):
            store.add_type(bad)
    with pytest.raises(LabelStoreError, match="already exists"):
        store.add_type("SPOT")
    # A labels file reads these words as normal (label_csv), so no type may be named so.
    for word in ("good", "OK", "Free"):
        with pytest.raises(LabelStoreError, match="means defect-free"):
            store.add_type(word)
    with pytest.raises(LabelStoreError, match="#RRGGBB"):
        store.add_type("Dent", "red")


def test_add_type_picks_an_unused_colour_and_the_next_position(store: LabelStore):
    dent = store.add_type(" Dent ")
    assert dent.name == "Dent" and dent.position == 2
    assert dent.colour not in {t.colour for t in store.types() if t.name != "Dent"}
    crack = store.add_type("Crack", "#aabbcc")
    assert crack.colour == "#AABBCC" and store.types()[-1] == crack


def test_every_new_type_takes_the_next_place_and_the_first_free_colour(
    store: LabelStore, tmp_path: Path
):
    """One way to make a type, whether added, imported or adopted from a dataset (issue 16)."""
    from afps_gui.core.taxonomy import PALETTE

    store.recolour_type("Scratch", PALETTE[2])  # the palette's second colour is free now
    store.add_type("Dent")
    csv_path = write(tmp_path / "in.csv", "image,label\na.png,Crack\nb.png,Hole\n")
    store.import_csv(csv_path, create_types=True)
    store.adopt_types(["Bubble"], [])
    made = [(t.name, t.colour, t.position) for t in store.types()[2:]]
    assert made == [
        ("Dent", PALETTE[1], 2),
        ("Crack", PALETTE[3], 3),
        ("Hole", PALETTE[4], 4),
        ("Bubble", PALETTE[5], 5),
    ]


def test_recolour_and_remove_type(store: LabelStore):
    store.recolour_type("spot", "#112233")
    assert store.types()[0].colour == "#112233"
    before, after = json.loads(store.history()[0].before), json.loads(store.history()[0].after)
    assert before["name"] == "Spot" and after["colour"] == "#112233"
    store.undo()
    assert store.types()[0].colour != "#112233"
    store.add_type("Dent")
    store.set_label("a.png", "Dent")
    with pytest.raises(LabelStoreError, match="Merge"):
        store.remove_type("Dent")
    store.set_label("a.png", None)
    store.remove_type("dent")
    assert "Dent" not in store.type_names()


# ------------------------------------------------------------------------- undo and redo


def test_undo_redo_chain_across_relabel_rename_and_merge(store: LabelStore):
    store.add_type("Dent", "#123456")  # 1
    store.set_label("a.png", "Spot")  # 2
    store.set_label("b.png", "Scratch")  # 3
    store.set_label("c.png", "Dent")  # 4
    store.set_label("a.png", "Scratch")  # 5: a relabel
    store.rename_type("Scratch", "Line")  # 6
    store.merge_types(["Dent", "Spot"], "Line")  # 7
    snapshots = []  # the state after each change, newest last
    final = (store.labels(), store.types())
    assert final[0] == {"a.png": "Line", "b.png": "Line", "c.png": "Line"}
    assert [t.name for t in final[1]] == ["Line"]

    while store.can_undo():
        snapshots.append((store.labels(), store.types()))
        store.undo()
    assert store.labels() == {} and [t.name for t in store.types()] == list(DEFAULT_TYPES)
    assert store.undo() is None

    snapshots.reverse()
    for expected in snapshots:
        store.redo()
        assert (store.labels(), store.types()) == expected
    assert store.redo() is None and not store.can_redo()


def test_undo_of_rename_restores_name_labels_and_predictions(store: LabelStore):
    store.set_label("a.png", "Scratch")
    store.set_predictions([Prediction("p.png", "Scratch", 0.9, 3.0, "m1")])
    colour = store.types()[1].colour
    store.rename_type("scratch", "Line")
    assert store.labels() == {"a.png": "Line"} and store.predictions()["p.png"].label == "Line"
    assert store.types()[1].colour == colour and store.types()[1].position == 1
    change = store.undo()
    assert change.kind == "rename_type" and change.undone
    assert (change.before, change.after) == ("Scratch", "Line")
    assert (
        store.labels() == {"a.png": "Scratch"} and store.predictions()["p.png"].label == "Scratch"
    )
    assert store.types()[1].name == "Scratch"


def test_rename_that_only_changes_case(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.rename_type("Spot", "SPOT")
    assert store.labels() == {"a.png": "SPOT"} and store.type_names()[0] == "SPOT"
    store.undo()
    assert store.labels() == {"a.png": "Spot"} and store.type_names()[0] == "Spot"


def test_rename_onto_an_existing_type_asks_for_a_merge(store: LabelStore):
    with pytest.raises(LabelStoreError, match="merge"):
        store.rename_type("Spot", "scratch")
    with pytest.raises(LabelStoreError, match="no defect type"):
        store.rename_type("Dent", "X")


def test_undo_of_merge_restores_types_colours_positions_and_each_label(store: LabelStore):
    store.add_type("Dent", "#123456")
    store.add_type("Crack", "#654321")
    labels = {"a.png": "Spot", "b.png": "Dent", "c.png": "Crack", "d.png": "Scratch"}
    for image, label in labels.items():
        store.set_label(image, label)
    types_before = store.types()
    store.merge_types(["Dent", "Crack"], "Spot")
    assert store.type_names() == ["Spot", "Scratch"]
    assert store.labels() == {"a.png": "Spot", "b.png": "Spot", "c.png": "Spot", "d.png": "Scratch"}
    merge = store.history()[0]
    assert merge.kind == "merge_types"
    assert json.loads(merge.before) == {
        "types": ["Dent", "Crack"],
        "labels": {"b.png": "Dent", "c.png": "Crack"},
    }
    store.undo()
    assert store.types() == types_before and store.labels() == labels
    store.redo()
    assert store.type_names() == ["Spot", "Scratch"] and store.labels()["c.png"] == "Spot"


def test_merge_into_a_new_type_and_into_normal(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.set_label("b.png", "Scratch")
    store.merge_types(["Spot", "Scratch"], "Defect")
    assert store.types()[0].name == "Defect" and store.types()[0].position == 0
    assert store.labels() == {"a.png": "Defect", "b.png": "Defect"}
    store.merge_types(["Defect"], "normal")
    assert store.types() == [] and set(store.labels().values()) == {NORMAL}
    store.undo()
    store.undo()
    assert store.type_names() == ["Spot", "Scratch"]
    assert store.labels() == {"a.png": "Spot", "b.png": "Scratch"}
    with pytest.raises(LabelStoreError, match="at least one"):
        store.merge_types(["Spot"], "spot")


def test_every_door_reads_the_normal_words_as_normal(db: Path, tmp_path: Path):
    """One list of words meaning defect-free (taxonomy.NORMAL_WORDS), for a label set, a merge
    target, an imported row and a prototype database alike (issue 16)."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE labels (image TEXT PRIMARY KEY, label TEXT)")
    conn.executemany("INSERT INTO labels VALUES (?, ?)", [("v0.png", "Good"), ("v0b.png", "OK")])
    conn.commit()
    conn.close()
    with LabelStore(db) as s:
        assert s.labels() == {"v0.png": NORMAL, "v0b.png": NORMAL}
        assert s.type_names() == list(DEFAULT_TYPES)  # "Good" did not become a type
        s.set_label("a.png", " good ")
        s.set_labels({"b.png": "Free", "c.png": "Spot"})
        assert s.label("a.png") == NORMAL and s.label("b.png") == NORMAL
        s.merge_types(["Spot"], "OK")
        assert s.label("c.png") == NORMAL and s.type_names() == ["Scratch"]
        report = s.import_csv(write(tmp_path / "in.csv", "image,label\nd.png, Ok \n"))
        assert report.applied == 1 and s.label("d.png") == NORMAL


def test_a_new_change_after_undo_discards_the_redo_branch(store: LabelStore):
    store.set_label("a.png", "Spot")
    store.set_label("a.png", "Scratch")
    store.rename_type("Spot", "Dot")
    store.undo()  # rename
    store.undo()  # Scratch
    assert store.can_redo() and store.label("a.png") == "Spot"
    store.set_label("b.png", NORMAL)
    assert not store.can_redo() and store.redo() is None
    trail = store.history()
    discarded = [c for c in trail if c.discarded]
    assert {c.kind for c in discarded} == {"rename_type", "label"} and len(discarded) == 2
    assert all(c.undone for c in discarded)  # still in the audit trail, marked
    store.undo()  # b.png
    store.undo()  # a.png Spot; the discarded changes are skipped
    assert store.labels() == {} and not store.can_undo()
    assert store.type_names() == ["Spot", "Scratch"]


def test_undo_and_redo_are_in_the_audit_trail(store: LabelStore):
    store.set_label("a.png", "Spot")
    first = store.history()[0]
    store.undo()
    store.redo()
    redo, undo, change = store.history()
    assert (undo.kind, undo.ref, undo.before, undo.after) == ("undo", first.id, "Spot", None)
    assert (redo.kind, redo.ref, redo.before, redo.after) == ("redo", first.id, None, "Spot")
    assert change.id == first.id and not change.undone
    assert store.history(limit=1) == [redo]


def test_undo_restores_who_labelled_and_when(store: LabelStore):
    store.set_label("a.png", "Spot")
    before = store.label_records()["a.png"]
    store.set_label("a.png", "Scratch")
    store.undo()
    assert store.label_records()["a.png"] == before


def test_set_labels_is_one_change(store: LabelStore):
    store.set_label("c.png", "Scratch")
    n = store.set_labels({"a.png": "Spot", "b.png": "normal", "c.png": None, "d.png": None})
    assert n == 3  # d.png had no label: unchanged
    change = store.history()[0]
    assert change.kind == "bulk" and json.loads(change.after) == {
        "a.png": "Spot",
        "b.png": NORMAL,
        "c.png": None,
    }
    store.undo()
    assert store.labels() == {"c.png": "Scratch"}
    assert store.set_labels({"c.png": "Scratch"}) == 0 and store.history()[0].kind == "undo"
    with pytest.raises(LabelStoreError):
        store.set_labels({"x.png": "Spot", "y.png": "Nope"})
    assert "x.png" not in store.labels()  # all or nothing


def test_labels_survive_reopening_with_their_history(db: Path):
    with LabelStore(db) as s:
        s.set_label("a.png", "Spot")
        s.set_label("a.png", "Scratch")
        s.undo()
    with LabelStore(db) as s:
        assert s.labels() == {"a.png": "Spot"} and s.can_redo()
        s.redo()
        assert s.label("a.png") == "Scratch"


# ------------------------------------------------------------------------- predictions


def test_human_label_wins_over_prediction(store: LabelStore):
    store.set_predictions(
        [
            Prediction("a.png", "Spot", 0.8, 2.5, "model-1"),
            Prediction("b.png", NORMAL, 0.6, None, "model-1", "2024-01-01T00:00:00+00:00"),
        ]
    )
    assert store.effective_label("a.png") == "Spot" and store.effective_label("c.png") is None
    store.set_label("a.png", "Scratch")
    assert store.effective_label("a.png") == "Scratch"
    assert store.predictions()["a.png"].label == "Spot"  # kept apart, not overwritten
    assert store.effective_labels() == {"a.png": "Scratch", "b.png": NORMAL}
    pred = store.prediction("b.png")
    assert pred.model_id == "model-1" and pred.created.startswith("2024") and pred.score is None
    assert store.predictions()["a.png"].created  # filled in


def test_predictions_are_not_in_the_history_and_are_replaced_per_run(store: LabelStore):
    store.set_predictions([Prediction("a.png", "Spot", 0.8, 1.0, "m1")])
    store.set_predictions([Prediction("b.png", "Spot", 0.7, 1.0, "m1")])
    assert set(store.predictions()) == {"a.png", "b.png"} and store.history() == []
    store.set_predictions([Prediction("a.png", "Scratch", 0.9, 1.0, "m2")], replace=True)
    assert {k: (p.label, p.model_id) for k, p in store.predictions().items()} == {
        "a.png": ("Scratch", "m2")
    }
    store.clear_predictions()
    assert store.predictions() == {} and not store.can_undo()
    with pytest.raises(LabelStoreError, match="model"):
        store.set_predictions([Prediction("a.png", "Spot", 0.5, None, "")])


# ------------------------------------------------------------------------- CSV


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_import_csv_reports_unknown_images_types_and_bad_rows(store: LabelStore, tmp_path: Path):
    store.set_label("same.png", "Spot")
    csv_path = write(
        tmp_path / "in.csv",
        "\ufeffImage , Label ,note\r\n"
        "crack/a.png, scratch ,x\r\n"
        "same.png,Spot,\r\n"
        "ghost.png,Spot,\r\n"
        "crack/b.png,Dent,\r\n"
        "crack/c.png,,\r\n"
        ",Spot,\r\n"
        "short\r\n"
        "\r\n"
        "/abs/d.png,Spot,\r\n"
        "ok\\e.png,NORMAL,\r\n",
    )
    known = {"crack/a.png", "crack/b.png", "crack/c.png", "same.png", "ok/e.png"}
    report = store.import_csv(csv_path, known_images=known)
    assert report.applied == 2 and report.unchanged == 1
    assert report.unknown_images == ["ghost.png"]
    assert report.unknown_types == ["Dent"]
    assert len(report.bad_rows) == 4 and report.bad_rows[0].startswith("line 6:")
    assert any("absolute" in row for row in report.bad_rows)
    assert store.labels() == {"same.png": "Spot", "crack/a.png": "Scratch", "ok/e.png": NORMAL}
    change = store.history()[0]
    assert change.kind == "import" and change.id == report.change_id
    store.undo()  # the whole import is one change
    assert store.labels() == {"same.png": "Spot"}


def test_import_without_known_images_and_with_new_types(store: LabelStore, tmp_path: Path):
    csv_path = write(tmp_path / "in.csv", "image;label\na.png;Dent\nb.png;dent\nc.png;Spot\n")
    report = store.import_csv(csv_path, create_types=True, reviewed=False)
    assert report.applied == 3 and report.created_types == ["Dent"] and report.unknown_types == []
    assert store.labels() == {"a.png": "Dent", "b.png": "Dent", "c.png": "Spot"}
    assert store.reviewed() == set()  # labels from a file, not looked at in the app
    store.undo()
    assert store.labels() == {} and store.type_names() == ["Spot", "Scratch"]


def test_import_duplicates_roots_and_encodings(store: LabelStore, tmp_path: Path):
    csv_path = write(
        tmp_path / "in.csv",
        "label,image\nSpot,C:\\data\\x\\a.png\nScratch,c:/DATA/x/a.png\nSpot,b.png\n",
        "utf-16",
    )
    report = store.import_csv(csv_path, root="C:\\data\\x")
    assert store.labels() == {"a.png": "Scratch", "b.png": "Spot"}
    assert len(report.bad_rows) == 1 and "again" in report.bad_rows[0]
    latin = write(tmp_path / "latin.csv", "image,label\nbéton.png,Spot\n", "cp1252")
    store.import_csv(latin)
    assert "béton.png" in store.labels()


def test_import_nothing_new_makes_no_change(store: LabelStore, tmp_path: Path):
    store.set_label("a.png", "Spot")
    report = store.import_csv(write(tmp_path / "in.csv", "image,label\na.png,SPOT\n"))
    assert (report.applied, report.unchanged, report.change_id) == (0, 1, None)
    assert len(store.history()) == 1


def test_import_of_a_file_that_is_not_a_labels_csv(store: LabelStore, tmp_path: Path):
    with pytest.raises(LabelStoreError, match="header"):
        store.import_csv(write(tmp_path / "x.csv", "a.png,Spot\n"))
    with pytest.raises(LabelStoreError, match="empty"):
        store.import_csv(write(tmp_path / "e.csv", "\n\n"))
    # One reader, one message for both doors (datasets' wording: "cannot be read").
    with pytest.raises(LabelStoreError, match="cannot be read"):
        store.import_csv(tmp_path / "missing.csv")


def test_export_round_trip_and_refusal_to_overwrite(store: LabelStore, db: Path, tmp_path: Path):
    store.set_labels({"b/x, y.png": "Spot", "a.png": NORMAL})
    out = tmp_path / "labels.csv"
    assert store.export_csv(out) == 2
    assert out.read_text(encoding="utf-8").splitlines()[:2] == ["image,label", "a.png,normal"]
    with pytest.raises(OverwriteRefused, match="already exists") as info:
        store.export_csv(out)
    assert isinstance(info.value, AfpsError) and str(out) in str(info.value)
    assert store.export_csv(out, overwrite=True) == 2
    with LabelStore(tmp_path / "other" / "labels.sqlite") as other:
        report = other.import_csv(out)
        assert report.applied == 2 and other.labels() == store.labels()
    assert not list(tmp_path.glob(".labels.csv.*"))  # no temporary files left behind


def test_the_one_refusal_to_overwrite_lives_beside_atomic_write(tmp_path: Path):
    from afps_gui.core import jobs, labels

    assert labels.refuse_overwrite is jobs.refuse_overwrite  # the old import path still works
    assert labels.OverwriteRefused is jobs.OverwriteRefused
    target = tmp_path / "x.csv"
    jobs.refuse_overwrite(target, False)  # nothing there: no refusal
    target.write_text("", encoding="utf-8")
    jobs.refuse_overwrite(target, True)
    with pytest.raises(jobs.OverwriteRefused, match="already exists"):
        jobs.refuse_overwrite(str(target), False)


# ------------------------------------------------------------------------- safety on open


def test_read_only_store_reads_but_refuses_writes(db: Path):
    with LabelStore(db) as writer, LabelStore(db, readonly=True) as reader:
        writer.set_label("a.png", "Spot")
        assert reader.readonly and reader.labels() == {"a.png": "Spot"}
        writer.set_label("b.png", "Scratch")  # the reader sees the writer's later changes
        assert reader.label("b.png") == "Scratch"
        assert not reader.can_undo()
        for attempt in (
            lambda: reader.set_label("a.png", "Scratch"),
            lambda: reader.add_type("Dent"),
            reader.undo,
            lambda: reader.set_predictions([]),
        ):
            with pytest.raises(LabelStoreError, match="^read-only: "):
                attempt()
    with pytest.raises(LabelStoreError, match="no labels database"):
        LabelStore(db.with_name("missing.sqlite"), readonly=True)


def test_second_instance_gets_the_lock_message_and_a_read_only_store(tmp_path: Path, db: Path):
    LabelStore(db).close()
    code = (
        "import sys, time\n"
        "from afps_gui.core.project_lock import ProjectLock\n"
        "lock = ProjectLock(sys.argv[1])\n"
        "print('HELD' if lock.acquire() else 'REFUSED', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "HELD"
        lock = ProjectLock(tmp_path)
        assert lock.acquire() is False and not lock.held
        holder = lock.holder()
        assert holder is not None and f"pid {proc.pid}" in holder and "@" in holder
        message = lock.read_only_message()
        assert message == (
            f"This project is open in another AFPS Inspector ({holder}); opened read-only."
        )
        with pytest.raises(ProjectError, match="open in another"):
            with ProjectLock(tmp_path):
                pass
        with LabelStore(db, readonly=True) as reader:
            with pytest.raises(LabelStoreError, match="read-only"):
                reader.set_label("a.png", "Spot")
    finally:
        proc.kill()
        proc.wait()
    # The OS released the dead process's lock: no stale lock, and no stale holder text.
    assert lock.holder() is None
    assert lock.acquire() is True and lock.held
    assert f"pid {os.getpid()}" in lock.holder()
    lock.release()
    assert (tmp_path / LOCK_NAME).exists()


def test_lock_in_one_process_and_as_context_manager(tmp_path: Path):
    first, second = ProjectLock(tmp_path), ProjectLock(tmp_path)
    assert first.holder() is None
    with first:
        assert second.acquire() is False
        assert first.acquire() is True  # already held by this object
    assert second.acquire() is True
    second.release()
    second.release()  # harmless


def test_corrupt_database_gives_a_clear_message_and_is_left_alone(db: Path):
    garbage = b"this is not a database, it was damaged" * 200
    db.write_bytes(garbage)
    with pytest.raises(LabelStoreError) as info:
        LabelStore(db)
    message = str(info.value)
    assert str(db) in message and "has not been changed" in message and "backup" in message
    assert db.read_bytes() == garbage
    with pytest.raises(LabelStoreError):
        LabelStore(db, readonly=True)
    assert db.read_bytes() == garbage


def test_corrupt_database_message_names_the_backup(db: Path):
    with LabelStore(db) as s:  # opening makes labels.sqlite.bak-open
        s.set_label("a.png", "Spot")
    with LabelStore(db):  # the backup now holds a.png
        pass
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(3996)  # wreck the schema page, keep the header
    db.write_bytes(bytes(data))
    with pytest.raises(LabelStoreError, match=r"copy labels\.sqlite\.bak-open"):
        LabelStore(db)
    os.replace(db.with_name("labels.sqlite.bak-open"), db)  # what the message says to do
    with LabelStore(db) as s:
        assert s.labels() == {"a.png": "Spot"}


def test_truncated_database_is_refused(db: Path):
    with LabelStore(db, backup_on_open=False) as s:
        s.set_labels({f"{i}.png": "Spot" for i in range(500)})
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    with pytest.raises(LabelStoreError, match="cannot be used"):
        with LabelStore(db) as s:
            s.labels()


def test_newer_schema_is_refused(db: Path):
    LabelStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(LabelStoreError, match="newer version.*Update AFPS Inspector"):
        LabelStore(db)
    assert db.read_bytes() == before


def test_foreign_sqlite_file_is_refused(db: Path):
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(LabelStoreError, match="not an AFPS Inspector labels database"):
        LabelStore(db)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def make_v0(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE labels (image TEXT PRIMARY KEY, label TEXT)")
    conn.executemany(
        "INSERT INTO labels VALUES (?, ?)",
        [("a.png", "Spot"), ("b.png", "Normal"), ("c.png", "Crack")],
    )
    conn.commit()
    conn.close()


def test_migration_from_v0_makes_a_backup_first(db: Path):
    make_v0(db)
    with LabelStore(db, user="bob") as s:
        assert s.labels() == {"a.png": "Spot", "b.png": NORMAL, "c.png": "Crack"}
        assert s.type_names() == ["Spot", "Scratch", "Crack"]
        assert s.history()[0].kind == "migrate" and not s.can_undo()
    backups = list(db.parent.glob("labels.sqlite.bak-v0-*"))
    assert len(backups) == 1
    conn = sqlite3.connect(backups[0])
    assert conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 3
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    with LabelStore(db) as s:  # no second migration, no second backup
        assert len(s.labels()) == 3
    assert len(list(db.parent.glob("labels.sqlite.bak-v0-*"))) == 1


def test_old_schema_cannot_be_migrated_read_only(db: Path):
    make_v0(db)
    with pytest.raises(LabelStoreError, match="older format"):
        LabelStore(db, readonly=True)


def test_write_settings_and_integrity(store: LabelStore, db: Path):
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    raw = store._connection()
    assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert raw.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_closed_store_says_so(db: Path):
    s = LabelStore(db)
    s.close()
    s.close()
    with pytest.raises(LabelStoreError, match="closed"):
        s.labels()
