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
from ..core.classifier import DefectClassifier
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
        self._lock = threading.Lock()
        self._padim: Optional[tuple[tuple, PadimModel]] = None
        self._clf: Optional[tuple[tuple, Optional[DefectClassifier]]] = None
        self._view: Optional[tuple[tuple, object]] = None
        self._summary: Optional[tuple[tuple, PadimModel]] = None

    def image_view(self, rel: str, load):
        """``load(project, self, rel)``, or the same view again while nothing it shows has
        changed: the heat map and the patch inspector show the same image one after the other,
        and decoding it and smoothing its map twice doubled the background work of every step
        through the images (work that takes the CPU and the GIL from the UI thread)."""
        key = (rel, _stamp(self.project.padim_path), self.project.cache.stamp())
        with self._lock:
            if self._view is not None and self._view[0] == key:
                return self._view[1]
        view = load(self.project, self, rel)
        with self._lock:
            self._view = (key, view)
        return view

    def padim(self) -> PadimModel:
        """The fitted PaDiM model (raises AfpsError when there is none yet)."""
        with self._lock:
            stamp = _stamp(self.project.padim_path)
            if self._padim is None or self._padim[0] != stamp:
                self._padim = (stamp, pipeline.load_padim(self.project))
            return self._padim[1]

    def padim_summary(self) -> PadimModel:
        """The PaDiM model without its Gaussians (settings, threshold, score scale): all that
        showing a cached map needs, read in milliseconds instead of copying the whole file."""
        with self._lock:
            stamp = _stamp(self.project.padim_path)
            if self._padim is not None and self._padim[0] == stamp:
                return self._padim[1]  # the full model is loaded already
            if self._summary is None or self._summary[0] != stamp:
                self._summary = (stamp, PadimModel.load_summary(self.project.padim_path))
            return self._summary[1]

    def classifier(self) -> Optional[DefectClassifier]:
        with self._lock:
            stamp = _stamp(self.project.classifier_path)
            if self._clf is None or self._clf[0] != stamp:
                self._clf = (stamp, pipeline.load_classifier(self.project))
            return self._clf[1]

    def has_padim(self) -> bool:
        return self.project.padim_path.is_file()

    def has_classifier(self) -> bool:
        return self.project.classifier_path.is_file()
