"""What the heat-map viewer and the patch inspector show for one image, gathered off the UI thread.

Everything here calls core and returns plain arrays: decoding the image and its mask, the
cached patch map (for a line image, the one its inspection recorded), the display map (core.padim.smooth_map then core.preprocess.map_to_image),
and, for the inspector, the classifier's prediction with its patches and attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..core import line_inspection, pipeline
from ..core.classifier import Prediction
from ..core.classifiers import needs_looks
from ..core.errors import AfpsError
from ..core.images import load_image, load_mask
from ..core.overlay import display_levels as display_levels  # the viewers import it here
from ..core.overlay import model_levels
from ..core.padim import smooth_map
from ..core.preprocess import Box, map_to_image
from ..core.project import default_model_id
from .geometry import GridGeometry


@dataclass
class ModelInfo:
    """The PaDiM numbers the viewers need (copied, so the UI never touches the model)."""

    threshold: float
    floor: float
    input_size: tuple[int, int]
    grid: tuple[int, int]
    resize: str

    @property
    def levels(self) -> tuple[float, float]:
        """Colour scale of the maps (``overlay.model_levels``, the rule the saved overlays
        follow too); ``display_levels`` widens it to an image's map."""
        return model_levels(self.threshold, self.floor)


@dataclass
class ImageView:
    rel: str
    image: np.ndarray  # uint8 (h, w, 3)
    model: Optional[ModelInfo] = None
    patch_map: Optional[np.ndarray] = None  # (gh, gw) raw patch distances
    amap: Optional[np.ndarray] = None  # (h, w) smoothed map on the image
    geometry: Optional[GridGeometry] = None
    score: Optional[float] = None
    normalised: Optional[float] = None
    mask: Optional[np.ndarray] = None  # bool (h, w) ground truth
    overlay: Optional[np.ndarray] = None  # (h, w, 4) uint8 coloured map, made off the UI thread
    levels: Optional[tuple[float, float]] = None  # the colour scale the overlay was made with
    notes: list[str] = field(default_factory=list)  # why something is missing, for the user


def model_info(padim) -> ModelInfo:
    thr = padim.threshold if padim.threshold is not None else float("nan")
    return ModelInfo(
        float(thr),
        float(padim.score_floor),
        tuple(padim.config.input_size),
        tuple(padim.grid),
        padim.config.resize,
    )


@dataclass
class _Source:
    """Where one image of the project comes from: a dataset sample, or a line image (keyed
    "line/...") that the inspection log recorded with its score and patch map."""

    path: object
    sample: Optional[object] = None  # the dataset Sample (its mask), None for a line image
    line: Optional[object] = None  # the inspection log's row of a line image


def _source(project, rel: str) -> _Source:
    sample = project.dataset.by_rel().get(rel)
    if sample is not None:
        return _Source(sample.path, sample=sample)
    record = line_inspection.line_record(project.folder, rel)
    if record is None:
        raise AfpsError(f"{rel} is not in this project's dataset or its inspection log any more.")
    return _Source(record.path_now(), line=record)


def _stored_score(project, rel: str, src: _Source, notes: list[str]):
    """The score and patch map to show: the score cache's for a dataset image, the inspection
    log's for a line image (with a note when a newer anomaly model has been fitted since)."""
    if src.line is None:
        return project.cache.get(rel)
    if src.line.padim_id and src.line.padim_id != default_model_id(project.padim_path):
        notes.append("Scored on the line by an earlier anomaly model: its map may differ now.")
    return line_inspection.recorded_score(src.line)


def load_image_view(project, models, rel: str, *, with_map: bool = True) -> ImageView:
    """Image, mask, cached anomaly map and score of one image (run in a background task);
    a line image's map and score are the ones recorded when it was inspected."""
    src = _source(project, rel)
    view = ImageView(rel, load_image(src.path))
    h, w = view.image.shape[:2]
    view.mask = _mask_of(src.sample, (h, w), view.notes) if src.sample is not None else None
    if not with_map:
        return view
    if not models.has_padim():
        view.notes.append("No anomaly model yet: fit PaDiM first (Model ▸ Fit PaDiM).")
        return view
    padim = models.padim_summary()
    view.model = model_info(padim)
    cached = _stored_score(project, rel, src, view.notes)
    if cached is None:
        view.notes.append("Not scored yet: run Model ▸ Score images to see its anomaly map.")
        return view
    box = Box(*cached.box)
    view.patch_map = cached.patch_map
    view.score = float(cached.score)
    view.normalised = float(padim.normalise(cached.score))
    view.amap = map_to_image(smooth_map(cached.patch_map, box, padim.config), (h, w))
    view.geometry = GridGeometry((h, w), view.model.input_size, box, cached.patch_map.shape)
    return view


def _mask_of(sample, shape: tuple[int, int], notes: list[str]) -> Optional[np.ndarray]:
    if sample.mask is None:
        return None
    try:
        mask = load_mask(sample.mask)
    except AfpsError as exc:
        notes.append(f"Mask not shown: {exc}")
        return None
    if mask.shape != shape:
        mask = map_to_image(mask.astype(np.float32), shape) > 0.5
    return mask


@dataclass
class ClassifierView:
    rel: str
    prediction: Prediction
    classes: list[str]
    n: int
    strategy: str
    sd: float
    look: Optional[ImageView] = None  # the close look's window, zoomed, when the classifier used it
    look_cells: Optional[np.ndarray] = None  # (N, 2) window cells the classifier pooled
    window: Optional[tuple[int, int, int, int]] = None  # (y0, y1, x0, x1) in image pixels


def classify_image(project, models, rel: str) -> Optional[ClassifierView]:
    """The classifier's prediction for one image, with the patches it used and their attention.

    None when no classifier has been trained yet.
    """
    clf = models.classifier()
    if clf is None:
        return None
    padim = models.padim()
    path = _source(project, rel).path
    looks = needs_looks(clf)
    # A close look needs the original at full size: decode it once for scoring and the window.
    item = load_image(path) if looks else path
    score = padim.score_image(item, keep_embeddings=True)
    ex = pipeline.example_of(padim, item, score, looks=looks)
    pred = clf.predict([ex])[0]
    c = clf.config
    out = ClassifierView(rel, pred, list(clf.classes), c.n, c.strategy, c.sd)
    if ex.look is not None:
        out.look, out.window = _window_view(rel, item, ex.look), ex.look.window
        out.look_cells = ex.look.top_cells(c.n)
    return out


def _window_view(rel: str, image: np.ndarray, look) -> ImageView:
    """The window the classifier looked at, cut from the original image, with its grid."""
    from ..core.closer_look import WINDOW_INPUT

    y0, y1, x0, x1 = look.window
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    geometry = GridGeometry(
        crop.shape[:2], (WINDOW_INPUT, WINDOW_INPUT), look.input_box, look.patch_map.shape
    )
    return ImageView(rel, crop, patch_map=look.patch_map, geometry=geometry)
