"""The window's actions, menus and toolbar, in one table so that they are easy to scan.

Every action is created here with its icon, shortcut and tip; the window connects their
``triggered`` signals and decides when each is enabled.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from .. import resources

# The keys of the one label history, used by the window's Undo/Redo actions, the review
# panel's key table and its legend.
UNDO_KEYS = ("Ctrl+Z",)
REDO_KEYS = ("Ctrl+Shift+Z", "Ctrl+Y")

# name: (text, icon, shortcut or shortcuts, tip)
ACTIONS = {
    "new": ("&New project…", "new", QKeySequence.StandardKey.New,
            "Make a project from a dataset folder (previewed before anything is written)"),
    "open": ("&Open project…", "open", QKeySequence.StandardKey.Open, "Open a project folder"),
    "demo": ("Open &demo project", "demo", None,
             "The built-in demo: images drawn by the app, quick on a CPU"),
    "inspect_folder": ("&Inspect folder…", "folder", "Ctrl+I",
                       "Choose the folder the camera writes into and inspect each new image as "
                       "it arrives (the Inspect tab)"),
    "inspect_files": ("Inspect &files…", None, None,
                      "Inspect chosen images once (or drop images or a folder onto the window)"),
    "inspect_once": ("Inspect a folder o&nce…", None, None,
                     "Inspect the images a folder holds now, then stop"),
    "close": ("&Close project", None, None, "Close the current project"),
    "quit": ("&Quit", None, QKeySequence.StandardKey.Quit, "Quit AFPS Inspector"),
    "undo": ("&Undo label change", "undo", UNDO_KEYS, "Undo the last label change"),
    "redo": ("&Redo label change", "redo", REDO_KEYS, "Redo the label change undone last"),
    "prefs": ("&Preferences…", "prefs", QKeySequence.StandardKey.Preferences,
              "Device and viewer preferences"),
    "fit": ("&Fit PaDiM", "fit", "Ctrl+F",
            "Learn what normal looks like from the normal images"),
    "tune": ("T&une detection settings", "sweep", None,
             "Try input sizes and normal models on this project's images and keep the best "
             "(minutes; the next fit uses them)"),
    "score": ("&Score images", "score", "Ctrl+R",
              "Anomaly map and score for every image; classify the anomalous ones"),
    "train": ("&Train classifier", "train", "Ctrl+T",
              "Train the defect-type classifier from the current labels"),
    "run_all": ("Fit, score and train", "run_all", None, "Run the whole pipeline in order"),
    "sweep": ("Run the paper's s&weep", "sweep", None,
              "Accuracy against N for each selection strategy (Table I, Fig. 1)"),
    "cancel": ("&Cancel job", "cancel", None, "Stop the running job; nothing half-written stays"),
    "review": ("&Review mode", "review", "Ctrl+E", "Show the review panel"),
    "types": ("Defect &types…", None, None, "Add, rename, merge or recolour defect types"),
    "import_labels": ("&Import labels CSV…", None, None, "Read labels from a CSV file"),
    "export_labels": ("&Export labels CSV…", None, None, "Write every label to a CSV file"),
    "export_report": ("Export &report…", None, None, "Inspection report (CSV + JSON)"),
    "reset_layout": ("Reset &layout", None, None, "Put every panel back where it started"),
    "log_folder": ("Show &log folder", None, None, "Where the log file is written"),
    "about": ("&About", None, None, "About AFPS Inspector"),
}  # fmt: skip

MENUS = {
    "&File": ["new", "open", "recent", "demo", None, "inspect_folder", "inspect_files",
              "inspect_once", None, "close", None, "quit"],
    "&Edit": ["undo", "redo", None, "prefs"],
    "&Model": ["tune", "fit", "score", "train", "run_all", None, "sweep", None, "cancel"],
    "&Labels": ["review", "types", None, "import_labels", "export_labels", "export_report"],
    "&View": ["docks", None, "reset_layout"],
    "&Help": ["log_folder", "about"],
}  # fmt: skip
SHORT = {"inspect_folder": "Inspect"}  # the toolbar's text, where the menu's is long
TOOLBAR = ["new", "open", "demo", None, "fit", "score", "train", "run_all", None,
           "inspect_folder", None, "cancel", None, "review", "undo", "redo"]  # fmt: skip


# Actions that start a job or change the project: off while a job runs.
NEEDS_IDLE = ("new", "open", "demo", "close", "tune", "fit", "score", "train", "run_all", "sweep",
              "import_labels", "prefs", "inspect_folder", "inspect_files", "inspect_once")  # fmt: skip


def enabled_actions(project, busy: bool) -> dict[str, bool]:
    """Which actions a project state allows, by name: the window's actions, and "decide" (a
    label decision). The one rule for the window's menus and the review panel's buttons
    (Retrain is "train", Defect types "types", the import and exports theirs): writing needs a
    writable project, and whatever uses the normal model (scoring, training, inspecting) a
    fitted one."""
    has = project is not None
    writable = has and not project.readonly
    padim = has and project.padim_path.is_file()
    enabled = dict.fromkeys(ACTIONS, True)
    enabled.update(
        close=has, tune=writable, fit=writable, score=writable and padim, train=writable and padim,
        run_all=writable, sweep=padim, cancel=busy, review=has,
        types=writable, import_labels=writable, export_labels=has, export_report=has,
        undo=writable and project.store.can_undo(), redo=writable and project.store.can_redo(),
        inspect_folder=writable and padim, inspect_files=writable and padim,
        inspect_once=writable and padim, decide=writable,
    )  # fmt: skip
    for name in NEEDS_IDLE:
        enabled[name] = enabled[name] and not busy
    return {name: bool(on) for name, on in enabled.items()}


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    actions = {}
    for name, (text, icon, shortcut, tip) in ACTIONS.items():
        action = QAction(text, window)
        if icon:
            action.setIcon(resources.icon(icon))
        if isinstance(shortcut, tuple):
            action.setShortcuts([QKeySequence(key) for key in shortcut])
        elif shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.setObjectName(f"action_{name}")
        if name in SHORT:
            action.setIconText(SHORT[name])
        actions[name] = action
    return actions


def build_menus(window: QMainWindow, actions: dict, recent: QMenu, docks: list) -> None:
    bar = window.menuBar()
    for title, names in MENUS.items():
        menu = bar.addMenu(title)
        for name in names:
            if name is None:
                menu.addSeparator()
            elif name == "recent":
                menu.addMenu(recent)
            elif name == "docks":
                for dock in docks:
                    menu.addAction(dock.toggleViewAction())
            else:
                menu.addAction(actions[name])


def build_toolbar(window: QMainWindow, actions: dict) -> QToolBar:
    bar = QToolBar("Main toolbar")
    bar.setObjectName("main_toolbar")
    bar.setIconSize(QSize(22, 22))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for name in TOOLBAR:
        if name is None:
            bar.addSeparator()
        else:
            bar.addAction(actions[name])
    window.addToolBar(bar)
    return bar
