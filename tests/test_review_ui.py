"""Review mode with real key events: decisions, movement, undo/redo, types, import/export."""
# ruff: noqa: F811 - test arguments named after the imported fixtures

import csv
import json

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtTest import QTest
from review_fixtures import data_root, project  # noqa: F401 - the shared fixtures

from afps_gui.core.project import Project
from afps_gui.core.review_queue import DISAGREE, REVIEWED
from afps_gui.ui import review, review_files, types_dialog
from afps_gui.ui.review import ReviewPanel


@pytest.fixture
def panel(qtbot, project):
    w = ReviewPanel()
    qtbot.addWidget(w)
    w.resize(380, 800)
    w.set_project(project)
    w.show()
    return w


@pytest.fixture
def recorded(panel):
    seen = {"labels": [], "current": []}
    panel.labels_changed.connect(lambda rels: seen["labels"].append(list(rels)))
    panel.current_changed.connect(seen["current"].append)
    return seen


def key(widget, k, mods=Qt.NoModifier):
    QTest.keyClick(widget, k, mods)


def test_queue_starts_with_disagreements(panel):
    rows = panel.rows()
    assert len(rows) == 22
    first = panel.item(rows[0])
    assert first.reason == DISAGREE and panel.current == rows[0]
    assert panel.progress_text.text() == "Reviewed 0 / 22"
    assert "<b>1</b>&nbsp;Spot" in panel.legend.text()
    assert "<b>2</b>&nbsp;Scratch" in panel.legend.text()


def test_keys_decide_move_undo_redo(panel, project, recorded):
    store, rows = project.store, panel.rows()
    key(panel, Qt.Key_1)
    key(panel, Qt.Key_2)
    key(panel, Qt.Key_0)
    key(panel, Qt.Key_Space)
    key(panel, Qt.Key_Return)
    assert [store.label(r) for r in rows[:4]] == [
        "Spot",
        "Scratch",
        "normal",
        panel.item(rows[3]).predicted,
    ]
    assert store.label(rows[4]) == panel.item(rows[4]).predicted
    assert panel.current == rows[5]
    assert recorded["labels"][:3] == [[rows[0]], [rows[1]], [rows[2]]]
    assert recorded["current"][:5] == rows[1:6]
    assert panel.progress_text.text() == "Reviewed 5 / 22"
    assert panel.progress.value() == 5
    assert panel.item(rows[0]).reason == REVIEWED
    assert panel.rows()[:5] == rows[:5]  # decided rows stay put until refresh

    key(panel, Qt.Key_Left)
    key(panel, Qt.Key_A)
    assert panel.current == rows[3]
    key(panel, Qt.Key_D)
    key(panel, Qt.Key_Right)
    key(panel, Qt.Key_Down)
    assert panel.current == rows[6]

    key(panel, Qt.Key_Z, Qt.ControlModifier)  # undoes the decision on rows[4] and shows it
    assert store.label(rows[4]) is None and panel.current == rows[4]
    assert recorded["labels"][-1] == [rows[4]]
    assert panel.progress_text.text() == "Reviewed 4 / 22"
    key(panel, Qt.Key_Z, Qt.ControlModifier)
    assert store.label(rows[3]) is None
    key(panel, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    key(panel, Qt.Key_Y, Qt.ControlModifier)
    assert store.label(rows[3]) is not None and store.label(rows[4]) is not None
    assert panel.progress_text.text() == "Reviewed 5 / 22"
    assert recorded["labels"][-1] == [rows[4]]


def test_keys_reach_the_panel_from_its_list(panel, project):
    rows = panel.rows()
    key(panel.queue_view, Qt.Key_2)
    assert project.store.label(rows[0]) == "Scratch"
    key(panel.queue_view, Qt.Key_Left)
    assert panel.current == rows[0]


def test_a_held_key_does_not_label_a_run_of_images(panel, project):
    rows = panel.rows()
    key(panel, Qt.Key_1)
    repeat = QKeyEvent(QEvent.KeyPress, Qt.Key_1, Qt.NoModifier, "1", True)  # auto-repeat
    panel.keyPressEvent(repeat)
    assert project.store.labels() == {rows[0]: "Spot"} and panel.current == rows[1]
    moving = QKeyEvent(QEvent.KeyPress, Qt.Key_Right, Qt.NoModifier, "", True)
    panel.keyPressEvent(moving)  # holding an arrow keeps moving
    assert panel.current == rows[2]


def test_unknown_type_key_and_counts(panel, project):
    key(panel, Qt.Key_5)
    assert "no defect type 5" in panel.message.text()
    assert project.store.labels() == {}
    before = panel.counts.text()
    key(panel, Qt.Key_0)
    assert panel.counts.text() != before


def test_counts_follow_decisions(panel, project):
    rows = panel.rows()
    labels = {r: panel.item(r).label for r in rows}
    normal_before = sum(1 for v in labels.values() if v == "normal")
    first_was_normal = labels[rows[0]] == "normal"
    key(panel, Qt.Key_0)
    expected = normal_before + (0 if first_was_normal else 1)
    assert f"normal&nbsp;<b>{expected}</b>" in panel.counts.text()


def test_select_and_filter(panel, recorded):
    rows = panel.rows()
    panel.select(rows[7])
    panel.select(rows[7])  # selecting the same image again emits nothing
    assert recorded["current"] == [rows[7]]
    for reason, box in panel.filters.items():
        box.setChecked(reason == REVIEWED)
    assert panel.rows() == []
    panel.select(rows[3])  # hidden by the filter, shown because it was asked for
    assert panel.rows() == [rows[3]] and panel.current == rows[3]


def test_refresh_resorts_reviewed_last(panel, project, recorded):
    rows = panel.rows()
    key(panel, Qt.Key_1)
    panel.refresh()
    assert panel.rows()[-1] == rows[0]
    project.store.set_label(rows[5], "Scratch")  # a change made elsewhere (e.g. the CLI)
    panel.refresh()
    assert recorded["labels"][-1] == [rows[5]]


def test_undo_redo_chain_across_relabel_rename_merge(panel, project, monkeypatch, recorded):
    store, rel = project.store, panel.rows()[0]
    key(panel, Qt.Key_1)
    assert store.label(rel) == "Spot"
    dialog = panel.types_dialog()
    monkeypatch.setattr(types_dialog, "ask_text", lambda *a, **k: "Blob")
    dialog._select(["Spot"])
    dialog.rename()
    assert store.type_names() == ["Blob", "Scratch"] and store.label(rel) == "Blob"
    assert "<b>1</b>&nbsp;Blob" in panel.legend.text()
    assert rel in recorded["labels"][-1]
    monkeypatch.setattr(types_dialog, "ask_choice", lambda *a, **k: "Scratch")
    dialog._select(["Blob", "Scratch"])
    dialog.merge()
    assert store.type_names() == ["Scratch"] and store.label(rel) == "Scratch"
    assert "<b>1</b>&nbsp;Scratch" in panel.legend.text()

    key(panel, Qt.Key_Z, Qt.ControlModifier)
    assert store.type_names() == ["Blob", "Scratch"] and store.label(rel) == "Blob"
    key(panel, Qt.Key_Z, Qt.ControlModifier)
    assert store.type_names() == ["Spot", "Scratch"] and store.label(rel) == "Spot"
    assert "<b>1</b>&nbsp;Spot" in panel.legend.text()
    key(panel, Qt.Key_Z, Qt.ControlModifier)
    assert store.label(rel) is None
    for _ in range(3):
        key(panel, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert store.type_names() == ["Scratch"] and store.label(rel) == "Scratch"
    key(panel, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert panel.message.text() == "Nothing to redo."


def _undoable(store):
    return [c for c in store.history() if c.kind not in ("undo", "redo", "migrate")]


def test_types_dialog_each_action_is_one_undoable_change(qtbot, project, monkeypatch):
    store = project.store
    dialog = types_dialog.DefectTypesDialog(store)
    qtbot.addWidget(dialog)
    signals = []
    dialog.types_changed.connect(lambda: signals.append(1))
    store.set_label(project.dataset.samples[0].rel, "Spot")
    monkeypatch.setattr(types_dialog, "ask_text", lambda *a, **k: "Dent")
    monkeypatch.setattr(types_dialog, "choose_colour", lambda *a, **k: "#123456")
    monkeypatch.setattr(types_dialog, "ask_choice", lambda *a, **k: "Scratch")

    def one_change(action, select):
        before_types = store.types()
        before_labels = store.labels()
        n = len(_undoable(store))
        dialog._select(select)
        getattr(dialog, action)()
        assert len(_undoable(store)) == n + 1, action
        store.undo()
        assert store.types() == before_types and store.labels() == before_labels, action
        store.redo()

    one_change("add", [])
    assert "Dent" in store.type_names()
    one_change("recolour", ["Dent"])
    assert store.types()[-1].colour == "#123456"
    monkeypatch.setattr(types_dialog, "ask_text", lambda *a, **k: "Pit")
    one_change("rename", ["Spot"])
    assert store.type_names()[0] == "Pit"
    one_change("merge", ["Pit", "Dent"])
    assert store.type_names() == ["Scratch"]
    store.add_type("Unused")
    dialog.reload()
    one_change("remove", ["Unused"])
    assert "Unused" not in store.type_names()
    assert len(signals) == 5
    dialog._select(["Scratch"])  # in use: remove is refused, with the reason shown
    assert not dialog.buttons["remove"].isEnabled() and "in use" in dialog.hint.text()


def test_types_dialog_reports_a_refused_change(qtbot, project, monkeypatch):
    dialog = types_dialog.DefectTypesDialog(project.store)
    qtbot.addWidget(dialog)
    errors = []
    monkeypatch.setattr(types_dialog, "show_error", lambda _p, title, text: errors.append(text))
    monkeypatch.setattr(types_dialog, "ask_text", lambda *a, **k: "normal")
    dialog.add()
    assert errors and "normal" in errors[0]
    assert project.store.type_names() == ["Spot", "Scratch"]


def test_import_reports_unknown_paths_and_types(panel, project, tmp_path, monkeypatch):
    rels = panel.rows()
    path = tmp_path / "in.csv"
    path.write_text(
        f"image,label\n{rels[0]},Scratch\nnot/here.png,Spot\n{rels[1]},Dent\n,Spot\n",
        encoding="utf-8",
    )
    shown = []
    monkeypatch.setattr(review_files, "choose_open_path", lambda *a: str(path))
    monkeypatch.setattr(review_files, "show_info", lambda _p, title, text: shown.append(text))
    assert review.import_labels_action(panel, project) is True
    assert project.store.label(rels[0]) == "Scratch"
    text = shown[0]
    assert "Imported 1 label" in text and "not/here.png" in text and "Dent" in text
    assert "line 5" in text  # the row without an image path

    bad = tmp_path / "bad.csv"
    bad.write_text("just,some\nwords,here\n", encoding="utf-8")
    errors = []
    monkeypatch.setattr(review_files, "choose_open_path", lambda *a: str(bad))
    monkeypatch.setattr(review_files, "show_error", lambda _p, title, text: errors.append(text))
    assert review.import_labels_action(panel, project) is False
    assert errors and "image" in errors[0]


def test_import_through_the_panel_refreshes_it(panel, project, tmp_path, monkeypatch, recorded):
    rel = panel.rows()[2]
    path = tmp_path / "in.csv"
    path.write_text(f"image,label\n{rel},Spot\n", encoding="utf-8")
    monkeypatch.setattr(review_files, "choose_open_path", lambda *a: str(path))
    monkeypatch.setattr(review_files, "show_info", lambda *a: None)
    panel._import()
    assert recorded["labels"][-1] == [rel]
    assert panel.progress_text.text() == "Reviewed 1 / 22"
    key(panel, Qt.Key_Z, Qt.ControlModifier)  # the whole import is one change
    assert project.store.labels() == {}
    assert panel.progress_text.text() == "Reviewed 0 / 22"


def test_export_labels_never_overwrites_without_asking(panel, project, tmp_path, monkeypatch):
    target = tmp_path / "labels.csv"
    target.write_text("precious\n", encoding="utf-8")
    project.store.set_label(panel.rows()[0], "Spot")
    questions, answers = [], [False]
    monkeypatch.setattr(review_files, "choose_save_path", lambda *a: str(target))
    monkeypatch.setattr(
        review_files, "ask_yes_no", lambda _p, title, text: questions.append(text) or answers[0]
    )
    monkeypatch.setattr(review_files, "show_info", lambda *a: None)
    review.export_labels_action(panel, project)
    assert target.read_text(encoding="utf-8") == "precious\n" and len(questions) == 1
    answers[0] = True
    review.export_labels_action(panel, project)
    rows = list(csv.reader(target.open(encoding="utf-8")))
    assert rows == [["image", "label"], [panel.rows()[0], "Spot"]]


def test_export_report_asks_before_replacing(panel, project, tmp_path, monkeypatch):
    target = tmp_path / "report"  # no suffix: .csv is added, the JSON goes beside it
    questions = []
    monkeypatch.setattr(review_files, "choose_save_path", lambda *a: str(target))
    monkeypatch.setattr(
        review_files, "ask_yes_no", lambda _p, t, text: questions.append(text) or False
    )
    monkeypatch.setattr(review_files, "show_info", lambda *a: None)
    review.export_report_action(panel, project)
    assert not questions
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert len(doc["images"]) == 22
    first = doc["images"][0]
    assert first["anomalous"] is None and first["score"] is not None  # no model: no threshold
    assert first["predicted_label"] is not None and "dataset_label" in first
    (tmp_path / "report.json").write_text("keep", encoding="utf-8")
    review.export_report_action(panel, project)
    assert len(questions) == 1 and (tmp_path / "report.json").read_text() == "keep"
    review.export_report_action(panel, project, threshold=10.0)  # still "no": nothing written
    assert (tmp_path / "report.json").read_text() == "keep"


def test_report_rows_use_the_threshold(project):
    rows = review.report_rows(project, threshold=10.0)
    assert {r["anomalous"] for r in rows} == {True, False}


def test_read_only_project_refuses_decisions(qtbot, project, monkeypatch):
    second = Project.open(project.folder)  # the first one holds the lock
    try:
        assert second.readonly
        w = ReviewPanel()
        qtbot.addWidget(w)
        w.set_project(second)
        w.show()
        assert w.banner.isVisible() and not w.retrain_button.isEnabled()
        rel = w.current
        key(w, Qt.Key_1)
        assert "not saved" in w.message.text()
        assert second.store.label(rel) is None and w.current == rel
        key(w, Qt.Key_Z, Qt.ControlModifier)
        assert "read-only" in w.message.text().lower() or "another" in w.message.text()
        errors = []
        monkeypatch.setattr(review_files, "show_error", lambda _p, t, text: errors.append(text))
        assert review.import_labels_action(w, second) is False and errors
    finally:
        second.close()


def test_show_retrain_result_and_click_to_select(panel, recorded):
    from types import SimpleNamespace

    rels = panel.rows()
    result = SimpleNamespace(
        metrics={"accuracy": 0.9, "precision": 0.8, "recall": 0.85, "f1": 0.82},
        previous_metrics={"accuracy": 0.8, "precision": 0.85, "recall": 0.85, "f1": 0.8},
        n_train=10,
        n_test=4,
        seconds=3.0,
        changed=[(rels[9], "Spot", "Scratch"), (rels[10], None, "normal")],
    )
    panel.show_retrain_result(result)
    table = panel.metrics_table
    assert [table.item(0, c).text() for c in range(3)] == ["0.800", "0.900", "+0.100"]
    assert table.item(1, 2).text() == "-0.050" and table.item(2, 2).text() == "+0.000"
    assert panel.changed_list.count() == 2 and panel.tabs.currentIndex() == 1
    panel.changed_list.itemClicked.emit(panel.changed_list.item(1))
    assert panel.current == rels[10] and recorded["current"][-1] == rels[10]
    result.previous_metrics = None
    panel.show_retrain_result(result)
    assert table.item(0, 0).text() == "—" and "no earlier model" in panel.retrain_summary.text()


def fit(project):
    """Pretend the normal model is fitted (the file's presence is what the actions ask)."""
    project.padim_path.parent.mkdir(parents=True, exist_ok=True)
    project.padim_path.write_bytes(b"")


def test_retrain_button_emits(panel, qtbot, project):
    fit(project)
    panel.set_busy(False)
    with qtbot.waitSignal(panel.retrain_requested, timeout=1000):
        panel.retrain_button.click()


def test_clearing_the_project(panel, recorded):
    panel.set_project(None)
    assert panel.rows() == [] and panel.current is None
    key(panel, Qt.Key_1)  # nothing to label: no crash
    assert not panel.retrain_button.isEnabled()


def test_in_a_dock_the_panel_keys_beat_the_list_and_ctrl_z_is_the_windows_undo(qtbot, project):
    """Embedded in a dock with the window's real actions: a digit and an arrow act in the panel
    although the queue list has the focus (the list would take them), and Ctrl+Z is the
    window's Undo, stepping the panel's one history once."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QDockWidget, QMainWindow

    from afps_gui.ui.actions import build_actions

    win = QMainWindow()
    qtbot.addWidget(win)
    w = ReviewPanel()
    dock = QDockWidget("Review")
    dock.setWidget(w)
    win.addDockWidget(Qt.RightDockWidgetArea, dock)
    actions = build_actions(win)
    for action in actions.values():
        win.addAction(action)
    undos = []
    actions["undo"].triggered.connect(lambda: (undos.append(1), w.undo()))
    # No window shortcut shares a key with the panel's: Qt would call both ambiguous.
    window_keys = {a.shortcut().toString() for a in actions.values()} - {""}
    panel_keys = {s.key().toString() for s in w.shortcuts}
    assert not window_keys & panel_keys and "Ctrl+Z" in window_keys
    w.set_project(project)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=10_000)  # shortcuts act in the active window
    w.queue_view.setFocus()
    rows = w.rows()
    key(w.queue_view, Qt.Key_1)
    assert project.store.label(rows[0]) == "Spot" and w.current == rows[1]
    key(w.queue_view, Qt.Key_Left)
    assert w.current == rows[0]
    key(w.queue_view, Qt.Key_Z, Qt.ControlModifier)
    assert project.store.label(rows[0]) is None and undos == [1]
    assert QKeySequence("1") in [s.key() for s in w.shortcuts]


def test_a_normal_prediction_is_not_called_100_percent_sure(panel, project):
    normal = next(r for r in panel.rows() if panel.item(r).predicted == "normal")
    panel.select(normal)
    text = panel.info_pred.text()
    assert text.startswith("normal") and "below the threshold" in text and "sure" not in text
    typed = next(r for r in panel.rows() if panel.item(r).predicted == "Spot")
    panel.select(typed)
    assert panel.info_pred.text().endswith("% sure)")


def test_the_queue_rows_say_a_prediction_as_the_details_do():
    from afps_gui.core.review_queue import classify
    from afps_gui.ui.review_widgets import short_reason

    normal = classify(
        "r", dataset_label=None, human=None, prediction=("normal", 0.4), score=1.0, reviewed=False
    )
    assert short_reason(normal) == "unsure: normal"  # not "normal 40%"
    spot = classify(
        "r", dataset_label=None, human=None, prediction=("Spot", 0.4), score=1.0, reviewed=False
    )
    assert short_reason(spot) == "unsure: Spot (40%)"


def test_undo_and_redo_keys_are_one_table(qtbot, panel):
    """UNDO_KEYS and REDO_KEYS (actions.py) are the window's shortcuts, the panel's key table
    and its legend; none of them is a shortcut of the panel (the window's would be ambiguous)."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QMainWindow

    from afps_gui.ui.actions import REDO_KEYS, UNDO_KEYS, build_actions
    from afps_gui.ui.review_keys import review_keys

    win = QMainWindow()
    qtbot.addWidget(win)
    actions = build_actions(win)
    assert actions["undo"].shortcuts() == [QKeySequence(k) for k in UNDO_KEYS]
    assert actions["redo"].shortcuts() == [QKeySequence(k) for k in REDO_KEYS]
    assert "Ctrl+Y" in REDO_KEYS
    table = {k.keys: k.action for k in review_keys(panel)}
    assert [k for k in table if k.startswith("Ctrl+")] == [*UNDO_KEYS, *REDO_KEYS]
    window_keys = {s.toString() for a in actions.values() for s in a.shortcuts()}
    assert not window_keys & {s.key().toString() for s in panel.shortcuts}
    legend = panel.legend.text()
    assert all(f"<b>{k}</b>" in legend for k in UNDO_KEYS + REDO_KEYS)


def test_the_panels_buttons_follow_the_windows_rule(panel, project, qtbot):
    """Retrain is the window's Train (writable and fitted, not while a job runs), Defect
    types and Import need a writable project, the exports an open one (enabled_actions)."""
    from afps_gui.ui.actions import enabled_actions

    def buttons():
        menu = {a.text(): a.isEnabled() for a in panel.more_button.menu().actions()}
        return {
            "train": panel.retrain_button.isEnabled(),
            "types": panel.types_button.isEnabled(),
            "decide": panel.label_button.isEnabled(),
            "import_labels": menu["Import labels CSV…"],
            "export_labels": menu["Export labels CSV…"],
        }

    def rule(p, busy=False):
        enabled = enabled_actions(p, busy)
        return {name: enabled[name] for name in buttons()}

    assert buttons() == rule(project) and not buttons()["train"]  # no normal model yet
    fit(project)
    panel.set_busy(True)
    assert buttons() == rule(project, True) and not buttons()["import_labels"]
    panel.set_busy(False)
    assert buttons() == rule(project) and buttons()["train"] and buttons()["types"]
    second = Project.open(project.folder)  # read-only: the first one holds the lock
    try:
        panel.set_project(second)
        assert buttons() == rule(second) and buttons()["export_labels"]
        assert not buttons()["types"] and not buttons()["import_labels"]
    finally:
        panel.set_project(None)
        second.close()
    assert not any(buttons().values())
