"""Project jobs (fit, score, train) on a tiny generated dataset, as the GUI and CLI run them."""

import threading

import numpy as np
import pytest

from afps_gui.core import pipeline
from afps_gui.core.classifier import ClassifierConfig
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.errors import AfpsError, Cancelled, ProjectError
from afps_gui.core.padim import PadimConfig
from afps_gui.core.project import Project, ProjectSettings
from afps_gui.core.taxonomy import NORMAL


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data"), n_normal=14, n_per_type=6, size=(64, 64)
    )


@pytest.fixture
def project(data, tmp_path):
    settings = ProjectSettings(
        dataset_root=str(data),
        padim=PadimConfig(input_size=(64, 64)),
        classifier=ClassifierConfig(n=10, epochs=3),
        device="cpu",
    )
    p = Project.create(tmp_path / "proj", settings)
    yield p
    p.close()


def test_project_adopts_dataset_types_and_reopens(project):
    assert project.store.type_names() == ["Spot", "Scratch"] or set(project.store.type_names()) == {
        "Spot",
        "Scratch",
    }
    folder = project.folder
    project.close()
    again = Project.open(folder)
    assert again.settings.padim.input_size == (64, 64)
    assert len(again.dataset.samples) == 26
    again.close()


def test_fit_score_train_flow(project):
    fit = pipeline.fit_project(project)
    assert fit.n_images >= 2 and np.isfinite(fit.threshold)
    assert project.padim_path.is_file()
    scored = pipeline.score_project(project)
    assert scored.n_scored == 26
    scores = project.cache.scores()
    cached = project.cache.get("Spot/spot_000.png")
    assert cached.patch_map.shape == (16, 16) and cached.score == pytest.approx(
        scores["Spot/spot_000.png"]
    )
    # defective images score higher than normal ones on average
    normal = [v for k, v in scores.items() if k.startswith("good/")]
    defect = [v for k, v in scores.items() if not k.startswith("good/")]
    assert np.mean(defect) > np.mean(normal)
    epochs = []
    result = pipeline.train_project(project, on_epoch=epochs.append)
    assert len(epochs) == 3 and result.n_train > 0 and result.n_test > 0
    assert set(result.metrics) >= {"accuracy", "precision", "recall", "f1", "confusion"}
    preds = project.store.predictions()
    assert {p.label for p in preds.values()} <= {NORMAL, "Spot", "Scratch"}
    assert any(p.label in ("Spot", "Scratch") for p in preds.values())


def test_auto_lets_the_training_labels_choose_the_classifier(project):
    from dataclasses import replace

    from afps_gui.core.classifiers import load_classifier_file

    project.settings.classifier = replace(project.settings.classifier, strategy="auto")
    pipeline.fit_project(project)
    result = pipeline.train_project(project)
    names = [r["name"] for r in result.choice["rows"]]
    assert any(n.startswith("pooled") for n in names) and any(n.startswith("region") for n in names)
    assert any(n.startswith("ViT") for n in names)
    chosen = next(r for r in result.choice["rows"] if r["chosen"])
    assert result.config["strategy"] == chosen["strategy"] and result.config["n"] == chosen["n"]
    if chosen["head"] == "vit":
        assert result.config["epochs"] == 3  # the final fit gets every epoch
    clf = load_classifier_file(project.classifier_path, device="cpu")
    assert (
        clf.config.strategy == chosen["strategy"]
        and clf.extra["choice"]["chosen"] == chosen["name"]
    )
    preds = project.store.predictions()
    assert any(p.label in ("Spot", "Scratch") for p in preds.values())


def test_training_after_scoring_embeds_only_what_it_must(project, monkeypatch):
    from afps_gui.core.padim import PadimModel

    pipeline.fit_project(project)
    pipeline.score_project(project)
    scores = project.cache.scores()
    padim = pipeline.load_padim(project)
    anomalous = {r for r, v in scores.items() if padim.is_anomalous(v)}
    train, test = project.classifier_split()
    labelled = {s.rel for s in train + test}
    embedded = []
    real_embed = PadimModel.embed

    def counting(self, batch, stride=None):
        embedded.append(batch.shape[0])
        return real_embed(self, batch, stride)

    monkeypatch.setattr(PadimModel, "embed", counting)
    result = pipeline.train_project(project)
    # The labelled images, then the anomalous images that are not labelled: never all 26 again.
    assert sum(embedded) == len(labelled) + len(anomalous - labelled) < len(scores)
    preds = project.store.predictions()
    clf_id = pipeline.default_model_id(project.classifier_path)
    assert {r for r, p in preds.items() if p.model_id == clf_id} == anomalous
    assert result.n_train > 0


def test_human_labels_win_in_training_split(project):
    project.store.set_label("Spot/spot_000.png", "Scratch")
    sample = project.dataset.by_rel()["Spot/spot_000.png"]
    assert project.label_of(sample) == "Scratch"
    train, test = project.classifier_split()
    labels = {s.rel: s.label for s in train + test}
    assert labels["Spot/spot_000.png"] == "Scratch"
    # an image relabelled normal leaves the defect set and joins the normals
    project.store.set_label("Spot/spot_001.png", NORMAL)
    assert "Spot/spot_001.png" not in {s.rel for s in project.typed_defects()}


def test_cancelled_fit_keeps_the_previous_model(project):
    pipeline.fit_project(project)
    before = project.padim_path.read_bytes()
    cancel = threading.Event()

    def progress(done, total, message):
        if done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        pipeline.fit_project(project, progress=progress, cancel=cancel)
    assert project.padim_path.read_bytes() == before
    assert not [p for p in project.padim_path.parent.iterdir() if p.name.endswith(".part")]


def test_cancelled_first_fit_leaves_no_model(project):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        pipeline.fit_project(project, cancel=cancel)
    assert not project.padim_path.exists()


def test_jobs_explain_missing_prerequisites(project):
    with pytest.raises(AfpsError, match="fit PaDiM"):
        pipeline.score_project(project)


def test_second_instance_is_read_only(project):
    other = Project.open(project.folder)
    try:
        assert other.readonly and "another AFPS Inspector" in other.readonly_reason
        with pytest.raises(AfpsError, match="another AFPS Inspector"):
            pipeline.fit_project(other)
    finally:
        other.close()


def test_create_refuses_existing_project(project, data):
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(project.folder, ProjectSettings(dataset_root=str(data)))
