"""Hostile or odd input: formulas in CSV cells, unreadable or foreign model files, huge images."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from afps_gui.core.csv_cells import escape_cell, unescape_cell
from afps_gui.core.labels import LabelStore
from afps_gui.core.report import write_report

# ------------------------------------------------------------------ CSV formula injection

FORMULAS = ["=2+3", "+2+3", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x","y")']


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize(
    "text", FORMULAS + ["\t=1", "\r=1", "'=1", "'quoted", "plain", "", "-", "1-2"]
)
def test_escape_then_unescape_gives_the_text_back(text: str):
    assert unescape_cell(escape_cell(text)) == text


@pytest.mark.parametrize("text", FORMULAS + ["\t=1", "\r=1"])
def test_escaped_text_does_not_start_like_a_formula(text: str):
    assert escape_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-1.5, 3, None, True, "-1.5", "+2", "-3e5", "plain", "a=b"])
def test_numbers_and_harmless_text_are_not_escaped(value):
    assert escape_cell(value) == value


def test_labels_export_escapes_formulas_and_import_reads_them_back(tmp_path: Path):
    db = tmp_path / "labels.sqlite"
    with LabelStore(db, user="alice") as store:
        store.add_type("=2+3")
        store.add_type("@cmd")
        store.set_label("a.png", "=2+3")
        store.set_label("-b.png", "@cmd")
        store.set_label("c.png", "normal")
        target = tmp_path / "labels.csv"
        assert store.export_csv(target) == 3
    rows = _rows(target)
    assert rows[0] == ["image", "label"]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), rows
    assert ["a.png", "'=2+3"] in rows
    assert ["'-b.png", "'@cmd"] in rows

    with LabelStore(tmp_path / "other.sqlite", user="bob") as other:
        report = other.import_csv(target, create_types=True)
        assert report.bad_rows == []
        assert other.labels() == {"a.png": "=2+3", "-b.png": "@cmd", "c.png": "normal"}
        assert {"=2+3", "@cmd"} <= {t.name for t in other.types()}


def test_report_csv_escapes_text_but_keeps_negative_scores_numbers(tmp_path: Path):
    with LabelStore(tmp_path / "labels.sqlite", user="carol") as store:
        store.add_type("=2+3")
        store.set_label("a.png", "=2+3")
        rows = [
            {"image": "a.png", "score": -1.5, "anomalous": True, "note": "+cmd|' /C calc'!A0"},
            {"image": "b.png", "score": 2.0, "anomalous": False, "note": "ok"},
        ]
        write_report(store, rows, tmp_path / "report.csv")
    with open(tmp_path / "report.csv", encoding="utf-8", newline="") as fh:
        out = {r["image"]: r for r in csv.DictReader(fh)}
    assert out["a.png"]["human_label"] == "'=2+3"
    assert out["a.png"]["effective_label"] == "'=2+3"
    assert out["a.png"]["note"] == "'+cmd|' /C calc'!A0"
    assert out["a.png"]["score"] == "-1.5"  # a number stays a number
    assert float(out["a.png"]["score"]) == -1.5
    assert out["b.png"]["note"] == "ok"
