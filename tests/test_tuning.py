"""The position-free normal model, synthetic defects and settings tuning, on small generated
images with the real offline backbone."""

import numpy as np
import pytest
import torch

from afps_gui.core.backbones import Backbone
from afps_gui.core.datasets import Sample
from afps_gui.core.normal_models import NearestNeighbourMemory, greedy_coreset
from afps_gui.core.padim import PadimConfig, PadimModel
from afps_gui.core.synthetic import KINDS, add_defect
from afps_gui.core.tuning import (
    Candidate,
    TuneData,
    format_table,
    input_size_for,
    stride_for,
    tune_detection,
)

SIZE = 160
FAST = PadimConfig(memory_size=500)


def moving_part(rng, defect=False):
    """A bright textured disc at a random place on a dark textured background: a part that
    moves, the case per-position Gaussians cannot model. A defect is a dark blot on the disc."""
    img = rng.normal(60, 8, (SIZE, SIZE))
    cy, cx = rng.integers(30, SIZE - 30, 2)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 26**2
    img[disc] = rng.normal(190, 8, disc.sum())
    mask = np.zeros((SIZE, SIZE), bool)
    if defect:
        mask[cy - 2 : cy + 2, cx - 1 : cx + 3] = True
        img[mask] = 110  # a few pixels: invisible once the image is shrunk to 64 px
    rgb = np.repeat(img.clip(0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return rgb, mask


@pytest.fixture(scope="module")
def backbone():
    return Backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Real PNG files: 24 normal, 8 held-out normal, 8 defective with masks."""
    from PIL import Image

    root = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(0)

    def write(name, defect):
        img, mask = moving_part(rng, defect)
        path = root / f"{name}.png"
        Image.fromarray(img).save(path)
        mask_path = None
        if defect:
            mask_path = root / f"{name}_mask.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        return Sample(path, path.name, "spot" if defect else "normal", mask_path)

    fit = [write(f"fit{i}", False) for i in range(24)]
    val = [write(f"val{i}", False) for i in range(8)]
    bad = [write(f"bad{i}", True) for i in range(8)]
    return fit, val, bad


def test_memory_model_scores_a_defect_higher_and_survives_a_file(backbone, tmp_path):
    rng = np.random.default_rng(1)
    cfg = PadimConfig(input_size=(64, 64), feature_pool=1, normal_model="knn", memory_size=300)
    model = PadimModel(cfg, device="cpu", backbone=backbone)
    model.fit([moving_part(rng)[0] for _ in range(10)])
    assert model.normal.bank.shape[0] == 300
    good = model.score_image(moving_part(rng)[0])
    bad_img, mask = moving_part(rng, defect=True)
    bad = model.score_image(bad_img)
    assert bad.score > good.score
    model.threshold = 1.0
    model.save(tmp_path / "knn.pt")
    again = PadimModel.load(tmp_path / "knn.pt", device="cpu")
    assert again.config.normal_model == "knn"
    np.testing.assert_allclose(again.score_image(bad_img).map, bad.map, rtol=1e-4, atol=1e-4)


def test_memory_fit_keeps_a_bounded_uniform_sample():
    mem = NearestNeighbourMemory(memory_size=10, reservoir=500, seed=0)
    for b in range(20):  # 20 batches of 2 images x 64 positions = 2560 patches
        x = torch.full((64, 2, 4), float(b))
        mem.update(x)
        assert mem._sample.shape[0] <= 500
    # a uniform sample of all batches: early and late batches are both represented
    kept = mem._sample[:, 0]
    assert kept.min() <= 2 and kept.max() >= 17
    mem.finish()
    assert mem.bank.shape == (10, 4)


def test_greedy_coreset_covers_better_than_a_random_subset():
    gen = torch.Generator().manual_seed(0)
    # one big cluster and a few far outliers: a random subset misses the outliers
    x = torch.cat([torch.randn(2000, 8, generator=gen), torch.randn(5, 8, generator=gen) + 30])
    core = greedy_coreset(x, 20, seed=0)
    rand = x[torch.randperm(len(x), generator=gen)[:20]]

    def cover(c):
        return torch.cdist(x, c).min(1).values.max()

    assert cover(core) < cover(rand) / 2


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_defects_change_only_where_their_mask_says(kind):
    rng = np.random.default_rng(3)
    img = np.repeat(rng.integers(90, 110, (120, 200), dtype=np.uint8)[:, :, None], 3, axis=2)
    out, mask = add_defect(img, rng, kind)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert mask.any() and mask.mean() < 0.2
    changed = np.abs(out.astype(int) - img).max(-1) > 0
    assert np.abs(out.astype(int) - img)[mask].mean() > 5
    grown = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    grown[max(ys.min() - 6, 0) : ys.max() + 7, max(xs.min() - 6, 0) : xs.max() + 7] = True
    assert not (changed & ~grown).any()  # nothing changed far from the defect


def test_input_sizes_keep_the_aspect_and_large_ones_use_a_coarser_grid():
    assert input_size_for(448, 1.5) == (288, 448)
    assert input_size_for(448, 1 / 1.5) == (448, 288)
    assert input_size_for(224, 1.0) == (224, 224)
    assert stride_for((224, 224)) == 4
    assert stride_for((448, 672)) == 8


def test_tuning_picks_the_better_setting_over_a_deliberately_bad_one(parts, backbone):
    fit, val, bad = parts
    bad_choice = Candidate("gaussian", 64, feature_pool=1)  # small input, per-position model: 0.56
    good_choice = Candidate("knn", SIZE, feature_pool=1)
    result = tune_detection(
        TuneData(fit, val, bad), base=FAST, candidates=[bad_choice, good_choice], device="cpu"
    )
    by_model = {r.settings["normal_model"]: r for r in result.rows if not r.note}
    assert by_model["knn"].objective > by_model["gaussian"].objective
    assert result.best.normal_model == "knn"
    assert result.best.input_size == (SIZE, SIZE)
    assert not result.synthetic and result.n_val_defect == 8
    assert "*" in format_table(result.as_dict())


def test_tuning_without_defects_uses_synthetic_ones(parts):
    fit, val, _ = parts
    result = tune_detection(
        TuneData(fit, val, []),
        base=FAST,
        candidates=[Candidate("knn", 64, feature_pool=1)],
        device="cpu",
    )
    assert result.synthetic and result.n_val_defect == result.n_val_normal == len(val)
    tried = [r for r in result.rows if not r.note]
    assert tried and 0.0 <= tried[0].image_auroc <= 1.0
    assert {r.settings["sigma"] for r in result.rows} == {2.0, 4.0, 8.0}


def test_tuning_skips_what_the_budget_cannot_pay_for(parts):
    fit, val, bad = parts
    result = tune_detection(
        TuneData(fit, val, bad),
        base=FAST,
        candidates=[Candidate("knn", 64, feature_pool=1), Candidate("knn", 256, feature_pool=1)],
        device="cpu",
        budget_s=0.01,
    )
    notes = [r.note for r in result.rows if r.settings["sigma"] == 4.0]
    assert notes[0] == "" and "budget" in notes[1]
    assert result.best.input_size == (64, 64)


def test_refinements_look_around_the_best():
    from afps_gui.core.tuning import refinements

    around = refinements(Candidate("knn", 448))
    assert Candidate("knn", 448, feature_pool=1) in around
    assert Candidate("knn", 448, resize="squash") in around
    assert Candidate("knn", 640) in around
    assert Candidate("knn", 448, feature_pool=3) in refinements(
        Candidate("knn", 448, feature_pool=1)
    )
    assert all(c.long_side <= 1024 for c in refinements(Candidate("knn", 1024)))


def test_auroc_standard_error_shrinks_with_more_images():
    from afps_gui.core.metrics import auroc_standard_error

    few = auroc_standard_error(0.86, 40, 40)
    many = auroc_standard_error(0.86, 400, 400)
    assert 0.03 < few < 0.05 and many < few / 3
    assert auroc_standard_error(1.0, 40, 40) < 0.01
