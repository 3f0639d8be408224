"""The jobs that the GUI workers and the CLI both run: fit, score, train, evaluate, experiment.

Every job takes ``progress(done, total, message)`` and a ``cancel`` event, writes its files
atomically (a cancelled job leaves the previous model in place), and returns a plain result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .classifier import ClassifierConfig, EpochStats, Example, TrainHistory
from .classifiers import AUTO, Classifier, load_classifier_file, make_classifier, needs_looks
from .closer_look import look_at
from .datasets import Dataset, NormalSplit, Sample, split_anomalies, split_normals
from .errors import AfpsError
from .jobs import Progress, check_cancel, no_progress
from .labels import Prediction as StoredPrediction
from .metrics import classification_report, image_auroc, pixel_auroc, pro_score
from .padim import FitReport, ImageScore, PadimConfig, PadimModel
from .preprocess import mask_to_input
from .project import Project, default_model_id
from .taxonomy import NORMAL
from .tuning import MAX_TUNE_VAL, TuneData, TuneResult, settings_of, tune_detection


def _count_of(message: str) -> str:
    """ "Scoring 95/235 images" -> "95/235 images": the count without the backbone's verb."""
    words = message.split()
    first = next((i for i, w in enumerate(words) if any(c.isdigit() for c in w)), 0)
    return " ".join(words[first:])


def _stage(progress: Progress, lo: float, hi: float, phase: str = "") -> Progress:
    """A progress callback that maps a sub-job's 0..total onto lo..hi of 1000 steps, so that a
    job's bar runs once from start to end; ``phase`` names the step in its messages (the
    backbone's "Scoring 95/235" means different work in different steps)."""

    def report(done: int, total: int, message: str = "") -> None:
        frac = done / total if total else 1.0
        if phase:
            message = f"{phase}: {_count_of(message)}" if message else phase
        progress(int(1000 * (lo + (hi - lo) * frac)), 1000, message)

    return report


def valid_grid(score: ImageScore) -> Optional[np.ndarray]:
    """Bool mask of the unpadded patches (None when the whole grid is image)."""
    gh, gw = score.patch_map.shape
    b = score.grid_box
    if (b.y0, b.y1, b.x0, b.x1) == (0, gh, 0, gw):
        return None
    valid = np.zeros((gh, gw), dtype=bool)
    valid[b.y0 : b.y1, b.x0 : b.x1] = True
    return valid


def to_example(score: ImageScore, label: int = -1, name: str = "", look=None) -> Example:
    return Example(score.embeddings, score.patch_map, label, valid_grid(score), name, look)


def example_of(
    padim: PadimModel, item, score: ImageScore, label: int = -1, name: str = "", looks: bool = False
) -> Example:
    """An Example, with the close look at the original image when ``looks`` (raises ImageError
    when the original cannot be decoded again)."""
    return to_example(score, label, name, look_at(padim, item, score) if looks else None)


def build_examples(
    padim: PadimModel,
    samples: Sequence[Sample],
    classes: Sequence[str],
    *,
    progress=no_progress,
    cancel=None,
    looks: bool = False,
) -> tuple[list[Example], list[tuple[str, str]]]:
    """Embed and score each sample once; Examples carry the class index of the sample's label
    and, with ``looks``, the close look at the defect (``closer_look``)."""
    index = {c: i for i, c in enumerate(classes)}
    skipped: list[tuple[str, str]] = []
    out = []
    for sample, score in padim.score_items(
        list(samples), keep_embeddings=True, progress=progress, cancel=cancel, skipped=skipped
    ):
        try:
            out.append(
                example_of(padim, sample, score, index.get(sample.label, -1), sample.rel, looks)
            )
        except AfpsError as exc:
            skipped.append((sample.rel, str(exc)))
    return out, skipped


# --- detection ---------------------------------------------------------------------------------


@dataclass
class DetectionResult:
    image_auroc: float
    pixel_auroc: float
    pro: float
    threshold: float
    n_fit: int
    n_test_normal: int
    n_test_anomalous: int
    fit_seconds: float
    score_seconds: float
    per_type_auroc: dict[str, float] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # the detection settings measured
    tuning: Optional[dict] = None  # TuneResult.as_dict() when the settings were tuned

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


# --- tuning ------------------------------------------------------------------------------------


def evaluation_tuning_data(
    split: NormalSplit, anomalies: Sequence[Sample], seed: int
) -> tuple[TuneData, list[Sample]]:
    """Tuning data that no reported figure is computed on, and the defects left to report on.

    Validation normals come out of the fit split (the final model is fitted on them again, and
    they are never scored for a figure). With at least 10 defects, a stratified quarter of them
    (at most MAX_TUNE_VAL) is used for tuning and left out of the report; with fewer, tuning pastes
    synthetic defects into the validation normals and every real defect is reported.
    """
    n_val = min(MAX_TUNE_VAL, max(2, round(0.15 * len(split.fit))))
    if len(split.fit) - n_val < 2:
        raise AfpsError("Tuning needs more normal images: fewer than 4 are left to fit on.")
    tune = TuneData(split.fit[:-n_val], split.fit[-n_val:], [])
    if len(anomalies) < 10:
        return tune, list(anomalies)
    fraction = min(0.25, MAX_TUNE_VAL / len(anomalies))
    report, tune.defects = split_anomalies(list(anomalies), seed, test_fraction=fraction)
    return tune, report


def fit_on_normals(
    dataset: Dataset,
    config: PadimConfig,
    *,
    n_fit: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    weights: Optional[str] = None,
    calibrate: bool = True,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
) -> tuple[PadimModel, NormalSplit, FitReport]:
    """Fit PaDiM on a dataset's normal fit split; calibrate the threshold on its validation split."""
    split = split_normals(dataset.normals(), seed, n_fit=n_fit)
    padim = PadimModel(config, device=device, weights=weights)
    report = padim.fit(split.fit, progress=progress, cancel=cancel)
    if calibrate and split.val:
        padim.calibrate_on(split.val, cancel=cancel)
    return padim, split, report


def evaluate_detection(
    dataset: Dataset,
    config: PadimConfig,
    *,
    n_fit: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    weights: Optional[str] = None,
    progress: Progress = no_progress,
    cancel: Optional[threading.Event] = None,
    model_out=None,
    tune_budget_s: Optional[float] = None,
) -> DetectionResult:
    """Fit on normal training images; report AUROC and PRO on held-out normals and defects.

    The edge correction and the threshold are learnt on the validation normals; AUROC and PRO
    are measured on the test normals and every defective image that tuning did not see.

    With ``tune_budget_s``, the settings are first tuned (``evaluation_tuning_data``): on part
    of the fit normals and a quarter of the defects, which are then left out of the report.
    """
    anomalies = dataset.anomalies()
    tuning = None
    lo = 0.0
    if tune_budget_s is not None:
        split = split_normals(dataset.normals(), seed, n_fit=n_fit)
        data, anomalies = evaluation_tuning_data(split, anomalies, seed)
        tuned = tune_detection(
            data,
            base=config,
            budget_s=tune_budget_s,
            seed=seed,
            device=device,
            weights=weights,
            progress=_stage(progress, 0, 0.5),
            cancel=cancel,
        )
        config, tuning, lo = tuned.best, tuned.as_dict(), 0.5
    padim, split, report = fit_on_normals(
        dataset,
        config,
        n_fit=n_fit,
        seed=seed,
        device=device,
        weights=weights,
        progress=_stage(progress, lo, lo + (1 - lo) * 0.6),
        cancel=cancel,
    )
    skipped = list(report.skipped)
    held_out = _score_held_out(
        padim,
        split.test + anomalies,
        config.input_size if dataset.has_masks else None,
        progress=_stage(progress, lo + (1 - lo) * 0.6, 1.0),
        cancel=cancel,
        skipped=skipped,
    )
    if model_out:
        padim.save(model_out)
    return held_out.result(padim, report, skipped, settings_of(config), tuning)


@dataclass
class _HeldOut:
    """The held-out images' labels, scores and (where the dataset has masks) masks and maps."""

    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    kinds: list[Optional[str]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0

    def auroc_per_type(self) -> dict[str, float]:
        """Each defect type's image AUROC against the normal images alone."""
        per_type = {}
        for t in sorted({k for k in self.kinds if k not in (None, NORMAL)}):
            sel = [i for i, k in enumerate(self.kinds) if k in (t, NORMAL)]
            per_type[t] = image_auroc([self.labels[i] for i in sel], [self.scores[i] for i in sel])
        return per_type

    def result(self, padim, report: FitReport, skipped, settings, tuning) -> DetectionResult:
        labels, masks, maps = self.labels, self.masks, self.maps
        anomalous_masks = [(m, a) for m, a, lab in zip(masks, maps, labels) if lab]
        return DetectionResult(
            image_auroc=image_auroc(labels, self.scores),
            pixel_auroc=pixel_auroc(masks, maps) if masks else float("nan"),
            pro=pro_score(masks, maps) if anomalous_masks else float("nan"),
            threshold=float(padim.threshold) if padim.threshold is not None else float("nan"),
            n_fit=report.n_images,
            n_test_normal=sum(not lab for lab in labels),
            n_test_anomalous=sum(labels),
            fit_seconds=report.seconds,
            score_seconds=self.seconds,
            per_type_auroc=self.auroc_per_type(),
            skipped=skipped,
            settings=settings,
            tuning=tuning,
        )


def _score_held_out(
    padim: PadimModel, test: list, mask_size: Optional[tuple], *, progress, cancel, skipped
) -> _HeldOut:
    """Score the held-out images; with ``mask_size`` (the model's input size), also keep their
    maps and masks, except where a mask cannot be read."""
    from .images import load_mask

    out = _HeldOut()
    t0 = time.perf_counter()
    for sample, score in padim.score_items(test, progress=progress, cancel=cancel, skipped=skipped):
        out.labels.append(sample.is_anomalous)
        out.scores.append(score.score)
        out.kinds.append(sample.label)
        if mask_size is not None:
            if sample.mask is not None:
                try:
                    mask = load_mask(sample.mask)
                except AfpsError as exc:
                    skipped.append((sample.rel, str(exc)))
                    continue
                out.masks.append(mask_to_input(mask, mask_size, score.box))
            else:
                out.masks.append(np.zeros(score.map.shape, dtype=bool))
            out.maps.append(score.map)
    out.seconds = time.perf_counter() - t0
    return out


# --- project jobs ------------------------------------------------------------------------------


@dataclass
class FitResult:
    n_images: int
    threshold: float
    seconds: float
    skipped: list[tuple[str, str]]
    tuning: Optional[dict] = None  # set when this fit tuned the settings first
    settings: Optional[dict] = None  # the project's settings after the job (JSON form)


def project_tuning_data(project: Project) -> TuneData:
    """The project's fit normals, its threshold-validation normals, and its labelled defects of
    the classifier's training split (the classifier's test split stays unseen)."""
    split = project.normal_split()
    train_defects, _ = project.classifier_split()
    return TuneData(split.fit, split.val or split.test, train_defects)


def tune_project(
    project: Project,
    *,
    budget_s: Optional[float] = None,
    progress: Progress = no_progress,
    cancel=None,
) -> TuneResult:
    """Tune the detection settings on the project's data and store them (and the table) in the
    project's settings. The anomaly model is not refitted here: the next fit uses them."""
    _writable(project)
    s = project.settings
    result = tune_detection(
        project_tuning_data(project),
        base=s.padim,
        budget_s=s.tune_budget_s if budget_s is None else budget_s,
        seed=s.split_seed,
        device=s.device,
        progress=progress,
        cancel=cancel,
    )
    check_cancel(cancel)
    s.padim = result.best
    s.tuning = result.as_dict()
    s.auto_tune = False
    project.save_settings()
    return result


def fit_project(
    project: Project,
    *,
    progress: Progress = no_progress,
    cancel=None,
    tune_budget_s: Optional[float] = None,
) -> FitResult:
    """Fit PaDiM on the project's normal images and calibrate its threshold; save the model.
    A project that has never been tuned (and whose settings the user did not choose) is tuned
    first."""
    _writable(project)
    tuning = None
    lo = 0.0
    if project.settings.auto_tune and project.settings.tuning is None:
        tuning = tune_project(
            project, budget_s=tune_budget_s, progress=_stage(progress, 0, 0.5), cancel=cancel
        ).as_dict()
        lo = 0.5
    s = project.settings
    split = project.normal_split()
    padim = PadimModel(s.padim, device=s.device)
    t0 = time.perf_counter()
    progress = _stage(progress, lo, 1.0)
    report = padim.fit(split.fit, progress=_stage(progress, 0, 0.85, "Fitting"), cancel=cancel)
    train_defects, _ = project.classifier_split()
    check_cancel(cancel)
    padim.calibrate_on(
        split.val,
        train_defects,
        progress=_stage(progress, 0.85, 1, "Setting the threshold"),
        cancel=cancel,
    )
    check_cancel(cancel)
    padim.save(project.padim_path)
    project.cache.clear()
    return FitResult(
        report.n_images,
        float(padim.threshold),
        time.perf_counter() - t0,
        report.skipped,
        tuning,
        s.to_json(),
    )


def load_padim(project: Project, *, summary: bool = False) -> PadimModel:
    """The project's anomaly model; ``summary=True`` reads only its settings, threshold and
    score scale (``PadimModel.load_summary``): enough to draw cached maps, not to score."""
    if not project.padim_path.is_file():
        raise AfpsError("No anomaly model yet: fit PaDiM on the normal images first.")
    if summary:
        return PadimModel.load_summary(project.padim_path)
    return PadimModel.load(project.padim_path, device=project.settings.device)


def saved_padim_summary(project: Project) -> Optional[PadimModel]:
    """The project's anomaly model read as its settings only (``PadimModel.load_summary``), or
    None when there is no (readable) model file: a full load copies the whole file (373 MB at
    224 x 224). ``saved_threshold`` and ``saved_models_summary`` both read it here."""
    if not project.padim_path.is_file():
        return None
    try:
        return PadimModel.load_summary(project.padim_path)
    except AfpsError:
        return None


def saved_threshold(project: Project) -> Optional[float]:
    """The anomaly threshold saved with the project's model, or None when there is no (readable)
    model or it has no threshold."""
    return _threshold_of(saved_padim_summary(project))


def _threshold_of(padim: Optional[PadimModel]) -> Optional[float]:
    return None if padim is None or padim.threshold is None else float(padim.threshold)


def saved_models_summary(project: Project) -> dict:
    """What the project's model files say about themselves (their settings only, read in
    milliseconds): the anomaly model's images and threshold, the classifier's held-out metrics
    and how it was chosen. A panel shows these after a restart, not only after a job."""
    from .classifier import FORMAT_VERSION as CLF_VERSION
    from .classifier import KIND as CLF_KIND
    from .modelfile import load_model_settings
    from .pooled_classifier import POOLED_FORMAT_VERSION

    out: dict = {"padim": None, "classifier": None}
    padim = saved_padim_summary(project)
    if padim is not None:
        out["padim"] = {"n_train": padim.n_train, "threshold": _threshold_of(padim)}
    if project.classifier_path.is_file():
        try:
            s = load_model_settings(
                project.classifier_path, CLF_KIND, max(CLF_VERSION, POOLED_FORMAT_VERSION)
            )
            out["classifier"] = {"extra": s.get("extra") or {}, "config": s.get("config") or {}}
        except AfpsError:
            pass
    return out


def load_classifier(project: Project) -> Optional[Classifier]:
    if not project.classifier_path.is_file():
        return None
    return load_classifier_file(project.classifier_path, device=project.settings.device)


@dataclass
class ScoreResult:
    n_scored: int
    n_anomalous: int
    n_classified: int
    seconds: float
    skipped: list[tuple[str, str]]


class BatchClassifying:
    """Anomalous images waiting for the classifier: one call per 32 images, far cheaper than
    one per image. Each answer goes to ``on_result(key, score, prediction)``: the project keeps
    it as a stored prediction, ``afps predict`` writes it in its row, the line types its part.

    ``add_sample`` is the one rule for an image whose close look fails (its original cannot be
    decoded again at full size): it is not classified, and the reason comes back for the
    caller to report its way (scoring and training list it as skipped, ``afps predict`` prints
    it and goes on, the line records the part NG and untyped with the reason)."""

    BATCH = 32

    def __init__(self, clf: Classifier, on_result: Callable[[Any, float, Any], None]):
        self.clf, self.on_result = clf, on_result
        self.looks = needs_looks(clf)
        self.pending: list[tuple[Any, float, Example]] = []

    def add_sample(self, key: Any, padim: PadimModel, item, score: ImageScore) -> Optional[str]:
        """Queue a scored image (``item``: a Sample, a path or decoded pixels), with its close
        look when the classifier reads one; the reason when that failed (nothing queued)."""
        try:
            example = example_of(padim, item, score, looks=self.looks)
        except AfpsError as exc:
            return str(exc)
        self.add(key, score.score, example)
        return None

    def add(self, key: Any, score: float, example: Example) -> None:
        self.pending.append((key, score, example))
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        found = self.clf.predict([ex for _, _, ex in self.pending]) if self.pending else []
        for (key, score, _), p in zip(self.pending, found):
            self.on_result(key, score, p)
        self.pending.clear()


def _storing(clf: Classifier, clf_id: str, preds: list[StoredPrediction]) -> BatchClassifying:
    """Batches whose answers become the project's stored predictions."""

    def keep(rel: str, score: float, p) -> None:
        preds.append(StoredPrediction(rel, p.label, p.confidence, score, clf_id))

    return BatchClassifying(clf, keep)


def normal_prediction(padim: PadimModel, rel: str, score: float, padim_id: str) -> StoredPrediction:
    """The stored prediction of an image the anomaly model calls normal: its confidence is how
    far below the threshold the score is, on the model's 0..1 scale."""
    return StoredPrediction(rel, NORMAL, 1.0 - float(padim.normalise(score)), score, padim_id)


def score_project(
    project: Project,
    *,
    progress: Progress = no_progress,
    cancel=None,
) -> ScoreResult:
    """Score every image, cache the maps, and classify the anomalous ones.

    Predictions replace the previous ones only when the whole run finished.
    """
    _writable(project)
    padim = load_padim(project)
    clf = load_classifier(project)
    samples = list(project.dataset.samples)
    t0 = time.perf_counter()
    padim_id = default_model_id(project.padim_path)
    clf_id = default_model_id(project.classifier_path) if clf else ""
    entries: dict = {}  # the whole dataset is scored: no earlier entry stays
    preds: list[StoredPrediction] = []
    skipped: list[tuple[str, str]] = []
    n_anom = 0
    classifying = _storing(clf, clf_id, preds) if clf is not None else None

    for sample, score in padim.score_items(
        samples, keep_embeddings=clf is not None, progress=progress, cancel=cancel, skipped=skipped
    ):
        b = score.box
        project.cache.put_map(sample.rel, score.patch_map)
        entries[sample.rel] = {"score": score.score, "box": [b.y0, b.y1, b.x0, b.x1]}
        if not padim.is_anomalous(score.score):
            preds.append(normal_prediction(padim, sample.rel, score.score, padim_id))
            continue
        n_anom += 1
        if classifying is not None:
            reason = classifying.add_sample(sample.rel, padim, sample, score)
            if reason is not None:
                skipped.append((sample.rel, reason))
    check_cancel(cancel)
    if classifying is not None:
        classifying.flush()
    n_cls = sum(1 for p in preds if p.model_id == clf_id) if clf is not None else 0
    project.cache.write_index(padim_id, entries)
    project.store.set_predictions(preds)
    return ScoreResult(len(entries), n_anom, n_cls, time.perf_counter() - t0, skipped)


def reclassify_project(
    project: Project,
    padim: PadimModel,
    clf: Classifier,
    known: dict[str, Example],
    progress: Progress = no_progress,
    cancel=None,
    skipped: Optional[list[tuple[str, str]]] = None,
) -> bool:
    """After training: classify again the images the cached scores call anomalous, reusing the
    examples training just built and embedding only the others; normal images keep their
    predictions. An image whose close look fails keeps its previous prediction and goes into
    ``skipped`` with the reason (``BatchClassifying.add_sample``). False (nothing done) when the
    cache is not from the current anomaly model: then every image must be scored again
    (``score_project``)."""
    index = project.cache.index
    if not index.get("images") or index.get("model") != default_model_id(project.padim_path):
        return False
    samples = project.dataset.by_rel()
    entries = index["images"]
    anomalous = [r for r, e in entries.items() if r in samples and padim.is_anomalous(e["score"])]
    preds: list[StoredPrediction] = []
    classifying = _storing(clf, default_model_id(project.classifier_path), preds)
    ready = {
        r: known[r]
        for r in anomalous
        if r in known and (known[r].look is not None or not classifying.looks)
    }
    for rel, example in ready.items():
        classifying.add(rel, entries[rel]["score"], example)
    todo = [samples[r] for r in anomalous if r not in ready]
    skipped = skipped if skipped is not None else []
    for sample, score in padim.score_items(
        todo, keep_embeddings=True, progress=progress, cancel=cancel, skipped=skipped
    ):
        reason = classifying.add_sample(sample.rel, padim, sample, score)
        if reason is not None:
            skipped.append((sample.rel, reason))  # it keeps its previous prediction
    classifying.flush()
    check_cancel(cancel)
    project.store.set_predictions(preds)
    return True


@dataclass
class TrainResult:
    metrics: dict
    previous_metrics: Optional[dict]
    history: TrainHistory
    flops: int
    n_train: int
    n_test: int
    changed: list[tuple[str, Optional[str], str]]  # (image, old prediction, new prediction)
    seconds: float
    choice: Optional[dict] = None  # model_choice.Choice.as_dict() when the labels chose
    config: Optional[dict] = None  # the trained classifier's settings
    # anomalous images not classified again (image, reason): they keep their previous prediction
    skipped: list[tuple[str, str]] = field(default_factory=list)


def train_classifier(
    train_ex: Sequence[Example],
    classes: Sequence[str],
    config: ClassifierConfig,
    *,
    val: Sequence[Example] = (),
    device: str = "auto",
    progress: Progress = no_progress,
    cancel=None,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
) -> tuple[Classifier, TrainHistory, Optional[dict]]:
    """Train the configured classifier; with strategy ``auto``, cross-validate the candidates on
    ``train_ex`` first and train the best on all of them. ``val`` is only reported per epoch."""
    from .model_choice import resolve_auto

    choice = None
    if config.strategy == AUTO:
        config, found = resolve_auto(
            train_ex,
            classes,
            config,
            device=device,
            progress=_stage(progress, 0, 0.6),
            cancel=cancel,
        )
        choice = found.as_dict()
        progress = _stage(progress, 0.6, 1.0)
    clf = make_classifier(classes, train_ex[0].embeddings.shape[-1], config, device=device)
    history = clf.fit(train_ex, val, progress=progress, cancel=cancel, on_epoch=on_epoch)
    return clf, history, choice


@dataclass
class Trained:
    clf: Classifier
    history: TrainHistory
    choice: Optional[dict]  # model_choice.Choice.as_dict() when the labels chose
    metrics: dict  # on the held-out images; {} when there are none
    train_ex: list[Example]
    test_ex: list[Example]


def train_and_test(
    padim: PadimModel,
    train: Sequence[Sample],
    test: Sequence[Sample],
    classes: Sequence[str],
    config: ClassifierConfig,
    *,
    device: str = "auto",
    progress: Progress = no_progress,
    cancel=None,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
) -> Trained:
    """Embed the training and held-out images, train on the first (the held-out ones reported
    per epoch) and test on the second. The app's training and ``afps train DATA`` both run
    this, on a ``split_anomalies`` split, so their metrics compare."""
    from .model_choice import examples_need_looks

    looks = examples_need_looks([config.strategy])
    parts = (
        (train, 0, 0.22, "Embedding training images"),
        (test, 0.22, 0.33, "Embedding test images"),
    )
    train_ex, test_ex = (
        build_examples(
            padim,
            part,
            classes,
            progress=_stage(progress, lo, hi, phase),
            cancel=cancel,
            looks=looks,
        )[0]
        for part, lo, hi, phase in parts
    )
    if not train_ex:
        raise AfpsError("None of the labelled training images could be read: see the log.")
    clf, history, choice = train_classifier(
        train_ex,
        classes,
        config,
        val=test_ex,
        device=device,
        progress=_stage(progress, 0.33, 1.0),
        cancel=cancel,
        on_epoch=on_epoch,
    )
    preds = clf.predict(test_ex)
    labels = [e.label for e in test_ex]
    metrics = classification_report(labels, [p.index for p in preds], classes) if test_ex else {}
    return Trained(clf, history, choice, metrics, train_ex, test_ex)


def train_project(
    project: Project,
    config: Optional[ClassifierConfig] = None,
    *,
    progress: Progress = no_progress,
    cancel=None,
    on_epoch: Optional[Callable[[EpochStats], None]] = None,
) -> TrainResult:
    """Train the defect classifier from the current labels (human labels win), test it on the
    held-out labelled images, save it, and re-classify the anomalous images. With the strategy
    ``auto`` (new projects), cross-validation on the training labels chooses the classifier."""
    from dataclasses import asdict

    _writable(project)
    config = config or project.settings.classifier
    train, test = project.classifier_split()
    classes = sorted({s.label for s in train + test})
    if len(classes) < 2:
        raise AfpsError(
            "Training needs labelled images of at least two defect types; label more defects "
            f"(found: {', '.join(classes) or 'none'})."
        )
    padim = load_padim(project)
    t0 = time.perf_counter()
    t = train_and_test(
        padim,
        train,
        test,
        classes,
        config,
        device=project.settings.device,
        progress=_stage(progress, 0, 0.9),
        cancel=cancel,
        on_epoch=on_epoch,
    )
    previous = _previous_metrics(project)
    check_cancel(cancel)
    history = [asdict(e) for e in t.history.epochs]  # the curves, after a restart too
    extra = {"metrics": t.metrics, "n_train": len(t.train_ex), "choice": t.choice}
    t.clf.save(project.classifier_path, extra={**extra, "history": history})
    changed, skipped = _reclassified(project, padim, t, progress, cancel)
    seconds = time.perf_counter() - t0
    return TrainResult(
        t.metrics,
        previous,
        t.history,
        t.clf.flops(),
        len(t.train_ex),
        len(t.test_ex),
        changed,
        seconds,
        t.choice,
        asdict(t.clf.config),
        skipped,
    )


def _reclassified(
    project: Project, padim: PadimModel, t: Trained, progress: Progress, cancel
) -> tuple[list[tuple[str, Optional[str], str]], list[tuple[str, str]]]:
    """Classify the anomalous images again with the new classifier: (image, old, new) of those
    that changed, and (image, reason) of those that could not be classified again."""
    old = {k: v.label for k, v in project.store.predictions().items()}
    known = {ex.name: ex for ex in t.train_ex + t.test_ex}
    last = _stage(progress, 0.9, 1.0, "Classifying anomalous images")
    skipped: list[tuple[str, str]] = []
    if not reclassify_project(project, padim, t.clf, known, last, cancel, skipped):
        res = score_project(project, progress=_stage(progress, 0.9, 1.0, "Scoring"), cancel=cancel)
        skipped = res.skipped
    new = {k: v.label for k, v in project.store.predictions().items()}
    return [(k, old.get(k), v) for k, v in sorted(new.items()) if old.get(k) != v], skipped


def _previous_metrics(project: Project) -> Optional[dict]:
    try:
        old = load_classifier(project)
    except AfpsError:
        return None
    return getattr(old, "extra", {}).get("metrics") if old else None


def _writable(project: Project) -> None:
    if project.readonly:
        raise AfpsError(project.readonly_reason or "The project is open read-only.")
