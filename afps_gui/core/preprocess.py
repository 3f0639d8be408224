"""Turn decoded images into the fixed-size tensors the backbone sees, and maps back again.

Two ways to reach the model's input size:
- ``squash``: resize to exactly H x W (the PaDiM default; distorts the aspect ratio);
- ``fit``: keep the aspect ratio, scale to fit inside H x W and pad the rest with a mirror
  image of the part. Long thin parts stay long and thin, and a classifier cannot learn the photo's shape
  from the stretch of its texture. The valid (unpadded) box travels with the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_MODES = ("squash", "fit")


@dataclass(frozen=True)
class Box:
    """Valid region inside the model input, in pixels: rows y0:y1, columns x0:x1."""

    y0: int
    y1: int
    x0: int
    x1: int

    def scaled(self, factor: float) -> Box:
        """The same box on a grid ``factor`` times the input size (e.g. 1/4 for stride-4)."""
        return Box(
            int(np.floor(self.y0 * factor)),
            max(int(np.ceil(self.y1 * factor)), int(np.floor(self.y0 * factor)) + 1),
            int(np.floor(self.x0 * factor)),
            max(int(np.ceil(self.x1 * factor)), int(np.floor(self.x0 * factor)) + 1),
        )


def to_input(image: np.ndarray, size: tuple[int, int], mode: str = "squash"):
    """uint8 (h, w, 3) -> float tensor (3, H, W) in 0..1, and the valid Box."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, not {mode!r}")
    H, W = size
    image = _box_shrunk(image, size)
    t = (
        torch.from_numpy(np.array(image, dtype=np.uint8, order="C"))
        .permute(2, 0, 1)
        .float()
        .div_(255.0)
    )
    h, w = t.shape[1:]
    if mode == "squash":
        out = F.interpolate(
            t[None], size=(H, W), mode="bilinear", antialias=True, align_corners=False
        )
        return out[0], Box(0, H, 0, W)
    scale = min(H / h, W / w)
    nh, nw = max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))
    resized = F.interpolate(
        t[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
    )
    top, left = (H - nh) // 2, (W - nw) // 2
    out = _mirror_pad(resized, (left, W - nw - left, top, H - nh - top))
    return out[0], Box(top, top + nh, left, left + nw)


def _box_shrunk(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A huge image shrunk by whole factors in uint8 (box averages) to at least twice the input
    before the float resize: a 9000 x 9000 photo as float32 alone takes 970 MB. Images less
    than 8 times the input (every JPEG, which decodes at a reduced scale already) are untouched,
    so their inputs do not change."""
    h, w = image.shape[:2]
    fy, fx = max(1, h // (2 * size[0])), max(1, w // (2 * size[1]))
    if max(fy, fx) < 4:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).reduce((fx, fy)))


def _mirror_pad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Pad by mirroring the image (texture continues across the border, so the backbone sees
    no artificial edge there); what a mirror cannot cover on very thin images is replicated."""
    h, w = x.shape[-2:]
    first = (min(pad[0], w - 1), min(pad[1], w - 1), min(pad[2], h - 1), min(pad[3], h - 1))
    x = F.pad(x, first, mode="reflect")
    rest = tuple(p - f for p, f in zip(pad, first))
    return F.pad(x, rest, mode="replicate") if any(rest) else x


def mask_to_input(mask: np.ndarray, size: tuple[int, int], box: Box) -> np.ndarray:
    """Resize a bool (h, w) mask onto the valid box of the input (for pixel metrics)."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    out = F.interpolate(t, size=(box.y1 - box.y0, box.x1 - box.x0), mode="nearest")
    return out[0, 0].numpy() > 0.5


def map_to_image(amap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float map (valid region only) to an image's (h, w), for display and overlays."""
    t = torch.from_numpy(np.ascontiguousarray(amap, dtype=np.float32))[None, None]
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()
