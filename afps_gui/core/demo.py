"""A small synthetic inspection dataset, so that the app can be tried without any real data.

The surface looks like brushed, slightly unevenly lit metal; "Spot" images carry one or two
soft round blobs and "Scratch" images one thin curved line. Defects are small (well under 2 % of
the image) but of clear contrast, so a pretrained-CNN anomaly detector finds them while they
still have to be looked for. Everything is drawn by this module from the seed alone: the same
arguments give the same files, byte for byte.

The result is a plain ``folders`` dataset:

    root/good/good_000.png          normal images
    root/<Type>/<type>_000.png      defect images
    root/masks/<Type>/<type>_000.png    their masks (white = defect)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import DatasetError
from .images import MIN_SIDE
from .jobs import Progress, atomic_write, check_cancel, no_progress

MARKER = ".afps-demo.json"  # written last: a folder with a complete marker holds a whole set
_FORMAT = 1  # raise when the drawing changes, so that old demo sets are drawn again

Drawer = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # draws into image, returns mask


# --- the surface ---------------------------------------------------------------------------


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma) -> np.ndarray:
    """Smoothed white noise rescaled to unit standard deviation."""
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return smooth / (smooth.std() + 1e-12)


def draw_surface(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A float (H, W) grey image of brushed metal: grain, brushing streaks, mottling, light."""
    height, width = shape
    image = np.full(shape, 120.0 + rng.uniform(-8.0, 8.0))
    image += rng.uniform(2.5, 3.5) * _field(rng, shape, 0.8)  # fine grain
    image += rng.uniform(4.0, 6.0) * _field(rng, shape, (0.6, 12.0))  # brushing along x
    image += rng.uniform(2.0, 4.0) * _field(rng, shape, max(height, width) / 12)  # mottling
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0.0, 2 * np.pi)
    image += rng.uniform(8.0, 16.0) * (np.cos(angle) * xx + np.sin(angle) * yy - 0.5)
    cy, cx = rng.uniform(0.3, 0.7, size=2)
    image -= rng.uniform(6.0, 12.0) * ((yy - cy) ** 2 + (xx - cx) ** 2)  # lamp hot spot
    return image


# --- the defects ---------------------------------------------------------------------------


def draw_spot(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two soft, roughly round blobs, darker or brighter than the surface."""
    height, width = image.shape
    side = min(height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    mask = np.zeros(image.shape, dtype=bool)
    for _ in range(rng.integers(1, 3)):
        radius = rng.uniform(0.03, 0.055) * side
        cy = rng.uniform(2 * radius, height - 2 * radius)
        cx = rng.uniform(2 * radius, width - 2 * radius)
        aspect = rng.uniform(0.75, 1.3)
        turn = rng.uniform(0.0, np.pi)
        u = (xx - cx) * np.cos(turn) + (yy - cy) * np.sin(turn)
        v = -(xx - cx) * np.sin(turn) + (yy - cy) * np.cos(turn)
        distance = np.hypot(u * aspect, v / aspect) / radius  # 1.0 on the blob's edge
        alpha = 1.0 / (1.0 + np.exp(8.0 * (distance - 1.0)))  # soft edge, 0.5 at distance 1
        sign = -1.0 if rng.random() < 0.7 else 1.0  # blowholes and pits are mostly dark
        image += sign * rng.uniform(45.0, 70.0) * alpha
        mask |= alpha >= 0.5
    return mask


def draw_scratch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One thin, slightly curved line at a random angle, fading towards its ends."""
    height, width = image.shape
    side = min(height, width)
    length = rng.uniform(0.45, 0.8) * side
    angle = rng.uniform(0.0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    centre = np.array([width, height]) / 2 + rng.uniform(-0.12, 0.12, size=2) * side
    start, end = centre - direction * length / 2, centre + direction * length / 2
    bend = centre + normal * rng.uniform(-0.15, 0.15) * length
    t = np.linspace(0.0, 1.0, max(8, int(length * 3)))[:, None]
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end  # quadratic Bezier, (x, y)

    half_width = rng.uniform(0.6, 1.1)
    box = _bounding_box(curve, margin=3, shape=image.shape)
    yy, xx = np.mgrid[box]
    pixels = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    distance, nearest = cKDTree(curve).query(pixels)  # only near the line: 5x faster
    distance = distance.reshape(yy.shape)
    along = t[nearest, 0].reshape(yy.shape)
    alpha = np.zeros(image.shape)
    alpha[box] = np.clip(half_width + 0.5 - distance, 0.0, 1.0)  # an anti-aliased line
    alpha[box] *= np.clip(np.minimum(along, 1 - along) / 0.12, 0.35, 1.0)  # fading ends
    sign = -1.0 if rng.random() < 0.75 else 1.0
    image += sign * rng.uniform(50.0, 75.0) * alpha
    return alpha >= 0.25


def _bounding_box(points: np.ndarray, margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """(rows, columns) slices around (x, y) points, widened by ``margin``, inside the image."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + margin + 1
    return slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))


DRAWERS: dict[str, Drawer] = {"spot": draw_spot, "scratch": draw_scratch}
_STREAM = {"normal": 0, "spot": 1, "scratch": 2}  # fixed per kind: the order of types is free


def render(kind: str, index: int, size: tuple[int, int], seed: int):
    """(uint8 image, bool mask or None) for the ``index``-th image of ``kind``; pure function."""
    rng = np.random.default_rng([seed % 2**63, _STREAM[kind], index])
    width, height = size
    image = draw_surface((height, width), rng)
    mask = None if kind == "normal" else DRAWERS[kind](image, rng)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


# --- writing the set -----------------------------------------------------------------------


def make_demo_dataset(
    root: str | os.PathLike,
    *,
    n_normal: int = 60,
    n_per_type: int = 20,
    size: tuple[int, int] = (160, 160),
    types: tuple[str, ...] = ("Spot", "Scratch"),
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> Path:
    """Write a demo ``folders`` dataset into ``root`` and return ``root``.

    ``size`` is (width, height). ``types`` are chosen from "Spot" and "Scratch" (any case;
    the folder takes the spelling given). A root that already holds this very set is returned
    untouched; an older or unfinished demo set there is replaced; a folder holding anything
    else is refused (DatasetError), never mixed into. A cancelled run removes what it wrote.
    """
    root = Path(root)
    settings = _settings(n_normal, n_per_type, size, types, seed)
    plan = _plan(settings)
    files = [rel for item in plan for rel in (item[2], item[3]) if rel]
    if _is_complete(root, settings, files):
        return root
    _clear_for_writing(root)
    _write_marker(root, settings, files, complete=False)
    try:
        _draw_all(root, plan, settings, progress, cancel)
    except BaseException:
        _remove_set(root, files)
        raise
    _write_marker(root, settings, files, complete=True)
    return root


def _settings(n_normal, n_per_type, size, types, seed) -> dict:
    if n_normal < 1 or n_per_type < 0:
        raise ValueError("a demo set needs at least one normal image and no negative counts")
    width, height = (int(v) for v in size)
    if min(width, height) < max(MIN_SIDE, 32):
        raise ValueError(f"demo images must be at least 32 pixels a side, not {width}x{height}")
    unknown = [t for t in types if t.casefold() not in DRAWERS]
    if unknown or len({t.casefold() for t in types}) != len(types):
        raise ValueError(f"demo types must be distinct names among Spot, Scratch; got {types}")
    return {
        "format": _FORMAT,
        "n_normal": int(n_normal),
        "n_per_type": int(n_per_type),
        "size": [width, height],
        "types": list(types),
        "seed": int(seed),
    }


def _plan(settings: dict) -> list[tuple[str, int, str, str | None]]:
    """(kind, index, image rel path, mask rel path or None) for every file of the set."""
    plan = []
    digits = max(3, len(str(max(settings["n_normal"], settings["n_per_type"]))))
    for i in range(settings["n_normal"]):
        plan.append(("normal", i, f"good/good_{i:0{digits}d}.png", None))
    for type_name in settings["types"]:
        kind = type_name.casefold()
        for i in range(settings["n_per_type"]):
            name = f"{kind}_{i:0{digits}d}.png"
            plan.append((kind, i, f"{type_name}/{name}", f"masks/{type_name}/{name}"))
    return plan


def _draw_all(root: Path, plan, settings: dict, progress: Progress, cancel) -> None:
    size = tuple(settings["size"])
    for done, (kind, index, image_rel, mask_rel) in enumerate(plan, start=1):
        check_cancel(cancel)
        image, mask = render(kind, index, size, settings["seed"])
        _save_png(root / image_rel, image)
        if mask_rel:
            _save_png(root / mask_rel, mask.astype(np.uint8) * 255)
        progress(done, len(plan), f"Drawing demo images: {done} of {len(plan)}")


def _save_png(path: Path, pixels: np.ndarray) -> None:
    """Write through a temporary name, so that no half-written image ever has the real name.

    Unlike ``atomic_write`` this does not fsync each file: a demo set can be drawn again, and
    a hundred fsyncs cost more than drawing the images on a slow disk. The marker, which says
    that the set is complete, is written last and with fsync.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- the marker and the folder's state -----------------------------------------------------


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_marker(root: Path, settings: dict, files: list[str], *, complete: bool) -> None:
    # The file list is written before drawing starts, so an interrupted run can be cleaned up.
    marker = {"complete": complete, "settings": settings, "files": files}
    with atomic_write(root / MARKER) as tmp:
        tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")


def _is_complete(root: Path, settings: dict, files: list[str]) -> bool:
    marker = _read_marker(root)
    if not marker or not marker.get("complete") or marker.get("settings") != settings:
        return False
    return all((root / rel).is_file() for rel in files)


def _clear_for_writing(root: Path) -> None:
    """Remove an older or unfinished demo set; refuse a folder that holds anything else."""
    marker = _read_marker(root)
    if marker is not None:
        _remove_set(root, [str(rel) for rel in marker.get("files", [])])
    elif root.is_dir() and any(not p.name.startswith(".") for p in root.iterdir()):
        raise DatasetError(
            f"{root} is not empty and holds no demo dataset; nothing was written. "
            "Choose an empty folder (or a new one) for the demo dataset."
        )


def _remove_set(root: Path, files: list[str]) -> None:
    """Delete the listed files and the marker, then whichever of their folders became empty."""
    for rel in files:
        (root / rel).unlink(missing_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    folders = {(root / rel).parent for rel in files}
    folders |= {folder.parent for folder in folders}
    folders.discard(root)  # the chosen folder itself stays, even when empty
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if root in folder.parents and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
