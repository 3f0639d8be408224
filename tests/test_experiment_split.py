"""One rule for how many of a class a stratified split holds out (datasets.stratum_test_size),
for the project's split and the experiment's alike (issue 16)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from afps_gui.core.datasets import Sample, split_anomalies, stratum_test_size
from afps_gui.core.experiment import stratified_split


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.4, 0.5, 0.6, 0.9])
def test_both_splits_hold_out_the_same_number_of_each_class(fraction):
    sizes = {"A": 1, "B": 2, "C": 3, "D": 7}
    labels = [k for k, n in sizes.items() for _ in range(n)]
    _, test_idx = stratified_split(labels, seed=3, test_fraction=fraction)
    samples = [Sample(Path(f"{k}{i}.png"), f"{k}/{i}.png", k) for i, k in enumerate(labels)]
    _, test = split_anomalies(samples, 3, test_fraction=fraction)
    expected = {k: stratum_test_size(n, fraction) for k, n in sizes.items()}
    assert Counter(labels[i] for i in test_idx) == Counter(s.label for s in test)
    assert {k: Counter(labels[i] for i in test_idx)[k] for k in sizes} == expected


def test_a_class_of_one_image_trains_whatever_the_fraction():
    assert stratum_test_size(1, 0.9) == 0 and stratum_test_size(0, 0.5) == 0
    train, test = stratified_split([0, 1, 1, 1], seed=0, test_fraction=0.9)
    assert 0 in train and 0 not in test
    assert stratum_test_size(2, 0.9) == 1 and stratum_test_size(10, 0.4) == 4
