"""Decoding every kind of image file the app may meet, and a clear error for every bad one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fixtures_data import png_header_only, save_image, save_mask, texture
from PIL import Image

from afps_gui.core import images
from afps_gui.core.errors import ImageError
from afps_gui.core.images import image_size, load_image, load_mask, used_bit_depth


def _rgb(height=24, width=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _reason(exc_info) -> str:
    return exc_info.value.reason


# --- good files in every pixel format ----------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_rgb_round_trips_exactly(tmp_path, ext):
    pixels = _rgb()
    path = tmp_path / f"a{ext}"
    Image.fromarray(pixels).save(path)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, pixels)


def test_grey_jpeg_becomes_three_equal_channels(tmp_path):
    path = save_image(tmp_path / "a.JPG", format="JPEG", quality=95)
    out = load_image(path)
    assert out.shape == (24, 32, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0].astype(int) - texture()).mean() < 8


def test_rgba_drops_alpha_and_keeps_colour(tmp_path):
    pixels = _rgb()
    alpha = np.zeros((24, 32, 1), dtype=np.uint8)  # fully transparent: colours must survive
    Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), pixels)


def test_grey_with_alpha(tmp_path):
    grey = texture()
    Image.fromarray(np.stack([grey, np.full_like(grey, 7)], axis=2), "LA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[..., 1], grey)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (20, 20), 0)
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.paste(1, (0, 0, 10, 20))
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    out = load_image(tmp_path / "p.png")
    assert out.shape == (20, 20, 3)
    assert tuple(out[0, 0]) == (200, 100, 50) and tuple(out[0, 15]) == (10, 20, 30)


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (24, 24), (0, 255, 255, 0))  # pure red in CMYK
    img.save(tmp_path / "c.jpg", quality=95)
    out = load_image(tmp_path / "c.jpg")
    red, green, blue = out[12, 12].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_one_bit(tmp_path):
    values = np.zeros((20, 20), dtype=bool)
    values[:, 10:] = True
    Image.fromarray(values).save(tmp_path / "b.png")
    out = load_image(tmp_path / "b.png")
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 15].tolist() == [255, 255, 255]


def test_sixteen_bit_png_scales_by_bit_depth_not_by_image_range(tmp_path):
    # A 12-bit sensor: values up to 4095 map to 0..255 whatever this image's own range is.
    values = np.full((20, 20), 1000, dtype=np.uint16)
    values[0, 0] = 4095
    values[0, 1] = 2048
    Image.fromarray(values).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")
    out = load_image(tmp_path / "a.png")[..., 0]
    assert out[0, 0] == 255 and out[0, 1] == 128 and out[5, 5] == round(1000 * 255 / 4095)


def test_sixteen_bit_dim_image_is_not_stretched(tmp_path):
    values = np.full((20, 20), 100, dtype=np.uint16)  # fits in 8 bits: kept as it is
    values[0, 0] = 200
    Image.fromarray(values).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")[..., 0]
    assert out[5, 5] == 100 and out[0, 0] == 200


def test_full_sixteen_bit_range(tmp_path):
    values = np.full((20, 20), 65535, dtype=np.uint16)
    values[0, 0] = 0
    Image.fromarray(values).save(tmp_path / "a.tif")
    out = load_image(tmp_path / "a.tif")[..., 0]
    assert out[0, 0] == 0 and out[5, 5] == 255


def test_used_bit_depth():
    assert [used_bit_depth(v) for v in (0, 255, 256, 1023, 1024, 4096, 65535)] == [
        8,
        8,
        10,
        10,
        12,
        14,
        16,
    ]
    assert used_bit_depth(1 << 20) == 21


def test_thirty_two_bit_integer_tiff(tmp_path):
    values = np.full((20, 20), 16383, dtype=np.int32)  # 14-bit white
    values[0, 0] = -5  # negative counts as black
    Image.fromarray(values, "I").save(tmp_path / "a.tif")
    out = load_image(tmp_path / "a.tif")[..., 0]
    assert out[5, 5] == 255 and out[0, 0] == 0


@pytest.mark.parametrize(
    ("stored", "expected"), [(0.5, 128), (1.0, 255), (2.0, 2), (300.0, 255), (-1.0, 0)]
)
def test_float_tiff(tmp_path, stored, expected):
    values = np.full((20, 20), stored, dtype=np.float32)
    if stored <= 1.0:
        values[0, 0] = 0.0  # max stays at or below 1: the [0, 1] convention
    Image.fromarray(values, "F").save(tmp_path / "a.tif")
    assert load_image(tmp_path / "a.tif")[5, 5, 0] == expected


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high, white block top-left
    pixels[:5, :5] = 255
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert image_size(tmp_path / "r.jpg") == (20, 40)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:5, -5:].mean() > 200 and out[:5, :5].mean() < 50  # now top-right


def test_image_size_reads_header_only(tmp_path):
    path = png_header_only(tmp_path / "big.png", 5000, 3000)
    assert image_size(path) == (5000, 3000)


# --- bad files: each one an ImageError that names the file and says why ------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist") as info:
        load_image(tmp_path / "nope.png")
    assert str(tmp_path / "nope.png") in str(info.value)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)") as info:
        load_image(tmp_path / "empty.jpg")
    assert "empty.jpg" in str(info.value) and "copy it again" in str(info.value)


def test_text_file_with_image_extension(tmp_path):
    (tmp_path / "notes.png").write_text("these are not pixels\n" * 10)
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="not an image"):
        image_size(tmp_path / "notes.png")


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path / "dir.png")


def test_permission_denied(tmp_path, monkeypatch):
    # Tests run as root, where chmod 000 blocks nothing: make the open itself fail instead.
    path = save_image(tmp_path / "a.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images.Image, "open", denied)
    with pytest.raises(ImageError, match="permission denied"):
        load_image(path)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_jpeg_fails(tmp_path, fraction):
    whole = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(whole, "JPEG", quality=90)
    data = whole.getvalue()
    (tmp_path / "t.jpg").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(tmp_path / "t.jpg")


def test_truncated_png_fails(tmp_path):
    whole = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(whole, "PNG")
    data = whole.getvalue()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(tmp_path / "t.png")


def test_header_cut_short(tmp_path):
    whole = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(whole, "JPEG")
    (tmp_path / "t.jpg").write_bytes(whole.getvalue()[:40])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(tmp_path / "t.jpg")


def test_corrupt_png_data(tmp_path):
    whole = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(whole, "PNG")
    data = bytearray(whole.getvalue())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 400] = b"\x00" * 390  # garbage in the compressed pixels
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(tmp_path / "c.png")


def test_header_without_pixels(tmp_path):
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(png_header_only(tmp_path / "h.png", 64, 64))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_too_many_pixels_refused_before_decoding(tmp_path):
    # 110 Mpx: above our limit, below PIL's own hard limit; no pixel data exists to decode.
    path = png_header_only(tmp_path / "huge.png", 11_000, 10_000)
    with pytest.raises(ImageError, match="too large") as info:
        load_image(path)
    assert "11000x10000" in str(info.value)


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pil_bomb_warning_raised_as_error_is_an_image_error(tmp_path):
    path = png_header_only(tmp_path / "big.png", 9_500, 10_000)  # above PIL's warning level
    with pytest.raises(ImageError, match="too large"):
        load_image(path)


def test_decompression_bomb_header(tmp_path):
    path = png_header_only(tmp_path / "bomb.png", 40_000, 40_000)  # PIL itself refuses this
    with pytest.raises(ImageError, match="too large"):
        load_image(path)


def test_max_pixels_is_adjustable(tmp_path):
    path = save_image(tmp_path / "a.png", (200, 100))
    with pytest.raises(ImageError, match="too large"):
        load_image(path, max_pixels=10_000)
    assert load_image(path, max_pixels=20_000).shape == (100, 200, 3)


def test_tiny_image(tmp_path):
    path = save_image(tmp_path / "tiny.png", (40, 10))
    with pytest.raises(ImageError, match="too small to inspect"):
        load_image(path)
    assert load_image(save_image(tmp_path / "ok.png", (16, 16))).shape == (16, 16, 3)


# --- masks -------------------------------------------------------------------------------------


def test_mask_from_white_on_black(tmp_path):
    path = save_mask(tmp_path / "m.png", (32, 24), box=(4, 2, 10, 8))
    mask = load_mask(path, (24, 32))
    assert mask.dtype == bool and mask.shape == (24, 32)
    assert mask.sum() == 36 and mask[2:8, 4:10].all()


def test_mask_threshold_ignores_faint_pixels(tmp_path):
    values = np.zeros((20, 20), dtype=np.uint8)
    values[0, 0], values[0, 1], values[0, 2] = 255, 128, 60  # anti-aliased edge
    Image.fromarray(values).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").sum() == 2


def test_mask_of_zeros_and_ones(tmp_path):
    values = np.zeros((20, 20), dtype=np.uint8)
    values[3:5, 3:5] = 1
    Image.fromarray(values).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").sum() == 4


def test_label_map_mask_counts_every_region(tmp_path):
    # VisA's masks number their regions 1..k: region 2 and 3 are defects too, not background.
    values = np.zeros((20, 20), dtype=np.uint8)
    values[1:3, 1:3], values[5:7, 5:7], values[10:13, 10:13] = 1, 2, 3
    Image.fromarray(values).save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png")
    assert mask.sum() == 4 + 4 + 9 and mask[11, 11] and mask[6, 6]


def test_red_annotation_mask(tmp_path):
    values = np.zeros((20, 20, 3), dtype=np.uint8)
    values[3:5, 3:5] = (255, 0, 0)
    Image.fromarray(values).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").sum() == 4


def test_sixteen_bit_and_one_bit_masks(tmp_path):
    values = np.zeros((20, 20), dtype=np.uint16)
    values[:2, :2] = 65535
    Image.fromarray(values).save(tmp_path / "m16.png")
    assert load_mask(tmp_path / "m16.png").sum() == 4
    bits = np.zeros((20, 20), dtype=bool)
    bits[:3, :3] = True
    Image.fromarray(bits).save(tmp_path / "m1.png")
    assert load_mask(tmp_path / "m1.png").sum() == 9


def test_empty_mask(tmp_path):
    assert not load_mask(save_mask(tmp_path / "m.png", box=None)).any()


def test_mask_of_the_wrong_size(tmp_path):
    path = save_mask(tmp_path / "m.png", (30, 10))
    with pytest.raises(ImageError, match="mask is 30x10 but its image is 32x24") as info:
        load_mask(path, (24, 32))
    assert "m.png" in str(info.value)


def test_broken_mask(tmp_path):
    (tmp_path / "m.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageError):
        load_mask(tmp_path / "m.png")
