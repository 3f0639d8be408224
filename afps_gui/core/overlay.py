"""Heat-map overlay images for reports and batch predictions (numpy + Pillow, no Qt)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .jobs import atomic_write
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


def colourise(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 -> uint8 RGB."""
    v = np.clip(values, 0, 1)
    rgb = np.stack([np.interp(v, _ANCHORS[:, 0], _ANCHORS[:, c]) for c in (1, 2, 3)], axis=-1)
    return rgb.astype(np.uint8)


def render_overlay(
    image: np.ndarray,
    amap: np.ndarray,
    threshold: float | None,
    vmin: float,
    vmax: float,
    alpha: float = 0.45,
) -> np.ndarray:
    """Blend the anomaly map over the image and outline the region above the threshold."""
    h, w = image.shape[:2]
    full = map_to_image(amap, (h, w))
    heat = colourise((full - vmin) / max(vmax - vmin, 1e-6)).astype(np.float32)
    out = (1 - alpha) * image.astype(np.float32) + alpha * heat
    if threshold is not None:
        above = full > threshold
        edge = above & ~_eroded(above)
        out[edge] = (255, 255, 255)
    return out.clip(0, 255).astype(np.uint8)


def _eroded(mask: np.ndarray) -> np.ndarray:
    e = mask.copy()
    e[1:] &= mask[:-1]
    e[:-1] &= mask[1:]
    e[:, 1:] &= mask[:, :-1]
    e[:, :-1] &= mask[:, 1:]
    return e


def save_overlay(path: str | os.PathLike, pixels: np.ndarray, *, overwrite: bool = False) -> None:
    from .errors import AfpsError

    if not overwrite and os.path.exists(path):
        raise AfpsError(f"{path} exists already; choose another folder or allow overwriting.")
    with atomic_write(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
