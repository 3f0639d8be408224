"""What the Inspect view does: start and pause the watch job, take files and folders, keep the
counters, draw each posted result, and send NG parts to the review panel.

The watch is ``core.line_inspection.watch_job`` run by the window's JobRunner like any heavy job
(one at a time: while it runs, fit/score/train are disabled by the window's busy rule, and
while one of those runs, Start is disabled here with the reason in its tooltip). Pausing cancels
the job; starting again resumes with the files not yet recorded (the log says which).
Everything per part on the UI thread is a few label updates: the picture and the thumbnails
are made in the window's TaskRunner (``inspect_image.render``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from ..core.images import IMAGE_EXTENSIONS, is_image_file
from ..core.inspection_log import NG
from ..core.labels import now_iso
from ..job_process import ProcessJob
from .inspect_counters import RecentRate, Tally, empty_counts, local_time
from .inspect_image import LogReader, render
from .inspect_settings import InspectSettings, load_settings, save_settings
from .inspect_view import STRIP_LENGTH, InspectView

log = logging.getLogger("afps.ui")

WATCH_JOB = "afps_gui.core.line_inspection:watch_job"
WATCHING, TAKING = "Inspecting the line", "Inspecting files"  # the two job names
COUNTER_TICK_MS = 10_000  # parts per minute changes with the clock, not only with parts


class InspectController(QObject):
    """Owns the Inspect view; the window forwards its project and busy state here."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.view = InspectView()
        self.project = None
        self.settings = InspectSettings()
        self.app_start = now_iso()
        self.shift = Tally(self.app_start)
        self.since_app = Tally(self.app_start)
        self.rate = RecentRate()
        self.posts: OrderedDict[int, dict] = OrderedDict()  # the strip's results, newest last
        self.shown: Optional[int] = None  # the result drawn large
        self._wanted: dict[int, dict] = {}  # results whose thumbnail is still to be made
        self._reader: Optional[LogReader] = None
        self._tick = QTimer(self, interval=COUNTER_TICK_MS)
        self._tick.timeout.connect(self._show_counts)
        self._connect()
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def _connect(self) -> None:
        v = self.view
        v.start_requested.connect(self.start)
        v.pause_requested.connect(self.pause)
        v.choose_folder_requested.connect(self.choose_folder)
        v.options_changed.connect(self._options_changed)
        v.new_shift_requested.connect(self.new_shift)
        v.result_clicked.connect(self.show_result)
        v.follow_changed.connect(lambda on: on and self.posts and self.show_result(self.newest()))

    # --- project and state ----------------------------------------------------------------

    def set_project(self, project) -> None:
        if self._reader is not None:
            self._reader.close()
        self.project = project
        self.posts.clear()
        self._wanted.clear()
        self.shown = None
        self.view.clear()
        self._reader = LogReader(project.folder) if project is not None else None
        self.settings = load_settings(project.folder) if project else InspectSettings()
        self._show_settings()
        self.shift = Tally(self.settings.shift_start or self.app_start)
        self.since_app = Tally(self.app_start)
        self._load_counts()
        self.update_state()

    def watching(self) -> bool:
        return self.window.runner.current in (WATCHING, TAKING)

    def why_not(self) -> str:
        """Why inspecting cannot start now ("" when it can)."""
        p, runner = self.project, self.window.runner
        if p is None:
            return "Open a fitted project first."
        if p.readonly:
            return "The project is open read-only: inspection records results in it."
        if not p.padim_path.is_file():
            return "Fit PaDiM first (Model ▸ Fit PaDiM): inspection needs an anomaly model."
        if runner.busy and not self.watching():
            return f"{runner.current} is running: inspection can start when it ends."
        return ""

    def update_state(self) -> None:
        watching = self.watching()
        why = self.why_not()
        n = self.since_app.counts["parts"]
        if watching:
            status = f"Watching: {n} part(s) since the app started"
        else:
            status = why or ("Paused." if n else "")
        self.view.set_state(watching, not why, why, status)
        self._tick.start() if watching else self._tick.stop()

    def _show_settings(self) -> None:
        s = self.settings
        self.view.set_folder(s.folder)
        tips = {
            "sort": f"Move each inspected file into OK/ or NG/<type>/ under "
            f"{s.sorted_folder() or '<folder>/sorted'}",
            "jsonl": "Append each result as a JSON line to "
            + (s.jsonl_file(self.project.folder) if self.project else "the project's "
               "inspections.jsonl"),
        }  # fmt: skip
        self.view.set_options(s.recursive, s.sort, s.jsonl_on, s.beep, tips)

    def _options_changed(self) -> None:
        v, s = self.view, self.settings
        s.recursive, s.sort = v.recursive_box.isChecked(), v.sort_box.isChecked()
        s.jsonl_on, s.beep = v.jsonl_box.isChecked(), v.beep_box.isChecked()
        self._save()

    def _save(self) -> None:
        if self.project is not None and not self.project.readonly:
            why = save_settings(self.project.folder, self.settings)
            if why:
                self.window.status.showMessage(why[0].upper() + why[1:], 8000)

    # --- sources --------------------------------------------------------------------------

    def choose_folder(self) -> bool:
        start = self.settings.folder or (str(self.project.folder) if self.project else "")
        folder = QFileDialog.getExistingDirectory(self.window, "Folder to inspect", start)
        if not folder:
            return False
        self.settings.folder = folder
        self._save()
        self._show_settings()
        return True

    def inspect_folder(self) -> bool:
        """The one action from a fitted project: choose the folder, watch it, show the view."""
        if self.why_not():
            self.window.status.showMessage(self.why_not(), 8000)
            return False
        return self.choose_folder() and self.start()

    def inspect_files(self, paths: Optional[list[str]] = None) -> bool:
        """Inspect these files once (asked for when not given)."""
        if paths is None:
            pattern = " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
            paths, _ = QFileDialog.getOpenFileNames(
                self.window, "Images to inspect", self.settings.folder, f"Images ({pattern})"
            )
        paths = [str(p) for p in paths if is_image_file(p)]
        if not paths:
            return False
        options = {"files": paths}
        if self.settings.jsonl_on:
            options["jsonl"] = self.settings.jsonl_file(self.project.folder)
        return self._run(TAKING, options)

    def inspect_folder_once(self, folder: Optional[str] = None) -> bool:
        """Inspect what a folder holds now, then stop (the watch options apply)."""
        if folder is None:
            start = self.settings.folder or str(Path.home())
            folder = QFileDialog.getExistingDirectory(self.window, "Folder to inspect once", start)
        if not folder:
            return False
        opts = self.settings.watch_options(self.project.folder, folder=folder, once=True)
        return self._run(TAKING, opts)

    def start(self, **options) -> bool:
        """Watch the chosen folder (``options``: more ``WatchOptions``, e.g. a benchmark's)."""
        if not self.settings.folder and not self.choose_folder():
            return False
        if not Path(self.settings.folder).is_dir():
            self.window.status.showMessage(
                f"{self.settings.folder} is not a folder any more: choose the camera's folder.",
                10000,
            )
            return False
        return self._run(WATCHING, self.settings.watch_options(self.project.folder, **options))

    def _run(self, name: str, options: dict) -> bool:
        why = self.why_not()
        if why or self.watching():
            self.window.status.showMessage(why or "Pause the inspection first.", 8000)
            return False
        self._save()  # the shift's start too, the first time
        p = self.project
        job = ProcessJob(WATCH_JOB, dict(folder=str(p.folder), settings=p.settings.to_json(),
                                         readonly=p.readonly, options=options))  # fmt: skip
        started = self.window.start_job(name, job, on_post=self.add_result, on_result=self._ended)
        if started:
            self.show_view()
        self.update_state()
        return started

    def pause(self) -> None:
        if self.watching():
            self.window.cancel_job()

    def _ended(self, summary: dict) -> None:
        done = "Paused" if summary.get("stopped") else "Done"
        self.window.status.showMessage(
            f"{done}: {summary.get('inspected', 0)} part(s) inspected, {summary.get('ok', 0)} OK, "
            f"{summary.get('ng', 0)} NG, {summary.get('errors', 0)} unreadable.", 15000
        )  # fmt: skip

    def show_view(self) -> None:
        dock = self.window.docks.get("inspect")
        if dock is not None:
            dock.show()
            dock.raise_()

    # --- results --------------------------------------------------------------------------

    def add_result(self, post: dict) -> None:
        """One result posted by the watch job (in the order recorded)."""
        self.posts[post["id"]] = post
        while len(self.posts) > STRIP_LENGTH:
            old, _ = self.posts.popitem(last=False)
            self._wanted.pop(old, None)
        self.shift.add(post)
        self.since_app.add(post)
        self.rate.add()
        self.view.add_result(post)
        self._wanted[post["id"]] = post
        if self.view.follow_box.isChecked():
            self.shown = post["id"]
            self.view.show_result(post)
        self._render()
        if post.get("verdict") == NG:
            self.view.alarm(post)
            if self.settings.beep:
                QApplication.beep()
        if post.get("image"):
            self._to_review(post["image"])
        self._show_counts()

    def newest(self) -> int:
        return next(reversed(self.posts))

    def show_result(self, post_id: int) -> None:
        post = self.posts.get(post_id)
        if post is None:
            return
        self.shown = post_id
        self.view.show_result(post)
        self._render()

    def _render(self) -> None:
        """The shown picture and the missing thumbnails in one task; a newer request replaces
        a queued one, and holds every thumbnail still missing, so none is lost."""
        if self._reader is None:
            return
        post = self.posts.get(self.shown) if self.shown is not None else None
        thumbs = list(self._wanted.values())
        reader, models = self._reader, self.window.models
        cmap = self.window.heatmap.cmap_box.currentText()
        self.window.tasks.submit(
            "inspect", lambda: render(reader, models, post, thumbs, cmap), self._rendered
        )

    def _rendered(self, result) -> None:
        if result is None:
            return
        for post_id, image in result.thumbs.items():
            self._wanted.pop(post_id, None)
            self.view.set_thumbnail(post_id, image)
        if result.post_id is not None and result.post_id == self.shown:
            self.view.show_picture(result.image, result.note)

    # --- the review queue -----------------------------------------------------------------

    def _to_review(self, rel: str) -> None:
        """An NG (or unsure OK) part is in the review queue now (the job put it there): the
        panel reads that one image (ReviewPanel.refresh_images), never its whole queue per
        part (25+ ms on a 1,300 image project)."""
        self.window.review.refresh_images([rel])

    # --- counters -------------------------------------------------------------------------

    def _load_counts(self) -> None:
        reader, since = self._reader, (self.shift.since, self.since_app.since)
        if reader is None:
            self._show_counts()
            return
        shift, app = self.shift, self.since_app

        def loaded(result) -> None:
            if shift is self.shift:
                shift.set_baseline(*result[0])
            if app is self.since_app:
                app.set_baseline(*result[1])
            self._show_counts()

        self.window.tasks.submit("inspect-counts", lambda: reader.counts(*since), loaded)

    def new_shift(self) -> None:
        self.settings.shift_start = now_iso()
        self._save()
        self.shift = Tally(self.settings.shift_start)
        self.shift.set_baseline(empty_counts(), max(self.posts, default=0))
        self._show_counts()

    def _show_counts(self) -> None:
        self.view.counters.show_counts(self.shift, self.since_app, self.rate.per_minute())
        self.view.shift_label.setText(f"shift started {local_time(self.shift.since)}")
        if self.watching():
            n = self.since_app.counts["parts"]
            self.view.state_label.setText(f"Watching: {n} part(s) since the app started")

    # --- files dropped onto the window ----------------------------------------------------

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if watched is not self.window:
            return False
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._dropped_paths(event):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            paths = self._dropped_paths(event)
            if paths:
                event.acceptProposedAction()
                QTimer.singleShot(0, lambda: self.take_paths(paths))
                return True
        return super().eventFilter(watched, event)

    @staticmethod
    def _dropped_paths(event) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return [p for p in paths if Path(p).is_dir() or is_image_file(p)]

    def take_paths(self, paths: list[str]) -> bool:
        """Dropped files are inspected once; a dropped folder is taken in one go."""
        folders = [p for p in paths if Path(p).is_dir()]
        if folders and len(paths) == 1:
            return self.inspect_folder_once(folders[0])
        return self.inspect_files([p for p in paths if not Path(p).is_dir()])
