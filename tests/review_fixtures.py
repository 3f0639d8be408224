"""The project both review test modules (the Qt-free session and the panel) work on."""

import pytest

from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.labels import Prediction
from afps_gui.core.project import Project, ProjectSettings


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data"), n_normal=10, n_per_type=6, size=(64, 64)
    )


@pytest.fixture
def project(tmp_path, data_root):
    p = Project.create(tmp_path / "proj", ProjectSettings(dataset_root=str(data_root)))
    rels = [s.rel for s in p.dataset.samples]
    # Deterministic predictions: every third image disagrees with its folder label.
    preds = []
    for i, s in enumerate(p.dataset.samples):
        label = s.label if i % 3 else ("Spot" if s.label != "Spot" else "normal")
        preds.append(Prediction(s.rel, label, 0.5 + (i % 5) / 10, None, "test-model"))
    p.store.set_predictions(preds)
    p.cache.write_index(
        "test", {r: {"score": float(i), "box": [0, 1, 0, 1]} for i, r in enumerate(rels)}
    )
    yield p
    p.close()
