"""Overlay pixels computed with numpy, so that drawing them costs the UI thread nothing.

pyqtgraph would colour a float map and trace a contour in Python on the UI thread; while a job
keeps the GIL busy that took up to 100 ms per image. Here the map is coloured once (in the
background task that loads the image) and the threshold outline is an edge image made with a
few vectorised numpy operations (about a millisecond), so moving the slider stays live.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

OUTLINE_MAX_SIDE = 480  # outlines are traced at most this big (scaled up for display)


def colourise(amap: np.ndarray, levels: tuple[float, float], cmap_name: str) -> np.ndarray:
    """(h, w) float map -> (h, w, 4) uint8 RGBA through the colour map over ``levels``."""
    lo, hi = levels
    scaled = np.clip((amap - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    lut = pg.colormap.get(cmap_name).getLookupTable(0.0, 1.0, 256, alpha=True)
    index = (scaled * 255).astype(np.uint8)
    rgba = lut[index]
    # Low scores are mostly see-through, so the part itself stays visible where it is normal.
    rgba[..., 3] = (255 * (0.2 + 0.8 * scaled)).astype(np.uint8)
    return np.ascontiguousarray(rgba)


def shrink_step(shape: tuple[int, int], max_side: int = OUTLINE_MAX_SIDE) -> int:
    return max(1, int(math.ceil(max(shape[:2]) / max_side)))


def outline(region: np.ndarray, colour: tuple[int, int, int], width: int = 1) -> np.ndarray:
    """RGBA image that is ``colour`` on the border pixels of the bool ``region``, clear
    elsewhere (a region touching the image's edge is closed there too)."""
    padded = np.pad(region, width, constant_values=False)
    inner = padded.copy()
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        inner &= np.roll(np.roll(padded, dy * width, axis=0), dx * width, axis=1)
    edge = (padded & ~inner)[width:-width, width:-width]
    rgba = np.zeros(region.shape + (4,), dtype=np.uint8)
    rgba[edge] = (*colour, 255)
    return rgba
