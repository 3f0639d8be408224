"""The one reader of labels CSVs (image,label), for both doors that take one.

A dataset's ``--labels`` file (``datasets.load_dataset``) and ``afps labels import`` /
the review panel's import (``LabelStore.import_csv``) read the same files the same way: the
same encodings, delimiters, header names, normal words and path rules. Before there was one
reader, a file one door took the other refused, and ``good`` meant defect-free in one and an
unknown type in the other.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .csv_cells import unescape_cell
from .errors import DatasetError, LabelStoreError
from .taxonomy import NORMAL, is_normal_word

# Header names people (and other tools' exports) use for the two columns, any case.
IMAGE_COLUMNS = ("image", "path", "file", "filename", "image_path", "relpath")
LABEL_COLUMNS = ("label", "class", "type", "defect", "defect_type")

_DRIVE = re.compile(r"^[A-Za-z]:")


class LabelsFileError(DatasetError, LabelStoreError):
    """A labels CSV that cannot be read at all. Both doors' callers already catch their own
    error class (DatasetError for a dataset, LabelStoreError for an import), so this is both."""


@dataclass(frozen=True)
class LabelRow:
    line: int  # the line in the file, for messages
    image: str  # the dataset-relative POSIX key (``clean_image``)
    label: str  # as written (trimmed), or NORMAL for any of taxonomy.NORMAL_WORDS


def clean_image(image: str) -> str:
    """Normalise an image key to a POSIX path relative to the dataset root, or raise.

    Backslashes become slashes so that a CSV written on Windows matches the same images.
    """
    if not isinstance(image, str) or not image.strip():
        raise LabelStoreError("An image path is empty.")
    path = image.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise LabelStoreError(
            f"{image!r} is an absolute path; image paths must be relative to the dataset root."
        )
    norm = posixpath.normpath(path)
    if norm in (".", "..") or norm.startswith("../"):
        raise LabelStoreError(f"{image!r} points outside the dataset root.")
    return norm


def image_matcher(known: Iterable[str]) -> Callable[[str], str | None]:
    """The one way a labels CSV row finds its image, for both doors: the known key equal to
    the row's image, else the one equal to it ignoring case (a CSV written on Windows, or by
    hand), else None. Where keys differ only in case, the first in sorted order is matched."""
    exact = set(known)
    folded: dict[str, str] = {}
    for key in sorted(exact):
        folded.setdefault(key.casefold(), key)

    def match(image: str) -> str | None:
        return image if image in exact else folded.get(image.casefold())

    return match


def relative_to_root(image: str, root: str | os.PathLike | None) -> str:
    """An absolute path under ``root`` made relative to it; anything else as it is."""
    if root is None:
        return image
    path = image.replace("\\", "/")
    base = str(root).replace("\\", "/").rstrip("/") + "/"
    if path.startswith(base):
        return path[len(base) :]
    if _DRIVE.match(base) and path.casefold().startswith(base.casefold()):
        return path[len(base) :]  # Windows paths ignore case
    if os.path.isabs(image):  # a root given relative to the working folder, or with '..'
        full, top = os.path.abspath(image), os.path.abspath(root)
        if os.path.commonpath([full, top]) == top:
            return Path(os.path.relpath(full, top)).as_posix()
    return image


def read_label_rows(
    path: str | os.PathLike, root: str | os.PathLike | None = None
) -> tuple[list[LabelRow], list[str]]:
    """The usable rows of a labels CSV, and a "line N: reason" for each row that is not.

    A later row for the same image wins, and the earlier one is reported. LabelsFileError only
    when the file as a whole cannot be used (unreadable, empty, no image/label header).
    """
    rows: dict[str, LabelRow] = {}
    bad: list[str] = []
    for line, cells in read_table(path, {"image": IMAGE_COLUMNS, "label": LABEL_COLUMNS}):
        parsed = _parse_row(cells, root)
        if isinstance(parsed, str):
            bad.append(f"line {line}: {parsed}")
            continue
        image, label = parsed
        if image in rows:
            bad.append(
                f"line {rows[image].line}: {image} is listed again on line {line};"
                " the later row is used."
            )
        rows[image] = LabelRow(line, image, label)
    return list(rows.values()), bad


def read_table(
    path: str | os.PathLike, columns: dict[str, tuple[str, ...]]
) -> list[tuple[int, dict[str, str | None]]]:
    """(line, {column: cell}) for each non-blank row of a CSV whose first row names its columns.

    The first of each column's aliases found in the header is used (any case); "image" and
    "label" must be there. A cell is None when the row is too short to hold it; cells quoted
    against formula injection read back as they were written.
    """
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        where = _header_columns(path, reader, columns)
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                cells = {
                    name: unescape_cell(row[i].strip()) if i is not None and i < len(row) else None
                    for name, i in where.items()
                }
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise LabelsFileError(f"{path} is not a readable CSV file: {exc}.") from exc
    return rows


def _read_text(path: Path) -> str:
    try:
        return _decode(path.read_bytes())
    except OSError as exc:
        raise LabelsFileError(
            f"The labels file {path} cannot be read: {exc.strerror or exc}."
        ) from exc


def _decode(data: bytes) -> str:
    """Text of a CSV from UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode") or cp1252
    (Excel's plain "CSV" on Western Windows)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "cp1252"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(encoding)
    return data.decode("latin-1")  # never fails: every byte is a character


def _delimiter(text: str) -> str:
    """Excel in many European locales writes ";" (or tabs) instead of ",". Only the header is
    sniffed: image paths in the rows below may hold any of these characters."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:  # a single column: no delimiter to find
        return ","


def _header_columns(
    path: Path, reader, columns: dict[str, tuple[str, ...]]
) -> dict[str, int | None]:
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise LabelsFileError(
            f"The labels file {path} is empty; it needs a header row image,label."
        )
    names = [cell.strip().lstrip("\ufeff").casefold() for cell in header]
    where = {
        name: next((names.index(n) for n in aliases if n in names), None)
        for name, aliases in columns.items()
    }
    missing = [n for n in ("image", "label") if n in where and where[n] is None]
    if missing:
        raise LabelsFileError(
            f"The labels file {path} has no {' or '.join(missing)} column: its first row must be"
            f" a header naming the columns (image,label); it reads {','.join(header)[:80]!r}."
        )
    return where


def _parse_row(
    cells: dict[str, str | None], root: str | os.PathLike | None
) -> tuple[str, str] | str:
    """(image, label) from one CSV row, or the reason the row cannot be used."""
    image, label = cells["image"], cells["label"]
    if image is None or label is None:
        return "too few columns"
    if not image:
        return "no image path"
    if not label:
        return f"no label for {image}"
    try:
        image = clean_image(relative_to_root(image, root))
    except LabelStoreError as exc:
        return str(exc)
    return image, NORMAL if is_normal_word(label) else label
