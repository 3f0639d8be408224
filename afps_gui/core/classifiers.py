"""One door to every classifier kind: make one from a config, load one from its file.

A config's ``strategy`` names the classifier: ``afps``, ``random`` and ``top`` are the paper's
ViT over selected patches (``classifier``); ``pooled`` and ``region`` the linear head on pooled
tokens (``pooled_classifier``); ``auto`` is not a classifier but the instruction to let
cross-validation on the training labels choose one (``model_choice``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from .classifier import FORMAT_VERSION, KIND, ClassifierConfig, DefectClassifier
from .errors import AfpsError
from .modelfile import load_model
from .pooled_classifier import POOLED_FORMAT_VERSION, POOLED_STRATEGIES, PooledClassifier
from .selection import STRATEGIES

AUTO = "auto"
CLASSIFIER_STRATEGIES = STRATEGIES + POOLED_STRATEGIES
Classifier = Union[DefectClassifier, PooledClassifier]


def make_classifier(
    classes: Sequence[str], in_dim: int, config: ClassifierConfig, *, device="auto"
) -> Classifier:
    if config.strategy in POOLED_STRATEGIES:
        return PooledClassifier(classes, in_dim, config)
    if config.strategy in STRATEGIES:
        return DefectClassifier(classes, in_dim, config, device=device)
    raise AfpsError(
        f"Unknown classifier strategy {config.strategy!r}: use {AUTO} or one of "
        f"{', '.join(CLASSIFIER_STRATEGIES)}."
    )


def needs_looks(clf: Optional[Classifier]) -> bool:
    """True when the classifier reads the close look at each image (``closer_look``)."""
    return bool(getattr(clf, "needs_looks", False))


def load_classifier_file(path, *, device="auto") -> Classifier:
    """Load a classifier file of any kind (weights only, no pickled code)."""
    settings, tensors = load_model(path, KIND, max(FORMAT_VERSION, POOLED_FORMAT_VERSION))
    if settings.get("head") == "linear":
        return PooledClassifier.from_file(path, settings, tensors)
    return DefectClassifier.from_loaded(path, settings, tensors, device=device)
