"""The generated demo dataset: loadable, deterministic, masks on the defects, safe to cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import ndimage

from afps_gui.core.datasets import load_dataset
from afps_gui.core.demo import MARKER, make_demo_dataset, render
from afps_gui.core.errors import Cancelled, DatasetError
from afps_gui.core.images import load_image, load_mask
from afps_gui.core.taxonomy import NORMAL

SMALL = {"n_normal": 4, "n_per_type": 3, "size": (64, 48)}


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_default_set_loads_as_folders(tmp_path):
    root = make_demo_dataset(tmp_path / "demo")
    ds = load_dataset(root)
    assert ds.layout == "folders" and ds.skipped == [] and ds.warnings == []
    assert ds.counts() == {NORMAL: 60, "Scratch": 20, "Spot": 20}
    assert all(s.mask is not None for s in ds.anomalies())
    assert all(s.mask is None for s in ds.normals())
    sample = ds.anomalies()[0]
    assert load_image(sample.path).shape == (160, 160, 3)
    assert sample.mask == root / "masks" / sample.label / sample.path.name


@pytest.mark.parametrize("kind", ["spot", "scratch"])
def test_masks_cover_the_defects(kind):
    for index in range(6):
        image, mask = render(kind, index, (160, 160), seed=0)
        assert 0 < mask.mean() < 0.02  # visible, but not trivially huge
        # The defect stands out from its local background inside the mask, not outside it.
        background = ndimage.median_filter(image.astype(float), size=15)
        deviation = np.abs(image - background)
        assert deviation[mask].mean() > 20
        assert deviation[mask].mean() > 4 * deviation[~mask].mean()


def test_normal_images_vary_but_have_no_defect():
    first, no_mask = render("normal", 0, (96, 96), seed=0)
    second, _ = render("normal", 1, (96, 96), seed=0)
    assert no_mask is None and not np.array_equal(first, second)
    background = ndimage.median_filter(first.astype(float), size=15)
    assert np.abs(first - background).max() < 40  # nothing that looks like a defect


def test_deterministic_for_the_seed(tmp_path):
    one = make_demo_dataset(tmp_path / "a", seed=3, **SMALL)
    two = make_demo_dataset(tmp_path / "b", seed=3, **SMALL)
    other = make_demo_dataset(tmp_path / "c", seed=4, **SMALL)
    assert _files(one) == _files(two)
    for rel in _files(one):
        if rel != MARKER:
            assert (one / rel).read_bytes() == (two / rel).read_bytes()
    assert (one / "Spot/spot_000.png").read_bytes() != (other / "Spot/spot_000.png").read_bytes()


def test_masks_match_their_images(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    for sample in load_dataset(root).anomalies():
        mask = load_mask(sample.mask, (48, 64))
        assert mask.any()


def test_a_complete_set_is_returned_untouched(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    calls = []
    assert make_demo_dataset(root, progress=lambda *a: calls.append(a), **SMALL) == root
    assert calls == [] and {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == stamps


def test_other_settings_replace_the_set(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    make_demo_dataset(root, n_normal=2, n_per_type=1, size=(64, 48), types=("spot",))
    ds = load_dataset(root)
    assert ds.counts() == {NORMAL: 2, "spot": 1}
    assert not (root / "Scratch").exists() and not (root / "masks" / "Scratch").exists()


def test_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.txt").write_text("important")
    with pytest.raises(DatasetError, match="not empty"):
        make_demo_dataset(tmp_path / "mine", **SMALL)
    assert _files(tmp_path / "mine") == ["report.txt"]


def test_cancel_leaves_nothing_behind(tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    cancel = threading.Event()

    def progress(done, total, message):
        if done == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        make_demo_dataset(root, progress=progress, cancel=cancel, **SMALL)
    assert root.is_dir() and list(root.iterdir()) == []
    make_demo_dataset(root, **SMALL)  # and the folder can be used again
    assert len(load_dataset(root).samples) == 10


def test_an_interrupted_run_is_redone(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", **SMALL)
    marker = (root / MARKER).read_text().replace('"complete": true', '"complete": false')
    (root / MARKER).write_text(marker)  # as if the process was killed while drawing
    (root / "Spot" / "spot_001.png").unlink()
    make_demo_dataset(root, **SMALL)
    assert (root / "Spot" / "spot_001.png").is_file()
    assert '"complete": true' in (root / MARKER).read_text()


def test_progress_counts_every_image(tmp_path):
    calls = []
    make_demo_dataset(tmp_path / "d", progress=lambda d, t, m: calls.append((d, t)), **SMALL)
    assert calls[0] == (1, 10) and calls[-1] == (10, 10)


@pytest.mark.parametrize(
    "bad",
    [{"types": ("Dent",)}, {"types": ("Spot", "spot")}, {"size": (8, 8)}, {"n_normal": 0}],
)
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(ValueError):
        make_demo_dataset(tmp_path / "d", **{**SMALL, **bad})
