"""One rule for an image whose close look fails (``BatchClassifying.add_sample``): it is not
classified, and every front end says which image and why instead of stopping or staying silent.
The real tiny fitted project of test_line_support; the classifier is told to read close looks
and the look fails for chosen images."""

from __future__ import annotations

import csv
import os
import time

import numpy as np
import pytest
from test_line_support import drop, images_of

from afps_gui.cli import main, print_inspection
from afps_gui.core import pipeline
from afps_gui.core.errors import ImageError
from afps_gui.core.line_inspection import UNTYPED, WatchOptions, run_watch
from afps_gui.core.project import Project

pytest_plugins = ["test_line_support"]
REASON = "cannot be decoded again at full size"


@pytest.fixture
def failing_look(monkeypatch):
    """Classifiers read the close look; it fails for the names put in the returned set, and for
    every decoded line image when the set holds "line"."""
    bad: set[str] = set()
    real = pipeline.look_at

    def look_at(padim, item, score):
        name = getattr(item, "rel", None) or (
            os.fspath(item) if not isinstance(item, np.ndarray) else ""
        )
        if any(b and b in name for b in bad) or (isinstance(item, np.ndarray) and "line" in bad):
            raise ImageError(REASON)
        return real(padim, item, score)

    monkeypatch.setattr(pipeline, "needs_looks", lambda clf: clf is not None)
    monkeypatch.setattr(pipeline, "look_at", look_at)
    return bad


def _anomalous(project) -> list[str]:
    padim = pipeline.load_padim(project, summary=True)
    return sorted(r for r, s in project.cache.scores().items() if padim.is_anomalous(s))


def test_scoring_and_reclassifying_skip_the_image_with_its_reason(
    line_project_folder, failing_look
):
    with Project.open(line_project_folder) as project:
        pipeline.score_project(project)
        bad = _anomalous(project)[0]
        before = project.store.predictions()[bad]
        failing_look.add(bad)
        res = pipeline.score_project(project)
        assert (bad, REASON) in res.skipped
        assert project.store.predictions()[bad] == before  # it keeps its previous prediction
        assert res.n_classified == len(_anomalous(project)) - 1
        skipped: list = []
        padim, clf = pipeline.load_padim(project), pipeline.load_classifier(project)
        assert pipeline.reclassify_project(project, padim, clf, {}, skipped=skipped)
        assert skipped == [(bad, REASON)]


def test_predict_says_which_image_was_not_typed_and_goes_on(
    line_project_folder, line_data, tmp_path, failing_look, capsys
):
    with Project.open(line_project_folder) as project:
        padim, clf = project.padim_path, project.classifier_path
    out = tmp_path / "pred.csv"
    args = ["predict", line_data / "Spot", "--padim", padim, "--classifier", clf]
    assert main([str(a) for a in args + ["--csv", out, "--quiet"]]) == 0
    typed = [r for r in csv.DictReader(out.open()) if r["anomalous"] == "True"]
    assert typed and all(r["type"] for r in typed)
    failing_look.add(typed[0]["image"])
    capsys.readouterr()
    assert main([str(a) for a in args + ["--csv", out, "--overwrite", "--quiet"]]) == 0
    rows = {r["image"]: r for r in csv.DictReader(out.open())}
    assert len(rows) == 6 and rows[typed[0]["image"]]["type"] == ""
    assert all(rows[r["image"]]["type"] for r in typed[1:])
    assert f"not typed {typed[0]['image']}: {REASON}" in capsys.readouterr().err


def test_the_line_records_the_part_ng_and_untyped_with_the_reason(
    line_project_folder, line_data, tmp_path, failing_look, capsys
):
    failing_look.add("line")
    line = tmp_path / "line"
    drop(images_of(line_data, "Spot", 3), line)
    past = time.time() - 60
    for p in line.iterdir():
        os.utime(p, (past, past))
    posts: list = []
    with Project.open(line_project_folder) as project:
        res = run_watch(project, WatchOptions(folder=str(line), once=True), post=posts.append)
    ng = [p for p in posts if p["verdict"] == "NG"]
    assert ng and res.errors == 0 and res.ng == len(ng)
    assert all(p["type"] is None and p["error"] == f"{UNTYPED}: {REASON}" for p in ng)
    capsys.readouterr()
    print_inspection(ng[0])
    assert f"untyped ({UNTYPED}: {REASON})" in capsys.readouterr().out


def test_which_strategies_need_the_close_look_is_written_once():
    from afps_gui.core.classifier import ClassifierConfig
    from afps_gui.core.model_choice import examples_need_looks
    from afps_gui.core.pooled_classifier import PooledClassifier
    from afps_gui.core.selection import reads_looks

    assert [s for s in ("afps", "random", "top", "pooled", "region") if reads_looks(s)] == [
        "region"
    ]
    assert examples_need_looks(["auto"]) and examples_need_looks(["afps", "region"])
    assert not examples_need_looks(["afps", "pooled"])
    for strategy in ("pooled", "region"):
        clf = PooledClassifier(["A", "B"], 8, ClassifierConfig(strategy=strategy))
        assert clf.needs_looks == reads_looks(strategy)
