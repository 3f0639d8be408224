"""A closer look at a defect: a window around its anomalous region, cut from the original image.

The detection map is coarse: at a 224 px input a scratch on a 1500 x 1000 photo is one or two
patches wide. For typing, the region around the map's peak is cut from the *original* image
(at full resolution where the defect is small, shrunk where it is large), embedded by the same
backbone on a stride-4 grid, and given

- each window patch's detection score, resampled from the image's anomaly map;
- a sharp local map: how far each window patch is from the window's own typical patch
  (defects are a small part of a window twice their size, so its median patch is normal);
- the region's shape: area, elongation, orientation, solidity, extent, measured on the local
  map at window resolution.

The ``region`` classifier (``pooled_classifier``) pools the window's most anomalous patches beside
the detection grid's, and adds the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .preprocess import Box, to_input
from .selection import top_cells

WINDOW_INPUT = 224  # side of the window as the backbone sees it (a 56 x 56 grid at stride 4)
CONTEXT = 2.0  # window side / the region's longer side
MAX_REGIONS = 3
SHAPE_FEATURES = (
    "log_area",  # region area in original pixels (log)
    "area_fraction",  # of the image
    "elongation",  # log ratio of the principal axes
    "cos2theta",  # orientation, as a direction without sign
    "sin2theta",
    "solidity",  # area / convex hull area
    "extent",  # area / bounding-box area
    "log_zoom",  # original pixels per window pixel (log)
    "n_regions",  # separate regions above the detection threshold
    "peak_contrast",  # local map peak over its median
)


@dataclass
class Region:
    """A connected region of the detection map above threshold, in original image pixels."""

    y0: int
    y1: int
    x0: int
    x1: int
    peak: float


@dataclass
class CloseLook:
    """What the classifier sees of one image at full resolution."""

    window: tuple[int, int, int, int]  # (y0, y1, x0, x1) in original image pixels
    embeddings: np.ndarray  # (gh, gw, D) float16, the window's patch embeddings
    patch_map: np.ndarray  # (gh, gw) detection scores resampled onto the window grid
    local_map: np.ndarray  # (gh, gw) distance of each window patch from the window's median patch
    shape: np.ndarray  # (len(SHAPE_FEATURES),) float32
    regions: list[Region]  # every region found, strongest first (the window is around the first)
    valid: Optional[np.ndarray] = None  # (gh, gw) bool, the unpadded window patches
    input_box: Optional[Box] = None  # the crop's place inside the WINDOW_INPUT square input

    def top_cells(self, n: int) -> np.ndarray:
        """(n, 2) window grid cells with the highest detection scores (what the heads pool)."""
        return top_cells(self.patch_map, n, self.valid)


def find_regions(amap: np.ndarray, threshold: Optional[float] = None) -> tuple[np.ndarray, list]:
    """Label the connected regions of a smoothed map above a threshold.

    The threshold is the image's own half maximum (half-way from its median to its peak) or the
    detection threshold, whichever is higher: a faint image still gets its strongest region, and
    two defects of one image stay two regions. Returns the label image and the regions' (label,
    peak) pairs, strongest first; the peak's region always comes first.
    """
    peak = float(amap.max())
    half = float(np.median(amap)) + 0.5 * (peak - float(np.median(amap)))
    level = half
    if threshold is not None and half < threshold < peak:
        level = threshold  # a threshold at or above the peak would leave no region
    labels, n = ndimage.label(amap >= level)
    if n == 0:  # a flat map: the whole image is one region
        return np.ones(amap.shape, dtype=np.int32), [(1, peak)]
    peaks = ndimage.maximum(amap, labels, index=np.arange(1, n + 1))
    order = np.argsort(-np.asarray(peaks))[:MAX_REGIONS]
    return labels, [(int(i + 1), float(peaks[i])) for i in order]


def _window_box(region: tuple[int, int, int, int], image_hw: tuple[int, int]) -> tuple[int, ...]:
    """A square window CONTEXT times the region's longer side (at least WINDOW_INPUT original
    pixels, so small defects are seen at full resolution), shifted inside the image."""
    y0, y1, x0, x1 = region
    h, w = image_hw
    side = max(WINDOW_INPUT, CONTEXT * max(y1 - y0, x1 - x0))
    out = []
    for lo, hi, size in ((y0, y1, h), (x0, x1, w)):
        s = min(int(round(side)), size)
        start = int(round((lo + hi) / 2 - s / 2))
        start = min(max(start, 0), size - s)
        out += [start, start + s]
    return tuple(out)


def _resample(amap: np.ndarray, src_box: tuple[float, ...], grid: tuple[int, int]) -> np.ndarray:
    """Bilinear samples of ``amap`` at the centres of a grid laid over ``src_box`` (map pixels:
    y0, y1, x0, x1)."""
    y0, y1, x0, x1 = src_box
    gh, gw = grid
    h, w = amap.shape
    ys = y0 + (np.arange(gh) + 0.5) * (y1 - y0) / gh
    xs = x0 + (np.arange(gw) + 0.5) * (x1 - x0) / gw
    # grid_sample's normalised coordinates, align_corners=False: -1 and 1 are the outer edges.
    gy = torch.from_numpy(2 * ys / h - 1).float()
    gx = torch.from_numpy(2 * xs / w - 1).float()
    grid_t = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    src = torch.from_numpy(np.ascontiguousarray(amap, dtype=np.float32))[None, None]
    out = F.grid_sample(src, grid_t, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, 0].numpy()


def local_map(emb: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """(gh, gw, D) -> (gh, gw): each patch's standardised distance from the window's median
    patch; a sharp map at window resolution that needs no model of the part."""
    e = emb.astype(np.float32).reshape(-1, emb.shape[-1])
    ref = e if valid is None else e[valid.ravel()]
    med = np.median(ref, axis=0)
    spread = np.median(np.abs(ref - med), axis=0) * 1.4826 + 1e-3
    d = np.sqrt((((e - med) / spread) ** 2).mean(1))
    return d.reshape(emb.shape[:2])


def _convex_hull_area(ys: np.ndarray, xs: np.ndarray) -> float:
    """Area of the convex hull of pixel squares (their corners), by the monotone chain."""
    corners = np.concatenate(
        [np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)]
    ).astype(float)
    pts = np.unique(corners, axis=0)
    if len(pts) < 3:
        return float(len(ys))

    def turn(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(points):
        chain: list = []
        for p in points:
            while len(chain) >= 2 and turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    hull = np.array(half(pts) + half(pts[::-1]))
    x, y = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def shape_of(mask: np.ndarray, pixel_size: float, image_area: float) -> dict[str, float]:
    """Shape measures of a bool region mask whose pixels are ``pixel_size`` original pixels wide."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return {k: 0.0 for k in SHAPE_FEATURES}
    area = len(ys) * pixel_size**2
    cov = np.cov(np.stack([ys, xs]).astype(float)) if len(ys) > 1 else np.zeros((2, 2))
    cov = cov + np.eye(2) / 12  # a pixel's own extent: a single pixel is round, not a point
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    theta = math.atan2(major[0], major[1])  # angle of the long axis from the image's x axis
    bbox = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    return {
        "log_area": math.log(area),
        "area_fraction": area / image_area,
        "elongation": 0.5 * math.log(evals[1] / evals[0]),
        "cos2theta": math.cos(2 * theta),
        "sin2theta": math.sin(2 * theta),
        "solidity": len(ys) / max(_convex_hull_area(ys, xs), 1.0),
        "extent": len(ys) / bbox,
    }


def _region_mask(lmap: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """The local map's half-maximum region that holds (or is nearest to) ``centre``."""
    peak, base = float(lmap.max()), float(np.median(lmap))
    labels, n = ndimage.label(lmap >= base + 0.5 * (peak - base))
    k = labels[centre]
    if k == 0 and n:
        # The detection peak fell between local regions: take the region nearest to it.
        dist = ndimage.distance_transform_edt(labels == 0, return_indices=True)[1]
        k = labels[dist[0][centre], dist[1][centre]]
    return labels == k if k else lmap >= peak


def look_closer(
    image: np.ndarray,
    score,
    embed,
    *,
    threshold: Optional[float] = None,
) -> CloseLook:
    """The close look at one image.

    ``image``: the original uint8 (H, W, 3); ``score``: its ImageScore (map on the valid box of
    the detection input); ``embed``: (1, 3, S, S) tensor -> (1, D, S/4, S/4) patch embeddings;
    ``threshold``: the detection threshold (regions above it count as separate defects).
    """
    H, W = image.shape[:2]
    found = _regions_in_image(score.map, threshold, (H, W))
    r = found[0]
    wy0, wy1, wx0, wx1 = _window_box((r.y0, r.y1, r.x0, r.x1), (H, W))
    emb, box, valid = _embed_window(image[wy0:wy1, wx0:wx1], embed)
    gh, gw = emb.shape[:2]
    cell = WINDOW_INPUT / gh  # window-input pixels per grid cell
    zoom = (wy1 - wy0) / (box.y1 - box.y0)  # original pixels per window-input pixel
    pmap = _window_patch_map(score.map, (H, W), (wy0, wx0), box, zoom, (gh, gw))
    lmap = local_map(emb, valid)
    if valid is not None:
        lmap = np.where(valid, lmap, lmap[valid].min())
    centre = np.unravel_index(
        int(np.argmax(np.where(valid, pmap, -np.inf) if valid is not None else pmap)), pmap.shape
    )
    mask = _region_mask(lmap, centre)
    shape = shape_of(mask, cell * zoom, H * W)
    shape.update(
        log_zoom=math.log(zoom),
        n_regions=float(len(found)),
        peak_contrast=float(lmap.max() / max(np.median(lmap), 1e-6)),
    )
    return CloseLook(
        window=(wy0, wy1, wx0, wx1),
        embeddings=emb.astype(np.float16),
        patch_map=pmap.astype(np.float32),
        local_map=lmap.astype(np.float32),
        shape=np.array([shape[k] for k in SHAPE_FEATURES], dtype=np.float32),
        regions=found,
        valid=valid,
        input_box=box,
    )


def _regions_in_image(
    amap: np.ndarray, threshold: Optional[float], image_hw: tuple[int, int]
) -> list[Region]:
    """``find_regions``' regions as boxes in original image pixels, strongest first."""
    sy, sx = image_hw[0] / amap.shape[0], image_hw[1] / amap.shape[1]
    labels, regions = find_regions(amap, threshold)
    found = []
    for k, peak in regions:
        ys, xs = np.nonzero(labels == k)
        found.append(
            Region(
                int(ys.min() * sy),
                int(math.ceil((ys.max() + 1) * sy)),
                int(xs.min() * sx),
                int(math.ceil((xs.max() + 1) * sx)),
                peak,
            )
        )
    return found


def _embed_window(crop: np.ndarray, embed) -> tuple[np.ndarray, Box, Optional[np.ndarray]]:
    """(patch embeddings (gh, gw, D), the crop's box in the window input, the grid cells that
    are image rather than padding, or None when all are)."""
    tensor, box = to_input(crop, (WINDOW_INPUT, WINDOW_INPUT), "fit")
    with torch.inference_mode():
        emb = embed(tensor[None])[0].permute(1, 2, 0).float().cpu().numpy()
    gh, gw = emb.shape[:2]
    grid_box = box.scaled(1 / (WINDOW_INPUT / gh))
    valid = None
    if (grid_box.y0, grid_box.y1, grid_box.x0, grid_box.x1) != (0, gh, 0, gw):
        valid = np.zeros((gh, gw), dtype=bool)
        valid[grid_box.y0 : grid_box.y1, grid_box.x0 : grid_box.x1] = True
    return emb, box, valid


def _window_patch_map(
    amap: np.ndarray,
    image_hw: tuple[int, int],
    window_origin: tuple[int, int],
    box: Box,
    zoom: float,
    grid: tuple[int, int],
) -> np.ndarray:
    """The detection map resampled onto the window's grid."""
    sy, sx = image_hw[0] / amap.shape[0], image_hw[1] / amap.shape[1]
    # The window grid spans the padded input too: map each cell back to original pixels.
    oy0 = window_origin[0] - box.y0 * zoom
    ox0 = window_origin[1] - box.x0 * zoom
    span = WINDOW_INPUT * zoom
    return _resample(amap, (oy0 / sy, (oy0 + span) / sy, ox0 / sx, (ox0 + span) / sx), grid)


def look_at(padim, item, score) -> CloseLook:
    """The close look at a dataset item (a path, a Sample or a uint8 array) that ``padim`` has
    scored: the original image is decoded again at full size and its window embedded by the
    same backbone, always on the stride-4 grid."""
    from .images import load_image

    if isinstance(item, np.ndarray):
        image = item
    else:
        image = load_image(getattr(item, "path", item))
    threshold = getattr(padim, "threshold", None)
    return look_closer(image, score, lambda b: padim.embed(b, stride=4), threshold=threshold)
