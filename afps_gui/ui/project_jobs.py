"""The job functions the window hands to the JobRunner: thin wrappers around core.pipeline.

Each returns a function of a JobContext (progress, cancel, post) so that it runs in a worker
thread exactly as the CLI runs the same core calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core import pipeline
from ..core.classifier import ClassifierConfig
from ..core.experiment import ExperimentPlan, markdown_tables, run_experiment, summarise
from ..core.jobs import check_cancel
from ..workers import JobContext

Job = Callable[[JobContext], Any]


def saving_settings(project, job: Job) -> Job:
    """Save the project's settings first, in the worker: the atomic write ends with an fsync,
    which can take tens of milliseconds on a busy disk, too long for the UI thread."""

    def run(ctx: JobContext):
        if not project.readonly:
            project.save_settings()
        return job(ctx)

    return run


def fit_job(project) -> Job:
    return lambda ctx: pipeline.fit_project(project, progress=ctx.progress, cancel=ctx.cancel)


def score_job(project) -> Job:
    return lambda ctx: pipeline.score_project(project, progress=ctx.progress, cancel=ctx.cancel)


def train_job(project, config: ClassifierConfig) -> Job:
    def run(ctx: JobContext):
        return pipeline.train_project(
            project, config, progress=ctx.progress, cancel=ctx.cancel, on_epoch=ctx.post
        )

    return run


def save_threshold_job(project, threshold: float) -> Job:
    """Write a new threshold into the PaDiM model file (no refit: the Gaussians stay)."""

    def run(ctx: JobContext):
        ctx.progress(0, 1, "Saving the threshold")
        padim = pipeline.load_padim(project)
        padim.threshold = float(threshold)
        check_cancel(ctx.cancel)
        padim.save(project.padim_path)
        ctx.progress(1, 1, "Threshold saved")
        return float(threshold)

    return run


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


def sweep_job(project, plan: ExperimentPlan) -> Job:
    """The paper's sweep on the project's typed defects: embed every image once, then train
    one classifier per (strategy, N, sd, seed)."""

    def run(ctx: JobContext) -> SweepResult:
        padim = pipeline.load_padim(project)
        train, test = project.classifier_split()
        samples = train + test
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

    return run


def _part(ctx: JobContext, lo: float, hi: float):
    def report(done: int, total: int, message: str = "") -> None:
        frac = done / total if total else 1.0
        ctx.progress(int(1000 * (lo + (hi - lo) * frac)), 1000, message)

    return report


def demo_job(data_dir: Path, project_dir: Path, **options) -> Job:
    from .demo_project import ensure_demo_project

    return lambda ctx: ensure_demo_project(
        data_dir, project_dir, progress=ctx.progress, cancel=ctx.cancel, **options
    )
