"""Small image and mask files written by the tests themselves (real files, real decoding)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def texture(size: tuple[int, int] = (32, 24), seed: int = 0) -> np.ndarray:
    """A uint8 grey (H, W) array for a (width, height) size: noise, so JPEG has work to do."""
    width, height = size
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, size=(height, width), dtype=np.uint8)


def save_image(path: Path, size: tuple[int, int] = (32, 24), seed: int = 0, **save) -> Path:
    """Write a grey test image; the format follows the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(texture(size, seed)).save(path, **save)
    return path


def save_mask(path: Path, size: tuple[int, int] = (32, 24), box=(4, 4, 10, 10)) -> Path:
    """Write a 0/255 mask with one white box (x0, y0, x1, y1); ``box=None`` for an empty mask."""
    width, height = size
    values = np.zeros((height, width), dtype=np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        values[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims a size but that holds no pixel data (a cheap 'huge' image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path
