"""Let the training labels choose the classifier: cross-validate the candidates, keep the best.

Which classifier types a project's defects best depends on the part and on how many labels it
has (a ViT wins with many, a linear head on pooled tokens with a few dozen: README). So the
candidates are compared by stratified k-fold cross-validation on the *training* labels only; the
held-out test split is not looked at until the choice is made. Ties go to the candidate listed
first (the cheaper one).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .classifier import ClassifierConfig, Example
from .classifiers import AUTO, make_classifier
from .errors import AfpsError
from .jobs import Progress, check_cancel, no_progress
from .selection import reads_looks

FOLDS = 3


@dataclass
class Candidate:
    name: str  # what the training panel and results.json call it
    config: ClassifierConfig
    head: str  # "linear" or "vit"


@dataclass
class Choice:
    best: Candidate
    rows: list[dict] = field(
        default_factory=list
    )  # one per candidate: name, head, strategy, n, accuracy, sd
    folds: int = 0

    def as_dict(self) -> dict:
        return {
            "chosen": self.best.name,
            "head": self.best.head,
            "strategy": self.best.config.strategy,
            "n": self.best.config.n,
            "folds": self.folds,
            "rows": self.rows,
        }


def default_candidates(
    base: ClassifierConfig, *, looks: bool, vit_epochs: Optional[int] = None
) -> list[Candidate]:
    """Linear heads on pooled tokens (N = 50 and 250 of the detection grid; with the close look,
    the region summary too) and the paper's ViT with AFPS at the configured N. The ViT trains for
    a third of its epochs in the folds, at least 10 (its accuracy plateaus by about 10 on both
    shared datasets), so that choosing costs less than one more training: its final fit gets
    them all."""
    out = [
        Candidate("pooled N=50", replace(base, strategy="pooled", n=50), "linear"),
        Candidate("pooled N=250", replace(base, strategy="pooled", n=250), "linear"),
    ]
    if looks:
        out.append(Candidate("region N=50", replace(base, strategy="region", n=50), "linear"))
    vit = base.strategy if base.strategy in ("afps", "random", "top") else "afps"
    epochs = vit_epochs or min(base.epochs, max(10, base.epochs // 3))
    out.append(
        Candidate(f"ViT {vit} N={base.n}", replace(base, strategy=vit, epochs=epochs), "vit")
    )
    return out


def fold_indices(labels: Sequence[int], folds: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """Stratified folds; the number of folds is capped by the smallest class."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    smallest = min(np.bincount(labels)[np.unique(labels)])
    k = min(folds, int(smallest))
    if k < 2:
        return []
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr.tolist(), te.tolist()) for tr, te in skf.split(np.zeros(len(labels)), labels)]


def choose_classifier(
    examples: Sequence[Example],
    classes: Sequence[str],
    candidates: Sequence[Candidate],
    *,
    folds: int = FOLDS,
    seed: int = 0,
    device: str = "auto",
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> Choice:
    """Cross-validated accuracy of every candidate on ``examples`` (the training labels)."""
    if not candidates:
        raise AfpsError("No classifier candidates to choose from.")
    labels = [ex.label for ex in examples]
    splits = fold_indices(labels, folds, seed)
    usable = [c for c in candidates if _fits(c, examples)]
    if not splits or len(usable) == 1:
        # Too few labels of some type to hold any out: the first usable candidate, untested.
        best = (usable or list(candidates))[0]
        return Choice(best, [], 0)
    rows, total, done = [], len(usable) * len(splits), 0
    for cand in usable:
        accs = []
        for tr, te in splits:
            check_cancel(cancel)
            clf = make_classifier(
                classes,
                examples[0].embeddings.shape[-1],
                replace(cand.config, seed=seed),
                device=device,
            )
            clf.fit([examples[i] for i in tr], cancel=cancel)
            preds = clf.predict([examples[i] for i in te], seed=seed)
            accs.append(float(np.mean([p.index == examples[i].label for p, i in zip(preds, te)])))
            done += 1
            progress(done, total, f"Cross-validating {cand.name}: fold {len(accs)}/{len(splits)}")
        rows.append(
            {
                "name": cand.name,
                "head": cand.head,
                "strategy": cand.config.strategy,
                "n": cand.config.n,
                "accuracy": float(np.mean(accs)),
                "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            }
        )
    best_i = int(np.argmax([r["accuracy"] for r in rows]))  # first of equals: the cheaper one
    for i, r in enumerate(rows):
        r["chosen"] = i == best_i
    return Choice(usable[best_i], rows, len(splits))


def examples_need_looks(strategies: Sequence[str]) -> bool:
    """True when training these strategies needs examples built with their close looks: one of
    them reads the look (``selection.reads_looks``), or ``auto`` may choose one that does."""
    return any(s == AUTO or reads_looks(s) for s in strategies)


def _fits(cand: Candidate, examples: Sequence[Example]) -> bool:
    """A candidate needs N patches per image, and a head that reads the close look needs every
    image's."""
    if reads_looks(cand.config.strategy) and any(ex.look is None for ex in examples):
        return False
    if cand.head == "vit":
        return all(ex.patch_map.size >= cand.config.n for ex in examples)
    return True


def format_choice(choice: dict) -> str:
    """The cross-validation table as text (CLI)."""
    lines = [
        f"Classifier chosen by {choice['folds']}-fold cross-validation on the training labels:"
    ]
    for r in choice.get("rows", []):
        mark = "*" if r.get("chosen") else " "
        lines.append(f" {mark} {r['name']:<22} {100 * r['accuracy']:5.1f} ± {100 * r['sd']:4.1f} %")
    if not choice.get("rows"):
        lines.append(f"   too few labels per type to cross-validate: {choice['chosen']}")
    return "\n".join(lines)


def resolve_auto(
    train: Sequence[Example],
    classes: Sequence[str],
    config: ClassifierConfig,
    *,
    device: str = "auto",
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> tuple[ClassifierConfig, Optional[Choice]]:
    """The config to train: ``config`` itself, or for strategy ``auto`` the cross-validated best
    on ``train`` (the region candidate only when every example has its close look), with all of
    ``config``'s epochs for its final fit."""
    if config.strategy != "auto":
        return config, None
    looks = all(ex.look is not None for ex in train)
    choice = choose_classifier(
        train,
        classes,
        default_candidates(config, looks=looks),
        seed=config.seed,
        device=device,
        progress=progress,
        cancel=cancel,
    )
    return replace(choice.best.config, epochs=config.epochs), choice
