"""Typing beyond the paper: the close look at a defect, the linear heads, the choice by CV."""

import numpy as np
import pytest
from PIL import Image
from test_selection_classifier import small_config, toy_examples

from afps_gui.core.classifier import ClassifierConfig, DefectClassifier
from afps_gui.core.classifiers import load_classifier_file, make_classifier
from afps_gui.core.closer_look import SHAPE_FEATURES, find_regions, look_at, shape_of
from afps_gui.core.errors import AfpsError, ModelFileError
from afps_gui.core.experiment import ExperimentPlan, markdown_tables, run_experiment
from afps_gui.core.model_choice import choose_classifier, default_candidates, fold_indices
from afps_gui.core.padim import PadimConfig, PadimModel
from afps_gui.core.pooled_classifier import PooledClassifier

SHAPE = {k: i for i, k in enumerate(SHAPE_FEATURES)}


# --- shapes and regions ------------------------------------------------------------------------


def test_shape_tells_a_line_from_a_disc_and_an_l():
    yy, xx = np.mgrid[:60, :60]
    disc = (yy - 30) ** 2 + (xx - 30) ** 2 <= 100
    line = np.zeros((60, 60), bool)
    line[29:31, 5:55] = True  # horizontal scratch
    ell = np.zeros((60, 60), bool)
    ell[10:50, 10:14] = True
    ell[46:50, 10:50] = True
    d, li, l_ = (shape_of(m, 1.0, 3600) for m in (disc, line, ell))
    assert d["elongation"] < 0.2 < 1.0 < li["elongation"]
    assert li["cos2theta"] == pytest.approx(1, abs=0.01)  # long axis along x
    assert d["solidity"] > 0.9 and l_["solidity"] < 0.5
    assert d["log_area"] == pytest.approx(np.log(disc.sum()))
    assert shape_of(disc, 2.0, 3600)["log_area"] == pytest.approx(np.log(4 * disc.sum()))


def test_regions_strongest_first_and_the_peak_always_found():
    amap = np.zeros((50, 50), np.float32)
    amap[5:10, 5:10] = 5
    amap[30:40, 30:40] = 9
    labels, regions = find_regions(amap, threshold=3)
    assert len(regions) == 2 and regions[0][1] == 9
    assert labels[35, 35] == regions[0][0] and labels[7, 7] == regions[1][0]
    # A threshold above the peak (a missed defect) still gives its strongest region.
    _, regions = find_regions(amap, threshold=100)
    assert regions and regions[0][1] == 9


@pytest.fixture(scope="module")
def padim():
    """A real small model fitted on plain grey noise images."""
    rng = np.random.default_rng(0)
    normals = [
        np.clip(128 + rng.normal(0, 6, (200, 300, 3)), 0, 255).astype(np.uint8) for _ in range(6)
    ]
    model = PadimModel(
        PadimConfig(input_size=(128, 192), resize="fit", batch_size=8, sigma=2), device="cpu"
    )
    model.fit(normals)
    return model


def test_close_look_cuts_the_defect_from_the_original_at_full_resolution(padim, tmp_path):
    # A large photo with a small dark scratch: at the 128 x 192 input it is under a pixel thick.
    rng = np.random.default_rng(1)
    image = np.clip(128 + rng.normal(0, 6, (600, 900, 3)), 0, 255).astype(np.uint8)
    image[400:403, 600:660] = 20
    path = tmp_path / "scratch.png"
    Image.fromarray(image).save(path)
    score = padim.score_image(image, keep_embeddings=True)
    look = look_at(padim, path, score)
    y0, y1, x0, x1 = look.window
    assert y0 <= 400 and y1 >= 403 and x0 <= 600 and x1 >= 660  # the scratch is inside
    assert (y1 - y0) < 600 and (x1 - x0) < 900  # a window, not the whole photo
    assert look.embeddings.shape[:2] == look.patch_map.shape == (56, 56)  # stride 4 of 224
    # Near full resolution: under 1.5 original pixels per window pixel, where detection saw 4.7.
    assert np.exp(look.shape[SHAPE["log_zoom"]]) < 1.5
    assert look.shape[SHAPE["elongation"]] > 0.5  # long and thin
    cells = look.top_cells(10)
    assert cells.shape == (10, 2)
    assert np.isfinite(look.shape).all() and look.shape.shape == (len(SHAPE_FEATURES),)


# --- the linear head ---------------------------------------------------------------------------


def test_pooled_head_learns_saves_and_loads_without_pickle(tmp_path):
    train, test = toy_examples(seed=0), toy_examples(n_per_class=6, seed=1)
    clf = make_classifier(["Spot", "Scratch", "Dent"], 8, ClassifierConfig(strategy="pooled", n=16))
    assert isinstance(clf, PooledClassifier)
    history = clf.fit(train, test)
    assert history.epochs[-1].val_accuracy >= 0.8
    preds = clf.predict(test)
    assert np.mean([p.index == e.label for p, e in zip(preds, test)]) >= 0.8
    p = preds[0]
    assert p.positions.shape == (16, 2) and p.attention.sum() == pytest.approx(1, abs=1e-4)
    assert 0 < clf.flops() < 100_000  # a linear layer, not a transformer
    clf.save(tmp_path / "clf.pt", extra={"metrics": {"accuracy": 1.0}})
    loaded = load_classifier_file(tmp_path / "clf.pt")
    assert isinstance(loaded, PooledClassifier) and loaded.extra["metrics"]["accuracy"] == 1.0
    np.testing.assert_allclose(
        [q.probabilities for q in loaded.predict(test)], [q.probabilities for q in preds], rtol=1e-5
    )
    with pytest.raises(ModelFileError):  # a ViT file's reader refuses it clearly
        DefectClassifier.load(tmp_path / "clf.pt")


def test_vit_files_still_load_through_the_one_door(tmp_path):
    clf = DefectClassifier(["A", "B"], 8, small_config(epochs=1), device="cpu")
    clf.fit(toy_examples(k=2))
    clf.save(tmp_path / "vit.pt")
    assert isinstance(load_classifier_file(tmp_path / "vit.pt", device="cpu"), DefectClassifier)


def test_region_head_refuses_examples_without_a_close_look():
    clf = PooledClassifier(["A", "B"], 8, ClassifierConfig(strategy="region", n=10))
    with pytest.raises(AfpsError, match="close look"):
        clf.fit(toy_examples(k=2))


# --- the choice --------------------------------------------------------------------------------


def test_folds_are_stratified_and_capped_by_the_smallest_type():
    labels = [0] * 10 + [1] * 2
    folds = fold_indices(labels, 3, seed=0)
    assert len(folds) == 2
    for train, test in folds:
        assert sorted(train + test) == list(range(12)) and 1 in [labels[i] for i in test]
    assert fold_indices([0] * 5 + [1], 3, seed=0) == []


def test_choice_compares_every_candidate_on_the_training_labels_only():
    examples = toy_examples(n_per_class=9, k=2)
    base = small_config(epochs=2, strategy="auto")
    candidates = default_candidates(base, looks=False)
    names = [c.name for c in candidates]
    assert names[0].startswith("pooled") and names[-1].startswith("ViT")
    assert not any(n.startswith("region") for n in names)  # no looks, no region candidate
    choice = choose_classifier(examples, ["A", "B"], candidates, seed=0, device="cpu")
    assert [r["name"] for r in choice.rows] == names and choice.folds == 3
    assert sum(r["chosen"] for r in choice.rows) == 1
    best = max(choice.rows, key=lambda r: r["accuracy"])
    assert choice.best.name == next(
        r["name"] for r in choice.rows if r["accuracy"] == best["accuracy"]
    )
    assert choice.as_dict()["chosen"] == choice.best.name
    # The ViT candidate trains a third of its epochs in the folds, at least 10 (and at most all).
    assert candidates[-1].config.epochs == 2
    assert default_candidates(small_config(epochs=40), looks=False)[-1].config.epochs == 13


def test_too_few_labels_to_cross_validate_take_the_first_candidate():
    examples = toy_examples(n_per_class=6, k=2)[:7]  # 6 of A, 1 of B
    candidates = default_candidates(small_config(), looks=False)
    choice = choose_classifier(examples, ["A", "B"], candidates, device="cpu")
    assert choice.rows == [] and choice.best is candidates[0]


def test_experiment_adds_linear_heads_and_the_chosen_one(tmp_path):
    examples = toy_examples(n_per_class=8, k=2)
    plan = ExperimentPlan(
        ns=(10,),
        strategies=("top", "pooled", "auto"),
        seeds=2,
        base=small_config(epochs=2),
    )
    rows = run_experiment(examples, ["A", "B"], plan, device="cpu")
    assert [r["strategy"] for r in rows] == ["top", "top", "pooled", "pooled", "auto", "auto"]
    assert {r["head"] for r in rows if r["strategy"] == "pooled"} == {"linear"}
    auto = [r for r in rows if r["strategy"] == "auto"]
    assert all(r["chosen"] and len(r["cv"]) >= 3 for r in auto)
    md = markdown_tables(rows, plan)
    assert "| 10 | pooled |" in md and "| chosen | auto |" in md and "Table II" not in md
    with pytest.raises(AfpsError, match="close look"):
        run_experiment(
            examples, ["A", "B"], ExperimentPlan(ns=(10,), strategies=("region",), seeds=1)
        )
