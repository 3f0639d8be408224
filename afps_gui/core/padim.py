"""The anomaly model: pretrained CNN patch features, a model of normal patches, anomaly maps.

PaDiM's per-position Gaussians (Mahalanobis distance) or a position-free memory of normal
patches (nearest-neighbour distance, as PatchCore): see ``normal_models``. Both fit streaming, in
memory that does not grow with the number of training images, and score whole batches at once.
The class keeps its historical name: every file, cache and front end knows it as "PaDiM".
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .backbones import DEFAULT_BACKBONE, Backbone
from .devices import resolve_device
from .errors import AfpsError, ImageError, ModelFileError
from .jobs import Progress, check_cancel, no_progress
from .modelfile import load_model, load_model_settings, save_model
from .normal_models import NORMAL_MODELS, make_normal_model
from .preprocess import Box, to_input

# 2: normal_model, stride and memory_size in the settings; a "memory" tensor for knn models.
# Version 1 files are per-position Gaussians at stride 4, which the defaults below still are.
FORMAT_VERSION = 2
EDGE_DEPTH = 4  # cells from the image's edge beyond which a cell counts as interior
KIND = "afps-padim"


@dataclass
class PadimConfig:
    backbone: str = DEFAULT_BACKBONE
    # Defaults are the best measured on magnetic tiles (README): 224 x 224, aspect kept, 3 x 3
    # feature neighbourhoods: image AUROC 0.962, pixel AUROC 0.841.
    input_size: tuple[int, int] = (224, 224)  # (height, width) of the model input
    resize: str = "fit"  # "fit" keeps the aspect ratio (mirror padding); "squash" stretches
    d: Optional[int] = None  # random channel subset size; None keeps every channel
    seed: int = 0
    sigma: float = 4.0  # Gaussian blur of the upsampled map, in input pixels
    eps: float = 0.01  # added to every covariance diagonal
    batch_size: int = 16
    feature_pool: int = 3  # k x k average of each stage's features (1 = off)
    # "gaussian": one Gaussian per patch position (PaDiM); "knn": distance to the nearest of a
    # memory of normal patches from any position (for parts that move). Tuning chooses.
    normal_model: str = "gaussian"
    stride: int = 4  # input pixels per grid cell: 4, or 8 for large inputs (4x fewer patches)
    memory_size: int = 4000  # normal patches kept by the knn model
    edge_correction: bool = True  # damp the image's rim by its typical normal score (learn_edges)

    def __post_init__(self):
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if min(self.input_size) < 32:
            raise AfpsError(f"Input size {self.input_size} is too small: use at least 32 x 32.")
        if self.resize not in ("squash", "fit"):
            raise AfpsError(f"Unknown resize mode '{self.resize}': use 'squash' or 'fit'.")
        if self.normal_model not in NORMAL_MODELS:
            raise AfpsError(
                f"Unknown normal model '{self.normal_model}': use one of {', '.join(NORMAL_MODELS)}."
            )
        if self.stride not in (4, 8):
            raise AfpsError(f"Grid stride {self.stride} is not supported: use 4 or 8.")
        if self.memory_size < 1:
            raise AfpsError("The memory of normal patches needs at least 1 patch.")


@dataclass
class ImageScore:
    """The result of scoring one image."""

    score: float  # image score: max of the smoothed map inside the valid region
    map: np.ndarray  # (h, w) float32 smoothed map on the valid region of the input
    patch_map: np.ndarray  # (gh, gw) float32 raw Mahalanobis distance per patch (whole grid)
    box: Box  # valid region in input pixels
    embeddings: Optional[np.ndarray] = None  # (gh, gw, D) float16, when asked for
    stride: int = 4  # input pixels per grid cell

    @property
    def grid_box(self) -> Box:
        return self.box.scaled(1 / self.stride)


@dataclass
class FitReport:
    n_images: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def is_anomalous(score: float, threshold: float) -> bool:
    """The one OK/NG rule: a score strictly above the threshold is anomalous (NG). Every front
    end (heat map, review, reports, CLI, line) asks here; ``best_f1_threshold`` is chosen for it."""
    return bool(score > threshold)


def anomalous_or_none(score: Optional[float], threshold: Optional[float]) -> Optional[bool]:
    """``is_anomalous`` where either may be missing (no score cached, no model yet): None."""
    return None if score is None or threshold is None else is_anomalous(score, threshold)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = int(4 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W) maps with reflected borders."""
    if sigma <= 0:
        return maps
    k = _gaussian_kernel(sigma).to(maps)
    r = (k.numel() - 1) // 2
    # reflect padding needs pad < size; tiny maps get replicate instead
    mode = "reflect" if min(maps.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(maps, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))


def upsample_and_blur(patch_maps: torch.Tensor, config: PadimConfig) -> torch.Tensor:
    """(B, gh, gw) patch distances -> (B, H, W) smoothed maps at the model's input size."""
    full = F.interpolate(
        patch_maps[:, None].float(), size=config.input_size, mode="bilinear", align_corners=False
    )
    return blur(full, config.sigma)[:, 0]


def smooth_map(patch_map: np.ndarray, box: Box, config: PadimConfig) -> np.ndarray:
    """The display map of one image from its cached patch map: valid region, input pixels."""
    full = upsample_and_blur(
        torch.from_numpy(np.asarray(patch_map, dtype=np.float32))[None], config
    )[0]
    return full[box.y0 : box.y1, box.x0 : box.x1].numpy()


def _load(item, size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """An item is a path, a dataset Sample, or an already decoded uint8 (h, w, 3) array;
    ``size``: the model input it is for (large JPEGs then decode at a reduced scale)."""
    if isinstance(item, np.ndarray):
        return item
    from .images import load_image

    return load_image(getattr(item, "path", item), at_least=size)


def _name(item) -> str:
    """How a skipped item is named: a dataset Sample by its key in the dataset, a path as is."""
    if isinstance(item, np.ndarray):
        return "<array>"
    return getattr(item, "rel", None) or os.fspath(getattr(item, "path", item))


@contextlib.contextmanager
def _parts_of(path):
    """A model file whose settings or tensors lack a part is a ModelFileError."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path} is missing parts of a PaDiM model ({exc}): fit it again."
        ) from exc


class PadimModel:
    def __init__(
        self,
        config: Optional[PadimConfig] = None,
        *,
        device: str = "auto",
        weights: Optional[str] = None,
        backbone: Optional[Backbone] = None,
    ):
        self.config = config or PadimConfig()
        self.device = resolve_device(device)
        self._backbone = backbone
        self._weights = weights
        self.channel_idx: Optional[torch.Tensor] = None
        self.normal = None  # a fitted normal model (normal_models), None before the fit
        self.grid: Optional[tuple[int, int]] = None
        self.n_train = 0
        self.threshold: Optional[float] = None
        self.score_floor = 0.0  # typical low score of normal images, for the 0..1 scale
        # Divisors of the patch distances by depth (in cells) from the image's edge, learnt on
        # held-out normals (see calibrate_on); None: no correction.
        self.edge_scale: Optional[list[float]] = None

    # --- features ---------------------------------------------------------------------------

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = Backbone(self.config.backbone, self._weights)
        return self._backbone.to(self.device)

    @property
    def fitted(self) -> bool:
        return self.normal is not None

    @property
    def mean(self) -> Optional[torch.Tensor]:
        return getattr(self.normal, "mean", None)

    @property
    def inv_cov(self) -> Optional[torch.Tensor]:
        return getattr(self.normal, "inv_cov", None)

    def _new_normal_model(self):
        c = self.config
        return make_normal_model(c.normal_model, eps=c.eps, memory_size=c.memory_size, seed=c.seed)

    def _channel_subset(self, total: int) -> torch.Tensor:
        d = self.config.d
        if d is None or d >= total:
            return torch.arange(total)
        gen = torch.Generator().manual_seed(self.config.seed)
        return torch.randperm(total, generator=gen)[:d].sort().values

    def embed(self, batch: torch.Tensor, stride: Optional[int] = None) -> torch.Tensor:
        """(B, 3, H, W) in 0..1 -> (B, D, gh, gw) patch embeddings on the stride-4 (or -8)
        grid; ``stride`` overrides the model's (the close look always uses 4)."""
        feats = self.backbone(batch.to(self.device))
        k = self.config.feature_pool
        if k > 1:
            # Each patch also sees its neighbours: less noise from single-pixel texture.
            feats = [
                F.avg_pool2d(f, k, stride=1, padding=k // 2, count_include_pad=False) for f in feats
            ]
        if (stride or self.config.stride) == 8:
            # The stride-4 stage is averaged over 2 x 2 cells rather than dropped: the finest
            # features are what sees defects a few pixels wide.
            feats = [F.avg_pool2d(feats[0], 2, ceil_mode=True)] + feats[1:]
        size = feats[0].shape[-2:]
        up = [feats[0]] + [
            F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            if f.shape[-2:] != size
            else f
            for f in feats[1:]
        ]
        emb = torch.cat(up, dim=1)
        if self.channel_idx is None:
            self.channel_idx = self._channel_subset(emb.shape[1])
        return emb.index_select(1, self.channel_idx.to(emb.device))

    def _batches(self, items: Sequence, progress: Progress, cancel, verb: str, skipped: list):
        """Decode and stack items in batches; undecodable images are skipped and reported."""
        total = len(items)
        bs = self.config.batch_size
        done = 0
        for start in range(0, total, bs):
            check_cancel(cancel)
            tensors, boxes, kept = [], [], []
            for item in items[start : start + bs]:
                try:
                    t, box = to_input(
                        _load(item, self.config.input_size),
                        self.config.input_size,
                        self.config.resize,
                    )
                except ImageError as exc:
                    skipped.append((_name(item), str(exc)))
                    continue
                tensors.append(t)
                boxes.append(box)
                kept.append(item)
            done = min(total, start + bs)
            if tensors:
                yield torch.stack(tensors), boxes, kept
            progress(done, total, f"{verb} {done}/{total} images")

    # --- fit --------------------------------------------------------------------------------

    def fit(
        self,
        items: Sequence,
        *,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
    ) -> FitReport:
        """Fit the normal model on normal images (paths or uint8 arrays), streaming."""
        if len(items) < 2:
            raise AfpsError("Fitting needs at least 2 normal images; add more defect-free images.")
        self.channel_idx = None
        t0 = time.perf_counter()
        skipped: list[tuple[str, str]] = []

        def embeddings():
            for batch, _, _ in self._batches(items, progress, cancel, "Fitting on", skipped):
                yield self.embed(batch)

        with torch.inference_mode():
            n = self.fit_embeddings(embeddings(), skipped=skipped, progress=progress)
        check_cancel(cancel)
        return FitReport(n, skipped, time.perf_counter() - t0)

    def fit_embeddings(
        self, batches: Iterable[torch.Tensor], *, skipped=(), progress: Progress = no_progress
    ) -> int:
        """Fit on (B, D, gh, gw) embeddings (from ``embed``); returns the number of images."""
        normal = self._new_normal_model()
        n = 0
        for emb in batches:
            self.grid = tuple(emb.shape[-2:])
            normal.update(emb.float().flatten(2).permute(2, 0, 1))  # (P, B, D)
            n += emb.shape[0]
        if n < 2:
            raise AfpsError(
                "Fewer than 2 normal images could be read, so nothing was fitted. "
                + (f"First problem: {skipped[0][1]}" if skipped else "")
            )
        progress(
            n, n, "Inverting covariances" if normal.kind == "gaussian" else "Choosing the memory"
        )
        with torch.inference_mode():
            normal.finish()
        self.normal = normal
        self.n_train = n
        self.threshold = None
        return n

    # --- score ------------------------------------------------------------------------------

    def _require_fit(self):
        if not self.fitted:
            raise AfpsError("The anomaly model is not fitted yet: fit it on normal images first.")

    def distances(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D, gh, gw) -> (B, gh, gw) distance of each patch to the normal model."""
        B, D, gh, gw = emb.shape
        if (gh, gw) != tuple(self.grid):
            raise AfpsError(f"Feature grid {gh}x{gw} does not match the fitted {self.grid}.")
        d = self.normal.distances(emb.flatten(2).permute(2, 0, 1))  # (P, B)
        return d.T.reshape(B, gh, gw)

    def score_batch(
        self, batch: torch.Tensor, boxes: list[Box], keep_embeddings=False
    ) -> list[ImageScore]:
        with torch.inference_mode():
            return self.score_embeddings(self.embed(batch), boxes, keep_embeddings)

    def score_embeddings(
        self, emb: torch.Tensor, boxes: list[Box], keep_embeddings=False
    ) -> list[ImageScore]:
        """Score (B, D, gh, gw) embeddings of images whose valid regions are ``boxes``."""
        self._require_fit()
        with torch.inference_mode():
            emb = emb.float()
            pmap = self.distances(emb)
            if self.edge_scale:
                grid = tuple(pmap.shape[-2:])
                pmap = pmap / torch.stack([self._edge_divisor(b, grid) for b in boxes])
            full = upsample_and_blur(pmap, self.config).cpu().numpy()
            pmap_np = pmap.cpu().numpy()
            emb_np = emb.permute(0, 2, 3, 1).half().cpu().numpy() if keep_embeddings else None
        out = []
        for i, box in enumerate(boxes):
            valid = full[i, box.y0 : box.y1, box.x0 : box.x1]
            out.append(
                ImageScore(
                    score=float(valid.max()),
                    map=np.ascontiguousarray(valid, dtype=np.float32),
                    patch_map=pmap_np[i].astype(np.float32),
                    box=box,
                    embeddings=emb_np[i] if emb_np is not None else None,
                    stride=self.config.stride,
                )
            )
        return out

    def score_items(
        self,
        items: Sequence,
        *,
        keep_embeddings: bool = False,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
        skipped: Optional[list] = None,
    ) -> Iterator[tuple[object, ImageScore]]:
        """Yield (item, ImageScore) for every readable item; unreadable ones go to ``skipped``."""
        self._require_fit()
        skipped = [] if skipped is None else skipped
        for batch, boxes, kept in self._batches(items, progress, cancel, "Scoring", skipped):
            yield from zip(kept, self.score_batch(batch, boxes, keep_embeddings))

    def score_image(self, image, keep_embeddings=False) -> ImageScore:
        t, box = to_input(
            _load(image, self.config.input_size), self.config.input_size, self.config.resize
        )
        return self.score_batch(t[None], [box], keep_embeddings)[0]

    # --- edges ------------------------------------------------------------------------------

    def _edge_depth(self, box: Box, grid: tuple[int, int]) -> torch.Tensor:
        """(gh, gw) distance in cells of each cell to the nearest edge of the image's valid box,
        capped at EDGE_DEPTH (the interior); -1 outside the box."""
        b = box.scaled(1 / self.config.stride)
        yy = torch.arange(grid[0])[:, None]
        xx = torch.arange(grid[1])[None, :]
        depth = torch.minimum(
            torch.minimum(yy - b.y0, b.y1 - 1 - yy), torch.minimum(xx - b.x0, b.x1 - 1 - xx)
        )
        return depth.clamp(-1, EDGE_DEPTH)

    def _edge_divisor(self, box: Box, grid: tuple[int, int]) -> torch.Tensor:
        scale = torch.tensor([1.0, *self.edge_scale], device=self.device)  # index 0: outside
        return scale[self._edge_depth(box, grid) + 1]

    def learn_edges(self, patch_maps: Sequence[np.ndarray], boxes: Sequence[Box]) -> None:
        """Learn how much higher normal patches score near the image's edge than inside.

        Measured on magnetic tiles: the outer cells of normal images scored 9 % above the
        interior (depth 0..4: 15.7, 15.5, 15.3, 15.0, 14.4), and 79 % of held-out normals had
        their maximum in the outer 8 pixels, where a fifth of the area is. Not the padding:
        squashed inputs and an extra mirrored margin showed the same. The tiles' own rims
        (chamfers, bright edges) vary from tile to tile and sit at other input positions for
        other aspect ratios, so no per-position model can learn them. Dividing each cell by
        the typical normal score at its depth (never below 1: edges are only ever damped)
        leaves 47 % of the maxima there, at the same AUROC; tuning decides whether to use it.
        """
        sums = np.zeros(EDGE_DEPTH + 1)
        counts = np.zeros(EDGE_DEPTH + 1)
        for pm, box in zip(patch_maps, boxes):
            depth = self._edge_depth(box, pm.shape).numpy()
            for k in range(EDGE_DEPTH + 1):
                sel = depth == k
                sums[k] += pm[sel].sum()
                counts[k] += sel.sum()
        if counts[EDGE_DEPTH] == 0 or counts.min() == 0:
            self.edge_scale = None  # too small an image to have an interior: nothing to learn
            return
        typical = sums / counts
        self.edge_scale = [float(max(1.0, v / typical[EDGE_DEPTH])) for v in typical]

    def calibrate_on(
        self,
        normal_items: Sequence,
        anomalous_items: Sequence = (),
        *,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
    ) -> float:
        """Learn the edge correction on held-out normal images, then set the threshold from
        their corrected scores (and those of known defects). Returns the threshold."""
        self.edge_scale = None
        scored = [s for _, s in self.score_items(normal_items, progress=progress, cancel=cancel)]
        if self.config.edge_correction and len(scored) >= 5:
            self.learn_edges([s.patch_map for s in scored], [s.box for s in scored])
        normal = [self._rescored(s) for s in scored]
        anomalous = [s.score for _, s in self.score_items(anomalous_items, cancel=cancel)]
        return self.calibrate(normal, anomalous)

    def _rescored(self, s: ImageScore) -> float:
        if not self.edge_scale:
            return s.score
        pm = torch.from_numpy(s.patch_map) / self._edge_divisor(s.box, s.patch_map.shape).cpu()
        return float(smooth_map(pm.numpy(), s.box, self.config).max())

    # --- threshold --------------------------------------------------------------------------

    def calibrate(
        self, normal_scores: Iterable[float], anomaly_scores: Iterable[float] = ()
    ) -> float:
        """Set the threshold from held-out scores: F1-optimal with anomalies, else the 99th
        percentile of normal scores. Adjusting it later never needs a refit."""
        from .metrics import best_f1_threshold

        normal = np.asarray(list(normal_scores), dtype=float)
        anomalous = np.asarray(list(anomaly_scores), dtype=float)
        if normal.size == 0:
            raise AfpsError("Calibration needs held-out normal images; none were given.")
        if anomalous.size:
            self.threshold = best_f1_threshold(normal, anomalous)
        else:
            self.threshold = float(np.quantile(normal, 0.99))
        self.score_floor = float(np.quantile(normal, 0.05))
        if self.score_floor >= self.threshold:
            self.score_floor = float(normal.min()) if normal.min() < self.threshold else 0.0
        return self.threshold

    def normalise(self, score):
        """Map raw scores to 0..1 with the threshold at 0.5 (typical normal scores near 0)."""
        thr = self.threshold if self.threshold is not None else float("nan")
        spread = max(thr - self.score_floor, 1e-6)
        return np.clip(0.5 + (np.asarray(score, dtype=float) - thr) / (2 * spread), 0.0, 1.0)

    def is_anomalous(self, score: float, threshold: Optional[float] = None) -> bool:
        thr = self.threshold if threshold is None else threshold
        if thr is None:
            raise AfpsError("No threshold yet: calibrate the model on held-out images.")
        return is_anomalous(score, thr)

    # --- files ------------------------------------------------------------------------------

    def save(self, path) -> None:
        self._require_fit()
        settings = {
            "config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()
            },
            "grid": list(self.grid),
            "n_train": self.n_train,
            "threshold": self.threshold,
            "score_floor": self.score_floor,
            "edge_scale": self.edge_scale,
        }
        tensors = {**self.normal.tensors(), "channel_idx": self.channel_idx.cpu()}
        save_model(path, KIND, FORMAT_VERSION, settings, tensors)

    @classmethod
    def load(cls, path, *, device: str = "auto", weights: Optional[str] = None) -> PadimModel:
        settings, tensors = load_model(path, KIND, FORMAT_VERSION)
        with _parts_of(path):
            model = cls._from_settings(settings, device, weights)
            normal = model._new_normal_model()
            normal.load(tensors, model.device)
            model.channel_idx = tensors["channel_idx"].long()
        positions = getattr(normal, "positions", None)
        if positions is not None and positions != model.grid[0] * model.grid[1]:
            raise ModelFileError(
                f"{path} holds tensors of inconsistent shapes: fit the model again."
            )
        model.normal = normal
        return model

    @classmethod
    def load_summary(cls, path) -> PadimModel:
        """The model's settings, grid, threshold and score scale without its Gaussians (which
        stay on disk): what the heat map needs to show cached maps. Scoring with it raises.
        A full load reads and copies the whole file (373 MB at 224 x 224)."""
        settings = load_model_settings(path, KIND, FORMAT_VERSION)
        with _parts_of(path):
            return cls._from_settings(settings, "cpu", None)

    @classmethod
    def _from_settings(cls, settings: dict, device: str, weights: Optional[str]) -> PadimModel:
        model = cls(PadimConfig(**settings["config"]), device=device, weights=weights)
        model.grid = tuple(settings["grid"])
        model.n_train = int(settings["n_train"])
        model.threshold = settings.get("threshold")
        model.score_floor = float(settings.get("score_floor", 0.0))
        model.edge_scale = settings.get("edge_scale")
        return model

    def memory_bytes(self) -> int:
        return 0 if not self.fitted else self.normal.memory_bytes()
