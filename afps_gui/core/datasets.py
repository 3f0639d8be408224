"""Find the images of a dataset folder, their labels and masks, and split them for the method.

Five layouts are read (``LAYOUT_REGISTRY``: one entry per layout) and told apart by their folder
shape (``detect_layout``). Every image becomes a ``Sample`` keyed by ``rel``, its path relative
to the dataset root with '/' separators: that key is what the labels store remembers, so it must
not depend on where the dataset is mounted. A labels CSV (image,label; read by ``label_csv``, as
``afps labels import`` reads it) can add or correct labels in any layout.

With ``validate=True`` every image (and mask) is decoded once while loading. A file that cannot
be used is listed in ``Dataset.skipped`` with the reason, and the rest of the dataset loads: one
bad file in a thousand must not stop an inspector.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import DatasetError, ImageError
from .images import IMAGE_EXTENSIONS, check_image, load_mask, posix_rel
from .jobs import Progress, check_cancel, no_progress
from .label_csv import (
    IMAGE_COLUMNS,
    LABEL_COLUMNS,
    image_matcher,
    read_label_rows,
    read_table,
)
from .taxonomy import NORMAL, NORMAL_WORDS, is_normal_word

# The folders layout's normal folder (any case) is named with the labels CSV's normal words.
NORMAL_FOLDER_NAMES = NORMAL_WORDS
MASK_FOLDER_NAMES = frozenset({"masks", "ground_truth"})  # folders layout, any case
UNTYPED = "(untyped)"  # the counts() key of anomalous images whose defect type is unknown

# Words that a labels CSV may use for "defective, type unknown" (for "defect-free": NORMAL_WORDS).
_ANOMALY_WORDS = frozenset({"anomaly", "anomalous"})

# Files and folders that operating systems and tools leave behind: never worth a mention.
_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "@eadir", "$recycle.bin"})

_KSDD2_MASK = re.compile(r"^\d+_GT\.png$", re.IGNORECASE)
_CHUNK = 64  # images decoded between two cancel checks / progress reports
_MAX_WORKERS = 8  # PIL decodes without the GIL, so threads overlap; more than 8 gains nothing


# --- public data types ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One image of a dataset.

    ``label`` is NORMAL, a defect type, or None when unknown. ``anomalous`` follows from the
    label whenever there is one (so ``dataclasses.replace(sample, label=...)`` stays
    consistent); it is read only when the label is None: True means "defective, type unknown"
    (a KolektorSDD2 defect, a VisA anomaly), None means nothing is known.
    """

    path: Path
    rel: str
    label: str | None
    mask: Path | None = None
    group: str = ""
    anomalous: bool | None = None

    def __post_init__(self) -> None:
        if self.label is None and self.anomalous is False:
            object.__setattr__(self, "label", NORMAL)
        if self.label is not None:
            object.__setattr__(self, "anomalous", self.label != NORMAL)

    @property
    def is_normal(self) -> bool:
        return self.anomalous is False

    @property
    def is_anomalous(self) -> bool:
        return self.anomalous is True

    @property
    def defect_type(self) -> str | None:
        """The defect type, or None for normal images and for defects of unknown type."""
        return self.label if self.is_anomalous else None


@dataclass
class NormalSplit:
    """Normal images for fitting PaDiM, for choosing a threshold, and for the final test."""

    fit: list[Sample]
    val: list[Sample]
    test: list[Sample]


@dataclass
class Dataset:
    root: Path
    layout: str
    samples: list[Sample]
    types: list[str]  # defect types, sorted without regard to case
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (rel path, reason)
    warnings: list[str] = field(default_factory=list)

    def normals(self) -> list[Sample]:
        return [s for s in self.samples if s.is_normal]

    def anomalies(self) -> list[Sample]:
        """Every defective image, including those whose type is unknown."""
        return [s for s in self.samples if s.is_anomalous]

    def by_rel(self) -> dict[str, Sample]:
        return {s.rel: s for s in self.samples}

    def counts(self) -> dict[str, int]:
        """Images per label: NORMAL first, then the types in order, then UNTYPED if any."""
        counts = {NORMAL: 0, **dict.fromkeys(self.types, 0)}
        for sample in self.samples:
            key = UNTYPED if sample.label is None else sample.label
            counts[key] = counts.get(key, 0) + 1
        return counts

    @property
    def has_masks(self) -> bool:
        """True when at least one defective image has a pixel mask (normal ones need none)."""
        return any(s.mask is not None for s in self.anomalies())

    def resolve_types(self, names: Iterable[str] | str) -> list[str]:
        """Map user spellings ("MT_Blowhole", "blowhole", "Blow hole") to this dataset's types.

        A string is read as a comma-separated list. Raises DatasetError naming the known types.
        """
        return resolve_type_names(names, self.types)

    def summary(self, max_listed: int = 5) -> str:
        """A few lines for a preview: layout, images per class, masks, skipped files, warnings."""
        lines = [f"{self.layout} dataset at {self.root}"]
        counts = ", ".join(f"{name} {n}" for name, n in self.counts().items())
        lines.append(f"{len(self.samples)} images: {counts}")
        fit_only = sum(1 for s in self.normals() if s.group == "train")
        if fit_only and self.layout == "mvtec":
            lines.append(f"{fit_only} of the normal images are the training split (fit only)")
        lines.append(_masks_line(self))
        lines += _listed(
            f"{len(self.skipped)} files skipped",
            [f"{r}: {why}" for r, why in self.skipped],
            max_listed,
        )
        lines += _listed(f"{len(self.warnings)} warnings", self.warnings, max_listed)
        return "\n".join(lines)


def _masks_line(dataset: Dataset) -> str:
    anomalies = dataset.anomalies()
    with_mask = sum(1 for s in anomalies if s.mask is not None)
    if not with_mask:
        return "Pixel masks: no"
    return f"Pixel masks: yes, for {with_mask} of {len(anomalies)} defective images"


def _listed(title: str, items: Sequence[str], max_listed: int) -> list[str]:
    if not items:
        return []
    lines = [f"{title}:"] + [f"  {item}" for item in items[:max_listed]]
    if len(items) > max_listed:
        lines.append(f"  ... and {len(items) - max_listed} more")
    return lines


# --- defect type names ---------------------------------------------------------------------


def _type_key(name: str) -> str:
    """Spelling-blind key: case, an "MT_" prefix, spaces, '_' and '-' do not matter."""
    key = name.strip().casefold()
    key = key.removeprefix("mt_")
    return re.sub(r"[\s_\-]+", "", key)


def resolve_type_names(names: Iterable[str] | str, known: Sequence[str]) -> list[str]:
    """Each name mapped onto one of ``known`` (order kept, duplicates dropped)."""
    if isinstance(names, str):
        names = names.split(",")
    index = {_type_key(t): t for t in known}
    resolved: list[str] = []
    unknown: list[str] = []
    for name in names:
        if not name.strip():
            continue
        match = index.get(_type_key(name))
        if match is None:
            unknown.append(name.strip())
        elif match not in resolved:
            resolved.append(match)
    if unknown:
        raise DatasetError(_unknown_types_message(unknown, known))
    return resolved


def _unknown_types_message(unknown: list[str], known: Sequence[str]) -> str:
    quoted = ", ".join(repr(n) for n in unknown)
    normal = [n for n in unknown if _type_key(n) in NORMAL_WORDS]
    note = f" {normal[0]!r} is the normal class, not a defect type." if normal else ""
    if not known:
        return f"Unknown defect type {quoted}: this dataset has no defect types.{note}"
    return f"Unknown defect type {quoted}.{note} This dataset has: {', '.join(known)}."


# --- finding files -------------------------------------------------------------------------


@dataclass
class _Entry:
    """A found image before it is checked; becomes a Sample."""

    path: Path
    label: str | None
    anomalous: bool | None = None
    mask: Path | None = None
    group: str = ""
    mask_decides: bool = False  # KolektorSDD2: defective exactly when its mask has a defect


class _Scan:
    """Walks one dataset root; collects entries and the problems met on the way."""

    def __init__(self, root: Path, cancel: Optional[threading.Event]):
        self.root = root
        self.cancel = cancel
        self.entries: list[_Entry] = []
        self.skipped: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def rel(self, path: Path) -> str:
        return posix_rel(path, self.root)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((self.rel(path), reason))

    def listdir(self, folder: Path) -> tuple[list[Path], list[Path]]:
        """(subfolders, files) of ``folder`` sorted by name, without hidden files and junk.

        A folder that cannot be listed is reported in ``skipped``; loading goes on without it.
        An entry that cannot be looked at (a symlink loop, a dangling link) costs that entry
        only, with its reason.
        """
        check_cancel(self.cancel)
        found = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if _is_junk(entry.name):
                        continue
                    kind = self._kind(folder, entry)
                    if kind is not None:
                        found.append((entry.name, kind == "dir"))
        except OSError as exc:
            self.skip(folder, _unreadable_folder_reason(exc))
            return [], []
        found.sort()
        dirs = [folder / name for name, is_dir in found if is_dir]
        files = [folder / name for name, is_dir in found if not is_dir]
        return dirs, files

    def _kind(self, folder: Path, entry: os.DirEntry) -> Optional[str]:
        """ "dir" or "file", or None (and a reason in ``skipped``) for a broken entry."""
        try:
            if entry.is_dir():
                return "dir"
            if entry.is_symlink() and not os.path.exists(entry.path):
                self.skip(folder / entry.name, "a link to a file that does not exist")
                return None
            return "file"
        except OSError as exc:
            self.skip(folder / entry.name, _broken_entry_reason(exc))
            return None

    def images(self, folder: Path) -> list[Path]:
        """The image files of ``folder``; its other files and its subfolders are listed in
        ``skipped``, so that nothing disappears without a word."""
        dirs, files = self.listdir(folder)
        for sub in dirs:
            self.skip(sub, "a folder inside a class folder is not read; move its images up")
        images = []
        for path in files:
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                images.append(path)
            else:
                self.skip(path, "not an image file (PNG, JPEG, BMP and TIFF files are read)")
        return images


def _is_junk(name: str) -> bool:
    return name.startswith(".") or name.casefold() in _JUNK_NAMES


def _broken_entry_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return "a symbolic link that leads back to itself (a link loop); remove or fix the link"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied); ask for read access"
    return f"cannot be read ({exc.strerror or exc})"


def _unreadable_folder_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "the folder cannot be read (permission denied); ask for read access"
    return f"the folder cannot be read ({exc.strerror or exc})"


def _stem_index(paths: Iterable[Path], suffix: str = "") -> dict[str, Path]:
    """{stem without ``suffix``: path} for mask lookups; PNG wins over other formats."""
    index: dict[str, Path] = {}
    for path in sorted(paths, key=lambda p: p.suffix.lower() == ".png"):  # PNGs last: they win
        stem = path.stem
        if suffix and stem.casefold().endswith(suffix):
            stem = stem[: -len(suffix)]
        index[stem] = path
    return index


# --- the layouts ---------------------------------------------------------------------------


def _scan_magnetic_tile(scan: _Scan) -> None:
    """``MT_<Type>/Imgs/<name>.jpg`` with its mask ``<name>.png`` beside it; MT_Free is normal."""
    dirs, _ = scan.listdir(scan.root)
    for folder in dirs:
        if not folder.name.casefold().startswith("mt_"):
            continue
        type_name = folder.name[3:]
        label = NORMAL if type_name.casefold() == "free" else type_name
        imgs = folder / "Imgs"
        if not imgs.is_dir():
            scan.skip(folder, "no 'Imgs' folder inside (expected MT_<Type>/Imgs/<name>.jpg)")
            continue
        files = scan.images(imgs)
        # In this layout the PNG files are the masks of the JPEG images beside them.
        masks = {p.stem: p for p in files if p.suffix.lower() == ".png"}
        for path in files:
            if path.suffix.lower() != ".png":
                scan.entries.append(_Entry(path, label, mask=masks.pop(path.stem, None)))
        for orphan in masks.values():
            scan.skip(orphan, f"a mask without its image ({orphan.stem}.jpg is missing)")


def _scan_mvtec(scan: _Scan) -> None:
    """``train/good``, ``test/<type>`` (``good`` is normal), ``ground_truth/<type>/<stem>_mask``."""
    root = scan.root
    train_dirs, _ = scan.listdir(root / "train") if (root / "train").is_dir() else ([], [])
    for folder in train_dirs:
        if folder.name == "good":
            for path in scan.images(folder):
                scan.entries.append(_Entry(path, NORMAL, group="train"))
        else:
            scan.skip(folder, "only train/good is read: MVTec training images are defect-free")
    test_dirs, _ = scan.listdir(root / "test") if (root / "test").is_dir() else ([], [])
    for folder in test_dirs:
        label = NORMAL if folder.name == "good" else folder.name
        masks = _mvtec_masks(scan, root / "ground_truth" / folder.name)
        for path in scan.images(folder):
            mask = masks.get(path.stem) if label != NORMAL else None
            scan.entries.append(_Entry(path, label, mask=mask, group="test"))


def _mvtec_masks(scan: _Scan, folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return _stem_index(scan.images(folder), suffix="_mask")


def _scan_visa(scan: _Scan) -> None:
    """``image_anno.csv`` (image,label,mask) if present, else ``Data/Images/{Normal,Anomaly}``.

    The CSV's label is the defect type where it names one ("bubble"; a list of types such as
    "bubble,discolor" becomes the type "bubble+discolor", so that ``--classes`` can name it);
    "anomaly" or an empty label is defective with the type unknown, as in the folder layout.
    """
    if (scan.root / "image_anno.csv").is_file():
        _scan_visa_csv(scan, scan.root / "image_anno.csv")
        return
    images = scan.root / "Data" / "Images"
    masks_dir = scan.root / "Data" / "Masks" / "Anomaly"
    if (images / "Normal").is_dir():
        for path in scan.images(images / "Normal"):
            scan.entries.append(_Entry(path, NORMAL))
    if (images / "Anomaly").is_dir():
        masks = _stem_index(scan.images(masks_dir)) if masks_dir.is_dir() else {}
        for path in scan.images(images / "Anomaly"):
            scan.entries.append(_Entry(path, None, True, mask=masks.get(path.stem)))


def _scan_visa_csv(scan: _Scan, csv_path: Path) -> None:
    columns = {"image": IMAGE_COLUMNS, "label": LABEL_COLUMNS, "mask": ("mask",)}
    for line, row in read_table(csv_path, columns):
        image = _visa_path(scan.root, row["image"] or "")
        if image is None or not image.is_file():
            text = row["image"] or "(empty)"
            scan.warnings.append(f"image_anno.csv line {line}: image {text} not found")
            continue
        text = row["label"] or ""
        normal = is_normal_word(text)
        mask = _visa_path(scan.root, row["mask"] or "") if not normal else None
        label = NORMAL if normal else _visa_type(text)
        scan.entries.append(_Entry(image, label, not normal, mask=mask))


def _visa_type(text: str) -> str | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or (len(parts) == 1 and parts[0].casefold() in _ANOMALY_WORDS):
        return None
    return "+".join(parts)


def _visa_path(root: Path, text: str) -> Path | None:
    """A path from image_anno.csv: relative to the root or, as VisA ships it, to the folder
    above it ("candle/Data/Images/..."). None when empty or outside the root."""
    text = text.strip().replace("\\", "/")
    if not text:
        return None
    for base in (root, root.parent):
        candidate = Path(os.path.abspath(base / text))
        if candidate.exists() and _is_under(candidate, root):
            return candidate
    return None


def _scan_ksdd2(scan: _Scan) -> None:
    """``train/`` and ``test/`` with ``NNNNN.png`` and its mask ``NNNNN_GT.png``.

    Whether an image is defective is decided later, from its mask (any defect pixel).
    """
    for split in ("train", "test"):
        folder = scan.root / split
        if not folder.is_dir():
            continue
        files = scan.images(folder)
        masks = {p.name[: -len("_GT.png")]: p for p in files if _KSDD2_MASK.match(p.name)}
        for path in files:
            if _KSDD2_MASK.match(path.name):
                continue
            mask = masks.pop(path.stem, None)
            scan.entries.append(
                _Entry(path, None, mask=mask, group=split, mask_decides=mask is not None)
            )
        for orphan in masks.values():
            scan.skip(orphan, "a mask without its image")


def _scan_folders(scan: _Scan) -> None:
    """One folder of normal images (good/normal/ok/free), one folder per defect type.

    Masks are either in masks/<type>/<stem>.png (or ground_truth/...; "_mask" may end the
    name) or beside the image as <stem>_mask.png. Mask files are never taken for images.
    """
    dirs, _ = scan.listdir(scan.root)
    mask_index: dict[str, dict[str, Path]] = {}
    for folder in dirs:
        if folder.name.casefold() in MASK_FOLDER_NAMES:
            for sub in scan.listdir(folder)[0]:
                found = _stem_index(scan.images(sub), suffix="_mask")
                mask_index.setdefault(sub.name.casefold(), {}).update(found)
    for folder in dirs:
        name = folder.name.casefold()
        if name in MASK_FOLDER_NAMES:
            continue
        label = NORMAL if name in NORMAL_FOLDER_NAMES else folder.name
        _scan_class_folder(scan, folder, label, mask_index.get(name, {}))


def _scan_class_folder(scan: _Scan, folder: Path, label: str, masks: dict[str, Path]) -> None:
    files = scan.images(folder)
    beside = _stem_index([p for p in files if p.stem.casefold().endswith("_mask")], "_mask")
    for path in files:
        if path.stem.casefold().endswith("_mask"):
            continue
        mask = beside.pop(path.stem, None) or masks.get(path.stem)
        scan.entries.append(_Entry(path, label, mask=mask))
    for orphan in beside.values():
        scan.skip(orphan, "a mask without its image")


# --- the layouts: one registry entry each (name, help, how to recognise it, how to read it) ---


@dataclass(frozen=True)
class LayoutSpec:
    name: str
    help: str  # what the folder looks like, for the "Known layouts" message
    detect: Callable[[Path, list[str]], bool]  # (root, its child names) -> is it this layout?
    scan: Callable[[_Scan], None]


def _looks_magnetic_tile(root: Path, names: list[str]) -> bool:
    return any(n.casefold().startswith("mt_") and (root / n / "Imgs").is_dir() for n in names)


def _looks_mvtec(root: Path, names: list[str]) -> bool:
    return (root / "train" / "good").is_dir()


def _looks_visa(root: Path, names: list[str]) -> bool:
    return (root / "image_anno.csv").is_file() or (root / "Data" / "Images").is_dir()


def _looks_ksdd2(root: Path, names: list[str]) -> bool:
    return any(_has_ksdd2_mask(root / split) for split in ("train", "test"))


def _looks_folders(root: Path, names: list[str]) -> bool:
    return any(n.casefold() in NORMAL_FOLDER_NAMES and (root / n).is_dir() for n in names)


# In detection order: the most specific shape first, the catch-all "folders" last.
LAYOUT_REGISTRY: dict[str, LayoutSpec] = {
    spec.name: spec
    for spec in (
        LayoutSpec(
            "magnetic-tile",
            "MT_<Type>/Imgs/<name>.jpg with <name>.png masks; MT_Free holds the normal images",
            _looks_magnetic_tile,
            _scan_magnetic_tile,
        ),
        LayoutSpec(
            "mvtec",
            "train/good/*.png, test/<type>/*.png (test/good is normal), ground_truth/<type>/",
            _looks_mvtec,
            _scan_mvtec,
        ),
        LayoutSpec(
            "visa",
            "image_anno.csv (image,label,mask) or Data/Images/Normal and Data/Images/Anomaly",
            _looks_visa,
            _scan_visa,
        ),
        LayoutSpec(
            "ksdd2",
            "train/ and test/ holding NNNNN.png with NNNNN_GT.png masks",
            _looks_ksdd2,
            _scan_ksdd2,
        ),
        LayoutSpec(
            "folders",
            "a folder of normal images named good, normal, ok or free, and one folder per\n"
            "defect type (masks optional, in masks/<type>/ or as <stem>_mask.png)",
            _looks_folders,
            _scan_folders,
        ),
    )
}
LAYOUTS = tuple(LAYOUT_REGISTRY)


def _layout_help() -> str:
    lines = ["Known layouts:"]
    for spec in LAYOUT_REGISTRY.values():
        first, *more = spec.help.split("\n")
        lines.append(f"  {spec.name:<14} {first}")
        lines += [" " * 17 + line for line in more]
    return "\n".join(lines)


# --- telling the layouts apart -------------------------------------------------------------


def detect_layout(root: str | os.PathLike) -> str:
    """The layout of ``root`` from its folder shape; DatasetError explains the layouts if none."""
    root = _check_root(root)
    names = _child_names(root)
    for spec in LAYOUT_REGISTRY.values():
        if spec.detect(root, names):
            return spec.name
    raise DatasetError(
        f"{root} does not look like a dataset.{_layout_hint(root, names)}\n\n{_layout_help()}"
    )


def _child_names(root: Path) -> list[str]:
    try:
        return sorted(name for name in os.listdir(root) if not _is_junk(name))
    except OSError as exc:
        raise DatasetError(
            f"The dataset folder {root} cannot be read: {exc.strerror or exc}."
        ) from None


def _has_ksdd2_mask(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return any(_KSDD2_MASK.match(e.name) for e in it)
    except OSError:
        return False


def _layout_hint(root: Path, names: list[str]) -> str:
    """A guess at what the user meant, when the folder is one level off or unsorted."""
    subdirs = [root / n for n in names if (root / n).is_dir()]
    if any(_looks_mvtec(d, []) for d in subdirs):
        return " It holds MVTec AD categories: choose one category folder (e.g. 'bottle')."
    if any(_looks_visa(d, []) for d in subdirs):
        return " It holds VisA categories: choose one category folder (e.g. 'candle')."
    if any(Path(n).suffix.lower() in IMAGE_EXTENSIONS for n in names):
        return (
            " Its images lie loose in it: put the defect-free ones in a folder named 'good' and"
            " each defect type in a folder of its own."
        )
    if subdirs:
        return " None of its folders is named good, normal, ok or free (the normal images)."
    return ""


def _check_root(root: str | os.PathLike) -> Path:
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.exists():
        raise DatasetError(f"The dataset folder {root} does not exist. Check the path.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; choose the folder that holds the dataset.")
    if not _child_names(root):
        raise DatasetError(f"The dataset folder {root} is empty.")
    return root


def _choose_layout(root: Path, layout: str | None) -> str:
    if layout is None:
        return detect_layout(root)
    if layout not in LAYOUTS:
        raise DatasetError(f"Unknown dataset layout {layout!r}; known: {', '.join(LAYOUTS)}.")
    return layout


# --- loading -------------------------------------------------------------------------------


def load_dataset(
    root: str | os.PathLike,
    layout: str | None = None,
    labels_csv: str | os.PathLike | None = None,
    *,
    validate: bool = True,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> Dataset:
    """Read a dataset folder: its images, labels and masks.

    ``layout`` None detects it. ``labels_csv`` (image,label) adds or overrides labels.
    ``validate`` decodes every image and mask now and lists each unusable file in ``skipped``.
    Raises DatasetError when the folder is missing, empty, of no known layout, or holds no
    usable normal image; Cancelled when ``cancel`` is set.
    """
    root = _check_root(root)
    layout = _choose_layout(root, layout)
    progress(0, 1, f"Looking for images ({layout} layout)")
    scan = _Scan(root, cancel)
    LAYOUT_REGISTRY[layout].scan(scan)
    if labels_csv is not None:
        _apply_labels_csv(scan, Path(labels_csv))
    entries = _known_entries(scan)
    samples = _check_entries(scan, entries, validate, progress, cancel)
    samples.sort(key=lambda s: s.rel)
    dataset = Dataset(
        root=root,
        layout=layout,
        samples=samples,
        types=sorted({s.label for s in samples if s.is_anomalous and s.label}, key=str.casefold),
        skipped=sorted(scan.skipped),
        warnings=scan.warnings,
    )
    _require_usable(dataset)
    return dataset


def _known_entries(scan: _Scan) -> list[_Entry]:
    """Entries whose status is known or can be read from their mask; the others are skipped."""
    known = []
    for entry in scan.entries:
        if entry.label is None and entry.anomalous is None and not entry.mask_decides:
            scan.skip(entry.path, "its label is unknown (no mask and no row in the labels CSV)")
        else:
            known.append(entry)
    return known


def _check_entries(
    scan: _Scan,
    entries: list[_Entry],
    validate: bool,
    progress: Progress,
    cancel: Optional[threading.Event],
) -> list[Sample]:
    """Decode (if asked) in worker threads, a chunk at a time so that cancel stays prompt."""
    total = len(entries)
    verb = "Checking" if validate else "Reading"
    samples: list[Sample] = []
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataset-check") as pool:
        for start in range(0, total, _CHUNK):
            check_cancel(cancel)
            chunk = entries[start : start + _CHUNK]
            for sample, problems in pool.map(lambda e: _check_entry(scan, e, validate), chunk):
                scan.skipped.extend(problems)
                if sample is not None:
                    samples.append(sample)
            done = min(start + _CHUNK, total)
            progress(done, total, f"{verb} images: {done} of {total}")
    check_cancel(cancel)
    return samples


def _check_entry(
    scan: _Scan, entry: _Entry, validate: bool
) -> tuple[Sample | None, list[tuple[str, str]]]:
    """The entry as a Sample (or None) and the (rel, reason) of each of its files that failed."""
    rel = scan.rel(entry.path)
    shape = None
    if validate:
        try:
            shape = check_image(entry.path)
        except ImageError as exc:
            return None, [(rel, _reason(exc))]
    if entry.mask is None or not (validate or entry.mask_decides):
        return _sample(scan, entry, entry.mask), []
    try:
        defect = load_mask(entry.mask, shape)
    except ImageError as exc:
        problem = (_rel_or_name(scan, entry.mask), _reason(exc))
        if entry.mask_decides:
            return None, [problem, (rel, "its mask is unusable, so its label is unknown")]
        return _sample(scan, entry, None), [problem]  # the image is still good without its mask
    if entry.mask_decides:
        entry = _Entry(entry.path, None, bool(defect.any()), entry.mask, entry.group)
    return _sample(scan, entry, entry.mask), []


def _sample(scan: _Scan, entry: _Entry, mask: Path | None) -> Sample:
    return Sample(
        path=entry.path,
        rel=scan.rel(entry.path),
        label=entry.label,
        mask=mask,
        group=entry.group,
        anomalous=entry.anomalous,
    )


def _reason(exc: ImageError) -> str:
    return getattr(exc, "reason", None) or str(exc)


def _rel_or_name(scan: _Scan, path: Path) -> str:
    return scan.rel(path) if _is_under(path, scan.root) else str(path)


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _require_usable(dataset: Dataset) -> None:
    problems = "".join(f"\n  {rel}: {why}" for rel, why in dataset.skipped[:5])
    if not dataset.samples:
        raise DatasetError(
            f"No usable image was found in {dataset.root} ({dataset.layout} layout).{problems}"
        )
    if not dataset.normals():
        raise DatasetError(
            f"{dataset.root} holds no usable normal (defect-free) image, and the anomaly model"
            " learns from those alone. Add defect-free images (in the folders layout: a folder"
            f" named 'good').{problems}"
        )


# --- labels CSV ----------------------------------------------------------------------------


def read_labels_csv(
    path: str | os.PathLike, *, root: str | os.PathLike | None = None
) -> dict[str, str]:
    """{image: label} from a CSV with a header naming the columns image and label.

    Read by ``label_csv.read_label_rows``, the reader ``afps labels import`` uses too: image
    paths relative to the dataset root ('/' or '\\'), absolute ones under ``root`` made
    relative; "defect-free" words (normal, good, ok, free) become NORMAL. Rows that cannot be
    used are dropped (``load_dataset`` reports them as warnings); DatasetError only when the
    file as a whole is unusable.
    """
    labels, _problems = _read_labels(Path(path), None if root is None else Path(root))
    return labels


def _read_labels(path: Path, root: Path | None) -> tuple[dict[str, str], list[str]]:
    rows, problems = read_label_rows(path, root)
    if problems and not rows:
        raise DatasetError(f"The labels file {path} has no usable row: {problems[0]}.")
    return {row.image: row.label for row in rows}, problems


def _apply_labels_csv(scan: _Scan, csv_path: Path) -> None:
    """Labels from the CSV override the layout's; rows naming no known image become warnings."""
    labels, problems = _read_labels(csv_path, scan.root)
    name = csv_path.name
    scan.warnings += [f"{name} {problem}" for problem in problems]
    index = {scan.rel(e.path): e for e in scan.entries}
    match = image_matcher(index)
    known_types = sorted({e.label for e in scan.entries if e.label and e.label != NORMAL})
    unmatched = []
    for key, label in labels.items():
        found = match(key)
        if found is None:
            unmatched.append(key)
        else:
            _relabel(index[found], label, known_types)
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        scan.warnings.append(
            f"{name}: {len(unmatched)} rows name images that are not in the dataset: {shown}"
        )


def _relabel(entry: _Entry, label: str, known_types: list[str]) -> None:
    entry.mask_decides = False
    if label == NORMAL:
        entry.label, entry.anomalous = NORMAL, False
    elif label.casefold() in _ANOMALY_WORDS:
        if entry.label is None or entry.label == NORMAL:  # keep a type the layout already gave
            entry.label, entry.anomalous = None, True
    else:
        same = [t for t in known_types if _type_key(t) == _type_key(label)]
        entry.label, entry.anomalous = (same[0] if same else label), True


# --- splits --------------------------------------------------------------------------------


def split_normals(
    normals: Sequence[Sample],
    seed: int,
    *,
    n_fit: int | None = None,
    fit_fraction: float = 0.8,
) -> NormalSplit:
    """Split normal images into fit / val / test, the same way for the same seed.

    Images of the dataset's own training split (group "train", e.g. MVTec train/good) are
    fit-only material: they fill ``fit`` first, and by default all of them go there. ``n_fit``
    None means max(that number, ``fit_fraction`` of all). What is left after fit goes half to
    val, half to test (test gets the odd one); leftover training-split images go to val first.
    """
    if not 0.0 < fit_fraction <= 1.0:
        raise ValueError(f"fit_fraction must be in (0, 1], not {fit_fraction}")
    rng = random.Random(seed)
    train = _shuffled([s for s in normals if s.group == "train"], rng)
    other = _shuffled([s for s in normals if s.group != "train"], rng)
    total = len(train) + len(other)
    if n_fit is None:
        n_fit = max(len(train), round(fit_fraction * total))
    if not 1 <= n_fit <= total:
        raise DatasetError(
            f"Cannot fit on {n_fit} normal images: there are {total}. Choose 1 to {total}."
        )
    ordered = train + other
    rest = ordered[n_fit:]
    n_val = len(rest) // 2
    return NormalSplit(fit=ordered[:n_fit], val=rest[:n_val], test=rest[n_val:])


def split_anomalies(
    anomalies: Sequence[Sample], seed: int, *, test_fraction: float = 0.4
) -> tuple[list[Sample], list[Sample]]:
    """(train, test) stratified by label, the same way for the same seed.

    Each class with two or more images has at least one on each side; a class of one image
    goes to train (a classifier cannot learn a type it has never seen). Defects of unknown
    type form a class of their own.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], not {test_fraction}")
    by_label: dict[str, list[Sample]] = {}
    for sample in anomalies:
        by_label.setdefault(sample.label or UNTYPED, []).append(sample)
    train: list[Sample] = []
    test: list[Sample] = []
    for label in sorted(by_label):
        # One generator per class, seeded by the class name too: adding a class elsewhere does
        # not reshuffle this one.
        members = _shuffled(by_label[label], random.Random(f"{seed}:{label}"))
        n_test = stratum_test_size(len(members), test_fraction)
        test += members[:n_test]
        train += members[n_test:]
    return train, test


def stratum_test_size(n: int, test_fraction: float) -> int:
    """How many of a class's ``n`` images a stratified split holds out to test: the one rule
    of the project's split (``split_anomalies``) and the experiment's (``stratified_split``).
    A class of two or more has at least one image on each side; a class of one trains (a
    classifier cannot learn a type it has never seen)."""
    if n < 2:
        return 0
    return min(max(round(n * test_fraction), 1), n - 1)


def _shuffled(samples: list[Sample], rng: random.Random) -> list[Sample]:
    """Sorted by rel first, so that the input order never changes the split."""
    ordered = sorted(samples, key=lambda s: s.rel)
    rng.shuffle(ordered)
    return ordered
