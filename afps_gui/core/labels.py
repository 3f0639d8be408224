"""The labels store: defect types, human labels, model predictions and their history, in SQLite.

``LabelStore`` is built in layers, one module each, each class adding to the one below:

- label_file: the database file and the one way to write it. Every write is one transaction,
  on disk when the call returns; a file that must not be touched is refused unchanged.
- label_history: every change to types or labels is one row of the trail that holds the rows
  it replaced and the rows it wrote; undo, redo and the audit trail all come from it.
- label_types: the defect types; every change to one is one undoable change.
- here: human labels, model predictions, and CSV import and export.

Model predictions live in their own table, outside the history: a model run replaces them, each
one names the model that made it, and a human label always wins over a prediction.

Image keys are paths relative to the dataset root, in POSIX form (``"crack/img_001.png"``).
"""

from __future__ import annotations

import csv
import math
import os
import shutil  # noqa: F401  (tests fake a full disk through labels.shutil.disk_usage)
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .csv_cells import escape_row
from .errors import LabelStoreError
from .jobs import OverwriteRefused as OverwriteRefused
from .jobs import atomic_write, refuse_overwrite
from .label_csv import clean_image, image_matcher, read_label_rows
from .label_file import READ_ONLY_MESSAGE as READ_ONLY_MESSAGE
from .label_file import SCHEMA_VERSION as SCHEMA_VERSION
from .label_file import _json, now_iso
from .label_file import _why as _why
from .label_file import os_user as os_user
from .label_history import _NOT_UNDOABLE
from .label_history import Change as Change
from .label_types import MAX_TYPE_NAME as MAX_TYPE_NAME
from .label_types import DefectType as DefectType
from .label_types import LabelTypes, clean_type_name
from .label_types import clean_colour as clean_colour


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str
    confidence: float
    score: float | None
    model_id: str
    created: str = ""  # ISO-8601 UTC; filled in by set_predictions when empty


@dataclass(frozen=True)
class LabelRecord:
    """A human label with who set it and when (for reports and the browser's tooltips)."""

    image: str
    label: str
    reviewed: bool
    time: str
    user: str


@dataclass(frozen=True)
class ImportReport:
    applied: int
    unchanged: int
    unknown_images: list[str]
    unknown_types: list[str]
    bad_rows: list[str]  # "line N: reason" for every row that was not used
    created_types: list[str] = field(default_factory=list)
    change_id: int | None = None  # the one undoable change, or None when nothing changed


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _same_label(old: list | None, new: list | None) -> bool:
    """Equal label and reviewed flag: who set it and when do not make a change."""
    if old is None or new is None:
        return old is None and new is None
    return old[0] == new[0] and bool(old[1]) == bool(new[1])


class LabelStore(LabelTypes):
    """The labels of one project, in ``<project>/labels.sqlite``.

    Safe to share between threads (one lock serialises the calls). Open it with
    ``readonly=True`` when another instance holds the project lock.
    """

    def _resolve_label(
        self, conn: sqlite3.Connection, label: str | None, names: list[str] | None = None
    ) -> str | None:
        """The stored spelling of a label: "normal", a known type name, or None (no label)."""
        if label is None:
            return None
        canonical = self._canonical(conn, label, names=names)
        if canonical is None:
            raise LabelStoreError(f'Unknown defect type "{label}". {self._known(conn)}')
        return canonical

    @staticmethod
    def _label_row(conn: sqlite3.Connection, image: str) -> list | None:
        row = conn.execute(
            "SELECT label, reviewed, time, user FROM labels WHERE image = ?", (image,)
        ).fetchone()
        return None if row is None else list(row)

    def set_label(self, image: str, label: str | None) -> None:
        """Set (and mark reviewed) or, with None, clear the human label of one image.

        Clearing returns the image to "not reviewed" and lets its prediction show again. Setting
        the label it already has records nothing.
        """
        image = clean_image(image)
        with self._write() as conn:
            label = self._resolve_label(conn, label)
            old = self._label_row(conn, image)
            new = None if label is None else [label, 1, now_iso(), self._user]
            if _same_label(old, new):
                return
            diff = {"labels": {image: [old, new]}}
            self._commit(conn, "label", image, old and old[0], label, diff)

    def set_labels(
        self, mapping: dict[str, str | None], kind: str = "bulk", *, reviewed: bool = True
    ) -> int:
        """Set many labels in one transaction and ONE undoable change; returns how many changed."""
        if kind in _NOT_UNDOABLE:
            raise LabelStoreError(f'"{kind}" is not a kind of change that set_labels can make.')
        cleaned = {clean_image(image): label for image, label in mapping.items()}
        with self._write() as conn:
            change = self._bulk(conn, cleaned, kind, reviewed, new_types=[])
        return 0 if change is None else change[1]

    def _bulk(
        self,
        conn: sqlite3.Connection,
        mapping: dict[str, str | None],
        kind: str,
        reviewed: bool,
        new_types: list[str],
    ) -> tuple[int, int] | None:
        """Write many labels (and any new types) as one change: (change id, images changed)."""
        diff: dict = {"types": {}, "labels": {}}
        for name in new_types:  # written at once: visible to _resolve_label below
            diff["types"].update(self._place_new_type(conn, name))
        stamp, names = now_iso(), self._stored_names(conn)
        for image, label in mapping.items():
            label = self._resolve_label(conn, label, names)
            old = self._label_row(conn, image)
            new = None if label is None else [label, int(reviewed), stamp, self._user]
            if not _same_label(old, new):
                diff["labels"][image] = [old, new]
        if not diff["labels"] and not diff["types"]:
            return None
        before = {i: p[0] and p[0][0] for i, p in diff["labels"].items()}
        after = {i: p[1] and p[1][0] for i, p in diff["labels"].items()}
        if diff["types"]:
            after = {"types": list(diff["types"]), "labels": after}
        change_id = self._commit(conn, kind, None, _json(before), _json(after), diff)
        return change_id, len(diff["labels"])

    def label(self, image: str) -> str | None:
        rows = self._query("SELECT label FROM labels WHERE image = ?", (clean_image(image),))
        return rows[0][0] if rows else None

    def labels(self) -> dict[str, str]:
        return dict(self._query("SELECT image, label FROM labels ORDER BY image"))

    def label_records(self) -> dict[str, LabelRecord]:
        rows = self._query("SELECT image, label, reviewed, time, user FROM labels ORDER BY image")
        return {r[0]: LabelRecord(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows}

    def reviewed(self) -> set[str]:
        return {row[0] for row in self._query("SELECT image FROM labels WHERE reviewed = 1")}

    # ------------------------------------------------------------------ predictions

    def set_predictions(self, preds: Iterable[Prediction], *, replace: bool = False) -> int:
        """Store model predictions in one transaction (outside the undo history).

        Each image's prediction replaces its previous one; ``replace=True`` first drops every
        stored prediction (a run over the whole dataset). Returns how many were stored.
        """
        stamp = now_iso()
        rows = []
        for p in preds:
            if not isinstance(p.label, str) or not p.label.strip():
                raise LabelStoreError(f"The prediction for {p.image!r} has no label.")
            if not isinstance(p.model_id, str) or not p.model_id:
                raise LabelStoreError(f"The prediction for {p.image!r} does not name its model.")
            rows.append(
                (
                    clean_image(p.image),
                    p.label,
                    _finite_or_none(p.confidence),
                    _finite_or_none(p.score),
                    p.model_id,
                    p.created or stamp,
                )
            )
        with self._write() as conn:
            if replace:
                conn.execute("DELETE FROM predictions")
            conn.executemany(
                "INSERT OR REPLACE INTO predictions(image, label, confidence, score, model_id,"
                " created) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def predictions(self) -> dict[str, Prediction]:
        rows = self._query(
            "SELECT image, label, confidence, score, model_id, created FROM predictions"
            " ORDER BY image"
        )
        return {r[0]: self._prediction(r) for r in rows}

    def prediction(self, image: str) -> Prediction | None:
        rows = self._query(
            "SELECT image, label, confidence, score, model_id, created FROM predictions"
            " WHERE image = ?",
            (clean_image(image),),
        )
        return self._prediction(rows[0]) if rows else None

    @staticmethod
    def _prediction(row: tuple) -> Prediction:
        confidence = math.nan if row[2] is None else row[2]  # SQLite stores NaN as NULL
        return Prediction(row[0], row[1], confidence, row[3], row[4], row[5])

    def clear_predictions(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM predictions")

    def effective_label(self, image: str) -> str | None:
        """The human label if there is one, else the model's prediction, else None."""
        image = clean_image(image)
        rows = self._query(
            "SELECT coalesce((SELECT label FROM labels WHERE image = ?),"
            " (SELECT label FROM predictions WHERE image = ?))",
            (image, image),
        )
        return rows[0][0]

    def effective_labels(self) -> dict[str, str]:
        """effective_label for every image that has a label or a prediction."""
        result = dict(self._query("SELECT image, label FROM predictions"))
        result.update(self._query("SELECT image, label FROM labels"))
        return result

    # ------------------------------------------------------------------ CSV

    def import_csv(
        self,
        path: str | os.PathLike,
        known_images: set[str] | None = None,
        *,
        root: str | os.PathLike | None = None,
        create_types: bool = False,
        reviewed: bool = True,
    ) -> ImportReport:
        """Apply an ``image,label`` CSV as ONE undoable change ("import").

        Rows naming images outside ``known_images`` (when given; matched as
        ``label_csv.image_matcher`` does, exactly, then ignoring case) or unknown types are
        reported and skipped, as are malformed rows; only a file that cannot be read, or has no
        ``image``/``label`` header, is an error. Absolute paths under ``root`` are made relative.
        With ``create_types=True`` unknown types are added (in the same change) instead.
        """
        rows, bad = read_label_rows(path, root)
        match = None if known_images is None else image_matcher(known_images)
        with self._write() as conn:
            wanted, unknown_images, unknown_types, new_types = {}, [], [], []
            stored = self._stored_names(conn)
            for row in rows:
                image, label = row.image, row.label
                if match is not None:
                    image = match(row.image)
                    if image is None:
                        unknown_images.append(row.image)
                        continue
                canonical = self._canonical(conn, label, new_types, stored)
                if canonical is None and create_types:
                    canonical = self._new_import_type(label, row.line, new_types, bad)
                if canonical is None:
                    if label.casefold() not in {t.casefold() for t in unknown_types}:
                        unknown_types.append(label)
                    continue
                wanted[image] = canonical
            change = self._bulk(conn, wanted, "import", reviewed, new_types)
        applied = 0 if change is None else change[1]
        return ImportReport(
            applied=applied,
            unchanged=len(wanted) - applied,
            unknown_images=sorted(set(unknown_images)),
            unknown_types=[] if create_types else unknown_types,
            bad_rows=bad,
            created_types=new_types if change is not None else [],
            change_id=None if change is None else change[0],
        )

    @staticmethod
    def _new_import_type(label: str, line: int, new: list[str], bad: list[str]) -> str | None:
        try:
            name = clean_type_name(label)
        except LabelStoreError as exc:
            bad.append(f"line {line}: {exc}")
            return None
        new.append(name)
        return name

    def export_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> int:
        """Write every human label as ``image,label`` (sorted); returns the number of rows."""
        target = Path(path)
        refuse_overwrite(target, overwrite)
        labels = self.labels()
        with atomic_write(target) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["image", "label"])
                writer.writerows(escape_row(item) for item in sorted(labels.items()))
        return len(labels)
