"""The project's models, loaded once and kept while their files stay the same.

The heat map needs only the PaDiM model's settings, threshold and score scale
(``padim_summary``: milliseconds); the inspector's classification needs the whole model and the
classifier. Reading a whole PaDiM file can take a second (hundreds of MB of inverse
covariances), so it is loaded in a background task the first time and reused until a fit
writes a new file. Only the TaskRunner's thread calls ``padim``/``classifier``; the lock makes
that safe even if a second thread ever does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from ..core import pipeline
from ..core.classifiers import Classifier
from ..core.padim import PadimModel


def _stamp(path: Path) -> Optional[tuple[float, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ModelCache:
    def __init__(self, project):
        self.project = project
        # Re-entrant: loading an image view asks for the PaDiM summary from inside _kept.
        self._lock = threading.RLock()
        self._slots: dict[str, tuple[tuple, object]] = {}  # slot -> (key, value)

    def _kept(self, slot: str, key: tuple, load):
        """The value kept in ``slot`` while its key (file stamps) stays the same, or
        ``load()`` anew."""
        with self._lock:
            entry = self._slots.get(slot)
            if entry is None or entry[0] != key:
                entry = self._slots[slot] = (key, load())
            return entry[1]

    def image_view(self, rel: str, load):
        """``load(project, self, rel)``, or the same view again while nothing it shows has
        changed: the heat map and the patch inspector show the same image one after the other,
        and decoding it and smoothing its map twice doubled the background work of every step
        through the images (work that takes the CPU and the GIL from the UI thread)."""
        key = (rel, _stamp(self.project.padim_path), self.project.cache.stamp())
        return self._kept("view", key, lambda: load(self.project, self, rel))

    def padim(self) -> PadimModel:
        """The fitted PaDiM model (raises AfpsError when there is none yet)."""
        key = (_stamp(self.project.padim_path),)
        return self._kept("padim", key, lambda: pipeline.load_padim(self.project))

    def padim_summary(self) -> PadimModel:
        """The PaDiM model without its Gaussians (settings, threshold, score scale): all that
        showing a cached map needs, read in milliseconds instead of copying the whole file."""
        key = (_stamp(self.project.padim_path),)
        with self._lock:
            full = self._slots.get("padim")
            if full is not None and full[0] == key:
                return full[1]  # the full model is loaded already
            path = self.project.padim_path
            return self._kept("summary", key, lambda: PadimModel.load_summary(path))

    def classifier(self) -> Optional[Classifier]:
        key = (_stamp(self.project.classifier_path),)
        return self._kept("classifier", key, lambda: pipeline.load_classifier(self.project))

    def has_padim(self) -> bool:
        return self.project.padim_path.is_file()

    def has_classifier(self) -> bool:
        return self.project.classifier_path.is_file()
