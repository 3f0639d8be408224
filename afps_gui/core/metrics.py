"""Detection and classification metrics. scikit-learn does the standard ones; PRO is ours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from sklearn import metrics as skm


def best_f1_threshold(normal_scores, anomaly_scores) -> float:
    """The score threshold that maximises F1 for 'anomalous' on labelled held-out scores."""
    y = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))]
    s = np.r_[normal_scores, anomaly_scores]
    precision, recall, thresholds = skm.precision_recall_curve(y, s)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    # precision_recall_curve counts score >= t as positive; we use score > threshold, so step
    # just below the chosen score.
    return float(np.nextafter(thresholds[best], -np.inf)) if len(thresholds) else float(s.max())


def image_auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(skm.roc_auc_score(labels, scores))


def auroc_standard_error(auroc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUROC from n_positive and n_negative cases (Hanley & McNeil, 1982):
    how far apart two AUROCs on the same few images must be before the difference means much."""
    a = float(np.clip(auroc, 1e-6, 1 - 1e-6))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = a * (1 - a) + (n_positive - 1) * (q1 - a * a) + (n_negative - 1) * (q2 - a * a)
    return float(np.sqrt(max(var, 0.0) / max(n_positive * n_negative, 1)))


def pixel_auroc(
    masks: list[np.ndarray], maps: list[np.ndarray], max_pixels: int = 4_000_000
) -> float:
    """AUROC over all pixels of all images (masks and maps of equal shapes per image).

    Pixels are subsampled evenly beyond ``max_pixels`` to bound memory on large test sets.
    """
    y = np.concatenate([m.ravel() for m in masks]).astype(bool)
    s = np.concatenate([a.ravel() for a in maps]).astype(np.float32)
    if y.all() or not y.any():
        return float("nan")
    if y.size > max_pixels:
        step = int(np.ceil(y.size / max_pixels))
        y, s = y[::step], s[::step]
    return float(skm.roc_auc_score(y, s))


def pro_score(
    masks: list[np.ndarray], maps: list[np.ndarray], max_fpr: float = 0.3, steps: int = 200
) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, normalised to 0..1.

    For each threshold: PRO = mean over every connected defect region of the fraction of its
    pixels above the threshold; FPR = fraction of normal pixels above it (Bergmann et al.).
    """
    regions, normal_scores = [], []
    for mask, amap in zip(masks, maps):
        labelled, n = ndimage.label(mask)
        for r in range(1, n + 1):
            regions.append(amap[labelled == r])
        normal_scores.append(amap[~mask])
    if not regions:
        return float("nan")
    normal = np.sort(np.concatenate(normal_scores))
    if normal.size == 0:
        return float("nan")
    # thresholds spanning FPR 0..max_fpr, taken from the normal pixels' quantiles
    fprs = np.linspace(0, max_fpr, steps)
    thresholds = np.quantile(normal, 1 - fprs)
    sorted_regions = [np.sort(r) for r in regions]
    pros = np.array(
        [
            np.mean([1 - np.searchsorted(r, t, side="right") / r.size for r in sorted_regions])
            for t in thresholds
        ]
    )
    actual_fpr = 1 - np.searchsorted(normal, thresholds, side="right") / normal.size
    order = np.argsort(actual_fpr)
    return float(np.trapezoid(pros[order], actual_fpr[order]) / max_fpr)


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]
) -> dict:
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix."""
    labels = list(range(len(class_names)))
    p, r, f, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(np.mean(p)),
        "recall": float(np.mean(r)),
        "f1": float(np.mean(f)),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(class_names),
    }
