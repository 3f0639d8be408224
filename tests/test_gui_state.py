"""State an inspector can trust (issue 13): what the window shows after project changes."""

from __future__ import annotations

from test_gui_support import tiny_settings

from afps_gui.core.demo import make_demo_dataset

pytest_plugins = ["test_gui_support"]  # the shared GUI fixtures


def test_undo_does_not_reach_into_project_creation(qtbot, window, boxes, tmp_path):
    # A dataset with its own types: creating the project replaces the default Spot/Scratch.
    data = make_demo_dataset(tmp_path / "data", n_normal=6, n_per_type=3, size=(48, 48))
    for old, new in (("Spot", "Blowhole"), ("Scratch", "Crack")):  # folders name the types
        for parent in (data, data / "masks"):
            if (parent / old).is_dir():
                (parent / old).rename(parent / new)
    assert window.create_project(tmp_path / "proj", tiny_settings(data))
    store = window.project.store
    assert store.type_names() == ["Blowhole", "Crack"]
    assert not store.can_undo()
    window.actions["undo"].trigger()
    assert store.type_names() == ["Blowhole", "Crack"]  # no "Scratch" back, keys unchanged
    # The setup is still in the trail, for the audit.
    assert any(c.kind == "setup" for c in store.history())
