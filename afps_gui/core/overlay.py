"""Heat-map overlay images for reports and batch predictions, and the one colour scale of a
heat map on screen and in a saved file (``map_levels``) (numpy + Pillow, no Qt)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .jobs import atomic_write, refuse_overwrite
from .preprocess import map_to_image

# A perceptually ordered map (dark blue -> cyan -> yellow -> red), 5 anchors interpolated.
_ANCHORS = np.array(
    [
        [0.0, 0, 0, 130],
        [0.25, 0, 120, 255],
        [0.5, 0, 230, 200],
        [0.75, 255, 220, 0],
        [1.0, 230, 0, 0],
    ]
)


# The colour map as a 256-entry table: colouring costs one byte-sized index per pixel instead
# of float64 planes per channel.
_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), _ANCHORS[:, 0], _ANCHORS[:, c]) for c in (1, 2, 3)],
    axis=-1,
).astype(np.uint8)


def colourise(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 -> uint8 RGB (256 levels)."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0, 1)
    v *= 255
    v += 0.5
    return _LUT[v.astype(np.uint8)]


# The long side of an overlay, in pixels. An overlay is a preview for a person: drawing it at
# the image's full size cost 5.9 GB for a 9000 x 9000 image (float maps and colour planes of
# 81 megapixels). Bounded, one overlay takes tens of MB whatever the image's size.
MAX_OVERLAY_SIDE = 2048

# Rows of the image shrunk at a time: the working memory of the shrink stays a few MB.
_BAND_ROWS = 256


def overlay_shape(height: int, width: int, max_side: int = MAX_OVERLAY_SIDE) -> tuple[int, int]:
    """(height, width) of the overlay of an image of this size (the image's own if small)."""
    k = _factor(height, width, max_side)
    return -(-height // k), -(-width // k)


def _factor(height: int, width: int, max_side: int) -> int:
    return max(1, -(-max(height, width) // max(1, max_side)))


def shrink(image: np.ndarray, max_side: int = MAX_OVERLAY_SIDE) -> np.ndarray:
    """The image averaged over k x k blocks so that its long side is at most ``max_side``.

    Works a band of rows at a time, so it never allocates more than a few MB beyond the
    result; an image already small enough is returned as it is (no copy).
    """
    h, w = image.shape[:2]
    k = _factor(h, w, max_side)
    if k == 1:
        return image
    oh, ow = overlay_shape(h, w, max_side)
    out = np.empty((oh, ow) + image.shape[2:], dtype=np.uint8)
    cols, col_counts = np.arange(0, w, k), np.diff(np.append(np.arange(0, w, k), w))
    extra = (1,) * (image.ndim - 2)
    step = max(1, _BAND_ROWS // k)  # output rows per band
    for r0 in range(0, oh, step):
        r1 = min(oh, r0 + step)
        band = image[r0 * k : min(h, r1 * k)]
        sums = np.add.reduceat(band, cols, axis=1, dtype=np.uint32)
        rows = np.arange(0, band.shape[0], k)
        sums = np.add.reduceat(sums, rows, axis=0, dtype=np.uint32)
        row_counts = np.diff(np.append(rows, band.shape[0]))
        counts = (row_counts[:, None] * col_counts[None, :]).reshape(sums.shape[:2] + extra)
        out[r0:r1] = (sums + counts // 2) // counts
    return out


def model_levels(threshold: float | None, floor: float) -> tuple[float, float]:
    """Colour scale of a model's maps: typical normal score (``score_floor``) to as far above
    the threshold, so that the threshold sits in the middle of every colour bar and colours
    compare across images (floor to floor + 1 without a usable threshold)."""
    floor = float(floor)
    hi = 2 * float("nan" if threshold is None else threshold) - floor
    return floor, hi if hi > floor else floor + 1.0


def display_levels(levels: tuple[float, float], amap: np.ndarray) -> tuple[float, float]:
    """The model's colour scale, widened to the image's own range where its map would
    saturate at either end: on a new part (or with a model whose threshold no longer fits) a
    map whose every pixel lies above the scale painted as one flat colour."""
    lo, hi = levels
    sample = np.asarray(amap, dtype=np.float32)[::4, ::4]
    if sample.size == 0:
        return lo, hi
    a_lo, a_hi = np.percentile(sample, [1.0, 99.9])
    return float(min(lo, a_lo)), float(max(hi, a_hi))


def map_levels(threshold: float | None, floor: float, amap: np.ndarray) -> tuple[float, float]:
    """The one colour scale of an image's heat map (vmin, vmax): the viewer, the Inspect view
    and the overlays ``afps predict`` and ``afps report`` save all colour a map with it."""
    return display_levels(model_levels(threshold, floor), amap)


def inside_outline(amap: np.ndarray, threshold: float) -> np.ndarray:
    """Bool mask of the map pixels that the threshold outline encloses.

    Strictly above, as in ``padim.is_anomalous``: an image is NG exactly when its outline
    encloses something, and a map that only touches the threshold is OK with no outline.
    """
    return np.asarray(amap) > threshold


def render_overlay(
    image: np.ndarray,
    amap: np.ndarray,
    threshold: float | None,
    vmin: float,
    vmax: float,
    alpha: float = 0.45,
    max_side: int = MAX_OVERLAY_SIDE,
) -> np.ndarray:
    """Blend the anomaly map over the image and outline the region above the threshold.

    Drawn on a preview whose long side is at most ``max_side``: the image is shrunk first and
    the map (at the model's resolution) is enlarged only to the preview's size, never to a
    large image's full size.
    """
    preview = shrink(image, max_side)
    h, w = preview.shape[:2]
    full = map_to_image(amap, (h, w))
    edge = None
    if threshold is not None:
        above = inside_outline(full, threshold)
        edge = above & ~_eroded(above)
        del above
    lo, span = np.float32(vmin), np.float32(max(vmax - vmin, 1e-6))
    out = np.empty((h, w, 3), dtype=np.uint8)
    for r0 in range(0, h, _BAND_ROWS):  # float work a band at a time: a few MB, not 12 B/px
        r1 = min(h, r0 + _BAND_ROWS)
        heat = colourise((full[r0:r1] - lo) / span).astype(np.float32)
        heat *= np.float32(alpha)
        band = preview[r0:r1].astype(np.float32)
        band *= np.float32(1 - alpha)
        band += heat
        if edge is not None:
            band[edge[r0:r1]] = (255, 255, 255)
        np.clip(band, 0, 255, out=band)
        out[r0:r1] = band
    return out


def _eroded(mask: np.ndarray) -> np.ndarray:
    e = mask.copy()
    e[1:] &= mask[:-1]
    e[:-1] &= mask[1:]
    e[:, 1:] &= mask[:, :-1]
    e[:, :-1] &= mask[:, 1:]
    return e


def save_overlay(path: str | os.PathLike, pixels: np.ndarray, *, overwrite: bool = False) -> None:
    """Write the overlay as a PNG; an existing file only with ``overwrite`` (refuse_overwrite)."""
    refuse_overwrite(path, overwrite)
    pixels = shrink(pixels)  # an overlay from elsewhere is bounded as well
    with atomic_write(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
