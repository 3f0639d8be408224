"""The change history of the labels: every change to types or labels, its undo and its redo.

Every change is one row of ``changes`` that holds the exact rows it replaced and the rows it
wrote (its *diff*). Undo writes the old rows back, redo the new ones, so undo, redo and the
audit trail all come from that one table. Undo and redo are recorded as rows of their own, so
the trail shows them too.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .label_file import LabelFile, _insert_change

# Kinds recorded in the trail that are not themselves undoable.
# "setup": the types a new project takes from its dataset (undo must not reach into creation).
_NOT_UNDOABLE = ("undo", "redo", "migrate", "setup")


@dataclass(frozen=True)
class Change:
    """One row of the audit trail.

    For "label" changes ``before``/``after`` are the plain labels (None = no human label). For
    changes that touch many rows (bulk, import, merge_types, recolour_type) they hold JSON.
    "undo"/"redo" rows name the change they reverted or re-applied in ``ref``.
    """

    id: int
    time: str
    user: str
    kind: str
    image: str | None
    before: str | None
    after: str | None
    undone: bool
    ref: int | None = None  # for "undo"/"redo": the id of the change they act on
    discarded: bool = False  # undone and then superseded by a new change: no longer redoable


@dataclass(frozen=True)
class _Direction:
    """What tells an undo from a redo; everything else about the two is the same step."""

    kind: str  # the trail row that records the step
    side: int  # the side of the diff it writes: 0 = before, 1 = after
    next_change: str  # the query for the change it acts on: id, image, before, after, diff


# Undo reaches back to the newest change in force; redo forward to the oldest undone one that
# no later change has discarded.
_UNDO = _Direction(
    "undo",
    0,
    "SELECT id, image, before, after, diff FROM changes WHERE undone = 0 AND discarded = 0"
    f" AND kind NOT IN {_NOT_UNDOABLE!r} ORDER BY id DESC LIMIT 1",
)
_REDO = _Direction(
    "redo",
    1,
    "SELECT id, image, before, after, diff FROM changes WHERE undone = 1 AND discarded = 0"
    " ORDER BY id LIMIT 1",
)


class LabelHistory(LabelFile):
    """Changes as diffs in the trail: ``_commit`` makes one, undo and redo step through them."""

    # ------------------------------------------------------------------ changes and diffs
    #
    # A diff is {"types": {name: [before, after]}, "labels": {image: [before, after]},
    # "predictions": {image: [before, after]}} where a type row is [colour, position], a label
    # row is [label, reviewed, time, user] and None means "no row". Prediction entries only
    # rename the label of a prediction that still has the other value.

    @staticmethod
    def _apply(conn: sqlite3.Connection, diff: dict, side: int) -> None:
        """Write one side of a diff: 0 = before (undo), 1 = after (do, redo)."""
        types = diff.get("types", {})
        # Deletions first, so that a rename that only changes case ("spot" -> "Spot") can
        # insert the new spelling into a name column that ignores case.
        for name, pair in types.items():
            if pair[side] is None:
                conn.execute("DELETE FROM types WHERE name = ?", (name,))
        for name, pair in types.items():
            if pair[side] is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO types(name, colour, position) VALUES (?, ?, ?)",
                    (name, *pair[side]),
                )
        for image, pair in diff.get("labels", {}).items():
            if pair[side] is None:
                conn.execute("DELETE FROM labels WHERE image = ?", (image,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO labels(image, label, reviewed, time, user)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (image, *pair[side]),
                )
        for image, pair in diff.get("predictions", {}).items():
            conn.execute(
                "UPDATE predictions SET label = ? WHERE image = ? AND label = ?",
                (pair[side], image, pair[1 - side]),
            )

    def _record(
        self,
        conn: sqlite3.Connection,
        kind: str,
        image: str | None,
        before: str | None,
        after: str | None,
        diff: dict | None,
        ref: int | None = None,
    ) -> int:
        if kind not in _NOT_UNDOABLE:
            # A new change after an undo: the undone ones can no longer be redone.
            conn.execute("UPDATE changes SET discarded = 1 WHERE undone = 1 AND discarded = 0")
        return _insert_change(conn, self._user, kind, image, before, after, diff, ref)

    def _commit(
        self,
        conn: sqlite3.Connection,
        kind: str,
        image: str | None,
        before: str | None,
        after: str | None,
        diff: dict,
    ) -> int:
        self._apply(conn, diff, 1)
        return self._record(conn, kind, image, before, after, diff)

    # ------------------------------------------------------------------ history

    _CHANGE_COLUMNS = "id, time, user, kind, image, before, after, undone, ref, discarded"

    @staticmethod
    def _change(row: tuple) -> Change:
        return Change(*row[:7], bool(row[7]), row[8], bool(row[9]))

    def _change_by_id(self, conn: sqlite3.Connection, change_id: int) -> Change:
        row = conn.execute(
            f"SELECT {self._CHANGE_COLUMNS} FROM changes WHERE id = ?", (change_id,)
        ).fetchone()
        return self._change(row)

    def undo(self) -> Change | None:
        """Revert the newest change that is not undone; returns it (now undone), or None."""
        return self._step(_UNDO)

    def redo(self) -> Change | None:
        """Re-apply the change undone last; returns it, or None when there is nothing to redo."""
        return self._step(_REDO)

    def _step(self, direction: _Direction) -> Change | None:
        with self._write() as conn:
            row = conn.execute(direction.next_change).fetchone()
            if row is None:
                return None
            change_id, image, before, after, diff = row
            side = direction.side
            self._apply(conn, json.loads(diff), side)
            conn.execute("UPDATE changes SET undone = ? WHERE id = ?", (1 - side, change_id))
            # The trail row reads as the step itself: from the side it left to the side it wrote.
            sides = (before, after)
            self._record(conn, direction.kind, image, sides[1 - side], sides[side], None, change_id)
            return self._change_by_id(conn, change_id)

    def can_undo(self) -> bool:
        return self._can(_UNDO)

    def can_redo(self) -> bool:
        return self._can(_REDO)

    def _can(self, direction: _Direction) -> bool:
        with self._lock:
            if self._readonly:
                return False
            return self._connection().execute(direction.next_change).fetchone() is not None

    def history(self, limit: int = 200) -> list[Change]:
        """The audit trail, newest first (undo and redo included, as rows of their own)."""
        rows = self._query(
            f"SELECT {self._CHANGE_COLUMNS} FROM changes ORDER BY id DESC LIMIT ?", (int(limit),)
        )
        return [self._change(row) for row in rows]
