"""The inspection report joins scores, predictions and human labels, and never overwrites silently."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from afps_gui.core.errors import AfpsError
from afps_gui.core.labels import LabelStore, Prediction
from afps_gui.core.report import COLUMNS, write_report


@pytest.fixture
def store(tmp_path: Path):
    with LabelStore(tmp_path / "labels.sqlite", user="carol") as s:
        s.set_predictions(
            [
                Prediction("a.png", "Spot", 0.9, 5.0, "vit-1"),
                Prediction("b.png", "Scratch", 0.55, 4.0, "vit-1"),
            ]
        )
        s.set_label("b.png", "Spot")  # the inspector overrules the model
        s.set_label("c.png", "normal")
        yield s


ROWS = [
    {"image": "a.png", "score": 5.0, "anomalous": True, "split": "test"},
    {"image": "b.png", "score": np.float32(4.0), "anomalous": np.bool_(True)},
    {"image": "c.png", "score": float("nan"), "anomalous": None},
    {"image": "d.png", "score": None, "anomalous": False},
]


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_joins_labels_and_predictions(store: LabelStore, tmp_path: Path):
    out_csv, out_json = tmp_path / "report.csv", tmp_path / "report.json"
    write_report(store, ROWS, out_csv, out_json)

    rows = read_csv(out_csv)
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS) and list(rows[0])[-1] == "split"
    a, b, c, d = rows
    assert (a["predicted_label"], a["human_label"], a["effective_label"]) == ("Spot", "", "Spot")
    assert (a["reviewed"], a["model_id"], a["confidence"], a["split"]) == (
        "false",
        "vit-1",
        "0.9",
        "test",
    )
    assert (b["human_label"], b["predicted_label"], b["effective_label"]) == (
        "Spot",
        "Scratch",
        "Spot",
    )
    assert (b["reviewed"], b["labelled_by"], b["anomalous"]) == ("true", "carol", "true")
    assert c["score"] == "" and c["effective_label"] == "normal"
    assert d["effective_label"] == "" and d["anomalous"] == "false"

    document = json.loads(out_json.read_text(encoding="utf-8"))
    assert document["generated"].endswith("+00:00")
    assert [t["name"] for t in document["types"]] == ["Spot", "Scratch"]
    images = document["images"]
    assert [i["image"] for i in images] == ["a.png", "b.png", "c.png", "d.png"]
    assert images[1]["score"] == 4.0 and images[1]["anomalous"] is True
    assert images[2]["score"] is None and images[2]["reviewed"] is True
    assert images[3]["human_label"] is None and images[3]["predicted_label"] is None


def test_report_refuses_to_overwrite_either_file(store: LabelStore, tmp_path: Path):
    out_csv, out_json = tmp_path / "report.csv", tmp_path / "report.json"
    out_json.write_text("keep me")
    with pytest.raises(AfpsError, match="report.json already exists"):
        write_report(store, ROWS, out_csv, out_json)
    assert not out_csv.exists()  # nothing written when either target is refused
    assert out_json.read_text() == "keep me"
    write_report(store, ROWS, out_csv, out_json, overwrite=True)
    assert json.loads(out_json.read_text())["images"]
    with pytest.raises(AfpsError, match="report.csv already exists"):
        write_report(store, ROWS[:1], out_csv)
    assert len(read_csv(out_csv)) == 4
    write_report(store, ROWS[:1], out_csv, overwrite=True)
    assert len(read_csv(out_csv)) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []


def test_report_of_no_rows_and_rows_without_an_image(store: LabelStore, tmp_path: Path):
    write_report(store, [], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().splitlines() == [",".join(COLUMNS)]
    with pytest.raises(AfpsError, match="image"):
        write_report(store, [{"score": 1.0}], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
