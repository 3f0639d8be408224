"""Which patches of an image feed the classifier: Anomaly-Focused Patch Selection and baselines.

- ``afps``: positions drawn from a 2-D Gaussian centred on the arg-max patch, with a standard
  deviation that is a fraction of the grid side, clipped to the grid, until N are distinct.
- ``random``: N patches drawn uniformly from the whole grid (the paper's baseline).
- ``top``: the N highest-scoring patches.

Positions are (row, col) integer pairs on the patch grid, returned in the order drawn.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import AfpsError

STRATEGIES = ("afps", "random", "top")
LOOK_STRATEGIES = ("region",)  # classifiers that read the close look at the defect


def reads_looks(strategy: str) -> bool:
    """True when the classifier of this strategy reads the close look at each image
    (``closer_look``): its examples must carry one (``model_choice.examples_need_looks``)."""
    return strategy in LOOK_STRATEGIES


def _argmax(score_map: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(score_map)), score_map.shape))


def _afps(score_map: np.ndarray, n: int, sd: float, rng: np.random.Generator) -> np.ndarray:
    gh, gw = score_map.shape
    centre = np.array(_argmax(score_map), dtype=float)
    scale = np.array([sd * gh, sd * gw], dtype=float)
    chosen: dict[tuple[int, int], None] = {centre_key(centre): None}
    # Draw in rounds; a narrow Gaussian repeats positions often, so after many rounds the
    # spread grows until N distinct positions exist (N <= grid size is checked by the caller).
    rounds = 0
    while len(chosen) < n:
        draws = rng.normal(centre, np.maximum(scale, 0.5), size=(4 * n, 2))
        cells = np.clip(np.rint(draws), 0, [gh - 1, gw - 1]).astype(int)
        for r, c in cells:
            chosen.setdefault((int(r), int(c)), None)
            if len(chosen) == n:
                break
        rounds += 1
        if rounds % 8 == 0:
            scale = scale * 1.5
    return np.array(list(chosen), dtype=int)


def centre_key(centre: np.ndarray) -> tuple[int, int]:
    return int(centre[0]), int(centre[1])


def _random(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    flat = rng.choice(shape[0] * shape[1], size=n, replace=False)
    return np.stack(np.unravel_index(flat, shape), axis=1).astype(int)


def top_flat(score_map: np.ndarray, n: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Flat indices of the n highest-scoring patches (valid ones only; fewer when fewer are
    valid), highest first, ties in grid order."""
    ranking = score_map if valid is None else np.where(valid, score_map, -np.inf)
    n = min(n, int(np.isfinite(ranking).sum()))
    return np.argsort(-ranking, axis=None, kind="stable")[:n]


def top_cells(score_map: np.ndarray, n: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """(n, 2) (row, col) of the n highest-scoring patches (see ``top_flat``)."""
    flat = top_flat(score_map, n, valid)
    return np.stack(np.unravel_index(flat, score_map.shape), axis=1).astype(int)


def _top(score_map: np.ndarray, n: int) -> np.ndarray:
    return top_cells(score_map, n)


def select_patches(
    score_map: np.ndarray,
    n: int,
    strategy: str = "afps",
    sd: float = 0.15,
    rng: Optional[np.random.Generator | int] = None,
    valid: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Return an (n, 2) int array of distinct (row, col) positions on the patch grid.

    ``score_map`` is the (gh, gw) patch anomaly map; ``rng`` a Generator or a seed (the same
    seed gives the same patches); ``valid`` an optional bool mask of selectable patches (the
    unpadded part of an aspect-preserving input): invalid patches are never chosen.
    """
    score_map = np.asarray(score_map, dtype=float)
    if score_map.ndim != 2:
        raise AfpsError(f"The score map must be 2-D, not of shape {score_map.shape}.")
    if strategy not in STRATEGIES:
        raise AfpsError(f"Unknown strategy '{strategy}': use one of {', '.join(STRATEGIES)}.")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if valid is not None and not valid.all():
        return _select_in_valid(score_map, n, strategy, sd, rng, valid)
    size = score_map.size
    if n < 1 or n > size:
        raise AfpsError(
            f"Cannot select {n} patches from a grid of {score_map.shape[0]} x {score_map.shape[1]}"
            f" = {size} patches: choose N between 1 and {size}."
        )
    if strategy == "top":
        return _top(score_map, n)
    if strategy == "random":
        return _random(score_map.shape, n, rng)
    if sd <= 0:
        raise AfpsError(f"The AFPS standard deviation must be positive, not {sd}.")
    return _afps(score_map, n, sd, rng)


def _select_in_valid(score_map, n, strategy, sd, rng, valid):
    """Select on the bounding box of the valid region, then shift back to the full grid."""
    rows, cols = np.nonzero(valid)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    inner = select_patches(score_map[r0:r1, c0:c1], n, strategy, sd, rng)
    return inner + np.array([r0, c0])


def spread(positions: np.ndarray) -> float:
    """Mean distance of positions from their centroid, in patches (for tests and the inspector)."""
    positions = np.asarray(positions, dtype=float)
    return float(np.linalg.norm(positions - positions.mean(0), axis=1).mean())
