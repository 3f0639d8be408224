"""A linear head on pooled patch tokens: the classifier for a few dozen labelled defects.

With 50-200 labelled images a ViT over N tokens has more weights than the labels can pin down;
a logistic regression on a fixed summary of the same tokens often types better (measured on
both shared datasets, README). Two summaries (``strategy``):

- ``pooled``: the mean and the maximum of the N highest-scoring patch embeddings of the
  detection grid, and the mean of every patch of the image (what the part looks like around
  the defect);
- ``region``: the same, plus the same summary of the close look's window (the defect cut from
  the original image at full resolution, ``closer_look``) and the region's shape.

The class has the DefectClassifier's interface (fit, predict, flops, save, load), so the
experiment, the project jobs and the GUI treat both alike. Its file holds only arrays and JSON.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Optional

import numpy as np
import torch

from .classifier import (
    KIND,
    ClassifierConfig,
    EpochStats,
    Example,
    Prediction,
    TrainHistory,
    accuracy,
    training_labels,
)
from .closer_look import SHAPE_FEATURES
from .errors import AfpsError, ModelFileError
from .jobs import Progress, check_cancel, no_progress
from .modelfile import save_model
from .selection import reads_looks, top_flat

POOLED_STRATEGIES = ("pooled", "region")
POOLED_FORMAT_VERSION = 2


def summary(embeddings, patch_map, valid, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[mean of the top-n patches, their max, mean of every valid patch], and the top-n flat
    indices."""
    flat = np.asarray(embeddings, dtype=np.float32).reshape(-1, embeddings.shape[-1])
    top = top_flat(patch_map, n, valid)
    every = flat if valid is None else flat[valid.ravel()]
    chosen = flat[top]
    return np.concatenate([chosen.mean(0), chosen.max(0), every.mean(0)]), top


def features_of(ex: Example, strategy: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The head's input for one example, and the grid positions of the pooled top patches."""
    feats, top = summary(ex.embeddings, ex.patch_map, ex.valid, n)
    if strategy == "region":
        if ex.look is None:
            raise AfpsError(
                "The 'region' classifier needs the close look at each image (closer_look); "
                "build its examples with looks."
            )
        lk = ex.look
        window, _ = summary(lk.embeddings, lk.patch_map, lk.valid, n)
        feats = np.concatenate([feats, window, lk.shape])
    positions = np.stack(np.unravel_index(top, ex.patch_map.shape), axis=1).astype(int)
    return feats, positions


class PooledClassifier:
    """Standardised pooled features -> multinomial logistic regression (L2, ``linear_c``)."""

    def __init__(
        self, classes: Sequence[str], in_dim: int, config: Optional[ClassifierConfig] = None, **_
    ):
        if len(classes) < 2:
            raise AfpsError("A classifier needs at least two defect types.")
        self.classes = list(classes)
        self.in_dim = in_dim
        self.config = config or ClassifierConfig(strategy="pooled")
        if self.config.strategy not in POOLED_STRATEGIES:
            raise AfpsError(
                f"A pooled classifier takes {POOLED_STRATEGIES}, not {self.config.strategy!r}."
            )
        self.mean = self.scale = self.coef = self.intercept = None
        self.extra: dict = {}

    @property
    def needs_looks(self) -> bool:
        return reads_looks(self.config.strategy)

    @property
    def n_features(self) -> int:
        n = 3 * self.in_dim
        return n + 3 * self.in_dim + len(SHAPE_FEATURES) if self.needs_looks else n

    def _features(self, examples: Sequence[Example]) -> tuple[np.ndarray, list[np.ndarray]]:
        pairs = [features_of(ex, self.config.strategy, self.config.n) for ex in examples]
        return np.stack([f for f, _ in pairs]), [p for _, p in pairs]

    def fit(
        self,
        train: Sequence[Example],
        val: Sequence[Example] = (),
        *,
        progress: Progress = no_progress,
        cancel: Optional[threading.Event] = None,
        on_epoch: Optional[Callable[[EpochStats], None]] = None,
    ) -> TrainHistory:
        from sklearn.linear_model import LogisticRegression

        labels = training_labels(train)
        check_cancel(cancel)
        X, _ = self._features(train)
        self.mean = X.mean(0)
        self.scale = np.where(X.std(0) > 1e-6, X.std(0), 1.0)
        lr = LogisticRegression(C=self.config.linear_c, max_iter=3000)
        lr.fit((X - self.mean) / self.scale, labels)
        check_cancel(cancel)
        # Classes absent from this training set keep a score that never wins.
        self.coef = np.zeros((len(self.classes), X.shape[1]), dtype=np.float32)
        self.intercept = np.full(len(self.classes), -1e4, dtype=np.float32)
        rows = lr.coef_ if len(lr.classes_) > 2 else np.vstack([-lr.coef_[0] / 2, lr.coef_[0] / 2])
        bias = (
            lr.intercept_
            if len(lr.classes_) > 2
            else np.array([-lr.intercept_[0] / 2, lr.intercept_[0] / 2])
        )
        for row, b, k in zip(rows, bias, lr.classes_):
            self.coef[int(k)] = row
            self.intercept[int(k)] = b
        history = TrainHistory()
        probs = self._probabilities(X)  # the features already made, not made again
        train_acc = float(np.mean(probs.argmax(1) == labels))
        # One "epoch": the training cross-entropy of the fitted head, for the loss curve.
        loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))))
        stats = EpochStats(1, 1, loss, train_acc)
        if val:
            stats.val_accuracy = accuracy(self.predict(val), val)
        history.record(stats, on_epoch)
        progress(1, 1, "Fitted the linear head")
        return history

    def predict(self, examples: Sequence[Example], **_) -> list[Prediction]:
        if self.coef is None:
            raise AfpsError("The classifier is not trained yet.")
        if not examples:
            return []
        X, positions = self._features(examples)
        out = []
        for i, p in enumerate(self._probabilities(X)):
            k = int(p.argmax())
            att = self._contributions(examples[i], positions[i], k)
            out.append(Prediction(self.classes[k], k, float(p[k]), p.tolist(), positions[i], att))
        return out

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        logits = ((X - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(1, keepdims=True)

    def _contributions(self, ex: Example, positions: np.ndarray, k: int) -> np.ndarray:
        """How much each pooled patch pushed the answer towards class k through the mean
        part of the summary (for the inspector's dot sizes); sums to 1."""
        d = self.in_dim
        emb = np.asarray(ex.embeddings[positions[:, 0], positions[:, 1]], dtype=np.float32)
        w = self.coef[k, :d] / self.scale[:d]
        c = np.maximum((emb - self.mean[:d]) @ w, 0) + 1e-6
        return (c / c.sum()).astype(np.float32)

    def flops(self) -> int:
        """Pooling (mean and max of N tokens, the image mean) and the linear layer, per image."""
        pool = 2 * self.config.n * self.in_dim
        return int(pool * (2 if self.needs_looks else 1) + 2 * self.n_features * len(self.classes))

    def save(self, path, extra: Optional[dict] = None) -> None:
        settings = {
            "config": asdict(self.config),
            "classes": self.classes,
            "in_dim": self.in_dim,
            "head": "linear",
            "extra": extra or {},
        }
        tensors = {
            k: torch.from_numpy(np.ascontiguousarray(getattr(self, k), dtype=np.float32))
            for k in ("mean", "scale", "coef", "intercept")
        }
        save_model(path, KIND, POOLED_FORMAT_VERSION, settings, tensors)

    @classmethod
    def from_file(cls, path, settings: dict, tensors: dict) -> PooledClassifier:
        try:
            model = cls(
                settings["classes"], int(settings["in_dim"]), ClassifierConfig(**settings["config"])
            )
            for k in ("mean", "scale", "coef", "intercept"):
                setattr(model, k, tensors[k].numpy().astype(np.float32))
            if model.coef.shape != (len(model.classes), model.n_features):
                raise ValueError(f"weights of shape {tuple(model.coef.shape)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{path} is not a usable classifier ({type(exc).__name__}: {str(exc)[:200]}). Train it again."
            ) from exc
        model.extra = settings.get("extra", {})
        return model
