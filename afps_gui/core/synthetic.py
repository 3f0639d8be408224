"""Synthetic defects pasted into normal images, so that a project with no defect image yet can
still compare detection settings (tuning) on something that looks like a defect and has a mask.

Three kinds, each at a random place and size (1.5 to 8 % of the image's long side, log-uniform,
since real defects range from a few pixels to a tenth of the part):
- a spot: a soft-edged ellipse darker or brighter than the part around it;
- a scratch: a thin polyline of a few segments;
- a transplant: a rotated piece of the same image moved elsewhere (CutPaste), a defect made of
  the part's own texture, which no colour statistic gives away.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

KINDS = ("spot", "scratch", "transplant")


def add_defect(image: np.ndarray, rng: np.random.Generator, kind: str | None = None):
    """uint8 (h, w, 3) -> (a defective copy, bool (h, w) mask of the changed pixels)."""
    h, w = image.shape[:2]
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    size = float(np.exp(rng.uniform(np.log(0.015), np.log(0.08)))) * max(h, w)
    size = max(size, 3.0)
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "spot":
        alpha = _ellipse(yy, xx, cy, cx, size, rng)
        out = _blend(image, _shifted_colour(image, alpha, rng), alpha)
    elif kind == "scratch":
        alpha = _polyline(yy, xx, cy, cx, size * 2.5, max(1.0, size / 12), rng)
        out = _blend(image, _shifted_colour(image, alpha, rng), alpha)
    else:
        alpha = _ellipse(yy, xx, cy, cx, size, rng)
        out = _blend(image, _transplant(image, cy, cx, size, rng), alpha)
    return out, alpha > 0.5


def _ellipse(yy, xx, cy, cx, size, rng) -> np.ndarray:
    a, b = size / 2, size / 2 * rng.uniform(0.4, 1.0)
    t = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(t) + dy * np.sin(t)) / a
    v = (-dx * np.sin(t) + dy * np.cos(t)) / b
    r = np.sqrt(u * u + v * v)
    return np.clip((1.2 - r) / 0.4, 0, 1)  # soft edge: fully inside at r < 0.8


def _polyline(yy, xx, cy, cx, length, width, rng) -> np.ndarray:
    dist = np.full(yy.shape, np.inf, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    y0, x0 = cy, cx
    for _ in range(int(rng.integers(1, 4))):
        angle += rng.normal(0, 0.4)
        seg = length / 3
        y1, x1 = y0 + seg * np.sin(angle), x0 + seg * np.cos(angle)
        dist = np.minimum(dist, _segment_distance(yy, xx, y0, x0, y1, x1))
        y0, x0 = y1, x1
    return np.clip((width - dist) / max(width / 2, 0.5) + 0.5, 0, 1)


def _segment_distance(yy, xx, y0, x0, y1, x1) -> np.ndarray:
    vy, vx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * vy + (xx - x0) * vx) / max(vy * vy + vx * vx, 1e-6), 0, 1)
    return np.hypot(yy - (y0 + t * vy), xx - (x0 + t * vx))


def _shifted_colour(image, alpha, rng) -> np.ndarray:
    """The part's local colour pushed darker or brighter by 25 to 60 %, with a little texture."""
    inside = alpha > 0.5
    local = image[inside].mean(0) if inside.any() else image.reshape(-1, 3).mean(0)
    sign = 1 if local.mean() < 128 else -1
    if rng.random() < 0.3:
        sign = -sign
    colour = np.clip(local + sign * rng.uniform(0.25, 0.6) * 255, 0, 255)
    noise = rng.normal(0, 6, image.shape[:2])[..., None]
    return np.clip(colour[None, None, :] + noise, 0, 255)


def _transplant(image, cy, cx, size, rng) -> np.ndarray:
    """A copy of the image with a rotated piece from elsewhere in it centred on (cy, cx)."""
    h, w = image.shape[:2]
    r = int(np.ceil(size * 0.75)) + 1
    sy = int(rng.integers(r, max(r + 1, h - r)))
    sx = int(rng.integers(r, max(r + 1, w - r)))
    piece = image[max(sy - r, 0) : sy + r, max(sx - r, 0) : sx + r]
    piece = ndimage.rotate(piece, rng.uniform(30, 330), reshape=False, mode="reflect", order=1)
    out = image.astype(np.float32)
    y0, x0 = int(round(cy)) - piece.shape[0] // 2, int(round(cx)) - piece.shape[1] // 2
    ys, xs = (
        slice(max(y0, 0), min(y0 + piece.shape[0], h)),
        slice(max(x0, 0), min(x0 + piece.shape[1], w)),
    )
    out[ys, xs] = piece[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


def _blend(image, other, alpha) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(image * (1 - a) + other * a, 0, 255).astype(np.uint8)
