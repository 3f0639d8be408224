"""The jobs the window hands to the JobRunner.

Fit, score, train, the threshold and the sweep are ``ProcessJob``s: core.project_jobs runs them
in a child process, with the settings the user just set (see job_process for why a process).
Making the demo's images is light and runs in the worker thread itself.
"""

from __future__ import annotations

from pathlib import Path

from ..core.classifier import ClassifierConfig
from ..core.experiment import ExperimentPlan
from ..job_process import ProcessJob

TARGETS = "afps_gui.core.project_jobs"


def _job(name: str, project, **kwargs) -> ProcessJob:
    return ProcessJob(
        f"{TARGETS}:{name}",
        dict(
            folder=str(project.folder),
            settings=project.settings.to_json(),
            readonly=project.readonly,
            **kwargs,
        ),
    )


def fit_job(project) -> ProcessJob:
    return _job("fit", project)


def tune_job(project) -> ProcessJob:
    return _job("tune", project)


def score_job(project) -> ProcessJob:
    return _job("score", project)


def train_job(project, config: ClassifierConfig) -> ProcessJob:
    return _job("train", project, config=config)


def save_threshold_job(project, threshold: float) -> ProcessJob:
    return _job("save_threshold", project, threshold=float(threshold))


def sweep_job(project, plan: ExperimentPlan) -> ProcessJob:
    return _job("sweep", project, plan=plan)


def demo_job(data_dir: Path, project_dir: Path, **options):
    from .demo_project import ensure_demo_project

    return lambda ctx: ensure_demo_project(
        data_dir, project_dir, progress=ctx.progress, cancel=ctx.cancel, **options
    )
