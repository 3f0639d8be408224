"""The main window's jobs: starting them, what follows a finished one, the fit-score-train
chain. A part of MainWindow (a mixin), kept apart so that each file reads as one concern."""

from __future__ import annotations

from PySide6.QtCore import QTimer

from ..core.errors import AfpsError
from ..workers import Failure
from . import messages, project_jobs


class WindowJobs:
    """Jobs of a MainWindow (which holds runner, project, training, status, docks, review)."""

    def start_job(self, name: str, fn, **handlers) -> bool:
        if self.runner.busy:
            self.status.showMessage(f"{self.runner.current} is running: wait or cancel it.", 5000)
            return False
        return self.runner.start(name, fn, **handlers)

    def _require_project(self) -> bool:
        if self.project is None:
            messages.info(self, "Open a project first (File ▸ Open, or the demo project).")
            return False
        return True

    def fit(self) -> bool:
        if not self._require_project() or not self._apply(self.training.apply_padim_settings):
            return False
        return self.start_job(
            "Fitting PaDiM",
            project_jobs.fit_job(self.project),
            on_result=self._fitted,
        )

    def tune(self) -> bool:
        if not self._require_project() or not self._apply(self.training.apply_padim_settings):
            return False
        self.training.tabs.setCurrentIndex(0)
        return self.start_job(
            "Tuning detection settings",
            project_jobs.tune_job(self.project),
            on_result=self._tuned,
        )

    def score(self) -> bool:
        if not self._require_project():
            return False
        return self.start_job(
            "Scoring images", project_jobs.score_job(self.project), on_result=self._scored
        )

    def train(self, after=None) -> bool:
        if not self._require_project():
            return False
        config = self._apply(self.training.apply_classifier_settings)
        if config is None:
            return False
        self.training.training_started()
        if after is None:  # from the review panel, keep the heat map in view
            # In a turn of the event loop of its own: drawing the training tab (its plots) and
            # starting the job are each a few tens of ms; one after the other, the window
            # would not react for their sum.
            QTimer.singleShot(0, self.docks["training"].raise_)
        return self.start_job(
            "Training the classifier",
            project_jobs.train_job(self.project, config),
            on_post=self.training.curves.add,
            on_result=lambda result: self._trained(result, after),
        )

    def run_all(self) -> bool:
        """Fit, then score, then train: each step starts when the previous one succeeded."""
        self._chain, self._in_pipeline = [self.score, self.train], True
        if not self.fit():
            self._chain, self._in_pipeline = [], False
            return False
        self._chain_after = self.runner.serial
        return True

    def sweep(self, plan) -> bool:
        if not self._require_project():
            return False
        self.training.tabs.setCurrentWidget(self.training.sweep)
        self.docks["training"].raise_()
        return self.start_job(
            "Running the sweep",
            project_jobs.sweep_job(self.project, plan),
            on_result=self.training.sweep.show_result,
        )

    def save_threshold(self, value: float) -> None:
        if self.project is None or self.project.readonly:
            return

        def saved(threshold: float) -> None:
            self.status.showMessage(f"Threshold {threshold:.2f} saved: re-scoring…", 8000)
            self.heatmap.reload()
            self._chain, self._chain_after = [self.score], self.runner.serial

        self.start_job(
            "Saving the threshold",
            project_jobs.save_threshold_job(self.project, value),
            on_result=saved,
        )

    def retrain_from_review(self) -> None:
        self.train(after=self.review.show_retrain_result)

    def cancel_job(self) -> None:
        if self.runner.busy:
            self._chain = []  # the failed outcome then ends a pipeline
            self.status.job_cancelling()
            self.runner.cancel()

    def _apply(self, fn):
        """Run a settings-form apply; a refused value is shown, not raised."""
        try:
            return fn() if fn is not None else None
        except AfpsError as exc:
            messages.error(self, str(exc))
            return None

    def _tuned(self, result) -> None:
        self._adopt_tuning(result.best, result.as_dict())
        self.status.showMessage("Detection settings tuned: fit PaDiM to use them.", 10000)

    def _adopt_tuning(self, config, tuning: dict) -> None:
        """The job saved the tuned settings in the project; the window's copy follows."""
        s = self.project.settings
        s.padim, s.tuning, s.auto_tune = config, tuning, False
        self.training.load_settings()
        self.training.show_tuning(tuning)

    def _fitted(self, result) -> None:
        if result.tuning:
            from ..core.padim import PadimConfig

            self._adopt_tuning(PadimConfig(**result.settings["padim"]), result.tuning)
        self.training.show_fit_result(result)
        self._models_changed()

    def _scored(self, result) -> None:
        skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
        self.status.showMessage(
            f"Scored {result.n_scored} images: {result.n_anomalous} anomalous, "
            f"{result.n_classified} classified{skipped}.",
            10000,
        )
        self.training.show_score_result(result, self.project.classifier_path.is_file())
        self._models_changed()

    def _trained(self, result, after=None) -> None:
        self.training.show_train_result(result)
        if result.skipped:  # the close look failed there (pipeline.BatchClassifying.add_sample)
            rel, why = result.skipped[0]
            self.status.showMessage(
                f"Trained. {len(result.skipped)} anomalous image(s) could not be classified "
                f"again and keep their previous prediction (first: {rel}: {why}).",
                15000,
            )
        self._models_changed()
        if after is not None:
            after(result)

    def _models_changed(self) -> None:
        """Every view reads the new models and scores, one per turn of the event loop: all in
        one go kept the UI thread busy 30+ ms at the end of a training run."""
        project = self.project
        steps = [
            self.browser.refresh,
            self.heatmap.reload,
            self.inspector.reload,
            self.review.refresh,
            self.training.update_counts,
        ]

        def next_step() -> None:
            if steps and self.project is project:  # another project: it is drawn afresh
                steps.pop(0)()
                QTimer.singleShot(0, next_step)

        next_step()

    def _job_finished(self, name: str, outcome: str) -> None:
        self.status.job_finished(name, outcome)
        self.update_actions()
        if self.runner.ended != self._chain_after:
            # Not the chain's job: the one whose result started the chain (the demo's set-up
            # starts "fit, score and train" from its result, before its own end is signalled).
            return
        if outcome != "ok":
            self._end_chain(False)
        elif self._chain:
            step = self._chain.pop(0)
            QTimer.singleShot(0, lambda: self._next_step(step))
        elif self._in_pipeline:
            self._end_chain(True)

    def _next_step(self, step) -> None:
        if step():
            self._chain_after = self.runner.serial
        else:
            self._end_chain(False)

    def _end_chain(self, ok: bool) -> None:
        """The chain stops; a run_all chain says how it ended (True: every step ran)."""
        self._chain = []
        if self._in_pipeline:
            self._in_pipeline = False
            self.pipeline_finished.emit(ok)

    def _job_failed(self, name: str, failure: Failure) -> None:
        messages.error(self, failure.message, failure.details, title=f"{name} failed")
