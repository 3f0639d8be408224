"""Detection settings chosen from the project's own data, within a time budget.

No default suits every part: per-position Gaussians win where every part sits in the same place
(magnetic tiles), a position-free memory of normal patches where parts move (VisA capsules: 0.70
against 0.94 image AUROC), and small defects need a larger input. So ``tune_detection`` fits each
candidate on normal images, scores held-out normal images and defects (the project's labelled
ones, or synthetic ones pasted into held-out normals when it has none), and keeps the best.

Costs stay low because candidates that differ only in the normal model or the blur share one
embedding pass: the tuning images are embedded once per (backbone, input size, resize, pooling).
Tuning never sees the images that a reported figure is computed on: callers pass it only the
fit normals and a validation split.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import numpy as np
import torch

from .errors import AfpsError
from .images import image_size, load_image, load_mask
from .jobs import Progress, check_cancel, no_progress
from .metrics import auroc_standard_error, image_auroc, pixel_auroc
from .padim import PadimConfig, PadimModel, upsample_and_blur
from .preprocess import Box, mask_to_input, to_input

# Grid positions above which the grid is taken at stride 8: bounds the Gaussians' memory
# (positions x D x D floats) and the nearest-neighbour search (positions x memory).
MAX_STRIDE4_POSITIONS = 6000
SIGMAS = (2.0, 4.0, 8.0)
# A candidate replaces the best so far only when it is better by more than the noise of the
# best's image AUROC on the validation images (its standard error, weighted as in ``objective``),
# and at least by this. With a margin of 0.005 alone, magnetic tiles drifted through four
# "improvements" within noise to settings 0.012 worse on the test images (0.962 -> 0.950).
# Candidates are tried cheapest first, so ties keep the cheaper one.
MARGIN = 0.005


# Validation images of each kind for tuning: with 40 + 40 (the first choice) the AUROC of one
# candidate varied by about 0.03, more than the differences tuning must tell apart.
MAX_TUNE_VAL = 80


@dataclass
class TuneData:
    fit: list  # normal samples to fit candidates on
    val_normals: list  # held-out normal samples to score
    defects: list  # labelled defect samples to score; none: synthetic ones are made


@dataclass(frozen=True)
class Candidate:
    normal_model: str  # "gaussian" or "knn"
    long_side: int  # input pixels along the image's longer side
    resize: str = "fit"
    feature_pool: int = 3
    backbone: str = "efficientnet-lite0"

    def config(self, aspect: float, base: PadimConfig) -> PadimConfig:
        size = input_size_for(self.long_side, aspect)
        return replace(
            base,
            backbone=self.backbone,
            input_size=size,
            resize=self.resize,
            feature_pool=self.feature_pool,
            normal_model=self.normal_model,
            stride=stride_for(size),
        )

    @property
    def embedding_key(self) -> tuple:
        return (self.backbone, self.long_side, self.resize, self.feature_pool)

    def label(self) -> str:
        model = "memory (kNN)" if self.normal_model == "knn" else "Gaussian per position"
        return f"{model}, long side {self.long_side}, {self.resize}, pool {self.feature_pool}"


def input_size_for(long_side: int, aspect: float) -> tuple[int, int]:
    """(H, W) with the images' width/height ``aspect``, the longer side ``long_side``, both
    multiples of 32 (the backbone's coarsest stride): non-square images stay non-square."""
    short = long_side / aspect if aspect >= 1 else long_side * aspect
    short = int(max(64, min(long_side, 32 * round(short / 32))))
    return (short, long_side) if aspect >= 1 else (long_side, short)


def stride_for(size: tuple[int, int]) -> int:
    return 4 if (size[0] // 4) * (size[1] // 4) <= MAX_STRIDE4_POSITIONS else 8


def typical_aspect(samples: Sequence, limit: int = 50) -> float:
    """Median width / height of (up to ``limit``) images, read from their headers."""
    ratios = []
    for s in samples[:limit]:
        try:
            w, h = image_size(getattr(s, "path", s))
        except AfpsError:
            continue
        ratios.append(w / h)
    return float(np.median(ratios)) if ratios else 1.0


@dataclass
class TuneRow:
    candidate: dict
    settings: dict  # what the candidate puts in PadimConfig
    image_auroc: float = float("nan")
    pixel_auroc: float = float("nan")
    objective: float = float("nan")
    seconds: float = 0.0
    note: str = ""


@dataclass
class TuneResult:
    best: PadimConfig
    rows: list[TuneRow]
    n_fit: int
    n_val_normal: int
    n_val_defect: int
    synthetic: bool  # defects pasted into held-out normals (the project had none to use)
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["best"] = settings_of(self.best)
        return out


def settings_of(config: PadimConfig) -> dict:
    """The tunable settings of a config, as JSON-ready values."""
    return {
        "backbone": config.backbone,
        "input_size": list(config.input_size),
        "resize": config.resize,
        "feature_pool": config.feature_pool,
        "normal_model": config.normal_model,
        "stride": config.stride,
        "sigma": config.sigma,
        "edge_correction": config.edge_correction,
    }


def objective(image: float, pixel: float) -> float:
    """Image AUROC decides (it is what an inspector's verdict rests on); pixel AUROC, the
    quality of the map, counts a quarter where masks exist."""
    if np.isnan(pixel):
        return image
    return 0.75 * image + 0.25 * pixel


def default_candidates() -> list[Candidate]:
    """Round one, cheapest first: both normal models at two input sizes with the default
    backbone. ``tune_detection`` then looks around the best (``refinements``)."""
    return [Candidate(m, side) for side in (224, 448) for m in ("gaussian", "knn")]


def other_backbones(name: str) -> list[str]:
    """Backbones whose weights are on this machine, other than ``name``."""
    from .backbones import available_backbones

    return [b for b, d in available_backbones().items() if b != name and "missing" not in d]


MAX_LONG_SIDE = 1024


def refinements(best: Candidate) -> list[Candidate]:
    """The neighbours of the best candidate: other pooling, other resize, a larger input,
    other backbones (those with weights here)."""
    other_pool = 1 if best.feature_pool != 1 else 3
    larger = min(MAX_LONG_SIDE, 32 * round(best.long_side * 1.43 / 32))
    out = [replace(best, feature_pool=other_pool), replace(best, resize="squash")]
    out += [replace(best, long_side=larger)] if larger > best.long_side else []
    return out + [replace(best, backbone=b) for b in other_backbones(best.backbone)]


# --- evaluation data ---------------------------------------------------------------------------


@dataclass
class _ValImage:
    image: np.ndarray
    mask: Optional[np.ndarray]  # bool (h, w) at the image's size; None for a normal image
    defective: bool


def validation_images(
    normals: Sequence,
    defects: Sequence,
    *,
    seed: int = 0,
    skipped: Optional[list] = None,
) -> tuple[list[_ValImage], bool]:
    """Decoded held-out normals and defects (with masks where known). Without defects, each
    held-out normal also appears once with a synthetic defect pasted in."""
    from .synthetic import add_defect

    skipped = [] if skipped is None else skipped
    out = []
    for s in normals:
        try:
            out.append(_ValImage(load_image(s.path), None, False))
        except AfpsError as exc:
            skipped.append((s.rel, str(exc)))
    if not out:
        raise AfpsError("Tuning needs held-out normal images, and none could be read.")
    synthetic = not defects
    if synthetic:
        rng = np.random.default_rng(seed)
        out += [_ValImage(*add_defect(v.image, rng), True) for v in list(out)]
        return out, True
    for s in defects:
        try:
            image = load_image(s.path)
            mask = load_mask(s.mask, image.shape[:2]) if s.mask is not None else None
        except AfpsError as exc:
            skipped.append((s.rel, str(exc)))
            continue
        out.append(_ValImage(image, mask, True))
    return out, False


# --- the search --------------------------------------------------------------------------------


class _Embedded:
    """Tuning images embedded once for one (backbone, size, resize, pooling)."""

    def __init__(self, model: PadimModel, fit: Sequence, val: list[_ValImage], skipped, cancel):
        cfg = model.config
        self.fit: list[torch.Tensor] = []
        self.val: list[torch.Tensor] = []
        self.boxes: list[Box] = []
        self.masks: list[Optional[np.ndarray]] = []
        with torch.inference_mode():
            # Fit images are decoded again for each group rather than kept: 200 decoded
            # 1500 x 1000 photographs would hold 900 MB.
            for batch, _, _ in model._batches(list(fit), no_progress, cancel, "", skipped):
                self.fit.append(model.embed(batch).half())
            for start in range(0, len(val), cfg.batch_size):
                check_cancel(cancel)
                chunk = val[start : start + cfg.batch_size]
                tensors = []
                for v in chunk:
                    t, box = to_input(v.image, cfg.input_size, cfg.resize)
                    tensors.append(t)
                    self.boxes.append(box)
                    if v.mask is not None:
                        self.masks.append(mask_to_input(v.mask, cfg.input_size, box))
                    else:
                        self.masks.append(np.zeros((box.y1 - box.y0, box.x1 - box.x0), bool))
                self.val.append(model.embed(torch.stack(tensors)).half())
        self.channel_idx = model.channel_idx


def _score(model: PadimModel, emb: _Embedded, defective: list[bool], sigma: float):
    """(image AUROC, pixel AUROC, patch maps) of the validation images under one model."""
    pmaps = []
    with torch.inference_mode():
        for e in emb.val:
            pmaps.append(model.distances(e.float()))
    pmaps = torch.cat(pmaps)
    return _metrics(pmaps, emb, defective, replace(model.config, sigma=sigma)) + (pmaps,)


def _metrics(
    pmaps: torch.Tensor,
    emb: _Embedded,
    defective: list[bool],
    config: PadimConfig,
    idx: Optional[list[int]] = None,
):
    """(image AUROC, pixel AUROC) of the validation images (or those at ``idx``)."""
    idx = list(range(len(defective))) if idx is None else idx
    full = upsample_and_blur(pmaps[idx], config).numpy()
    boxes = [emb.boxes[i] for i in idx]
    maps = [full[k, b.y0 : b.y1, b.x0 : b.x1] for k, b in enumerate(boxes)]
    masks = [emb.masks[i] for i in idx]
    labels = [defective[i] for i in idx]
    img = image_auroc(labels, [float(m.max()) for m in maps])
    has_masks = any(m.any() for m, d in zip(masks, labels) if d)
    pix = pixel_auroc(masks, maps) if has_masks else float("nan")
    return img, pix


def _edge_rows(best, chosen: PadimConfig, defective: list[bool]):
    """Edge correction on and off, learnt on every other validation normal and compared on the
    remaining images (learning and scoring the same normals would favour it)."""
    _, cand, _, pmaps, emb = best
    normals = [i for i, d in enumerate(defective) if not d]
    if len(normals) < 10:
        return []
    learn = set(normals[::2])
    rest = [i for i in range(len(defective)) if i not in learn]
    model = PadimModel(chosen, device="cpu")  # the backbone is never built: maps only
    model.learn_edges(
        [pmaps[i].numpy() for i in sorted(learn)], [emb.boxes[i] for i in sorted(learn)]
    )
    if model.edge_scale is None:
        return []
    grid = tuple(pmaps.shape[-2:])
    corrected = pmaps.clone()
    for i in rest:
        corrected[i] = pmaps[i] / model._edge_divisor(emb.boxes[i], grid)
    rows = []
    for on, maps in ((False, pmaps), (True, corrected)):
        img, pix = _metrics(maps, emb, defective, chosen, rest)
        note = f"edge correction {'on' if on else 'off'} (judged on half the normals)"
        rows.append(_row(cand, replace(chosen, edge_correction=on), img, pix, 0.0, note=note))
    return rows


def _try_group(group, aspect, base, fit_normals, val, defective, skipped, device, weights, cancel):
    """Embed once for the group, then fit and score each of its candidates."""
    cfg0 = group[0].config(aspect, base)
    embedder = PadimModel(cfg0, device=device, weights=weights)
    emb = _Embedded(embedder, fit_normals, val, skipped, cancel)
    found = []
    for cand in group:
        check_cancel(cancel)
        c0 = time.perf_counter()
        cfg = cand.config(aspect, base)
        model = PadimModel(cfg, device=device, backbone=embedder._backbone)
        model.channel_idx = emb.channel_idx
        model.fit_embeddings(iter(emb.fit))
        img, pix, pmaps = _score(model, emb, defective, cfg.sigma)
        found.append((_row(cand, cfg, img, pix, time.perf_counter() - c0), pmaps, emb))
    # The best group's maps stay for the blur and edge comparisons; its fit embeddings (300 MB
    # at 416 x 640) need not stay while later groups embed.
    emb.fit.clear()
    return found


def tune_detection(
    data: TuneData,
    *,
    base: Optional[PadimConfig] = None,
    candidates: Optional[Sequence[Candidate]] = None,
    budget_s: float = 600.0,
    max_fit: int = 200,
    max_val: int = MAX_TUNE_VAL,
    seed: int = 0,
    device: str = "auto",
    weights: Optional[str] = None,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> TuneResult:
    """Try candidate settings cheapest first until ``budget_s`` is spent; return the best.
    The default first round (both normal models at two sizes) always runs.

    ``data.fit`` is fitted on (at most ``max_fit``, the rest only cost time), and
    ``data.val_normals`` and ``data.defects`` (samples with optional masks; at most ``max_val``
    each) are scored. Without defects, synthetic ones are pasted into the validation normals.
    """
    t0 = time.perf_counter()
    if len(data.fit) < 2:
        raise AfpsError("Tuning needs at least 2 normal images to fit on.")
    rng = np.random.default_rng(seed)
    fit_normals = _subset(data.fit, max_fit, rng)
    skipped: list[tuple[str, str]] = []
    progress(0, 1, "Reading the tuning images")
    val, synthetic = validation_images(
        _subset(data.val_normals, max_val, rng),
        _subset(data.defects, max_val, rng),
        seed=seed,
        skipped=skipped,
    )
    search = _Search(fit_normals, val, skipped, base or PadimConfig(), budget_s, t0)
    search.use(device=device, weights=weights, progress=progress, cancel=cancel)
    search.run(candidates)
    chosen = search.tune_edges(search.tune_blur())
    progress(1, 1, "Tuning done")
    return TuneResult(
        best=chosen,
        rows=search.rows,
        n_fit=len(fit_normals),
        n_val_normal=search.defective.count(False),
        n_val_defect=search.defective.count(True),
        synthetic=synthetic,
        seconds=time.perf_counter() - t0,
        skipped=skipped,
    )


# (objective, candidate, row, patch maps, embedded images) of the best candidate so far
_BestSoFar = tuple[float, Candidate, TuneRow, torch.Tensor, _Embedded]


class _Search:
    """One tuning run's search: the rows so far, the best candidate, the measured cost."""

    def __init__(self, fit_normals, val, skipped, base: PadimConfig, budget_s: float, t0: float):
        self.fit_normals, self.val, self.skipped = fit_normals, val, skipped
        self.defective = [v.defective for v in val]
        if all(self.defective) or not any(self.defective):
            raise AfpsError("Tuning needs both normal and defective validation images.")
        self.base, self.budget_s, self.t0 = base, budget_s, t0
        self.aspect = typical_aspect(fit_normals)
        self.use()
        self.rows: list[TuneRow] = []
        self.best: Optional[_BestSoFar] = None
        self.cost_per_pixel: Optional[float] = None
        self.tried: set[Candidate] = set()

    def use(
        self,
        device: str = "auto",
        weights: Optional[str] = None,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
    ) -> None:
        """Where and how to run: the device and weights, whom to report to, what cancels."""
        self.device, self.weights, self.progress, self.cancel = device, weights, progress, cancel

    def margin(self) -> float:
        """How much better than the best a candidate must be to replace it (see MARGIN)."""
        assert self.best is not None
        n_def, n_norm = self.defective.count(True), self.defective.count(False)
        se = auroc_standard_error(self.best[2].image_auroc, n_def, n_norm)
        return max(MARGIN, 0.75 * se)

    def run(self, candidates: Optional[Sequence[Candidate]]) -> None:
        """Try the candidates (default: round one, then around the best) group by group."""
        queue = list(candidates) if candidates is not None else default_candidates()
        refine = candidates is None
        # The default first round always runs whole: a slow first group (a busy machine) must not
        # cost the larger input that small defects need. The budget bounds what comes after.
        round_one = set(queue) if candidates is None else set()
        refined_around: Optional[Candidate] = None
        while queue:
            key = queue[0].embedding_key
            group = [c for c in queue if c.embedding_key == key]
            queue = [c for c in queue if c.embedding_key != key]
            self.tried.update(group)
            self.try_group(group, len(queue), always=group[0] in round_one)
            if not queue and refine and self.best is not None and self.best[1] != refined_around:
                # Coordinate ascent: look around the best; again when a neighbour took its place.
                refined_around = self.best[1]
                queue = [c for c in refinements(self.best[1]) if c not in self.tried]
        if self.best is None:
            note = self.rows[0].note if self.rows else ""
            raise AfpsError("No candidate setting could be tried: " + note)

    def try_group(self, group: list[Candidate], n_queued: int, always: bool) -> None:
        """Fit and score one group (one embedding pass) unless the budget would be overrun."""
        cfg0 = group[0].config(self.aspect, self.base)
        pixels = cfg0.input_size[0] * cfg0.input_size[1] * (len(self.fit_normals) + len(self.val))
        if not always and self.over_budget(pixels):
            self.rows += [self.unscored(c, "not tried: time budget") for c in group]
            return
        n = len(self.rows)
        self.progress(n, n + len(group) + n_queued, f"Tuning: {group[0].label()}")
        for cand, (row, pmaps, emb) in zip(group, self.fit_and_score(group, pixels)):
            self.rows.append(row)
            if pmaps is not None and (
                self.best is None or row.objective > self.best[0] + self.margin()
            ):
                self.best = (row.objective, cand, row, pmaps, emb)

    def over_budget(self, pixels: int) -> bool:
        if self.cost_per_pixel is None:
            return False
        spent = time.perf_counter() - self.t0
        return spent + self.cost_per_pixel * pixels > self.budget_s

    def fit_and_score(self, group: list[Candidate], pixels: int) -> list:
        """``_try_group``'s (row, patch maps, embedded) per candidate; a failure is a row."""
        g0 = time.perf_counter()
        try:
            found = _try_group(
                group,
                self.aspect,
                self.base,
                self.fit_normals,
                self.val,
                self.defective,
                self.skipped,
                self.device,
                self.weights,
                self.cancel,
            )
        except AfpsError as exc:  # e.g. a backbone without weights on this machine
            return [(self.unscored(c, f"failed: {exc}"), None, None) for c in group]
        self.cost_per_pixel = (time.perf_counter() - g0) / pixels
        return found

    def unscored(self, cand: Candidate, note: str) -> TuneRow:
        return _row(cand, cand.config(self.aspect, self.base), note=note)

    def tune_blur(self) -> PadimConfig:
        """The best candidate's settings with the best blur, compared on its cached patch maps
        (the blur only smooths the map, so nothing is fitted again)."""
        best = self.best
        assert best is not None
        chosen = best[1].config(self.aspect, self.base)
        self.progress(len(self.tried), len(self.tried) + len(SIGMAS), "Tuning the blur")
        best_obj = best[0]
        for sigma in SIGMAS:
            if sigma == chosen.sigma:
                continue
            img, pix = _metrics(best[3], best[4], self.defective, replace(chosen, sigma=sigma))
            row = _row(best[1], replace(chosen, sigma=sigma), img, pix, 0.0, note="blur only")
            self.rows.append(row)
            if row.objective > best_obj + self.margin():
                best_obj, chosen = row.objective, replace(chosen, sigma=sigma)
        return chosen

    def tune_edges(self, chosen: PadimConfig) -> PadimConfig:
        """``chosen`` with edge correction on only where it beat off by more than the margin."""
        edges = _edge_rows(self.best, chosen, self.defective)
        self.rows += edges
        if edges:
            off, on = edges
            chosen = replace(chosen, edge_correction=on.objective > off.objective + self.margin())
        return chosen


def _row(cand: Candidate, cfg: PadimConfig, img=float("nan"), pix=float("nan"), s=0.0, note=""):
    return TuneRow(
        candidate=asdict(cand),
        settings=settings_of(cfg),
        image_auroc=img,
        pixel_auroc=pix,
        objective=objective(img, pix),
        seconds=s,
        note=note,
    )


def _subset(items: Sequence, n: int, rng: np.random.Generator) -> list:
    items = list(items)
    if len(items) <= n:
        return items
    keep = sorted(rng.choice(len(items), n, replace=False))
    return [items[k] for k in keep]


def format_table(tuning: dict) -> str:
    """The candidates of a TuneResult.as_dict() as a plain-text table, the chosen one marked."""
    best = tuning["best"]
    defects = f"{tuning['n_val_defect']} {'synthetic' if tuning['synthetic'] else 'labelled'}"
    lines = [
        f"tuning: fitted on {tuning['n_fit']} normal images, scored {tuning['n_val_normal']} "
        f"held-out normals and {defects} defects in {tuning['seconds']:.0f} s",
        f"  {'model':<9}{'backbone':>19}{'input':>10}{'stride':>7}{'resize':>8}{'pool':>5}"
        f"{'blur':>5}{'edges':>6}{'image':>8}{'pixel':>8}{'time':>7}",
    ]
    for row in tuning["rows"]:
        st = row["settings"]
        h, w = st["input_size"]
        mark = "*" if st == best else " "
        lines.append(
            f"{mark} {st['normal_model']:<9}{st['backbone']:>19}{f'{h}x{w}':>10}{st['stride']:>7}"
            f"{st['resize']:>8}{st['feature_pool']:>5}{st['sigma']:>5g}"
            f"{'on' if st.get('edge_correction', True) else 'off':>6}{_num(row['image_auroc']):>8}"
            f"{_num(row['pixel_auroc']):>8}{row['seconds']:>6.0f}s  {row['note']}"
        )
    lines.append("  (* chosen; image and pixel: AUROC on the tuning images, not a test figure)")
    return "\n".join(lines)


def _num(v) -> str:
    return "-" if v is None or v != v else f"{v:.3f}"
