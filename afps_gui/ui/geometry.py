"""Where a patch of the model's grid lies on the displayed image, and back.

The model sees the image resized to its input size (``squash``) or fitted inside it with padding
(``fit``: only ``box`` holds image). The grid has one cell per stride-4 (or -8) block of the input. The
viewers draw the original image, so every overlay goes through this mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.preprocess import Box


@dataclass(frozen=True)
class GridGeometry:
    image_shape: tuple[int, int]  # (h, w) of the displayed image
    input_size: tuple[int, int]  # (H, W) of the model input
    box: Box  # valid region of the input, in input pixels
    grid: tuple[int, int]  # (gh, gw) patch grid

    @property
    def _scale(self) -> tuple[float, float]:
        """Input pixels per image pixel, (y, x)."""
        h, w = self.image_shape
        return (self.box.y1 - self.box.y0) / h, (self.box.x1 - self.box.x0) / w

    @property
    def _cell(self) -> tuple[float, float]:
        """Input pixels per grid cell, (y, x)."""
        return self.input_size[0] / self.grid[0], self.input_size[1] / self.grid[1]

    def cell_at(self, x: float, y: float) -> Optional[tuple[int, int]]:
        """The (i, j) cell under image pixel (x, y), or None outside the image."""
        h, w = self.image_shape
        if not (0 <= x < w and 0 <= y < h):
            return None
        sy, sx = self._scale
        cy, cx = self._cell
        i = int((self.box.y0 + y * sy) // cy)
        j = int((self.box.x0 + x * sx) // cx)
        return min(max(i, 0), self.grid[0] - 1), min(max(j, 0), self.grid[1] - 1)

    def centres(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (x, y) of the centres of (N, 2) (row, col) cells."""
        positions = np.asarray(positions, dtype=float).reshape(-1, 2)
        sy, sx = self._scale
        cy, cx = self._cell
        y = ((positions[:, 0] + 0.5) * cy - self.box.y0) / sy
        x = ((positions[:, 1] + 0.5) * cx - self.box.x0) / sx
        return x, y

    def cell_size(self) -> tuple[float, float]:
        """(width, height) of one cell in image pixels."""
        sy, sx = self._scale
        cy, cx = self._cell
        return cx / sx, cy / sy

    def line_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Image x positions of the column edges and y positions of the row edges that fall on
        the image (for drawing the grid)."""
        sy, sx = self._scale
        cy, cx = self._cell
        h, w = self.image_shape
        xs = (np.arange(self.grid[1] + 1) * cx - self.box.x0) / sx
        ys = (np.arange(self.grid[0] + 1) * cy - self.box.y0) / sy
        return xs[(xs >= -1e-6) & (xs <= w + 1e-6)], ys[(ys >= -1e-6) & (ys <= h + 1e-6)]

    def valid_cells(self) -> Optional[np.ndarray]:
        """Bool (gh, gw) mask of the cells that hold image (None when all of them do), the same
        rule as the classifier uses, so that the inspector never shows a patch it would not."""
        gh, gw = self.grid
        b = self.box.scaled(self.grid[0] / self.input_size[0])
        if (b.y0, b.y1, b.x0, b.x1) == (0, gh, 0, gw):
            return None
        valid = np.zeros((gh, gw), dtype=bool)
        valid[b.y0 : b.y1, b.x0 : b.x1] = True
        return valid
