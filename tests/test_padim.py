"""PaDiM with the real offline backbone on small generated images."""

import errno

import numpy as np
import pytest
import torch

from afps_gui.core.backbones import Backbone, get_spec, resolve_weights
from afps_gui.core.errors import AfpsError, ModelFileError, WeightsNotFoundError
from afps_gui.core.padim import PadimConfig, PadimModel, blur


def texture(rng, size=64, defect=False):
    img = rng.normal(128, 12, (size, size)).clip(0, 255)
    if defect:
        r, c = rng.integers(12, size - 12, 2)
        img[r - 4 : r + 4, c - 4 : c + 4] = 20
    return np.repeat(img.astype(np.uint8)[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def backbone():
    return Backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def fitted(backbone):
    rng = np.random.default_rng(0)
    model = PadimModel(
        PadimConfig(input_size=(64, 64), d=40, batch_size=4, feature_pool=1),
        device="cpu",
        backbone=backbone,
    )
    model.fit([texture(rng) for _ in range(12)])
    return model


def test_backbone_taps_three_strides(backbone):
    feats = backbone(torch.rand(2, 3, 64, 96))
    assert [f.shape[1] for f in feats] == [24, 40, 112]
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 24), (8, 12), (4, 6)]


def test_streaming_fit_equals_one_shot(backbone):
    rng = np.random.default_rng(1)
    # more images than dimensions, so the covariances are well conditioned and comparable
    images = [texture(rng) for _ in range(20)]
    small = PadimModel(
        PadimConfig(input_size=(64, 64), d=8, batch_size=3), device="cpu", backbone=backbone
    )
    small.fit(images)
    big = PadimModel(
        PadimConfig(input_size=(64, 64), d=8, batch_size=64), device="cpu", backbone=backbone
    )
    big.fit(images)
    torch.testing.assert_close(small.mean, big.mean, rtol=1e-5, atol=1e-5)
    scale = big.inv_cov.abs().max().item()
    torch.testing.assert_close(small.inv_cov, big.inv_cov, rtol=1e-3, atol=1e-4 * scale)
    # and both equal the textbook estimate from all embeddings stacked at once
    from afps_gui.core.preprocess import to_input

    batch = torch.stack([to_input(im, (64, 64))[0] for im in images])
    emb = big.embed(batch).flatten(2).permute(2, 0, 1).double()  # (P, N, D)
    mu = emb.mean(1)
    xc = emb - mu[:, None]
    cov = xc.transpose(1, 2) @ xc / (len(images) - 1) + 0.01 * torch.eye(8, dtype=torch.float64)
    torch.testing.assert_close(big.mean.double(), mu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        big.inv_cov.double(), torch.linalg.inv(cov), rtol=1e-3, atol=1e-4 * scale
    )


def test_defect_scores_higher_and_map_peaks_on_it(fitted):
    rng = np.random.default_rng(5)
    normal = fitted.score_image(texture(rng))
    img = texture(rng)
    img[40:48, 20:28] = 10
    bad = fitted.score_image(img)
    assert bad.score > normal.score
    peak = np.unravel_index(np.argmax(bad.map), bad.map.shape)
    assert 32 <= peak[0] <= 56 and 12 <= peak[1] <= 36
    assert bad.map.shape == (64, 64) and bad.patch_map.shape == (16, 16)


def test_fit_mode_keeps_aspect_and_crops_map(backbone):
    rng = np.random.default_rng(2)
    model = PadimModel(
        PadimConfig(input_size=(64, 64), resize="fit", d=20), device="cpu", backbone=backbone
    )
    wide = [
        np.repeat(rng.normal(128, 10, (32, 64)).clip(0, 255).astype(np.uint8)[:, :, None], 3, 2)
        for _ in range(6)
    ]
    model.fit(wide)
    s = model.score_image(wide[0])
    assert s.map.shape == (32, 64)  # only the valid (unpadded) rows
    assert (s.box.y0, s.box.y1) == (16, 48)


def test_threshold_and_normalised_score(fitted):
    fitted.calibrate([1.0, 2.0, 3.0, 4.0], [10.0, 12.0])
    assert 4.0 <= fitted.threshold < 10.0
    assert fitted.normalise(fitted.threshold) == pytest.approx(0.5)
    assert fitted.normalise(1e9) == 1.0 and fitted.normalise(-1e9) == 0.0
    assert fitted.is_anomalous(11.0) and not fitted.is_anomalous(2.0)


def test_save_load_round_trip(fitted, tmp_path, backbone):
    fitted.calibrate([1.0, 2.0], [5.0])
    path = tmp_path / "padim.pt"
    fitted.save(path)
    loaded = PadimModel.load(path, device="cpu")
    loaded._backbone = backbone
    img = texture(np.random.default_rng(9), defect=True)
    assert loaded.score_image(img).score == pytest.approx(fitted.score_image(img).score, rel=1e-5)
    assert loaded.threshold == fitted.threshold
    assert torch.equal(loaded.channel_idx, fitted.channel_idx)


def test_summary_has_the_settings_but_not_the_gaussians(fitted, tmp_path):
    fitted.calibrate([1.0, 2.0], [5.0])
    path = tmp_path / "padim.pt"
    fitted.save(path)
    summary = PadimModel.load_summary(path)
    assert summary.threshold == fitted.threshold and summary.score_floor == fitted.score_floor
    assert summary.grid == fitted.grid and summary.config == fitted.config
    assert summary.normalise(7.0) == fitted.normalise(7.0)
    assert summary.mean is None and summary.inv_cov is None
    with pytest.raises(AfpsError, match="not fitted"):
        summary.score_image(texture(np.random.default_rng(1)))


def test_corrupt_truncated_and_foreign_model_files(fitted, tmp_path):
    path = tmp_path / "padim.pt"
    fitted.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"not a model at all" * 10)
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"kind": "something-else"}, tmp_path / "foreign.pt")
    torch.save({"kind": "afps-padim", "format_version": 99}, tmp_path / "newer.pt")
    for name, words in [
        ("trunc", "corrupt"),
        ("garbage", "corrupt"),
        ("empty", "empty"),
        ("foreign", "not a afps-padim"),
        ("newer", "newer"),
    ]:
        with pytest.raises(ModelFileError, match=words):
            PadimModel.load(tmp_path / f"{name}.pt", device="cpu")
        with pytest.raises(ModelFileError, match=words):
            PadimModel.load_summary(tmp_path / f"{name}.pt")


class _DiskFillsUp:
    """A file that takes ``room`` bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, path, room: int):
        self.fh, self.room = open(path, "wb"), room

    def write(self, data) -> int:
        if self.room < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def test_a_full_disk_says_so_and_keeps_the_saved_model(fitted, tmp_path, monkeypatch):
    """torch.save hides a full disk met halfway inside a RuntimeError ("unexpected pos"):
    the user must still read that the disk is full, and the model saved before must survive."""
    from afps_gui.core import modelfile

    path = tmp_path / "padim.pt"
    fitted.save(path)
    before = path.read_bytes()
    fills_up = lambda p, mode: _DiskFillsUp(p, room=len(before) // 2)  # noqa: E731
    monkeypatch.setattr(modelfile, "open", fills_up, raising=False)
    with pytest.raises(AfpsError, match="disk is full"):
        fitted.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["padim.pt"]  # no half-written file left


def test_pickled_code_is_never_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    path = tmp_path / "evil.pt"
    torch.save({"kind": "afps-padim", "payload": Evil()}, path)
    with pytest.raises(ModelFileError):
        PadimModel.load(path, device="cpu")
    assert not (tmp_path / "pwned").exists()


def test_missing_torchvision_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("AFPS_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        resolve_weights(get_spec("resnet18"))
    with pytest.raises(WeightsNotFoundError, match="Unknown backbone"):
        get_spec("vgg-nonexistent")


def test_torchvision_weights_found_in_hub_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(
        torchvision.models.mobilenet_v2().state_dict(),
        tmp_path / "checkpoints" / "mobilenet_v2-7ebf99e0.pth",
    )
    bb = Backbone("mobilenet_v2")
    assert [f.shape[1] for f in bb(torch.rand(1, 3, 64, 64))] == [24, 32, 96]


def test_unfitted_and_too_few_images(backbone):
    model = PadimModel(PadimConfig(input_size=(64, 64)), device="cpu", backbone=backbone)
    with pytest.raises(AfpsError, match="not fitted"):
        model.score_image(texture(np.random.default_rng(0)))
    with pytest.raises(AfpsError, match="at least 2"):
        model.fit([texture(np.random.default_rng(0))])


def test_blur_preserves_mass_and_smooths():
    x = torch.zeros(1, 1, 40, 40)
    x[0, 0, 20, 20] = 1.0
    y = blur(x, 4.0)
    assert y.sum().item() == pytest.approx(1.0, rel=1e-4)
    assert y.max().item() < 0.02


def test_edge_correction_damps_a_rim_that_every_normal_image_has(fitted):
    from afps_gui.core.preprocess import Box

    rng = np.random.default_rng(7)
    model = PadimModel(fitted.config, device="cpu", backbone=fitted._backbone)
    model.normal, model.grid, model.channel_idx = fitted.normal, fitted.grid, fitted.channel_idx
    gh, gw = model.grid
    box = Box(0, 64, 0, 64)
    maps = []
    for _ in range(8):  # normal maps whose outer ring scores twice the interior
        pm = rng.uniform(0.9, 1.1, (gh, gw)).astype(np.float32)
        rim = np.ones((gh, gw), bool)
        rim[1:-1, 1:-1] = False
        pm[rim] *= 2
        maps.append(pm)
    model.learn_edges(maps, [box] * 8)
    assert model.edge_scale[0] > 1.7 and model.edge_scale[-1] == 1.0
    assert all(s >= 1.0 for s in model.edge_scale)
    divisor = model._edge_divisor(box, (gh, gw)).numpy()
    corrected = np.stack(maps) / divisor
    # the rim now scores like the interior (it scored twice as much)
    assert abs(corrected[:, rim].mean() / corrected[:, ~rim].mean() - 1) < 0.05


def test_calibration_learns_edges_and_the_file_keeps_them(fitted, tmp_path):
    rng = np.random.default_rng(8)
    threshold = fitted.calibrate_on([texture(rng) for _ in range(6)])
    assert threshold == fitted.threshold and fitted.edge_scale is not None
    fitted.save(tmp_path / "m.pt")
    assert PadimModel.load(tmp_path / "m.pt", device="cpu").edge_scale == fitted.edge_scale


def test_huge_images_shrink_in_uint8_before_the_float_resize():
    from afps_gui.core import preprocess

    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (2400, 1800, 3), dtype=np.uint8)
    shrunk = preprocess._box_shrunk(big, (64, 64))
    assert shrunk.dtype == np.uint8 and shrunk.shape == (
        -(-2400 // 18),
        -(-1800 // 14),
        3,
    )  # PIL rounds up
    assert abs(float(shrunk.mean()) - float(big.mean())) < 1.0  # box averages
    t, box = preprocess.to_input(big, (64, 64), "fit")
    assert t.shape == (3, 64, 64) and box.y1 - box.y0 == 64
    # Less than 8 times the input (a 1500 x 1000 photo at 224): untouched, inputs unchanged.
    photo = rng.integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
    assert preprocess._box_shrunk(photo, (224, 224)) is photo
