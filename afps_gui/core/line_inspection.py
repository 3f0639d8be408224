"""Inspect the line: score, judge and type each new image as it arrives, record it once.

``run_watch`` loads the project's anomaly model and classifier once, takes complete files from
a source (``line_sources``), scores them in batches when several wait, and for each image
records one row in the inspection log (``inspection_log``): score, OK/NG against the project's
threshold (``PadimModel.is_anomalous``, the one threshold rule), and for NG the defect type, its
confidence and the selected patches. ``watch_job`` is the same as a job-process job for the app.

Order of the writes, so that a kill at any point loses nothing and doubles nothing:

1. the review-queue predictions of the batch go into the label store (idempotent: they are
   keyed by the image's label key, which follows from the file's key);
2. each result is one transaction in the inspection log (UNIQUE file key);
3. the file is moved or copied to ``OK/`` / ``NG/<type>/`` (a kill here: finished at the next
   start from the log's ``stored`` column);
4. the JSON-lines file is appended from the log.

Line images in the label store: they lie outside the project's dataset root, so they are keyed
``line/<YYYY-MM-DD>/<10 hex of the file key>-<file name>`` (the date of the file's mtime, UTC).
The key is a valid relative label key (``labels.clean_image``), unique per file version, and the
same after a restart. ``line_image_paths`` maps these keys back to files through the log.
Only the results an inspector should see go there: every NG, and OK results whose confidence is
below the review queue's low-confidence line (close to the threshold). Confident OK parts are in
the log only, so a day of production does not flood the queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .classifiers import needs_looks
from .datasets import Sample
from .errors import AfpsError
from .images import load_image
from .inspection_log import (
    LOG_NAME,
    NG,
    OK,
    Inspection,
    InspectionLog,
    InspectionLogError,
)
from .jobs import JobContext, Progress, no_progress
from .labels import Prediction as StoredPrediction
from .line_sources import (
    POLL_S,
    SETTLE_S,
    FileState,
    Ready,
    ReadyFiles,
    scan_folder,
    stat_files,
)
from .line_transfers import UNREADABLE, destination, finish_transfers, transfer
from .pipeline import BatchClassifying, load_classifier, load_padim, normal_prediction
from .project import CachedScore, Project, default_model_id
from .review_queue import DEFAULT_LOW_CONFIDENCE

LINE_PREFIX = "line"
UNTYPED = "not typed"  # an NG part's ``error`` starts so when its close look failed


@dataclass
class WatchOptions:
    """What to inspect and what to do with each result (plain data: it crosses processes)."""

    folder: Optional[str] = None  # a folder to watch (or take once)
    files: Optional[list[str]] = None  # or these files
    recursive: bool = False
    once: bool = False  # take what is there now, then stop
    move_to: Optional[str] = None  # OK/ and NG/<type>/ folders go here
    copy: bool = False  # copy instead of move
    jsonl: Optional[str] = None  # append each result as a JSON line here
    poll_s: float = POLL_S
    settle_s: float = SETTLE_S
    batch: Optional[int] = None  # images per scoring batch; None: the model's batch size
    low_confidence: float = DEFAULT_LOW_CONFIDENCE

    def __post_init__(self):
        if (self.folder is None) == (self.files is None):
            raise AfpsError("Say what to inspect: a folder or a list of files (not both).")
        if self.folder is not None and not Path(self.folder).is_dir():
            raise AfpsError(f"{self.folder} is not a folder: choose the folder the camera writes.")


@dataclass
class WatchSummary:
    inspected: int = 0
    ok: int = 0
    ng: int = 0
    errors: int = 0
    seconds: float = 0.0
    stopped: bool = False  # stopped by the cancel flag (Ctrl+C, the app's Stop)


def line_image_key(state: FileState) -> str:
    """The label-store key of a line image (see the module docstring)."""
    day = datetime.fromtimestamp(state.mtime_ns / 1e9, timezone.utc).strftime("%Y-%m-%d")
    name = state.path.name.replace("\\", "_")
    return f"{LINE_PREFIX}/{day}/{state.key_hash}-{name}"


def is_line_image(rel: str) -> bool:
    return rel.startswith(LINE_PREFIX + "/")


# --- the models ------------------------------------------------------------------------------


class LineInspector:
    """The project's models, loaded once, turning decoded images into results (no writes)."""

    def __init__(self, project: Project, low_confidence: float = DEFAULT_LOW_CONFIDENCE):
        self.padim = load_padim(project)
        if self.padim.threshold is None:
            raise AfpsError("The anomaly model has no threshold yet: fit it again, then inspect.")
        self.clf = load_classifier(project)
        self.padim_id = default_model_id(project.padim_path)
        self.clf_id = default_model_id(project.classifier_path) if self.clf else ""
        self.looks = needs_looks(self.clf)
        self.low_confidence = low_confidence

    def decoder(self) -> Callable[[Path], np.ndarray]:
        """Full size when the classifier looks closer at the original; else a large JPEG may
        decode at a reduced scale (the pixels are decoded once, for both)."""
        if self.looks:
            return load_image
        return partial(load_image, at_least=self.padim.config.input_size)

    def inspect(self, ready: list[Ready]) -> list[Inspection]:
        """Score a batch at once, judge each image, type the NG ones in one classifier call."""
        if not ready:
            return []
        by_id = {id(r.image): r for r in ready}
        skipped: list = []
        scored = list(
            self.padim.score_items(
                [r.image for r in ready], keep_embeddings=self.clf is not None, skipped=skipped
            )
        )
        results, to_type = [], []
        for image, score in scored:
            item = self._judged(by_id.pop(id(image)), score)
            results.append(item)
            if item.verdict == NG and self.clf is not None:
                to_type.append((item, image, score))
        self._type(to_type)
        results += [error_row(r.state, "it could not be prepared for the model", r.seen_at)
                    for r in by_id.values()]  # fmt: skip
        return results

    def _judged(self, ready: Ready, score) -> Inspection:
        b = score.box
        ng = self.padim.is_anomalous(score.score)
        item = Inspection(
            file=os.fspath(ready.state.path),
            key=ready.state.key,
            size=ready.state.size,
            mtime_ns=ready.state.mtime_ns,
            verdict=NG if ng else OK,
            score=float(score.score),
            threshold=float(self.padim.threshold),
            padim_id=self.padim_id,
            classifier_id=self.clf_id if ng else "",
            patch_map=score.patch_map,
            box=(b.y0, b.y1, b.x0, b.x1),
            seconds=ready.seen_at,  # made relative when recorded
        )
        if not ng:
            item.confidence = normal_prediction(self.padim, "", item.score, "").confidence
        if ng or item.confidence < self.low_confidence:
            item.image = line_image_key(ready.state)
        return item

    def _type(self, waiting: list[tuple[Inspection, Any, Any]]) -> None:
        """Type the NG parts in one classifier call. A part whose close look fails stays NG and
        untyped, with the reason in its ``error`` (``BatchClassifying.add_sample``)."""

        def typed(item: Inspection, _score: float, p) -> None:
            item.type, item.confidence = p.label, float(p.confidence)
            item.patches = [tuple(map(int, xy)) for xy in np.asarray(p.positions).tolist()]

        classifying = BatchClassifying(self.clf, typed)
        for item, image, score in waiting:
            reason = classifying.add_sample(item, self.padim, image, score)
            if reason is not None:
                item.error = f"{UNTYPED}: {reason}"
        classifying.flush()

    def prediction(self, item: Inspection) -> Optional[StoredPrediction]:
        """What the review queue shows for a queued result (None for an untyped NG)."""
        if item.image is None:
            return None
        if item.verdict == OK:
            return normal_prediction(self.padim, item.image, item.score, self.padim_id)
        if item.type is None:
            return None
        return StoredPrediction(item.image, item.type, item.confidence, item.score, self.clf_id)


def error_row(state: FileState, reason: str, seen_at: float) -> Inspection:
    return Inspection(
        file=os.fspath(state.path),
        key=state.key,
        size=state.size,
        mtime_ns=state.mtime_ns,
        error=reason,
        seconds=seen_at,
    )


# --- the watch loop --------------------------------------------------------------------------


class _Recorder:
    """Writes a batch of results in the documented order and reports each one."""

    def __init__(
        self, project: Project, log: InspectionLog, inspector, options: WatchOptions, post
    ):
        self.project, self.log, self.inspector, self.options = project, log, inspector, options
        self.post = post
        self.done = log.done_keys()
        self.summary = WatchSummary()

    def write(self, items: list[Inspection]) -> None:
        preds = [p for p in map(self.inspector.prediction, items) if p is not None]
        if preds:
            self.project.store.set_predictions(preds)
        move_to = Path(self.options.move_to) if self.options.move_to else None
        for item in items:
            if move_to is not None:
                item.stored = os.fspath(destination(item, move_to))
            item.seconds = max(0.0, time.time() - item.seconds) if item.seconds else None
            if self.log.record(item) is None:
                continue  # recorded before (another watcher of this project): not twice
            self.done.add(item.key)
            self._count(item)
            if move_to is not None:
                self._transfer(item)
            self.post(item.summary())
        if self.options.jsonl:
            self.log.export_jsonl(self.options.jsonl)

    def _transfer(self, item: Inspection) -> None:
        try:
            transfer(Path(item.file), Path(item.stored), copy=self.options.copy)
        except OSError:
            return  # left for finish_transfers at the next start; the result is safe
        self.log.mark_moved(item.id)

    def _count(self, item: Inspection) -> None:
        s = self.summary
        s.inspected += 1
        s.ok += item.verdict == OK
        s.ng += item.verdict == NG
        s.errors += item.verdict is None


def _listing(options: WatchOptions, exclude: list[Path]):
    """The source's files as they are now; ``once`` fixes the list at the first scan."""
    if options.files is not None:
        paths = [Path(f) for f in options.files]
        return lambda: stat_files(paths)
    folder = Path(options.folder)

    def scan():
        return scan_folder(folder, recursive=options.recursive, exclude=exclude)

    if not options.once:
        return scan
    first = [s.path for s in scan()]
    return lambda: stat_files(first)


def _sorted_folders(move_to: Optional[str]) -> list[Path]:
    """The folders inspected files go to: never scanned, even inside the watched folder (a
    moved file has a new path, so it would count as a new part)."""
    if not move_to:
        return []
    root = Path(move_to)
    return [root, root / OK, root / NG, root / UNREADABLE]


def _pause(cancel, seconds: float) -> None:
    wait = getattr(cancel, "wait", None)
    if wait is not None:
        wait(seconds)
    else:
        time.sleep(seconds)


def _cancelled(cancel) -> bool:
    return cancel is not None and cancel.is_set()


def run_watch(
    project: Project,
    options: WatchOptions,
    *,
    post: Callable[[dict], None] = lambda item: None,
    progress: Progress = no_progress,
    cancel=None,
) -> WatchSummary:
    """Inspect the source's images until ``cancel`` is set (or, with ``once`` or a list of
    files, until each one is recorded). Each recorded result is posted as a small dict
    (``Inspection.summary``). Stopping finishes the batch in hand: nothing half-recorded."""
    if project.readonly:
        raise AfpsError(project.readonly_reason or "The project is open read-only.")
    t0 = time.perf_counter()
    inspector = LineInspector(project, options.low_confidence)
    with InspectionLog.of_project(project.folder) as log:
        finish_transfers(log, copy=options.copy)
        if options.jsonl:
            log.start_export(options.jsonl)
            log.export_jsonl(options.jsonl)  # what a kill left unexported
        recorder = _Recorder(project, log, inspector, options, post)
        exclude = _sorted_folders(options.move_to)
        files = ReadyFiles(
            _listing(options, exclude),
            recorder.done.__contains__,
            decode=inspector.decoder(),
            settle_s=options.settle_s,
        )
        batch = options.batch or inspector.padim.config.batch_size
        _loop(files, inspector, recorder, options, batch, progress, cancel)
    summary = recorder.summary
    summary.stopped = _cancelled(cancel)
    summary.seconds = time.perf_counter() - t0
    return summary


def _loop(files, inspector, recorder, options, batch, progress, cancel) -> None:
    finite = options.once or options.files is not None
    while not _cancelled(cancel):
        ready, given_up = files.poll(limit=batch)
        items = [error_row(g.state, g.reason, g.seen_at) for g in given_up]
        items += inspector.inspect(ready)
        recorder.write(items)
        n = recorder.summary.inspected
        progress(n, n + files.waiting, f"{n} inspected, {files.waiting} waiting")
        if finite and not files.waiting and not items:
            return
        if not ready:
            _pause(cancel, options.poll_s)


def watch_job(ctx: JobContext, folder: str, settings: dict, readonly: bool, options) -> dict:
    """The app's job: ``ProcessJob("afps_gui.core.line_inspection:watch_job", {"folder": ...,
    "settings": ..., "readonly": ..., "options": WatchOptions or its dict})``. Posts each
    recorded result (``Inspection.summary()``: id, file, verdict, score, type, confidence,
    image, error, ...); the Stop button's cancel ends it normally with ``stopped`` set, and it
    returns the WatchSummary as a dict."""
    from .project_jobs import opened

    if isinstance(options, dict):
        options = WatchOptions(**options)
    with opened(folder, settings, readonly) as project:
        summary = run_watch(
            project, options, post=ctx.post, progress=ctx.progress, cancel=ctx.cancel
        )
    return asdict(summary)


# --- line images for the review queue and training ------------------------------------------


def line_samples(project: Project) -> list[Sample]:
    """The line images an inspector has labelled, as dataset samples (rel = their label key):
    what a retrain adds to the project's own images so that it learns from the line
    (``Project.line_samples``, where the labels and splits take them from)."""
    return project.line_samples()


def line_record(project_folder: str | os.PathLike, rel: str) -> Optional[Inspection]:
    """The inspection log's row of a line image's label key, for the heat map and the patch
    inspector; None for a key that is not a line image's, a project that never inspected the
    line, or a log that cannot be read (read-only: safe beside a running watcher)."""
    path = Path(project_folder) / LOG_NAME
    if not is_line_image(rel) or not path.exists():
        return None
    try:
        with InspectionLog(path, readonly=True) as log:
            return log.by_image(rel)
    except InspectionLogError:
        return None


def recorded_score(item: Inspection) -> Optional[CachedScore]:
    """A line image's recorded score and patch map in the score cache's form, so that the
    viewers turn it into a display map exactly as they do a dataset image's cached score."""
    if item.score is None or item.patch_map is None or item.box is None:
        return None
    return CachedScore(float(item.score), item.patch_map, tuple(item.box))
