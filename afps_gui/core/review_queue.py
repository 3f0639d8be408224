"""The review queue: which images an inspector should look at first, and why.

Plain Python (no Qt), so the GUI's review mode and the CLI order images the same way.

Ordering, by tier (``QueueItem.priority``), then within each tier:

0. ``DISAGREE``: the model's prediction differs from the image's current label (the human label
   if there is one, else the dataset's). These are the likeliest labelling errors, or the
   model's worst mistakes; the most confident predictions come first.
1. ``LOW_CONFIDENCE``: predictions with confidence below ``low_confidence`` (default 0.6), least
   confident first. A human decision helps the next training most here.
2. ``UNLABELLED``: no human label yet, highest anomaly score first (the clearest defects lead).
3. ``OTHER``: everything else not yet reviewed (a human label that agrees with a confident
   prediction but was never confirmed, e.g. imported as unreviewed), highest score first.
4. ``REVIEWED``: confirmed by a human, last (or left out with ``include_reviewed=False``).

Ties go to the higher anomaly score, then to the image path, so the order is deterministic.
Labels are compared without regard to case ("spot" from a folder name equals the type "Spot").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Optional

from .taxonomy import NORMAL

DISAGREE = "disagree"
LOW_CONFIDENCE = "low_confidence"
UNLABELLED = "unlabelled"
OTHER = "other"
REVIEWED = "reviewed"

# Tier order; also the order the GUI lists its reason filter in.
REASONS = (DISAGREE, LOW_CONFIDENCE, UNLABELLED, OTHER, REVIEWED)
REASON_TITLES = {
    DISAGREE: "Prediction disagrees",
    LOW_CONFIDENCE: "Low confidence",
    UNLABELLED: "No human label",
    OTHER: "Other",
    REVIEWED: "Reviewed",
}
# The one low-confidence threshold (public: the line inspection and the browser's "low
# confidence" filter use it).
DEFAULT_LOW_CONFIDENCE = 0.6


@dataclass(frozen=True)
class QueueItem:
    rel: str
    reason: str  # one of REASONS
    priority: int  # index of reason in REASONS: lower is reviewed sooner
    label: Optional[str]  # current label: human label, else the dataset's, else None
    human: Optional[str]  # the human label alone
    predicted: Optional[str]
    confidence: Optional[float]  # None when unknown
    score: Optional[float]
    reviewed: bool

    def describe(self) -> str:
        """One line saying why the image is in the queue where it is, for the UI."""
        if self.reason == DISAGREE:
            said = prediction_words(self.predicted, self.confidence)
            return f"Model says {said}, label is {self.label}"
        if self.reason == LOW_CONFIDENCE:
            return f"Low confidence: {prediction_words(self.predicted, self.confidence)}"
        if self.reason == UNLABELLED:
            return "No human label yet" + (
                "" if self.score is None else f" (score {self.score:.3g})"
            )
        if self.reason == REVIEWED:
            return "Reviewed"
        return "Labelled, not yet confirmed"


def prediction_words(predicted: str, confidence: Optional[float], *, long: bool = False) -> str:
    """A prediction in words, the one rule for every place that shows one: a defect type with
    the classifier's confidence ("Spot (80%)", long: "Spot (80% sure)"). A "normal" prediction
    has no percentage: it says only that the anomaly score is below the threshold, which is a
    distance from normal, not a probability ("100 % sure" overstated it)."""
    if predicted == NORMAL:
        return "normal (its score is below the threshold)" if long else NORMAL
    if confidence is None:
        return predicted
    return f"{predicted} ({confidence:.0%}{' sure' if long else ''})"


def _finite(value) -> Optional[float]:
    """A float, or None for missing/NaN/infinite values (SQLite hands back NaN as NULL)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _same(a: Optional[str], b: Optional[str]) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def classify(
    rel: str,
    *,
    dataset_label: Optional[str],
    human: Optional[str],
    prediction: Optional[tuple[str, Optional[float]]],
    score: Optional[float],
    reviewed: bool,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> QueueItem:
    """The queue entry of one image (so the GUI can update one image after a decision)."""
    label = human if human is not None else dataset_label
    predicted, confidence = (prediction[0], _finite(prediction[1])) if prediction else (None, None)
    if reviewed:
        reason = REVIEWED
    elif predicted is not None and label is not None and not _same(predicted, label):
        reason = DISAGREE
    elif confidence is not None and confidence < low_confidence:
        reason = LOW_CONFIDENCE
    elif human is None:
        reason = UNLABELLED
    else:
        reason = OTHER
    return QueueItem(
        rel,
        reason,
        REASONS.index(reason),
        label,
        human,
        predicted,
        confidence,
        _finite(score),
        reviewed,
    )


def sort_key(item: QueueItem) -> tuple:
    """The documented order: tier, then the tier's own criterion, then score, then path."""
    score = -item.score if item.score is not None else math.inf  # unscored last within a tier
    if item.reason == DISAGREE:
        first = -(item.confidence if item.confidence is not None else 0.0)
    elif item.reason == LOW_CONFIDENCE:
        first = item.confidence
    else:
        first = 0.0
    return (item.priority, first, score, item.rel)


def build_queue(
    rels: Iterable[str],
    dataset_labels: Mapping[str, Optional[str]],
    human_labels: Mapping[str, str],
    predictions: Mapping[str, tuple[str, Optional[float]]],
    scores: Mapping[str, float],
    reviewed: Iterable[str],
    *,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
    include_reviewed: bool = True,
) -> list[QueueItem]:
    """Every image of ``rels`` in review order (see the module docstring).

    ``predictions`` maps rel -> (predicted label, confidence or None); ``reviewed`` holds the
    rels a human has confirmed. Only ``rels`` are queued: labels of images no longer in the
    dataset are ignored.
    """
    done = set(reviewed)
    items = [
        classify(
            rel,
            dataset_label=dataset_labels.get(rel),
            human=human_labels.get(rel),
            prediction=predictions.get(rel),
            score=scores.get(rel),
            reviewed=rel in done,
            low_confidence=low_confidence,
        )
        for rel in rels
    ]
    if not include_reviewed:
        items = [item for item in items if not item.reviewed]
    return sorted(items, key=sort_key)


@dataclass
class QueueInputs:
    """The plain dicts build_queue needs, read from a project in one go."""

    rels: list[str]
    dataset_labels: dict[str, Optional[str]]
    human_labels: dict[str, str]
    predictions: dict[str, tuple[str, Optional[float]]]
    scores: dict[str, float]
    reviewed: set[str]
    # Images from the line (outside the dataset, keyed "line/..."; see line_inspection):
    # rel -> the file's path now. Their rels are in ``rels`` after the dataset's.
    line_paths: dict[str, str] = field(default_factory=dict)


def image_inputs(project, rels: Optional[Iterable[str]] = None) -> QueueInputs:
    """The queue's inputs of the images ``rels`` (every image when None), read from a Project:
    the one reader of labels, reviewed flags, predictions, scores and line images, for the whole
    queue and for the few images a review session re-reads.

    An image is a dataset sample or a line image that inspection sent to review (NG and
    low-confidence OK): rel "line/...", its file where the inspection log says. A line key that
    is also a dataset image is the dataset's (a dataset folder named "line" keeps its own
    images, as in ``Project.line_samples``). An image's score is the score cache's, else its
    stored prediction's, else the inspection log's. ``reviewed`` holds the images a human
    confirmed (each has a human label). The result's ``rels`` are the images asked for that the
    project has (all of them: the dataset's first, then the line's); the labels and predictions
    of a requested image the project does not have are read too.
    """
    from .inspection_log import line_image_paths

    samples = project.dataset.samples
    known = {s.rel for s in samples}
    wanted = None if rels is None else set(rels)
    line = {
        r: v
        for r, v in line_image_paths(project.folder).items()
        if r not in known and (wanted is None or r in wanted)
    }
    store = project.store
    reviewed = store.reviewed()
    if wanted is None:
        order = [s.rel for s in samples] + list(line)
        human, stored = store.labels(), store.predictions()
    else:
        order = [r for r in dict.fromkeys(rels) if r in known or r in line]
        human = {r: h for r in wanted if (h := store.label(r)) is not None}
        stored = {r: p for r in wanted if (p := store.prediction(r)) is not None}
        reviewed &= wanted
    cached = project.cache.scores()
    scores = {}
    for rel in order if wanted is None else wanted:
        score = next((v for v in _score_sources(rel, cached, stored, line) if v is not None), None)
        if score is not None:
            scores[rel] = score
    return QueueInputs(
        rels=order,
        dataset_labels={
            rel: label
            for rel, label in project.dataset_labels().items()
            if wanted is None or rel in wanted
        },
        human_labels=human,
        predictions={rel: (p.label, p.confidence) for rel, p in stored.items()},
        scores=scores,
        reviewed=reviewed,
        line_paths={rel: path for rel, (path, _) in line.items()},
    )


def _score_sources(rel: str, cached: Mapping, stored: Mapping, line: Mapping):
    """An image's scores in the order they count: the cache's, the prediction's, the log's."""
    yield _finite(cached.get(rel))
    pred = stored.get(rel)
    yield None if pred is None else _finite(pred.score)
    yield _finite(line[rel][1]) if rel in line else None


def queue_inputs(project) -> QueueInputs:
    """Every image's queue inputs (see ``image_inputs``), in a few queries."""
    return image_inputs(project)


def project_queue(project, **kwargs) -> list[QueueItem]:
    """build_queue over a Project's current data (keyword arguments as for build_queue)."""
    data = queue_inputs(project)
    return build_queue(
        data.rels,
        data.dataset_labels,
        data.human_labels,
        data.predictions,
        data.scores,
        data.reviewed,
        **kwargs,
    )
