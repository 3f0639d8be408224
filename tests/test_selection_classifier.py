"""Patch selection properties and the ViT classifier on small real tensors."""

import numpy as np
import pytest

from afps_gui.core.classifier import ClassifierConfig, DefectClassifier, Example
from afps_gui.core.errors import AfpsError, ModelFileError
from afps_gui.core.experiment import (
    ExperimentPlan,
    markdown_tables,
    plot_accuracy_vs_n,
    run_experiment,
    summarise,
)
from afps_gui.core.selection import select_patches, spread


def peaked_map(shape=(32, 32), at=(10, 20)):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((rr - at[0]) ** 2 + (cc - at[1]) ** 2) / 20.0)


@pytest.mark.parametrize("strategy", ["afps", "random", "top"])
def test_selection_distinct_in_grid_and_deterministic(strategy):
    m = peaked_map()
    a = select_patches(m, 50, strategy, 0.15, rng=3)
    b = select_patches(m, 50, strategy, 0.15, rng=3)
    assert a.shape == (50, 2)
    assert len({tuple(p) for p in a}) == 50
    assert (a >= 0).all() and (a[:, 0] < 32).all() and (a[:, 1] < 32).all()
    np.testing.assert_array_equal(a, b)


def test_afps_centres_on_argmax_and_sd_widens_spread():
    m = peaked_map(at=(5, 25))
    narrow = select_patches(m, 30, "afps", 0.10, rng=0)
    wide = select_patches(m, 30, "afps", 0.30, rng=0)
    assert tuple(narrow[0]) == (5, 25)
    assert spread(wide) > spread(narrow)
    assert np.abs(narrow.mean(0) - [5, 25]).max() < 6


def test_top_takes_highest_scores_and_random_ignores_map():
    m = peaked_map()
    top = select_patches(m, 5, "top")
    assert tuple(top[0]) == (10, 20)
    assert set(m[tuple(top.T)]) == set(np.sort(m, axis=None)[-5:])
    rnd = select_patches(m, 200, "random", rng=1)
    assert spread(rnd) > spread(select_patches(m, 200, "afps", 0.15, rng=1))


def test_afps_can_fill_the_whole_grid_even_when_narrow():
    m = peaked_map((8, 8), (0, 0))
    pos = select_patches(m, 64, "afps", 0.05, rng=0)
    assert len({tuple(p) for p in pos}) == 64


def test_selection_errors():
    m = peaked_map((4, 4))
    with pytest.raises(AfpsError, match="between 1 and 16"):
        select_patches(m, 17, "afps")
    with pytest.raises(AfpsError, match="Unknown strategy"):
        select_patches(m, 3, "best")


def test_selection_respects_valid_region():
    m = peaked_map((16, 16), (2, 2))
    valid = np.zeros((16, 16), bool)
    valid[4:12, :] = True
    for strategy in ("afps", "random", "top"):
        pos = select_patches(m, 40, strategy, 0.2, rng=0, valid=valid)
        assert valid[tuple(pos.T)].all()


def toy_examples(n_per_class=12, k=3, seed=0, dim=8):
    """Class k has a bright blob of embedding direction k at a random place of a 12x12 grid."""
    rng = np.random.default_rng(seed)
    out = []
    for label in range(k):
        for _ in range(n_per_class):
            emb = rng.normal(0, 1, (12, 12, dim)).astype(np.float16)
            pmap = rng.random((12, 12)).astype(np.float32)
            r, c = rng.integers(2, 10, 2)
            emb[r - 2 : r + 2, c - 2 : c + 2, label] += 4
            pmap[r - 2 : r + 2, c - 2 : c + 2] += 3
            out.append(Example(emb, pmap, label))
    return out


def small_config(**kw):
    base = dict(n=20, epochs=25, batch_size=8, dim=32, depth=2, heads=4, mlp_dim=64, seed=0)
    base.update(kw)
    return ClassifierConfig(**base)


def test_classifier_learns_three_types_and_reports_attention():
    train, test = toy_examples(seed=0), toy_examples(n_per_class=6, seed=1)
    clf = DefectClassifier(["Spot", "Scratch", "Dent"], 8, small_config(), device="cpu")
    history = clf.fit(train, test)
    assert history.epochs[-1].loss < history.epochs[0].loss
    preds = clf.predict(test)
    acc = np.mean([p.index == e.label for p, e in zip(preds, test)])
    assert acc >= 0.8
    p = preds[0]
    assert p.label in ("Spot", "Scratch", "Dent") and 0 < p.confidence <= 1
    assert p.attention.shape == (20,) and p.attention.sum() == pytest.approx(1, abs=1e-4)
    assert clf.flops() > 0


def test_classifier_save_load_gives_same_predictions(tmp_path):
    train = toy_examples(k=2)
    clf = DefectClassifier(["A", "B"], 8, small_config(epochs=3), device="cpu")
    clf.fit(train)
    clf.save(tmp_path / "clf.pt")
    loaded = DefectClassifier.load(tmp_path / "clf.pt", device="cpu")
    a = [p.probabilities for p in clf.predict(train[:5])]
    b = [p.probabilities for p in loaded.predict(train[:5])]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelFileError):
        DefectClassifier.load(tmp_path / "bad.pt")


def test_classifier_rejects_bad_setups():
    with pytest.raises(AfpsError):
        DefectClassifier(["only"], 8)
    clf = DefectClassifier(["A", "B"], 8, small_config(n=500), device="cpu")
    with pytest.raises(AfpsError, match="more than the grid"):
        clf.fit(toy_examples(k=2))


def test_experiment_rows_tables_and_plot(tmp_path):
    examples = toy_examples(n_per_class=8, k=2)
    plan = ExperimentPlan(
        ns=(10, 20),
        strategies=("afps", "random", "top"),
        sds=(0.1, 0.3),
        sd_sweep_n=10,
        seeds=2,
        base=small_config(epochs=2),
    )
    rows = run_experiment(examples, ["A", "B"], plan, device="cpu")
    # 2 N x 3 strategies + 2 sds (0.1 at N=10 is new; 0.3 too) = 8 settings x 2 seeds
    assert len(rows) == 16
    for r in rows:
        assert {
            "strategy",
            "n",
            "sd",
            "seed",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "flops",
        } <= set(r)
    assert len(summarise(rows)) == 8
    md = markdown_tables(rows, plan)
    assert "| 10 | afps |" in md and "Table II" in md
    plot_accuracy_vs_n(rows, plan, tmp_path / "acc.png")
    assert (tmp_path / "acc.png").read_bytes()[:4] == b"\x89PNG"
