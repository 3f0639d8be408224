"""A project: the folder an inspector chooses, holding settings, models, a score cache and labels.

    <project>/project.json      settings: dataset root and layout, model settings, seeds
    <project>/labels.sqlite     human labels, predictions and their history (never lost)
    <project>/models/padim.pt   the anomaly model      <project>/models/classifier.pt
    <project>/cache/            scores and patch maps; safe to delete, rebuilt by scoring

Only one app instance writes a project at a time: a second one opens it read-only.

project.json stores the dataset folder relative to the project folder when the dataset lies
below or beside it ("../images"), so that a project handed from the lab to the line together
with its dataset opens where it lands; elsewhere the path stays absolute. In memory
``settings.dataset_root`` is always absolute. A dataset folder that is missing on opening is a
``DatasetMissingError``; ``relocate_dataset`` points the project at its new place.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .classifier import ClassifierConfig
from .datasets import Dataset, Sample, load_dataset, split_anomalies, split_normals
from .errors import AfpsError, DatasetError, DatasetMissingError, ProjectError
from .inspection_log import line_image_paths
from .jobs import atomic_write
from .label_types import canonical_label
from .labels import ImportReport, LabelStore
from .padim import PadimConfig
from .project_lock import FolderNotWritable, ProjectLock
from .taxonomy import DEFAULT_TYPES, NORMAL

SETTINGS_NAME = "project.json"
SETTINGS_VERSION = 1


@dataclass
class ProjectSettings:
    dataset_root: str
    layout: Optional[str] = None
    labels_csv: Optional[str] = None
    padim: PadimConfig = field(default_factory=PadimConfig)
    # New projects let cross-validation on their labels choose the classifier (model_choice).
    classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(strategy="auto"))
    n_fit: Optional[int] = None  # normal images to fit on; None = 80 % of them
    split_seed: int = 0
    test_fraction: float = 0.4  # of labelled defect images, held out to test the classifier
    device: str = "auto"
    name: str = ""
    version: int = SETTINGS_VERSION
    # Tune the detection settings on the project's data before its first fit. New projects
    # whose settings the user did not choose set it (the CLI, the New Project dialog).
    auto_tune: bool = False
    tuning: Optional[dict] = None  # the last tuning: candidates tried, scores, choice (TuneResult)
    tune_budget_s: float = 600.0  # how long tuning may try candidates

    def to_json(self) -> dict:
        data = asdict(self)
        data["padim"]["input_size"] = list(self.padim.input_size)
        return data

    @classmethod
    def from_json(cls, data: dict) -> ProjectSettings:
        if data.get("version", 1) > SETTINGS_VERSION:
            raise ProjectError(
                "This project was made by a newer AFPS Inspector; update the app to open it."
            )
        data = dict(data)
        data["padim"] = PadimConfig(**data.get("padim", {}))
        data["classifier"] = ClassifierConfig(**data.get("classifier", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class CachedScore:
    score: float
    patch_map: np.ndarray  # (gh, gw) float32
    box: tuple[int, int, int, int]  # valid input region y0, y1, x0, x1


class ScoreCache:
    """Image scores and patch maps from the last scoring run, keyed by the image's rel path.

    The index is re-read whenever its file changes: the app's jobs score in a child process,
    and the app must then see their scores without being told.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.index_path = folder / "scores.json"
        self._index: Optional[dict] = None
        self._stamp: Optional[tuple[int, int, int]] = None

    def _maps_dir(self) -> Path:
        return self.folder / "maps"

    def _map_path(self, rel: str) -> Path:
        return self._maps_dir() / (hashlib.sha1(rel.encode()).hexdigest() + ".npy")

    def stamp(self) -> Optional[tuple[int, int, int]]:
        """Changes whenever the index file does (None while there is none)."""
        try:
            st = self.index_path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    @property
    def index(self) -> dict:
        stamp = self.stamp()
        if self._index is None or stamp != self._stamp:
            self._stamp = stamp
            try:
                self._index = json.loads(self.index_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._index = {"model": None, "images": {}}
        return self._index

    def scores(self) -> dict[str, float]:
        return {rel: v["score"] for rel, v in self.index["images"].items()}

    def get(self, rel: str) -> Optional[CachedScore]:
        entry = self.index["images"].get(rel)
        if entry is None:
            return None
        try:
            pmap = np.load(self._map_path(rel), allow_pickle=False)
        except (OSError, ValueError):
            return None
        return CachedScore(entry["score"], pmap.astype(np.float32), tuple(entry["box"]))

    def put_map(self, rel: str, patch_map: np.ndarray) -> None:
        path = self._map_path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, patch_map.astype(np.float16), allow_pickle=False)

    def write_index(self, model_id: str, entries: dict[str, dict]) -> None:
        """Replace the index in one atomic write (entries: rel -> {score, box})."""
        data = {"model": model_id, "images": entries}
        with atomic_write(self.index_path) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
        self._index, self._stamp = data, self.stamp()

    def clear(self) -> None:
        self.index_path.unlink(missing_ok=True)
        self._index, self._stamp = {"model": None, "images": {}}, None


class Project:
    def __init__(
        self,
        folder: Path,
        settings: ProjectSettings,
        store: LabelStore,
        lock: Optional[ProjectLock],
        message: str = "",
    ):
        self.folder = folder
        self.settings = settings
        self.store = store
        self._lock = lock
        self.readonly_reason = message  # why the project is read-only, for the UI ("" if writable)
        self.cache = ScoreCache(folder / "cache")
        self._dataset: Optional[Dataset] = None

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, folder, settings: ProjectSettings, dataset: Optional[Dataset] = None
    ) -> Project:
        """Make a new project folder for a dataset. Refuses a folder that already is a project."""
        folder = Path(folder)
        if (folder / SETTINGS_NAME).exists():
            raise ProjectError(f"{folder} already holds a project: open it instead.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"Cannot create the project folder {folder}: {exc}") from exc
        if dataset is None:
            dataset = load_dataset(settings.dataset_root, settings.layout, settings.labels_csv)
        settings.layout = dataset.layout
        settings.name = settings.name or folder.name
        _write_settings(folder, settings)
        project = cls.open(folder)
        project._dataset = dataset
        project._adopt_dataset_types(dataset)
        return project

    @classmethod
    def open(
        cls, folder, *, readonly: Optional[bool] = None, require_dataset: bool = True
    ) -> Project:
        """Open a project (read-only where another instance holds it or the folder cannot be
        written). A missing dataset folder raises DatasetMissingError, unless
        ``require_dataset`` is False (to read labels only): then ``dataset`` raises it."""
        folder = Path(folder)
        path = folder / SETTINGS_NAME
        if not path.is_file():
            raise ProjectError(f"{folder} is not an AFPS Inspector project (no {SETTINGS_NAME}).")
        settings = read_settings(folder)
        if require_dataset and not Path(settings.dataset_root).is_dir():
            raise _missing_dataset_error(folder, settings.dataset_root)
        lock, message = None, ""
        if readonly is not True:
            lock = ProjectLock(folder)
            try:
                acquired = lock.acquire()
            except FolderNotWritable as exc:
                # Reading needs no lock: a folder the user may not write opens read-only.
                acquired = False
                why = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else ""
                message = (
                    f"The project folder {folder} cannot be written"
                    f"{f' ({why})' if why else ''}: the project is open read-only. Labels, "
                    "reports and exports can be read; to change the project, copy it to a "
                    "folder you may write or ask for write permission."
                )
            else:
                if not acquired:
                    message = lock.read_only_message()
            if not acquired:
                lock = None
        ro = readonly is True or lock is None
        try:
            store = LabelStore(folder / "labels.sqlite", readonly=ro)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(folder, settings, store, lock, message)

    @classmethod
    def open_for_job(cls, folder, settings: ProjectSettings, *, readonly: bool) -> Project:
        """The project as a job's child process sees it: the app that started the job holds
        the project's lock for it (and waits for it), so the lock is not taken again here; the
        settings are the app's, as the user just set them, saved or not."""
        folder = Path(folder)
        store = LabelStore(folder / "labels.sqlite", readonly=readonly)
        message = "The project is open read-only." if readonly else ""
        return cls(folder, settings, store, None, message)

    def close(self) -> None:
        self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    def save_settings(self) -> None:
        if self.readonly:
            raise ProjectError("The project is open read-only: settings were not saved.")
        _write_settings(self.folder, self.settings)

    def _adopt_dataset_types(self, dataset: Dataset) -> None:
        """A dataset with its own defect types replaces the unused default types."""
        if not dataset.types or self.readonly:
            return
        existing = self.store.type_names()
        self.store.adopt_types(
            [name for name in dataset.types if canonical_label(name, existing) is None],
            [name for name in DEFAULT_TYPES if canonical_label(name, dataset.types) is None],
        )

    # --- data -------------------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            s = self.settings
            if not Path(s.dataset_root).is_dir():
                raise _missing_dataset_error(self.folder, s.dataset_root)
            self._dataset = load_dataset(s.dataset_root, s.layout, s.labels_csv, validate=False)
        return self._dataset

    def reload_dataset(self, **kwargs) -> Dataset:
        s = self.settings
        self._dataset = load_dataset(s.dataset_root, s.layout, s.labels_csv, **kwargs)
        return self._dataset

    @property
    def padim_path(self) -> Path:
        return self.folder / "models" / "padim.pt"

    @property
    def classifier_path(self) -> Path:
        return self.folder / "models" / "classifier.pt"

    def label_of(self, sample: Sample) -> Optional[str]:
        """The human label if the inspector gave one, else the dataset's own label (in the
        spelling of the project's type)."""
        human = self.store.label(sample.rel)
        if human is not None:
            return human
        return _dataset_label(sample.label, self.store.type_names())

    def line_samples(self, human: Optional[dict[str, str]] = None) -> list[Sample]:
        """The line images an inspector has labelled: rel "line/...", the file where the
        inspection log says it is now (outside the dataset root), the human label. [] for a
        project that never inspected the line. ``human``: the store's labels, when read."""
        human = self.store.labels() if human is None else human
        known = self.dataset.by_rel()  # a dataset folder named "line" keeps its own images
        return [
            Sample(Path(path), rel, human[rel], None)
            for rel, (path, _) in line_image_paths(self.folder).items()
            if rel in human and rel not in known and Path(path).is_file()
        ]

    def known_images(self) -> set[str]:
        """The label keys of every image the project knows: the dataset's and every line image
        the inspection log sent to review (labelled or not)."""
        return {s.rel for s in self.dataset.samples} | set(line_image_paths(self.folder))

    def import_labels(self, path) -> ImportReport:
        """Apply an ``image,label`` CSV as one undoable change: the one way into a labels CSV
        (the review panel's import and ``afps labels import``). Rows are matched against the
        dataset's images and the line images (``line/...``, as ``export_csv`` writes them),
        exactly, then ignoring case; absolute paths under the dataset root are made relative."""
        return self.store.import_csv(path, known_images=self.known_images(), root=self.dataset.root)

    def labels(self) -> dict[str, Optional[str]]:
        """rel -> current label (human labels win over the dataset's), for every sample, and
        for every line image a human labelled."""
        labels, line, _ = self._current_labels()
        labels.update((s.rel, s.label) for s in line)
        return labels

    def dataset_labels(self, types: Optional[list[str]] = None) -> dict[str, Optional[str]]:
        """Each dataset image's own label, in the spelling of the project's type (a folder
        "spot" is the type "Spot": ``label_types.canonical_label``); ``types``: the store's
        type names when the caller has them already."""
        types = self.store.type_names() if types is None else types
        return {s.rel: _dataset_label(s.label, types) for s in self.dataset.samples}

    def _current_labels(self) -> tuple[dict[str, Optional[str]], list[Sample], list[str]]:
        """The dataset's rel -> current label, the labelled line images and the type names
        (one read of the labels and of the types)."""
        human = self.store.labels()
        types = self.store.type_names()
        own = self.dataset_labels(types)
        labels = {rel: human[rel] if rel in human else label for rel, label in own.items()}
        return labels, self.line_samples(human), types

    def _parts(self) -> tuple[list[Sample], list[Sample], list[Sample]]:
        """From one read of the labels: the dataset's normal images, its images whose current
        label is one of the project's types, and the line images labelled with one (the typed
        ones carrying their current label)."""
        labels, line, types = self._current_labels()
        kinds = set(types)
        samples = self.dataset.samples
        normals = [s for s in samples if labels[s.rel] == NORMAL]
        typed = [_with_label(s, labels[s.rel]) for s in samples if labels[s.rel] in kinds]
        return normals, typed, [s for s in line if s.label in kinds]

    def normals(self) -> list[Sample]:
        """The images the anomaly model may learn from: the dataset's images whose current
        label is normal. Line images labelled normal are not among them: a part that passed
        review is not vetted training material (one slip puts a defect into the normal model,
        silently), each new one would reshuffle the split and move the threshold, and the fit
        is the step the inspector starts on purpose."""
        return self._parts()[0]

    def training_images(self) -> tuple[list[Sample], list[Sample]]:
        """``normals()`` and ``typed_defects()`` from one read of the labels."""
        normals, typed, line = self._parts()
        return normals, typed + line

    def normal_split(self):
        """Fit / calibrate / test split of ``normals()``."""
        normals = self.normals()
        if len(normals) < 3:
            raise AfpsError(
                f"Only {len(normals)} images are labelled normal; fitting needs at least 3 "
                "defect-free images (label more images normal, or add a folder of good parts)."
            )
        n_fit = self.settings.n_fit
        if n_fit is not None:
            n_fit = min(n_fit, len(normals) - 2)
        return split_normals(normals, self.settings.split_seed, n_fit=n_fit)

    def typed_defects(self) -> list[Sample]:
        """Defect images whose type (human or dataset label) is one of the project's types,
        with that label: the dataset's, then the line images an inspector labelled."""
        return self.training_images()[1]

    def classifier_split(self) -> tuple[list[Sample], list[Sample]]:
        """(train, test) of the typed defects with their current labels, each stratified by
        label with the project's seed. The line images are split on their own and added, so
        that labelling one never reshuffles the dataset's split (earlier metrics stay
        comparable); a type with a single line image trains on it."""
        _, dataset, line = self._parts()
        train, test = self._split_typed(dataset)
        line_train, line_test = self._split_typed(line)
        return train + line_train, test + line_test

    def _split_typed(self, samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
        s = self.settings
        return split_anomalies(samples, s.split_seed, test_fraction=s.test_fraction)


def _dataset_label(label: Optional[str], types: list[str]) -> Optional[str]:
    """A dataset's label as the project spells it: a type's stored name for a folder "spot"
    of the type "Spot" (``canonical_label``), else as the dataset has it."""
    if label is None:
        return None
    return canonical_label(label, types) or label


def _with_label(sample: Sample, label: str) -> Sample:
    if sample.label == label:
        return sample
    return Sample(sample.path, sample.rel, label, sample.mask, sample.group)


# --- dataset paths relative to the project folder ----------------------------------------------

# project.json keeps each dataset path twice when it can be relative: "dataset_root" relative to
# the project folder (found again when project and dataset move together) and
# "dataset_root_absolute" (found again when the project folder alone is copied elsewhere).
PATH_KEYS = ("dataset_root", "labels_csv")


def _relative_if_near(folder: Path, path: str) -> Optional[str]:
    """``path`` relative to the project folder (with "/") when it lies below it or beside it
    (below the project's parent), else None."""
    try:
        rel = os.path.relpath(Path(path).absolute(), Path(folder).absolute())
    except ValueError:  # another drive (Windows)
        return None
    parts = Path(rel).parts
    if parts.count("..") > 1 or ".." in parts[1:]:
        return None
    return Path(rel).as_posix()


def stored_paths(folder: Path, settings: ProjectSettings) -> dict:
    """The dataset paths as project.json writes them."""
    out: dict = {}
    for key in PATH_KEYS:
        path = getattr(settings, key)
        if not path:
            continue
        absolute = str(Path(path).absolute())
        rel = _relative_if_near(folder, absolute)
        out[key] = rel if rel is not None else absolute
        if rel is not None:
            out[f"{key}_absolute"] = absolute
    return out


def resolve_stored(folder: Path, stored: str, absolute: Optional[str] = None) -> str:
    """The absolute path of a stored dataset path: the relative one where it exists, else
    the absolute one recorded beside it where that exists (a project copied without its
    dataset). Absolute paths, as older projects store them, stay as they are."""
    if Path(stored).is_absolute():
        return str(Path(stored))
    near = os.path.normpath(Path(folder).absolute() / stored)
    if not os.path.exists(near) and absolute and os.path.exists(absolute):
        return absolute
    return near


def rebase_under(path: Optional[str], old_root: str, new_root: Path) -> Optional[str]:
    """``path`` moved from under ``old_root`` to under ``new_root`` (unchanged if it was not
    under it)."""
    if not path:
        return path
    try:
        return str(new_root / Path(path).relative_to(old_root))
    except ValueError:
        return path


def _missing_dataset_error(folder: Path, root: str) -> DatasetMissingError:
    name = Path(root).name
    candidates = [Path(folder).absolute() / name, Path(folder).absolute().parent / name]
    suggestion = next((str(c) for c in candidates if name and c.is_dir()), None)
    hint = f" A folder of that name is at {suggestion}." if suggestion else ""
    return DatasetMissingError(
        f"The dataset folder of the project {folder} is missing: {root} (moved, renamed, or "
        f"on a drive that is not connected).{hint} Choose the dataset's new folder (AFPS "
        "Inspector asks for it when it opens the project), or put the folder back at that path.",
        project_folder=str(folder),
        dataset_root=root,
        suggestion=suggestion,
    )


def read_settings(folder) -> ProjectSettings:
    """The project's settings with its dataset paths made absolute (they may be stored
    relative to the project folder)."""
    folder = Path(folder)
    path = folder / SETTINGS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        settings = ProjectSettings.from_json(data)
        for key in PATH_KEYS:
            stored = getattr(settings, key)
            if stored:
                setattr(settings, key, resolve_stored(folder, stored, data.get(f"{key}_absolute")))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ProjectError(f"The project settings {path} cannot be read ({exc}).") from exc
    return settings


def _write_settings(folder: Path, settings: ProjectSettings) -> None:
    data = settings.to_json()
    data.update(stored_paths(folder, settings))
    with atomic_write(folder / SETTINGS_NAME) as tmp:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")


def relocate_dataset(project_folder, new_root) -> ProjectSettings:
    """Point a project at its dataset's new folder, after checking that the folder holds the
    images the project knows (its labels and cached scores), and rewrite project.json
    atomically. The project must not be open in another instance. Returns the new settings.

    A labels CSV that lay inside the old dataset folder is looked for at the same place inside
    the new one."""
    folder = Path(project_folder)
    new_root = Path(new_root).absolute()
    if not new_root.is_dir():
        raise DatasetError(f"{new_root} is not a folder: choose the folder that holds the images.")
    settings = read_settings(folder)
    old_root = settings.dataset_root
    labels_csv = rebase_under(settings.labels_csv, old_root, new_root)
    dataset = load_dataset(new_root, settings.layout, labels_csv, validate=False)
    _check_known_images(folder, dataset, new_root)
    lock = ProjectLock(folder)
    if not lock.acquire():
        raise ProjectError(lock.read_only_message() + " Close it there, then choose the folder.")
    try:
        settings.dataset_root, settings.labels_csv = str(new_root), labels_csv
        _write_settings(folder, settings)
    finally:
        lock.release()
    return settings


def _check_known_images(folder: Path, dataset: Dataset, new_root: Path) -> None:
    """Refuse a folder that lacks images the project has labels or scores for."""
    known = set(ScoreCache(folder / "cache").index["images"])
    if (folder / "labels.sqlite").is_file():
        with LabelStore(folder / "labels.sqlite", readonly=True) as store:
            known |= set(store.labels())
    present = {s.rel for s in dataset.samples}
    if not present:
        raise DatasetError(f"{new_root} holds no images: choose the folder of the dataset.")
    lacking = sorted(known - present)
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise DatasetError(
            f"{new_root} lacks {len(lacking)} of the {len(known)} images this project has "
            f"labels or scores for ({shown}): choose the folder that holds the project's dataset."
        )


def default_model_id(path: Path) -> str:
    """A short id of a model file's content, recorded with each prediction."""
    try:
        st = os.stat(path)
    except OSError:
        return "none"
    return f"{path.stem}-{int(st.st_mtime)}-{st.st_size % 100000}"
