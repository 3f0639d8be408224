"""The main window: the panels as dock widgets, the project's life cycle, and the jobs.

The window never does the method's work: every job is a core.pipeline call run by the
JobRunner (one heavy job at a time), every image view is a background task. What the window
owns is *when* things may happen: which actions are enabled, what follows a finished job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QTabWidget,
    QToolBar,
    QWidget,
)

from .. import resources
from ..core.devices import describe_device, resolve_device
from ..core.errors import AfpsError, DatasetMissingError
from ..core.project import Project
from ..job_process import torch_threads_for_jobs
from ..logs import log_path
from ..workers import JobRunner, TaskRunner, tune_for_the_ui
from . import messages, project_jobs
from .actions import build_actions, build_menus, build_toolbar, enabled_actions
from .browser import BrowserWidget
from .demo_project import demo_folders
from .heatmap import HeatmapViewer
from .inspect_control import InspectController
from .model_cache import ModelCache
from .new_project_dialog import NewProjectDialog
from .patch_inspector import PatchInspector
from .prefs import Preferences, load_prefs, save_prefs
from .prefs_dialog import PreferencesDialog
from .relocate import ask_for_dataset
from .review import ReviewPanel
from .status import Banner, StatusBar
from .training_panel import TrainingPanel
from .warm_up import on_screen, warm_up_hidden_pages, warm_up_plots
from .window_jobs import WindowJobs
from .window_labels import WindowLabels

log = logging.getLogger("afps.ui")

RIGHT_SIDE_ROOM = 1040  # px: heat map / training beside the browser, the review panel wide


class MainWindow(WindowJobs, WindowLabels, QMainWindow):
    project_changed = Signal(object)
    pipeline_finished = Signal(bool)  # a "fit, score and train" chain ended (True: all ran)

    def __init__(self, prefs: Optional[Preferences] = None, device_override: str = ""):
        super().__init__()
        tune_for_the_ui()  # before any viewer task runs torch on a pool thread
        self.prefs = prefs or load_prefs()
        self.device_override = device_override
        self.project: Optional[Project] = None
        self.models: Optional[ModelCache] = None
        self._chain: list[Callable[[], bool]] = []  # the steps still to run, in order
        self._in_pipeline = False  # a run_all chain is running: its end is signalled
        self._chain_after = 0  # the chain goes on when this job (runner.serial) ends
        self.setWindowTitle("AFPS Inspector")
        self.setWindowIcon(resources.icon("app"))
        self.resize(1500, 950)
        self.runner = JobRunner(self)
        self.runner.priority = self.prefs.job_priority
        self.tasks = TaskRunner(self)
        self.actions = build_actions(self)
        self._build_panels()
        self._build_chrome()
        self._connect()
        self._default_state = self.saveState()
        self._restore_layout()
        self.heatmap._set_colormap(self.prefs.colormap)
        self.heatmap.cmap_box.setCurrentText(self.prefs.colormap)
        self.set_project(None)
        warm_up_plots(self)

    # --- construction -----------------------------------------------------------------------

    def _build_panels(self) -> None:
        self.browser = BrowserWidget()
        self.heatmap = HeatmapViewer(self.tasks)
        self.inspector = PatchInspector(self.tasks)
        self.training = TrainingPanel(self.actions)
        self.review = ReviewPanel()
        self.inspect = InspectController(self)  # the Inspect view and the line's jobs
        # Docks only: every panel can be moved, tabbed, floated or hidden. The hidden central
        # widget lets the docks take all the room.
        placeholder = QWidget()
        placeholder.setMaximumSize(0, 0)
        self.setCentralWidget(placeholder)
        self.setDockNestingEnabled(True)
        self.docks = {
            "browser": self._dock("Images", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea),
            "heatmap": self._dock("Heat map", self.heatmap, Qt.DockWidgetArea.RightDockWidgetArea),
            "training": self._dock(
                "Training", self.training, Qt.DockWidgetArea.RightDockWidgetArea
            ),
            "inspector": self._dock(
                "Patch inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
            ),
            "review": self._dock("Review", self.review, Qt.DockWidgetArea.RightDockWidgetArea),
            "inspect": self._dock(
                "Inspect", self.inspect.view, Qt.DockWidgetArea.RightDockWidgetArea
            ),
        }
        # Default layout: the image list on the left; the heat map, the patch inspector and
        # training as tabs on the right (tabs on top, where people look for them), the review
        # panel below them, so that reviewing shows the heat map of the image at hand. (A second
        # group of tabs would do too, but Qt 6.12 then leaves a stray copy of its tab bar
        # painted over the image list.)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        self.splitDockWidget(self.docks["heatmap"], self.docks["review"], Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.docks["heatmap"], self.docks["inspector"])
        self.tabifyDockWidget(self.docks["heatmap"], self.docks["training"])
        self.tabifyDockWidget(self.docks["heatmap"], self.docks["inspect"])
        self.docks["heatmap"].raise_()
        for name in ("heatmap", "inspector"):  # a viewer behind a tab waits until it is shown
            dock, panel = self.docks[name], getattr(self, name)
            dock.visibilityChanged.connect(panel.set_on_screen)
            panel.set_on_screen(name == "heatmap")  # as laid out above, until Qt says more
        self._sized = False

    def _default_sizes(self) -> None:
        """Share the room out once the window has its real size (docks ignore sizes before)."""
        w, h = self.width(), self.height()
        # Room for every browser column where the window has it; the right side keeps what
        # the review panel needs to lay out side by side (RIGHT_SIDE_ROOM).
        browser = max(w // 3, min(self.browser.preferred_width(), w - RIGHT_SIDE_ROOM))
        self.resizeDocks([self.docks["browser"]], [browser], Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.docks["heatmap"], self.docks["review"]],
            [int(h * 0.6), int(h * 0.4)],  # the review panel unscrolled at 800 px
            Qt.Orientation.Vertical,
        )

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if not self.prefs.window_state:
                QTimer.singleShot(100, self._default_sizes)
            QTimer.singleShot(300, self._warm_up_hidden_pages)

    def _warm_up_hidden_pages(self) -> None:
        for dock in self.docks.values():  # a dock behind a tab, at its shown sibling's size
            shown = [d for d in self.tabifiedDockWidgets(dock) if on_screen(d)]
            if shown:
                warm_up_hidden_pages([dock], shown[0])  # the dock: its layout sizes the page
        tabs = self.training.tabs
        warm_up_hidden_pages([tabs.widget(i) for i in range(tabs.count())], tabs.currentWidget())

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_chrome(self) -> None:
        self.recent_menu = QMenu("Open &recent", self)
        build_menus(self, self.actions, self.recent_menu, list(self.docks.values()))
        self.toolbar = build_toolbar(self, self.actions)
        self.addToolBarBreak()
        self.banner = Banner()
        self.banner_bar = QToolBar("Read-only notice")
        self.banner_bar.setObjectName("banner_bar")
        self.banner_bar.setMovable(False)
        self.banner_bar.addWidget(self.banner)
        self.addToolBar(self.banner_bar)
        self.banner_bar.setVisible(False)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._fill_recent_menu()

    def _connect(self) -> None:
        a = self.actions
        handlers = {
            "new": self.new_project, "open": self.choose_project, "demo": self.open_demo,
            "close": lambda: self.set_project(None), "quit": self.close,
            "undo": self.undo, "redo": self.redo, "prefs": self.edit_preferences,
            "tune": self.tune, "fit": self.fit, "score": self.score, "train": self.train,
            "run_all": self.run_all, "sweep": lambda: self.training.sweep._request(),
            "cancel": self.cancel_job, "review": self.show_review, "types": self.edit_types,
            "import_labels": self.import_labels, "export_labels": self.export_labels,
            "export_report": self.export_report, "reset_layout": self.reset_layout,
            "log_folder": self.show_log_folder, "about": self.about,
            "inspect_folder": self.inspect.inspect_folder,
            "inspect_files": self.inspect.inspect_files,
            "inspect_once": self.inspect.inspect_folder_once,
        }  # fmt: skip
        for name, fn in handlers.items():
            a[name].triggered.connect(lambda checked=False, fn=fn: fn())
        self.runner.started.connect(self.status.job_started)
        self.runner.progress.connect(self.status.job_progress)
        self.runner.finished.connect(self._job_finished)
        self.runner.failed.connect(self._job_failed)
        self.runner.busy_changed.connect(lambda busy: self.update_actions())
        self.status.cancel_requested.connect(self.cancel_job)
        self.browser.current_changed.connect(self.show_image)
        self.heatmap.save_threshold_requested.connect(self.save_threshold)
        self.training.sweep.run_requested.connect(self.sweep)
        self.review.current_changed.connect(self._review_moved)
        self.review.labels_changed.connect(self.labels_changed)
        self.review.retrain_requested.connect(self.retrain_from_review)
        self.review.history.changed.connect(self._history_changed)
        self.review.history.said.connect(lambda text, _error: self.status.showMessage(text, 4000))

    # --- project life cycle -----------------------------------------------------------------

    def set_project(self, project: Optional[Project]) -> None:
        """Show ``project`` in every panel (None closes the current one)."""
        if self.project is not None and self.project is not project:
            for key in ("heatmap", "inspector", "inspector-classifier"):
                self.tasks.forget(key)
            self.tasks.wait(10000)  # a task still reading the old project must end first
            self.project.close()
        if project is not self.project:
            self.status.forget_job()
        self.project = project
        self.models = ModelCache(project) if project else None
        if project is not None and self.device_override:
            project.settings.device = self.device_override  # this session only, not saved
        for panel in (self.heatmap, self.inspector):
            panel.set_project(project, self.models)
        self.browser.set_project(project)
        self.training.set_project(project)
        self.review.set_project(project)
        self.inspect.set_project(project)
        reason = project.readonly_reason or "" if project else ""
        if project is not None and project.readonly and not reason:
            reason = "the project folder cannot be written."
        self.banner.show_reason(reason)
        self.banner_bar.setVisible(bool(reason))
        self.status.set_readonly(reason)
        self.status.set_device(self.device_text())
        name = project.settings.name or project.folder.name if project else ""
        self.setWindowTitle(f"{name} — AFPS Inspector" if project else "AFPS Inspector")
        if project is not None:
            self.prefs.add_recent(project.folder)
            save_prefs(self.prefs)
            self._fill_recent_menu()
        self.update_actions()
        self.project_changed.emit(project)

    def open_project(self, folder, *, quiet: bool = False) -> bool:
        if self.runner.busy:
            self.status.showMessage("Wait for the running job to finish (or cancel it).", 5000)
            return False
        try:
            project = Project.open(folder)
            try:
                _ = project.dataset  # read the folder now: a moved dataset is a clear error here
            except AfpsError:
                project.close()
                raise
        except DatasetMissingError as exc:
            return self._dataset_moved(folder, exc, quiet)
        except AfpsError as exc:
            if not quiet:
                messages.error(self, str(exc))
            return False
        self.set_project(project)
        return True

    def _dataset_moved(self, folder, exc: DatasetMissingError, quiet: bool) -> bool:
        if quiet:  # at start-up: no dialog before the user asked for anything
            self.status.showMessage(
                f"The last project's images are missing ({exc.dataset_root}): open it with "
                "File > Open project to choose their new folder.",
                15000,
            )
            return False
        return ask_for_dataset(self, exc) and self.open_project(folder)

    def choose_project(self) -> None:
        start = self.prefs.recent_projects[0] if self.prefs.recent_projects else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open project folder", start)
        if folder:
            self.open_project(folder)

    def new_project(self) -> None:
        dialog = NewProjectDialog(self, self.prefs.last_dataset_dir)
        if messages.exec_box(dialog) != NewProjectDialog.DialogCode.Accepted:
            return
        self.create_project(dialog.project_folder(), dialog.settings(), dialog.dataset)

    def create_project(self, folder: Path, settings, dataset=None) -> bool:
        settings.device = (
            settings.device if settings.device != "auto" else self.prefs.default_device
        )
        try:
            project = Project.create(folder, settings, dataset)
        except AfpsError as exc:
            messages.error(self, str(exc))
            return False
        self.prefs.last_dataset_dir = str(Path(settings.dataset_root).parent)
        self.set_project(project)
        return True

    def open_demo(self, base: Optional[Path] = None, *, run_pipeline: bool = True, **options):
        """Open the demo project, drawing its images and making it first if needed."""
        data_dir, project_dir = demo_folders(base)
        fresh = not (project_dir / "models" / "classifier.pt").is_file()

        def opened(folder: Path) -> None:
            if self.open_project(folder) and fresh and run_pipeline and not self.project.readonly:
                self.status.showMessage("Demo project ready: fitting, scoring and training…")
                self.run_all()

        return self.start_job(
            "Preparing the demo project",
            project_jobs.demo_job(data_dir, project_dir, **options),
            on_result=opened,
        )

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.prefs.recent_projects:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda checked=False, f=folder: self.open_project(f))
        self.recent_menu.setEnabled(bool(self.prefs.recent_projects))

    # --- window state -----------------------------------------------------------------------

    def device_text(self) -> str:
        choice = self.project.settings.device if self.project else self.prefs.default_device
        try:
            return describe_device(resolve_device(choice), torch_threads_for_jobs())
        except AfpsError:
            return f"{choice} (not available)"

    def update_actions(self) -> None:
        busy = self.runner.busy
        enabled = enabled_actions(self.project, busy)  # the review panel's buttons follow it too
        for name, action in self.actions.items():
            action.setEnabled(enabled[name])
        self.review.set_busy(busy, enabled)
        self.recent_menu.setEnabled(not busy and bool(self.prefs.recent_projects))
        self.training.sweep.run_button.setEnabled(bool(enabled["sweep"]))
        self.heatmap.set_readonly(not enabled["decide"] or busy)
        self.inspect.update_state()

    def edit_preferences(self) -> None:
        dialog = PreferencesDialog(self.prefs, self.project, self)
        if messages.exec_box(dialog) != PreferencesDialog.DialogCode.Accepted:
            return
        try:
            dialog.apply()
        except AfpsError as exc:
            messages.error(self, str(exc))
        save_prefs(self.prefs)
        self.runner.priority = self.prefs.job_priority  # from the next job on
        self.heatmap.cmap_box.setCurrentText(self.prefs.colormap)
        self.status.set_device(self.device_text())

    def reset_layout(self) -> None:
        self.restoreState(self._default_state)
        for dock in self.docks.values():
            dock.show()
        self._default_sizes()

    def _restore_layout(self) -> None:
        if self.prefs.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.prefs.window_geometry.encode()))
        if self.prefs.window_state:
            self.restoreState(QByteArray.fromBase64(self.prefs.window_state.encode()))

    def save_layout(self) -> None:
        self.prefs.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        self.prefs.window_state = bytes(self.saveState().toBase64()).decode()
        self.prefs.colormap = self.heatmap.cmap_box.currentText()
        save_prefs(self.prefs)

    def show_log_folder(self) -> None:
        messages.info(self, f"The log file is {log_path()}")

    def about(self) -> None:
        messages.info(
            self,
            "AFPS Inspector: PaDiM anomaly maps, Anomaly-Focused Patch Selection and a small "
            "Vision Transformer that names the defect type.",
        )

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.runner.busy:
            if not messages.confirm(
                self, f"{self.runner.current} is still running. Cancel it and quit?"
            ):
                event.ignore()
                return
            self.runner.cancel()
            self.runner.wait(60000)
        self.save_layout()
        self.tasks.wait(10000)
        self.browser.thumbnails.wait(5000)
        # Through set_project: every panel lets the project go with it, so a signal still queued
        # (the cancelled job's end) finds no closed project in any of them.
        self.set_project(None)
        super().closeEvent(event)
