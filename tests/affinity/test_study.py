"""measure_affinity end to end: planted groups are found; results, intervals and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtlkit.affinity import measure_affinity
from mtlkit.data.synthetic import make_grouped_synthetic
from mtlkit.errors import ConfigError, DataError

LABELS = [f"label{k}" for k in range(6)]
PLANTED = [LABELS[:3], LABELS[3:]]


def test_planted_groups_are_recovered_for_most_seeds():
    """Two groups of three tasks (weight cosine 0.9 within, 0 across): the number of
    groups is not given, so both it and the members must come out of the affinity."""
    found = []
    for seed in range(5):
        frame = make_grouped_synthetic(4000, groups=(3, 3), n_features=20, seed=seed)
        found.append(measure_affinity(frame, LABELS, seeds=[seed], epochs=3).groups)
    assert sum(groups == PLANTED for groups in found) >= 4, found


def test_eight_planted_tasks_are_not_split_beyond_their_two_groups():
    """Two groups of four: without --n-groups the halves used to be cut further (1 of 5
    seeds recovered); the number of groups now splits only beyond the probed steps' noise."""
    labels = [f"label{k}" for k in range(8)]
    found = []
    for seed in range(5):
        frame = make_grouped_synthetic(4000, groups=(4, 4), n_features=20, seed=seed)
        found.append(measure_affinity(frame, labels, seeds=[seed], epochs=3).groups)
    assert sum(groups == [labels[:4], labels[4:]] for groups in found) >= 3, found


def test_result_holds_the_matrices_groups_and_intervals(tmp_path):
    frame = make_grouped_synthetic(1500, groups=(2, 1), n_features=12, seed=0)
    labels = LABELS[:3]
    result = measure_affinity(frame, labels, seeds=[0, 1], epochs=1, n_groups=2)
    assert result.matrix.shape == result.cosine.shape == (3, 3)
    assert len(result.groups) == 2 and sorted(sum(result.groups, [])) == labels
    np.testing.assert_allclose(np.diag(result.cosine), 1.0, rtol=1e-5)
    off = ~np.eye(3, dtype=bool)
    assert (result.matrix_low[off] <= result.matrix[off]).all()
    assert (result.matrix[off] <= result.matrix_high[off]).all()
    np.testing.assert_allclose(result.matrix, np.mean(result.per_seed, axis=0))
    saved = json.loads(result.save(tmp_path).read_text())
    assert {"tasks", "matrix", "cosine", "groups", "seeds"} <= set(saved)
    assert saved["tasks"] == labels and saved["seeds"] == [0, 1]
    assert saved["groups"] == result.groups and len(saved["matrix_interval"]["low"]) == 3


def test_seed_changes_the_measurement_and_repeats_it():
    frame = make_grouped_synthetic(1000, groups=(1, 1), n_features=8, seed=0)
    runs = [measure_affinity(frame, LABELS[:2], seeds=[s], epochs=1).matrix for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


def test_bad_requests_are_explained():
    frame = make_grouped_synthetic(300, groups=(1, 1), n_features=6, seed=0)
    with pytest.raises(ConfigError, match="at least two labels"):
        measure_affinity(frame, ["label0"])
    with pytest.raises(ConfigError, match="between 1 and the number of tasks"):
        measure_affinity(frame, ["label0", "label1"], n_groups=3)
    with pytest.raises(DataError, match="label7"):
        measure_affinity(frame, ["label0", "label7"])
    with pytest.raises(ConfigError, match="shares no parameters"):
        measure_affinity(frame, ["label0", "label1"], model="single_task", epochs=1)
    with pytest.raises(ConfigError, match="distinct seeds"):
        measure_affinity(frame, ["label0", "label1"], seeds=[1, 1])
