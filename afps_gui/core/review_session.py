"""A review session: the queue an inspector walks, its counts, and the decisions made in it.

Plain Python (no Qt): the review panel draws what a session says, and tests drive a session
without a screen. The session keeps one image's state in one place (its ``QueueItem``); a
decision, an undo or a per-image refresh updates the few images it touched and returns them,
so a front end redraws those rows and never the whole queue.

The queue order is frozen between ``load()`` calls so that the cursor never jumps under the
inspector's hands: a decided image keeps its place (marked reviewed) until the next load.
Images added by ``refresh_images`` (parts the line just sent to review) take the place their
sort key gives them in that frozen order.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import review_queue as rq
from .errors import AfpsError
from .taxonomy import NORMAL


class ReadOnlyError(AfpsError):
    """The project is open read-only: nothing is written."""


@dataclass
class HistoryStep:
    """What an undo or redo did: the store's change, and the images it touched.

    ``many`` is True for a change of many images or of the types (an import, a rename, a
    merge): the session reloaded itself and the front end redraws everything.
    """

    change: object
    changed: list[str]
    many: bool
    undo: bool = True  # False for a redo


class ReviewSession:
    """The review queue of one project (or of none)."""

    def __init__(self, project=None):
        self.project = project
        self.wanted: set[str] = set(rq.REASONS)  # reasons shown; the rest are filtered out
        self._clear()
        if project is not None:
            self.load()

    def _clear(self) -> None:
        self.rels: list[str] = []
        self.paths: dict[str, Path] = {}
        self.types: list = []
        self._inputs: Optional[rq.QueueInputs] = None
        self.items: dict[str, rq.QueueItem] = {}  # rel -> its queue entry (read-only outside)
        self.order: dict[str, int] = {}  # rel -> place in the frozen queue
        self._keys: list[tuple] = []  # the sort keys of the frozen queue, in order
        self.counts: Counter = Counter()  # current label -> images
        self.reason_counts: Counter = Counter()

    # ------------------------------------------------------------------ reading

    @property
    def readonly(self) -> bool:
        return self.project is not None and bool(self.project.readonly)

    def load(self) -> list[str]:
        """Re-read everything in a few queries and re-sort; returns the images whose human label
        or reviewed state differs from what the session had (a change made elsewhere)."""
        if self.project is None:
            self._clear()
            return []
        before = {rel: (it.human, it.reviewed) for rel, it in self.items.items()}
        project = self.project
        data = rq.image_inputs(project)
        self._inputs = data
        self.rels = list(data.rels)
        self.paths = {s.rel: s.path for s in project.dataset.samples}
        # Line images (NG and unsure parts from inspection) live outside the dataset: their
        # files are where the inspection log says.
        self.paths.update((rel, Path(path)) for rel, path in data.line_paths.items())
        self.types = project.store.types()
        self.items = {rel: self._classify(rel) for rel in self.rels}
        self.counts = Counter(item.label for item in self.items.values())
        self.reason_counts = Counter(item.reason for item in self.items.values())
        self._freeze_order()
        return [
            rel
            for rel, item in self.items.items()
            if rel in before and before[rel] != (item.human, item.reviewed)
        ]

    def _classify(self, rel: str) -> rq.QueueItem:
        data = self._inputs
        return rq.classify(
            rel,
            dataset_label=data.dataset_labels.get(rel),
            human=data.human_labels.get(rel),
            prediction=data.predictions.get(rel),
            score=data.scores.get(rel),
            reviewed=rel in data.reviewed,
        )

    def _freeze_order(self) -> None:
        ordered = sorted(self.items.values(), key=rq.sort_key)
        self.order = {item.rel: i for i, item in enumerate(ordered)}
        self._keys = [rq.sort_key(item) for item in ordered]

    def item(self, rel: Optional[str]) -> Optional[rq.QueueItem]:
        return self.items.get(rel) if rel is not None else None

    def __contains__(self, rel: object) -> bool:
        return rel in self.items

    def position(self, rel: str) -> int:
        """The image's place in the frozen queue (the key that keeps visible rows in order)."""
        return self.order[rel]

    def visible(self) -> list[str]:
        """The images whose reason is wanted, in queue order."""
        ordered = sorted(self.order, key=self.order.__getitem__)
        return [rel for rel in ordered if self.items[rel].reason in self.wanted]

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def reviewed_count(self) -> int:
        return self.reason_counts.get(rq.REVIEWED, 0)

    def type_at(self, index: int) -> Optional[str]:
        """The index-th defect type in the project's order (keys 1-9), or None."""
        return self.types[index].name if 0 <= index < len(self.types) else None

    def colour_of(self, label: Optional[str], *, normal: str, unlabelled: str) -> str:
        if label is None:
            return unlabelled
        if label == NORMAL:
            return normal
        folded = label.casefold()
        return next((t.colour for t in self.types if t.name.casefold() == folded), "#555555")

    # ------------------------------------------------------------------ writing

    def _require_writable(self) -> None:
        if self.project is None:
            raise AfpsError("Nothing to label: the queue is empty.")
        if self.readonly:
            raise ReadOnlyError("Read-only project: the decision was not saved.")

    def decide(self, rel: str, label: Optional[str]) -> list[str]:
        """Save ``label`` as ``rel``'s human label (None clears it); returns the images whose
        state changed ([] when it already had that label). Raises AfpsError when refused."""
        self._require_writable()
        store = self.project.store
        store.set_label(rel, label)
        # The store decides the spelling ("spot" -> "Spot"); a decision marks the image
        # reviewed, clearing it does not.
        stored = store.label(rel)
        return [rel] if self._set(rel, stored, stored is not None) else []

    def step_history(self, *, undo: bool) -> Optional[HistoryStep]:
        """Undo (or redo) the store's last change; None when there is nothing to undo."""
        if self.project is None:
            return None
        if self.readonly:
            what = "undo" if undo else "redo"
            raise ReadOnlyError(f"Read-only project: nothing to {what} here.")
        store = self.project.store
        change = store.undo() if undo else store.redo()
        if change is None:
            return None
        return self.after_change(change, undo=undo)

    def after_change(self, change, *, undo: bool = True) -> HistoryStep:
        """Follow a change the store made (an undo or redo here or elsewhere)."""
        if change.kind == "label" and change.image and change.image in self.items:
            # The store changed that image even where the session had not seen its label
            # (one set elsewhere): whatever shows it redraws it.
            self._sync([change.image])
            return HistoryStep(change, [change.image], False, undo)
        return HistoryStep(change, self.load(), True, undo)

    def refresh_images(self, rels: Iterable[str]) -> tuple[list[str], list[str]]:
        """Re-read a few images (their labels, predictions, scores, files) without re-reading
        the whole queue; images new to the session join it in their sorted place.

        Returns (added, changed): the images new to the queue, and those whose item changed.
        """
        rels = list(dict.fromkeys(rels))
        if self.project is None or not rels:
            return [], []
        self._read_images(rels)
        added, changed = [], []
        for rel in rels:
            if rel in self.items:
                if self._update(rel):
                    changed.append(rel)
            elif self._known(rel):
                self._add(rel)
                added.append(rel)
        return added, changed

    # ------------------------------------------------------------------ internals

    def _sync(self, rels: list[str]) -> list[str]:
        """Re-read the human label and reviewed flag of ``rels`` (as the queue reads them)."""
        fresh = rq.image_inputs(self.project, rels)
        changed = []
        for rel in rels:
            if self._set(rel, fresh.human_labels.get(rel), rel in fresh.reviewed):
                changed.append(rel)
        return changed

    def _set(self, rel: str, human: Optional[str], reviewed: bool) -> bool:
        """Apply one image's human label; True if anything changed."""
        data = self._inputs
        if (data.human_labels.get(rel), rel in data.reviewed) == (human, reviewed):
            return False
        if human is None:
            data.human_labels.pop(rel, None)
        else:
            data.human_labels[rel] = human
        (data.reviewed.add if reviewed else data.reviewed.discard)(rel)
        if rel in self.items:
            self._update(rel)
        return True

    def _update(self, rel: str) -> bool:
        old, new = self.items[rel], self._classify(rel)
        if old == new:
            return False
        self.items[rel] = new
        self._count(old, -1)
        self._count(new, +1)
        return True

    def _count(self, item: rq.QueueItem, n: int) -> None:
        self.counts[item.label] += n
        self.reason_counts[item.reason] += n

    def _read_images(self, rels: list[str]) -> None:
        """Labels, predictions, scores and line files of ``rels`` into the session's inputs,
        read by the queue's own reader (``review_queue.image_inputs``)."""
        data, fresh = self._inputs, rq.image_inputs(self.project, rels)
        for rel in rels:
            self._set_input(data.human_labels, rel, fresh.human_labels.get(rel))
            (data.reviewed.add if rel in fresh.reviewed else data.reviewed.discard)(rel)
            self._set_input(data.predictions, rel, fresh.predictions.get(rel))
            self._set_input(data.scores, rel, fresh.scores.get(rel))
        for rel, path in fresh.line_paths.items():
            data.line_paths[rel] = path
            self.paths[rel] = Path(path)

    @staticmethod
    def _set_input(mapping: dict, rel: str, value) -> None:
        if value is None:
            mapping.pop(rel, None)
        else:
            mapping[rel] = value

    def _known(self, rel: str) -> bool:
        """An image the session can show: a file it knows the path of."""
        return rel in self.paths

    def _add(self, rel: str) -> None:
        self.rels.append(rel)
        item = self._classify(rel)
        self.items[rel] = item
        self._count(item, +1)
        key = rq.sort_key(item)
        place = bisect.bisect_left(self._keys, key)
        self._keys.insert(place, key)
        for other, pos in self.order.items():
            if pos >= place:
                self.order[other] = pos + 1
        self.order[rel] = place
