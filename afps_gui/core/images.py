"""Decode image and mask files into plain numpy arrays, or say in plain words why not.

Every image the app looks at comes through ``load_image``: whatever the file holds (8- or 16-bit
grey, palette, RGBA, CMYK, 1-bit, float TIFF, a rotated phone JPEG) the rest of the code sees one
thing, a ``uint8`` array of shape (H, W, 3) in RGB order. Every failure is an ``ImageError`` whose
message names the file, says what is wrong and what to do about it.

Alpha is *dropped*, not composited: the colour values are what the camera measured, and
compositing onto a background would invent pixels that were never there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageError

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
MAX_PIXELS: int = 100_000_000  # anything larger is refused as a possible decompression bomb
MIN_SIDE: int = 16  # smaller images are refused: too small to inspect

# Integer images are scaled by the bit depth the sensor used, never stretched per image: a
# per-image min/max stretch would make a dim normal image look like a bright one.
_BIT_DEPTHS = (8, 10, 12, 14, 16)

_EXIF_ORIENTATION = 0x0112
_ORIENTATIONS_THAT_SWAP_SIDES = {5, 6, 7, 8}

_SUPPORTED = "PNG, JPEG, BMP or TIFF"
_MODES_KNOWN_TO_CONVERT = frozenset(
    {"1", "L", "LA", "P", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "F", "I", "I;16", "I;16B"}
)


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has one of the image extensions (the content is not read)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = MAX_PIXELS,
    at_least: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode an image file fully into a ``uint8`` RGB array of shape (H, W, 3).

    EXIF orientation is applied. Raises ImageError for anything that cannot be inspected.
    ``at_least`` (height, width): the caller will shrink the image to this size, so a JPEG may
    be decoded at 1/2, 1/4 or 1/8 scale as long as both sides stay at least as large as the
    image would be at that size (the decoder skips the detail; a 1500 x 1000 photo for a 448
    px input decodes several times faster).
    """
    path = Path(path)
    with _opened(path) as img:
        _check_pixel_count(path, img.size, max_pixels)
        if at_least is not None:
            _draft(img, at_least)
        _decode_fully(path, img)
        img = _upright(path, img)
        _check_min_side(path, img.size)
        return _to_rgb_array(path, img)


def check_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Everything ``load_image`` checks, the full decode included, without building the array.

    Returns the upright (height, width). For validating whole datasets quickly.
    """
    path = Path(path)
    with _opened(path) as img:
        _check_pixel_count(path, img.size, max_pixels)
        _decode_fully(path, img)
        img = _upright(path, img)
        _check_min_side(path, img.size)
        if img.mode not in _MODES_KNOWN_TO_CONVERT:
            _to_rgb_array(path, img)  # a rare pixel format: prove that it converts
        return img.size[1], img.size[0]


def load_mask(
    path: str | os.PathLike, shape: tuple[int, int] | None = None, *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode a defect mask into a bool array (H, W); True marks a defect pixel.

    A pixel is defect when its brightest channel is above half range (> 127 in 8 bits), which
    also reads red-on-black annotation masks; a mask whose values all lie below half range is a
    label map (0 = background, 1..k = defect regions, as VisA ships them, or 0/1 saved straight
    from numpy) and counts every non-zero pixel as defect. ``shape`` is the (height, width)
    of the image the mask belongs to: a mask of another size raises ImageError.
    """
    path = Path(path)
    with _opened(path) as img:
        _check_pixel_count(path, img.size, max_pixels)
        _decode_fully(path, img)
        img = _upright(path, img)
        values = _mask_values(path, img)
    if shape is not None and values.shape != tuple(shape):
        h, w = values.shape
        raise _error(
            path,
            f"the mask is {w}x{h} but its image is {shape[1]}x{shape[0]}",
            "Export the mask again at the size of its image.",
        )
    if values.max(initial=0) <= 127:
        return values > 0
    return values > 127


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as read from the file header, EXIF orientation applied. Cheap: no decode."""
    path = Path(path)
    with _opened(path) as img:
        width, height = img.size
        if _orientation(img) in _ORIENTATIONS_THAT_SWAP_SIDES:
            width, height = height, width
    return width, height


# --- opening and checking ----------------------------------------------------------------------


def _error(path: Path, reason: str, advice: str) -> ImageError:
    """An ImageError naming the file; ``reason`` is kept apart for lists of skipped files."""
    err = ImageError(f"Cannot use {path}: {reason}. {advice}")
    err.reason = reason  # type: ignore[attr-defined]
    return err


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Open the file and read its header; turn every way that can fail into an ImageError."""
    _check_file(path)
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        raise _error(
            path,
            "it is not an image, or not in a format this app reads",
            f"Save it as {_SUPPORTED}.",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # PIL refuses absurd headers on its own (or warns, which may be set to raise).
        raise _error(
            path,
            f"it is too large to open safely ({exc})",
            "It may be damaged or a decompression bomb; resize it below the limit.",
        ) from None
    except OSError as exc:
        # An errno means the operating system failed to read; PIL's own OSErrors have none and
        # mean a malformed file.
        raise (_os_error(path, exc) if exc.errno is not None else _corrupt(path, exc)) from None
    except Exception as exc:  # a malformed header can raise anything inside PIL's parsers
        raise _corrupt(path, exc) from None
    try:
        yield img
    finally:
        img.close()


def _check_file(path: Path) -> None:
    """Catch the cheap, common failures before PIL sees the file, for clearer messages."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _os_error(path, exc) from None
    if path.is_dir():
        raise _error(path, "it is a folder, not an image file", "Choose an image file inside it.")
    if size == 0:
        raise _error(
            path,
            "the file is empty (0 bytes)",
            "It was probably not copied completely; copy it again from its source.",
        )


def _os_error(path: Path, exc: OSError) -> ImageError:
    if isinstance(exc, FileNotFoundError):
        return _error(path, "the file does not exist", "Check that it was not moved or renamed.")
    if isinstance(exc, IsADirectoryError):
        return _error(path, "it is a folder, not an image file", "Choose an image file inside it.")
    if isinstance(exc, PermissionError):
        return _error(
            path,
            "this user may not read it (permission denied)",
            "Ask for read access to the file or copy it somewhere readable.",
        )
    return _error(path, f"it could not be read ({exc})", "Check the disk or copy the file again.")


def _corrupt(path: Path, exc: BaseException) -> ImageError:
    detail = str(exc) or type(exc).__name__
    return _error(
        path,
        f"the file is truncated or corrupt ({detail})",
        "Copy it again from its source, or leave it out.",
    )


def _check_pixel_count(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    """Refuse from the header alone, before a decoder allocates memory for it."""
    width, height = size
    if width * height > max_pixels:
        raise _error(
            path,
            f"it is too large ({width}x{height} = {width * height:,} pixels, "
            f"the limit is {max_pixels:,})",
            "It may be damaged or a decompression bomb; if it is real, resize it.",
        )


def _check_min_side(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise _error(
            path,
            f"it is too small to inspect ({width}x{height}, at least {MIN_SIDE} pixels a side)",
            "Use the full-size image, not a thumbnail or an icon.",
        )


def _decode_fully(path: Path, img: Image.Image) -> None:
    """Decode every pixel now, so that a truncated file fails here and not in a later step.

    PIL reads truncated files without complaint when ImageFile.LOAD_TRUNCATED_IMAGES is set
    (by any other library in the process); that setting is never honoured here.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated images would pass as good"
        )
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _error(path, f"it is too large to decode safely ({exc})", "Resize it.") from None
    except MemoryError:
        raise _error(
            path, "there is not enough memory to decode it", "Resize it or close other programs."
        ) from None
    except Exception as exc:  # the decoders raise OSError, SyntaxError, ValueError, ...
        raise _corrupt(path, exc) from None


def _draft(img: Image.Image, at_least: tuple[int, int]) -> None:
    if img.format != "JPEG" or _orientation(img) != 1:
        return
    w, h = img.size
    scale = max(at_least[0] / h, at_least[1] / w)
    if scale < 0.5:
        try:
            img.draft(img.mode, (int(np.ceil(w * scale)), int(np.ceil(h * scale))))
        except Exception:  # a draft is only a speed-up: a file that refuses it decodes fully
            return


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not cost the image: it is just not rotated
        return 1


def _upright(path: Path, img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so that pixels and masks match what a viewer shows."""
    if _orientation(img) == 1:
        return img
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        raise _corrupt(path, exc) from None


# --- pixel conversion --------------------------------------------------------------------------


def _to_rgb_array(path: Path, img: Image.Image) -> np.ndarray:
    grey = _grey_values(img)
    if grey is not None:
        return np.stack([grey, grey, grey], axis=2)  # several times faster than np.repeat
    if img.mode == "P":
        # Through RGBA so that PIL resolves palette transparency; the alpha is then dropped.
        img = img.convert("RGBA")
    try:
        rgb = img if img.mode == "RGB" else img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise _error(
            path,
            f"its pixel format ({img.mode}) cannot be converted to RGB ({exc})",
            f"Save it as 8- or 16-bit grey or RGB {_SUPPORTED}.",
        ) from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _grey_values(img: Image.Image) -> np.ndarray | None:
    """uint8 (H, W) for the single-channel modes, or None for colour modes."""
    mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode == "LA":
        return np.asarray(img.getchannel("L"), dtype=np.uint8)
    if mode == "1":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode == "F":
        return _float_to_uint8(np.asarray(img, dtype=np.float64))
    if mode == "I" or mode.startswith("I;"):
        return _int_to_uint8(np.asarray(img))
    return None


def _int_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale by the bit depth in use (8/10/12/14/16 bits, or more), not by this image's range."""
    values = np.clip(values.astype(np.int64), 0, None)
    bits = used_bit_depth(int(values.max(initial=0)))
    if bits == 8:
        return values.astype(np.uint8)
    scaled = values * 255.0 / float((1 << bits) - 1)
    return np.rint(scaled).astype(np.uint8)


def used_bit_depth(max_value: int) -> int:
    """The smallest usual sensor depth (8, 10, 12, 14, 16 bits) that holds ``max_value``."""
    for bits in _BIT_DEPTHS:
        if max_value < (1 << bits):
            return bits
    return max(max_value.bit_length(), 16)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (the usual convention) or else [0, 255]; NaN counts as black."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if values.max(initial=0.0) <= 1.0:
        values = np.clip(values, 0.0, 1.0) * 255.0
    else:
        values = np.clip(values, 0.0, 255.0)
    return np.rint(values).astype(np.uint8)


def _mask_values(path: Path, img: Image.Image) -> np.ndarray:
    """uint8 (H, W): the brightest colour channel (alpha ignored), integer masks by bit depth."""
    grey = _grey_values(img)
    if grey is not None:
        return grey
    return _to_rgb_array(path, img).max(axis=2)


def posix_rel(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """The key of an image file under ``root``: its path relative to ``root`` with ``/`` on
    every system (a dataset's sample keys, ``afps predict``'s CSV rows and overlay names), so
    that a key made on Windows is the key made on Linux. ValueError when ``path`` is not under
    ``root``."""
    p = path if isinstance(path, PurePath) else Path(path)
    return p.relative_to(root).as_posix()
