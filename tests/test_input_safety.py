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


# ------------------------------------------------------------ unreadable or foreign model files

KIND = "afps-test"


def _model(path: Path, version=1) -> Path:
    import torch

    torch.save({"kind": KIND, "format_version": version, "settings": {"a": 1}, "tensors": {}}, path)
    return path


def test_a_model_file_without_read_permission_says_so(tmp_path: Path, monkeypatch):
    from afps_gui.core import modelfile
    from afps_gui.core.errors import ModelFileError
    from afps_gui.core.modelfile import load_model, load_model_settings

    path = _model(tmp_path / "m.pt")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(modelfile, "open", denied, raising=False)  # tests run as root: no chmod
    for load in (load_model, load_model_settings):
        with pytest.raises(ModelFileError, match="cannot be read: permission denied") as err:
            load(path, KIND, 1)
        assert "corrupt" not in str(err.value) and "truncated" not in str(err.value)
        assert "read access" in str(err.value)  # and what to do


def test_a_model_file_that_torch_may_not_read_says_so(tmp_path: Path, monkeypatch):
    import torch

    from afps_gui.core.errors import ModelFileError
    from afps_gui.core.modelfile import load_model

    path = _model(tmp_path / "m.pt")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(ModelFileError, match="permission denied") as err:
        load_model(path, KIND, 1)
    assert "corrupt" not in str(err.value)


def _random_bytes(first: bytes = b"") -> bytes:
    import random

    data = first + random.Random(0).randbytes(4096)
    assert not data.startswith(b"PK") and (first or not data.startswith(b"\x80"))
    return data


def test_random_bytes_as_backbone_weights_are_not_a_weights_file(tmp_path: Path):
    from afps_gui.core.backbones import Backbone, load_state_dict
    from afps_gui.core.errors import ModelFileError

    path = tmp_path / "weights.pth"
    path.write_bytes(_random_bytes())
    with pytest.raises(ModelFileError, match="not a weights or model file") as err:
        load_state_dict(path, "resnet18")
    assert "code or objects" not in str(err.value)
    assert "not a PyTorch file" in str(err.value)
    with pytest.raises(ModelFileError, match="not a weights or model file"):
        Backbone("resnet18", weights=path)  # what `--weights` does


def test_garbage_that_starts_like_a_pickle_is_corrupt_not_code(tmp_path: Path):
    from afps_gui.core.backbones import load_state_dict
    from afps_gui.core.errors import ModelFileError

    path = tmp_path / "weights.pth"
    path.write_bytes(_random_bytes(first=b"\x80\x02"))
    with pytest.raises(ModelFileError, match="corrupt") as err:
        load_state_dict(path, "resnet18")
    assert "code or objects" not in str(err.value)


def test_a_text_file_as_a_model_is_a_clear_error(tmp_path: Path):
    from afps_gui.core.errors import ModelFileError
    from afps_gui.core.modelfile import load_model

    path = tmp_path / "notes.pt"
    path.write_bytes(b"hello world, this is text\n" * 10)  # torch.load: an uncaught KeyError
    with pytest.raises(ModelFileError, match="not a PyTorch file"):
        load_model(path, KIND, 1)


@pytest.mark.parametrize("version", ["2", 1.0, None, True, 0, -3])
def test_an_invalid_format_version_is_not_called_newer(tmp_path: Path, version):
    from afps_gui.core.errors import ModelFileError
    from afps_gui.core.modelfile import load_model, load_model_settings

    path = _model(tmp_path / "m.pt", version=version)
    for load in (load_model, load_model_settings):
        with pytest.raises(ModelFileError, match="invalid format version") as err:
            load(path, KIND, 2)
        assert "newer" not in str(err.value)
        assert "not written by this app" in str(err.value)


def test_a_newer_format_version_is_still_called_newer(tmp_path: Path):
    from afps_gui.core.errors import ModelFileError
    from afps_gui.core.modelfile import load_model

    with pytest.raises(ModelFileError, match="newer"):
        load_model(_model(tmp_path / "m.pt", version=3), KIND, 2)
    assert load_model(_model(tmp_path / "ok.pt", version=2), KIND, 2)[0] == {"a": 1}


# ------------------------------------------------------------------ overlays of huge images


def _large_image(height: int = 6000, width: int = 4000):
    import numpy as np

    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = (np.arange(width, dtype=np.uint16) % 256).astype(np.uint8)[None, :, None]
    return image


def test_the_overlay_of_a_large_image_is_a_bounded_preview_drawn_in_bounded_memory():
    import tracemalloc

    import numpy as np

    from afps_gui.core.overlay import MAX_OVERLAY_SIDE, render_overlay

    image = _large_image()
    amap = np.zeros((56, 56), dtype=np.float32)
    amap[20:30, 20:30] = 10.0  # a hot spot above the threshold: it gets an outline
    tracemalloc.start()
    try:
        pixels = render_overlay(image, amap, threshold=5.0, vmin=0.0, vmax=10.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert max(pixels.shape[:2]) <= MAX_OVERLAY_SIDE
    assert pixels.shape[0] / pixels.shape[1] == pytest.approx(6000 / 4000, rel=0.01)
    full_size_float_map = 6000 * 4000 * 4  # 96 MB; the old code peaked at 1.3 GB here
    assert peak < 100e6 and peak < full_size_float_map, f"peak {peak / 1e6:.0f} MB"
    assert (pixels == 255).all(axis=-1).any()  # the outline of the hot spot is drawn


def test_a_small_image_keeps_its_size_and_a_large_overlay_is_saved_bounded(tmp_path: Path):
    import numpy as np
    from PIL import Image

    from afps_gui.core.overlay import MAX_OVERLAY_SIDE, render_overlay, save_overlay

    small = np.full((120, 90, 3), 100, dtype=np.uint8)
    amap = np.ones((8, 8), dtype=np.float32)
    assert render_overlay(small, amap, None, 0.0, 2.0).shape == (120, 90, 3)

    path = tmp_path / "big.png"
    save_overlay(path, _large_image(3000, 5000))
    with Image.open(path) as saved:
        assert max(saved.size) <= MAX_OVERLAY_SIDE
        assert saved.size[0] > saved.size[1]  # width stays the long side


def test_shrinking_averages_blocks_edges_included():
    import numpy as np

    from afps_gui.core.overlay import shrink

    image = np.random.default_rng(0).integers(0, 256, (10, 7, 3), dtype=np.uint8)
    small = shrink(image, max_side=3)  # blocks of 4 x 4, partial blocks at the edges
    assert small.shape == (3, 2, 3)
    expected = image[8:, 4:].reshape(-1, 3).mean(axis=0)
    assert np.abs(small[-1, -1].astype(float) - expected).max() <= 0.5
    assert shrink(image) is image  # small enough already: no copy
