"""The review queue's order, as a pure function of plain dicts (no project, no Qt)."""

import math

from afps_gui.core.review_queue import (
    DISAGREE,
    LOW_CONFIDENCE,
    OTHER,
    REVIEWED,
    UNLABELLED,
    build_queue,
    classify,
    prediction_words,
)


def _queue(**overrides):
    data = dict(
        rels=["a", "b", "c", "d", "e", "f", "g", "h"],
        dataset_labels={"a": "Spot", "b": "normal", "c": "Spot", "d": None, "e": "Scratch"},
        human_labels={"f": "Spot", "g": "Scratch", "h": "normal"},
        predictions={
            "a": ("Scratch", 0.9),  # disagrees with dataset label, confident
            "b": ("Spot", 0.7),  # disagrees: normal vs a type
            "c": ("Spot", 0.3),  # agrees, low confidence
            "e": ("scratch", 0.95),  # agrees (case ignored), confident -> unlabelled tier
            "f": ("Spot", 0.99),  # human label agrees, confident, not reviewed -> other
            "g": ("Spot", 0.8),  # human label disagrees, but reviewed -> last
        },
        scores={"a": 1.0, "b": 2.0, "c": 3.0, "d": 9.0, "e": 5.0, "f": 4.0, "g": 8.0, "h": 7.0},
        reviewed={"g", "h"},
    )
    data.update(overrides)
    return build_queue(**data)


def test_tiers_in_documented_order():
    q = _queue()
    assert [(i.rel, i.reason) for i in q] == [
        ("a", DISAGREE),  # confidence 0.9 before b's 0.7
        ("b", DISAGREE),
        ("c", LOW_CONFIDENCE),
        ("d", UNLABELLED),  # score 9 before e's 5
        ("e", UNLABELLED),
        ("f", OTHER),
        ("g", REVIEWED),  # score 8 before h's 7
        ("h", REVIEWED),
    ]
    assert [i.priority for i in q] == [0, 0, 1, 2, 2, 3, 4, 4]


def test_human_label_wins_over_dataset_label():
    q = _queue(human_labels={"a": "Scratch"}, reviewed=set())
    a = next(i for i in q if i.rel == "a")
    assert a.label == "Scratch" and a.human == "Scratch"
    assert a.reason == OTHER  # now agrees with the prediction


def test_reviewed_can_be_left_out_and_only_given_rels_are_queued():
    q = _queue(include_reviewed=False)
    assert [i.rel for i in q] == ["a", "b", "c", "d", "e", "f"]
    q = _queue(rels=["d", "zzz"], human_labels={"gone": "Spot"})
    assert [i.rel for i in q] == ["d", "zzz"]


def test_low_confidence_threshold_and_ordering():
    preds = {"x": ("Spot", 0.5), "y": ("Spot", 0.2), "z": ("Spot", 0.65)}
    common = dict(
        rels=["x", "y", "z"],
        dataset_labels=dict.fromkeys("xyz", "Spot"),
        human_labels={},
        predictions=preds,
        scores={},
        reviewed=set(),
    )
    q = build_queue(**common)
    assert [(i.rel, i.reason) for i in q] == [
        ("y", LOW_CONFIDENCE),
        ("x", LOW_CONFIDENCE),
        ("z", UNLABELLED),
    ]
    q = build_queue(**common, low_confidence=0.7)
    assert [i.rel for i in q] == ["y", "x", "z"] and q[2].reason == LOW_CONFIDENCE


def test_missing_values_do_not_break_the_order():
    q = build_queue(
        ["n", "m", "k"],
        {"n": None, "m": None, "k": "Spot"},
        {},
        {"k": ("Scratch", math.nan), "n": ("Spot", None)},
        {"m": 1.0, "n": float("nan")},
        set(),
    )
    # k disagrees even with an unknown confidence; m (scored) comes before n (no usable score)
    assert [(i.rel, i.reason) for i in q] == [("k", DISAGREE), ("m", UNLABELLED), ("n", UNLABELLED)]
    assert q[0].confidence is None and q[2].score is None


def test_classify_one_image_and_describe():
    item = classify(
        "r", dataset_label="normal", human=None, prediction=("Spot", 0.8), score=2.5, reviewed=False
    )
    assert item.reason == DISAGREE
    assert item.describe() == "Model says Spot (80%), label is normal"
    item = classify(
        "r",
        dataset_label="normal",
        human="Spot",
        prediction=("Spot", 0.8),
        score=2.5,
        reviewed=True,
    )
    assert item.reason == REVIEWED and item.describe() == "Reviewed"


def test_a_normal_prediction_has_no_percentage_anywhere():
    """prediction_words is the one rule: a type with its confidence, normal without one."""
    assert prediction_words("Spot", 0.8) == "Spot (80%)"
    assert prediction_words("Spot", 0.8, long=True) == "Spot (80% sure)"
    assert prediction_words("Spot", None) == "Spot"
    assert prediction_words("normal", 0.97) == "normal"
    assert "%" not in prediction_words("normal", 0.97, long=True)
    item = classify(
        "r",
        dataset_label="Spot",
        human=None,
        prediction=("normal", 0.97),
        score=0.1,
        reviewed=False,
    )
    assert item.reason == DISAGREE and item.describe() == "Model says normal, label is Spot"
    unsure = classify(
        "r", dataset_label=None, human=None, prediction=("normal", 0.4), score=0.1, reviewed=False
    )
    assert unsure.reason == LOW_CONFIDENCE and "%" not in unsure.describe()
