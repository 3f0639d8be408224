"""The app's jobs on a project, as plain functions a job process can run: ``fn(ctx, ...)``.

The window names them in a ``ProcessJob`` ("afps_gui.core.project_jobs:fit"); a child process
opens the project from its folder with the app's settings and runs the same core.pipeline calls
as the CLI. Arguments and results cross the process boundary, so they are plain data: a folder,
settings as JSON, dataclasses of results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from . import pipeline
from .classifier import ClassifierConfig
from .experiment import ExperimentPlan, markdown_tables, run_experiment, summarise
from .jobs import JobContext, check_cancel
from .project import Project, ProjectSettings


@contextlib.contextmanager
def opened(folder: str, settings: dict, readonly: bool, save: bool = False) -> Iterator[Project]:
    """The project for one job; ``save`` writes the settings first (those the user just set
    for this job), as the app does before a fit or a training."""
    project = Project.open_for_job(folder, ProjectSettings.from_json(settings), readonly=readonly)
    try:
        if save and not project.readonly:
            project.save_settings()
        yield project
    finally:
        project.close()


def fit(ctx: JobContext, folder: str, settings: dict, readonly: bool) -> pipeline.FitResult:
    with opened(folder, settings, readonly, save=True) as project:
        return pipeline.fit_project(project, progress=ctx.progress, cancel=ctx.cancel)


def tune(ctx: JobContext, folder: str, settings: dict, readonly: bool):
    """Compare detection settings on the project's data; the best are saved in the project."""
    with opened(folder, settings, readonly, save=True) as project:
        return pipeline.tune_project(project, progress=ctx.progress, cancel=ctx.cancel)


def score(ctx: JobContext, folder: str, settings: dict, readonly: bool):
    with opened(folder, settings, readonly) as project:
        return pipeline.score_project(project, progress=ctx.progress, cancel=ctx.cancel)


def train(
    ctx: JobContext, folder: str, settings: dict, readonly: bool, config: ClassifierConfig
) -> pipeline.TrainResult:
    with opened(folder, settings, readonly, save=True) as project:
        return pipeline.train_project(
            project, config, progress=ctx.progress, cancel=ctx.cancel, on_epoch=ctx.post
        )


def save_threshold(
    ctx: JobContext, folder: str, settings: dict, readonly: bool, threshold: float
) -> float:
    """Write a new threshold into the PaDiM model file (no refit: the Gaussians stay)."""
    with opened(folder, settings, readonly) as project:
        ctx.progress(0, 1, "Saving the threshold")
        padim = pipeline.load_padim(project)
        padim.threshold = float(threshold)
        check_cancel(ctx.cancel)
        padim.save(project.padim_path)
        ctx.progress(1, 1, "Threshold saved")
        return float(threshold)


def default_plan(base: ClassifierConfig) -> ExperimentPlan:
    """A sweep that finishes in minutes on a CPU: three N, every strategy, two seeds."""
    return ExperimentPlan(
        ns=(10, 25, 50),
        sds=(0.10, 0.15, 0.30),
        sd=0.15,
        sd_sweep_n=25,
        seeds=2,
        base=replace(base, epochs=min(base.epochs, 15)),
    )


@dataclass
class SweepResult:
    rows: list[dict]
    plan: ExperimentPlan
    classes: list[str]
    markdown: str
    summary: list[dict]
    skipped: list[tuple[str, str]]


def sweep(
    ctx: JobContext, folder: str, settings: dict, readonly: bool, plan: ExperimentPlan
) -> SweepResult:
    """The paper's sweep on the project's typed defects: embed every image once, then train
    one classifier per (strategy, N, sd, seed)."""
    with opened(folder, settings, readonly) as project:
        padim = pipeline.load_padim(project)
        train_set, test_set = project.classifier_split()
        samples = train_set + test_set
        classes = sorted({s.label for s in samples})
        examples, skipped = pipeline.build_examples(
            padim, samples, classes, progress=_part(ctx, 0, 0.25), cancel=ctx.cancel
        )
        rows = run_experiment(
            examples,
            classes,
            plan,
            progress=_part(ctx, 0.25, 1.0),
            cancel=ctx.cancel,
            device=project.settings.device,
        )
        title = f"{project.settings.name}: {', '.join(classes)}"
        return SweepResult(
            rows, plan, classes, markdown_tables(rows, plan, title), summarise(rows), skipped
        )


def _part(ctx: JobContext, lo: float, hi: float):
    def report(done: int, total: int, message: str = "") -> None:
        frac = done / total if total else 1.0
        ctx.progress(int(1000 * (lo + (hi - lo) * frac)), 1000, message)

    return report
