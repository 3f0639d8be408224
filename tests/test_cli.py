"""The `afps` command line end to end on a tiny generated dataset (real backbone, real fits)."""

import csv
import json

import pytest

from afps_gui.cli import main
from afps_gui.core.demo import make_demo_dataset

SMALL = ["--size", "64", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data"), n_normal=14, n_per_type=6, size=(64, 64)
    )


def run(*args) -> int:
    return main([str(a) for a in args])


def test_evaluate_writes_metrics(data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert run("evaluate", data, *SMALL, "--json", out) == 0
    result = json.loads(out.read_text())
    for key in ("image_auroc", "pixel_auroc", "pro", "threshold", "fit_images_per_s"):
        assert key in result
    assert result["image_auroc"] > 0.7  # the demo defects are easy to see
    assert "image AUROC" in capsys.readouterr().out


def test_evaluate_tunes_by_default_on_images_it_does_not_report(data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    # a budget of 1 s: the first (cheapest) group of candidates is tried, the rest skipped
    assert run("evaluate", data, "--quiet", "--tune-budget", "1", "--json", out) == 0
    result = json.loads(out.read_text())
    for key in ("image_auroc", "pixel_auroc", "pro", "n_tune_fit", "n_tune_normal"):
        assert key in result
    tuning = result["tuning"]
    assert tuning["rows"][0]["note"] == "" and "budget" in tuning["rows"][-4]["note"]
    # the demo has 12 defects: a quarter tunes, the rest is reported
    assert result["n_tune_defect"] + result["n_test_anomalous"] == 12
    assert result["n_tune_defect"] >= 2 and not result["tune_synthetic"]
    assert result["size"] == tuning["best"]["input_size"]
    printed = capsys.readouterr().out
    assert "tuning: fitted on" in printed and "*" in printed


def test_explicit_settings_turn_tuning_off(data, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert run("evaluate", data, "--size", "64", "--model", "knn", "--json", out) == 0
    result = json.loads(out.read_text())
    assert result["tuning"] is None and result["settings"]["normal_model"] == "knn"
    assert "not tuning: --size, --model given" in capsys.readouterr().err


def test_tune_prints_and_writes_the_table(data, tmp_path, capsys):
    out = tmp_path / "tune.json"
    assert run("tune", data, "--budget", "1", "--quiet", "--json", out) == 0
    result = json.loads(out.read_text())
    assert result["best"]["normal_model"] in ("gaussian", "knn")
    assert any(r["settings"] == result["best"] for r in result["rows"])
    assert "(* chosen" in capsys.readouterr().out


def test_new_project_is_tuned_before_its_first_fit(data, tmp_path, capsys):
    from afps_gui.core.project import Project

    folder = tmp_path / "proj"
    assert run("project", "new", folder, data, "--quiet") == 0
    assert run("fit", "--project", folder, "--quiet", "--tune-budget", "1") == 0
    with Project.open(folder, readonly=True) as project:
        assert project.settings.tuning is not None and not project.settings.auto_tune
        best = project.settings.tuning["best"]
        assert list(project.settings.padim.input_size) == best["input_size"]
    assert "tuning: fitted on" in capsys.readouterr().out


def test_experiment_writes_tables_json_and_plot(data, tmp_path):
    out = tmp_path / "exp"
    code = run(
        "experiment",
        data,
        *SMALL,
        "--classes",
        "spot,SCRATCH",
        "--n",
        "5,10",
        "--sd",
        "0.1,0.3",
        "--sd-n",
        "5",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--out",
        out,
    )
    assert code == 0
    rows = json.loads((out / "results.json").read_text())
    assert {r["strategy"] for r in rows} == {"afps", "random", "top", "pooled", "region", "auto"}
    assert all(r["chosen"] for r in rows if r["strategy"] == "auto")
    assert "cv" not in rows[-1] and (out / "choices.json").is_file()
    assert all(
        {"n", "sd", "seed", "accuracy", "precision", "recall", "f1", "flops"} <= set(r)
        for r in rows
    )
    assert "Table I" in (out / "results.md").read_text()
    assert (out / "accuracy_vs_n.png").stat().st_size > 1000


def test_fit_train_predict_batch_pieces(data, tmp_path):
    padim, clf = tmp_path / "padim.pt", tmp_path / "clf.pt"
    assert run("fit", data, *SMALL, "--out", padim) == 0
    assert (
        run(
            "train",
            data,
            *SMALL,
            "--padim",
            padim,
            "--classes",
            "Spot,Scratch",
            "--n",
            "10",
            "--epochs",
            "3",
            "--out",
            clf,
        )
        == 0
    )
    csv_path, overlays = tmp_path / "pred.csv", tmp_path / "overlays"
    assert (
        run(
            "predict",
            data / "Spot",
            "--padim",
            padim,
            "--classifier",
            clf,
            "--csv",
            csv_path,
            "--overlays",
            overlays,
            "--quiet",
        )
        == 0
    )
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6
    assert any(r["type"] in ("Spot", "Scratch") for r in rows)
    assert len(list(overlays.glob("*.png"))) == 6
    # refuses to overwrite without --overwrite
    assert run("predict", data / "Spot", "--padim", padim, "--csv", csv_path, "--quiet") == 2


def test_project_flow_labels_and_report(data, tmp_path):
    proj = tmp_path / "proj"
    assert run("project", "new", proj, data, *SMALL) == 0
    assert run("fit", "--project", proj, "--quiet") == 0
    assert run("score", "--project", proj, "--quiet") == 0
    assert run("train", "--project", proj, "--n", "10", "--epochs", "3", "--quiet") == 0
    labels = tmp_path / "labels.csv"
    assert run("labels", "export", labels, "--project", proj) == 0
    labels.write_text("image,label\nSpot/spot_000.png,Scratch\nno/such.png,Spot\n")
    assert run("labels", "import", labels, "--project", proj) == 0
    report = tmp_path / "report.csv"
    assert (
        run("report", "--project", proj, "--csv", report, "--json", tmp_path / "r.json", "--quiet")
        == 0
    )
    rows = {r["image"]: r for r in csv.DictReader(report.open())}
    assert len(rows) == 26
    assert rows["Spot/spot_000.png"]["human_label"] == "Scratch"
    assert run("report", "--project", proj, "--csv", report, "--quiet") == 2  # no silent overwrite


@pytest.mark.parametrize(
    "args, words",
    [
        (["evaluate", "/no/such/folder"], "does not exist"),
        (
            [
                "train",
                "DATA",
                "--padim",
                "/no/model.pt",
                "--classes",
                "Spot,Scratch",
                "--out",
                "x.pt",
            ],
            "does not exist",
        ),
        (["experiment", "DATA", "--classes", "Spot,Dent"], "Dent"),
    ],
)
def test_errors_are_one_line_and_exit_2(data, args, words, capsys):
    args = [str(data) if a == "DATA" else a for a in args]
    assert main(args + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert "afps: error:" in err and words in err


def test_score_lists_and_counts_the_images_it_skipped(data, tmp_path, capsys):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    project = tmp_path / "proj"
    assert run("project", "new", project, copy, *SMALL) == 0
    assert run("fit", "--project", project, "--quiet") == 0
    (copy / "Spot" / "spot_001.png").write_bytes(b"\x89PNG broken")  # broken after the fit
    out = tmp_path / "score.json"
    capsys.readouterr()
    assert run("score", "--project", project, "--quiet", "--json", out) == 0
    captured = capsys.readouterr()
    assert "1 skipped" in captured.out and "skipped Spot/spot_001.png:" in captured.err
    result = json.loads(out.read_text())
    assert result["n_skipped"] == 1 and result["skipped"][0]["image"] == "Spot/spot_001.png"


def test_predict_csv_quotes_cells_a_spreadsheet_would_run(data, tmp_path):
    import shutil

    padim = tmp_path / "padim.pt"
    assert run("fit", data, *SMALL, "--out", padim) == 0
    folder = tmp_path / "new"
    folder.mkdir()
    shutil.copy(data / "Spot" / "spot_000.png", folder / "=HYPERLINK(1).png")
    csv_path = tmp_path / "pred.csv"
    assert run("predict", folder, "--padim", padim, "--csv", csv_path, "--quiet") == 0
    (row,) = list(csv.DictReader(csv_path.open()))
    assert row["image"] == "'=HYPERLINK(1).png"


def test_report_rows_follow_the_one_threshold_rule():
    # `afps report` and the app's Export report build their rows with core.report.project_rows:
    # anomalous strictly above the threshold (padim.is_anomalous), None when either is unknown.
    from types import SimpleNamespace

    from afps_gui.core.padim import is_anomalous
    from afps_gui.core.report import project_rows

    samples = [SimpleNamespace(rel=r, label=None) for r in ("hi.png", "at.png", "none.png")]
    project = SimpleNamespace(
        cache=SimpleNamespace(scores=lambda: {"hi.png": 2.5, "at.png": 2.0}),
        dataset=SimpleNamespace(samples=samples),
    )
    rows = project_rows(project, 2.0)
    assert [r["anomalous"] for r in rows] == [True, False, None]
    assert [r["anomalous"] for r in project_rows(project, None)] == [None, None, None]
    assert is_anomalous(2.0, 2.0) is False and is_anomalous(2.0001, 2.0) is True
    assert set(rows[0]) == {"image", "score", "anomalous", "dataset_label"}
