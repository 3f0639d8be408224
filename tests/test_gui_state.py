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


def test_a_normal_start_reopens_the_users_project_not_the_demo(window, home, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from afps_gui.app import open_at_start

    opened = []
    demo = str(home / "data" / "demo-project")

    def fake_demo(*args, **kwargs):  # what open_demo leaves behind, without the demo's job
        opened.append("demo")
        window.prefs.add_recent(demo)

    monkeypatch.setattr(window, "open_demo", fake_demo)
    monkeypatch.setattr(window, "open_project", lambda f, **kw: opened.append(str(f)))
    open_at_start(window, SimpleNamespace(project=None, demo=True))  # the demo script, once
    mine = str((tmp_path / "mine").resolve())
    window.prefs.add_recent(mine)  # then the user opened a project of their own
    opened.clear()
    open_at_start(window, SimpleNamespace(project=None, demo=False))  # a plain start
    assert opened == [mine]
    assert window.prefs.recent_projects[0] == mine
