"""The saved anomaly model is read in one place (``pipeline.saved_padim_summary``): the
threshold a report uses and the one the training panel shows after a restart are the same."""

from __future__ import annotations

from afps_gui.core import pipeline
from afps_gui.core.project import Project

pytest_plugins = ["test_line_support"]


def test_the_saved_threshold_is_read_once_for_reports_and_the_panel(line_project_folder):
    with Project.open(line_project_folder) as project:
        threshold = pipeline.saved_threshold(project)
        assert threshold == float(pipeline.load_padim(project).threshold)
        summary = pipeline.saved_models_summary(project)["padim"]
        assert summary["threshold"] == threshold and summary["n_train"] > 0
        project.padim_path.write_bytes(b"not a model")
        assert pipeline.saved_threshold(project) is None
        assert pipeline.saved_models_summary(project)["padim"] is None
