"""The defect types of a labels database: adding, renaming, merging, recolouring and removing
them, each as one undoable change that carries every label and prediction it touches."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import LabelStoreError
from .label_file import _json
from .label_history import LabelHistory
from .taxonomy import NORMAL, PALETTE, colour_for, is_normal_word

MAX_TYPE_NAME = 64


@dataclass(frozen=True)
class DefectType:
    name: str
    colour: str
    position: int


_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def clean_type_name(name: str) -> str:
    """A defect type name as stored: trimmed, non-empty, printable, and never a word that means
    defect-free ("normal", "good", "ok", "free"): a labels file with that word reads as normal,
    so such a type would not survive its own export and import."""
    if not isinstance(name, str):
        raise LabelStoreError("A defect type name must be text.")
    name = name.strip()
    if not name:
        raise LabelStoreError("A defect type name cannot be empty.")
    if len(name) > MAX_TYPE_NAME:
        raise LabelStoreError(f"A defect type name can have at most {MAX_TYPE_NAME} characters.")
    if any(not ch.isprintable() for ch in name):
        raise LabelStoreError(f"The defect type name {name!r} contains control characters.")
    if is_normal_word(name):
        raise LabelStoreError(f'"{name}" means defect-free; it cannot be a defect type name.')
    return name


def canonical_label(label: object, type_names: Iterable[str]) -> str | None:
    """The one rule for what a label names: NORMAL for any normal word; the type's own
    spelling where the label names one of ``type_names`` (exactly, else ignoring case and
    surrounding spaces); None where it names neither. Labels are mapped once, where they enter
    (the store, a dataset's labels in ``Project``); everything after compares them exactly."""
    if not isinstance(label, str):
        return None
    if is_normal_word(label):
        return NORMAL
    names = list(type_names)
    key = label.strip()
    if key in names:
        return key
    folded = key.casefold()
    return next((n for n in names if n.casefold() == folded), None)


def clean_colour(colour: str) -> str:
    if not isinstance(colour, str) or not _COLOUR.match(colour.strip()):
        raise LabelStoreError(f"{colour!r} is not a colour; use the form #RRGGBB.")
    return colour.strip().upper()


class LabelTypes(LabelHistory):
    """The types that labels may name; a label naming anything else is refused."""

    def types(self) -> list[DefectType]:
        rows = self._query("SELECT name, colour, position FROM types ORDER BY position, name")
        return [DefectType(*row) for row in rows]

    def type_names(self) -> list[str]:
        return [t.name for t in self.types()]

    @staticmethod
    def _find_type(conn: sqlite3.Connection, name: str) -> tuple | None:
        if not isinstance(name, str):
            return None
        return conn.execute(
            "SELECT name, colour, position FROM types WHERE name = ?", (name.strip(),)
        ).fetchone()

    @staticmethod
    def _stored_names(conn: sqlite3.Connection) -> list[str]:
        return [row[0] for row in conn.execute("SELECT name FROM types ORDER BY position")]

    def _canonical(
        self,
        conn: sqlite3.Connection,
        label: object,
        new: Iterable[str] = (),
        names: list[str] | None = None,
    ) -> str | None:
        """The store's "label -> stored spelling" (``canonical_label`` over the stored types,
        read once per change where ``names`` holds them, and ``new``, the types this change is
        making), or None for a label naming no type."""
        stored = self._stored_names(conn) if names is None else names
        return canonical_label(label, [*stored, *new])

    def _type_required(self, conn: sqlite3.Connection, name: str) -> tuple:
        row = self._find_type(conn, name)
        if row is None:
            raise LabelStoreError(f'There is no defect type "{name}". {self._known(conn)}')
        return row

    @staticmethod
    def _known(conn: sqlite3.Connection) -> str:
        names = [r[0] for r in conn.execute("SELECT name FROM types ORDER BY position, name")]
        return f"Known types: {', '.join(names) or '(none)'} (and {NORMAL!r})."

    def _place_new_type(
        self, conn: sqlite3.Connection, name: str, colour: str | None = None
    ) -> dict[str, list]:
        """The one way a type is made: written at once in the next position, with ``colour``
        or else the first palette colour no type uses, so that the next new type of the same
        change takes the place after it. Returns its diff entry, {name: [None, [colour,
        position]]}, for the caller's change."""
        position = conn.execute("SELECT coalesce(max(position) + 1, 0) FROM types").fetchone()[0]
        if colour is None:
            used = {row[0].upper() for row in conn.execute("SELECT colour FROM types")}
            colour = next((c for c in PALETTE if c.upper() not in used), colour_for(position))
        entry = {name: [None, [colour, position]]}
        self._apply(conn, {"types": entry}, 1)
        return entry

    def add_type(self, name: str, colour: str | None = None) -> DefectType:
        name = clean_type_name(name)
        colour = None if colour is None else clean_colour(colour)
        with self._write() as conn:
            clash = self._find_type(conn, name)
            if clash is not None:
                raise LabelStoreError(f'A defect type named "{clash[0]}" already exists.')
            entry = self._place_new_type(conn, name, colour)
            self._record(conn, "add_type", None, None, name, {"types": entry})
        return DefectType(name, *entry[name][1])

    def adopt_types(self, add: list[str], drop: list[str]) -> None:
        """Project setup: add the dataset's types and remove unused default ones, recorded in
        the trail as one "setup" change that undo does not reach (the user did not make it)."""
        with self._write() as conn:
            diff: dict = {"types": {}}
            for name in map(clean_type_name, add):
                if self._find_type(conn, name) is None:
                    diff["types"].update(self._place_new_type(conn, name))
            for name in drop:
                row = self._find_type(conn, name)
                used = (
                    row
                    and conn.execute(
                        "SELECT count(*) FROM labels WHERE label = ?", (row[0],)
                    ).fetchone()[0]
                )
                if row and not used:
                    step = {"types": {row[0]: [[row[1], row[2]], None]}}
                    self._apply(conn, step, 1)
                    diff["types"].update(step["types"])
            if diff["types"]:
                self._record(conn, "setup", None, None, None, diff)

    def remove_type(self, name: str) -> None:
        """Remove a type that no human label uses (otherwise merge it into another one)."""
        with self._write() as conn:
            old, colour, position = self._type_required(conn, name)
            used = conn.execute("SELECT count(*) FROM labels WHERE label = ?", (old,)).fetchone()[0]
            if used:
                raise LabelStoreError(
                    f'{used} image(s) are labelled "{old}". Merge "{old}" into another type '
                    f"(or into {NORMAL!r}) instead of removing it."
                )
            diff = {"types": {old: [[colour, position], None]}}
            self._commit(conn, "remove_type", None, old, None, diff)

    def rename_type(self, old: str, new: str) -> None:
        """Rename a type and every label and prediction that uses it: one undoable change."""
        new = clean_type_name(new)
        with self._write() as conn:
            name, colour, position = self._type_required(conn, old)
            if name == new:
                return
            clash = self._find_type(conn, new)
            if clash is not None and clash[0] != name:
                raise LabelStoreError(
                    f'A defect type named "{clash[0]}" already exists. To combine "{name}" with '
                    "it, merge the two types instead."
                )
            diff = {
                "types": {name: [[colour, position], None], new: [None, [colour, position]]},
                "labels": self._relabel_rows(conn, [name], new),
                "predictions": self._relabel_predictions(conn, [name], new),
            }
            self._commit(conn, "rename_type", None, name, new, diff)

    def merge_types(self, sources: list[str], target: str) -> None:
        """Relabel every image of ``sources`` as ``target`` and remove the sources.

        ``target`` may be an existing type, a new name (created with the first source's colour
        and place) or "normal". One undoable change; undo restores the types and every label.
        """
        if isinstance(sources, str):
            sources = [sources]
        with self._write() as conn:
            rows = {}
            for source in sources:
                row = self._type_required(conn, source)
                rows[row[0]] = row
            new_type = None
            goal = self._canonical(conn, target)
            if goal is None:
                goal = clean_type_name(target)
                first = next(iter(rows.values()), None)
                new_type = [first[1], first[2]] if first else None
            rows.pop(goal, None)
            if not rows:
                raise LabelStoreError(f'Choose at least one type other than "{goal}" to merge.')
            diff = {
                "types": {name: [[c, p], None] for name, c, p in rows.values()},
                "labels": self._relabel_rows(conn, list(rows), goal),
                "predictions": self._relabel_predictions(conn, list(rows), goal),
            }
            if new_type is not None:
                diff["types"][goal] = [None, new_type]
            before = {
                "types": list(rows),
                "labels": {i: p[0][0] for i, p in diff["labels"].items()},
            }
            after = {"type": goal, "labels": {i: goal for i in diff["labels"]}}
            self._commit(conn, "merge_types", None, _json(before), _json(after), diff)

    def recolour_type(self, name: str, colour: str) -> None:
        colour = clean_colour(colour)
        with self._write() as conn:
            name, old, position = self._type_required(conn, name)
            if old.upper() == colour:
                return
            diff = {"types": {name: [[old, position], [colour, position]]}}
            before = _json({"name": name, "colour": old})
            after = _json({"name": name, "colour": colour})
            self._commit(conn, "recolour_type", None, before, after, diff)

    @staticmethod
    def _relabel_rows(conn: sqlite3.Connection, olds: list[str], new: str) -> dict:
        marks = ",".join("?" * len(olds))
        rows = conn.execute(
            f"SELECT image, label, reviewed, time, user FROM labels WHERE label IN ({marks})", olds
        ).fetchall()
        # Renaming a type is not a new decision about the image: keep who labelled it and when.
        return {r[0]: [list(r[1:]), [new, *r[2:]]] for r in rows}

    @staticmethod
    def _relabel_predictions(conn: sqlite3.Connection, olds: list[str], new: str) -> dict:
        marks = ",".join("?" * len(olds))
        rows = conn.execute(
            f"SELECT image, label FROM predictions WHERE label IN ({marks})", olds
        ).fetchall()
        return {image: [label, new] for image, label in rows}
