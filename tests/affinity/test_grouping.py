"""The partition search: exact against brute force, TAG's score against its reference."""

from __future__ import annotations

import numpy as np
import pytest

from mtlkit.affinity.grouping import (
    EXACT_MAX_TASKS,
    _approximate,
    best_partition,
    choose_groups,
    group_score,
    partition_score,
)
from mtlkit.errors import ConfigError


def set_partitions(items):
    """Every partition of ``items`` (brute force, for the check)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1 :]]


def planted(sizes, within=1.0, across=-0.2, noise=0.0, seed=0):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    matrix = np.where(labels[:, None] == labels[None, :], within, across)
    matrix = matrix + np.random.default_rng(seed).normal(0, noise, matrix.shape)
    return matrix, [list(np.flatnonzero(labels == g)) for g in range(len(sizes))]


@pytest.mark.parametrize("seed", range(3))
def test_exact_search_equals_brute_force(seed):
    matrix = np.random.default_rng(seed).normal(size=(7, 7))
    every = list(set_partitions(list(range(7))))
    assert len(every) == 877  # Bell(7)
    for k in range(1, 8):
        best = max(partition_score(matrix, p) for p in every if len(p) == k)
        found = best_partition(matrix, k)
        assert len(found) == k and sorted(t for g in found for t in g) == list(range(7))
        assert partition_score(matrix, found) == pytest.approx(best)


def test_group_score_is_the_reference_selection_score():
    """TAG's network selection (google-research/tag, TAG_network_selection.ipynb): a task's
    score in a group is the sum of its affinities with the others divided by (size - 1);
    here on the reference's published Taskonomy affinities."""
    tasks = ["ss_l", "depth_l", "norm_l", "key_l", "edge2d_l"]
    published = {
        "ss_l": [11.999321423965947, 0.11537429894122785, 0.04891036220837213,
                 0.00454724706606927, 0.008776140044461892],
        "depth_l": [0.41355850961858076, 7.3276368896443556, 0.2914147606289435,
                    0.01353652075974951, 0.07395688217092156],
        "norm_l": [0.13982367687578146, 0.22096194178241185, 1.070989344832557,
                   0.010493772045577332, 0.07645966827511533],
        "key_l": [0.021098526716001414, 0.013365983131803236, 0.010729013557423,
                  0.7338844180545812, 0.6897358940641894],
        "edge2d_l": [0.056692022190245474, 0.03668338077695892, 0.03600666458561003,
                     0.30372134710544996, 5.9661909882444615],
    }  # fmt: skip
    matrix = np.array([published[t] for t in tasks])
    for group in ([0, 1, 2], [3, 4], [0, 2, 3, 4]):
        per_task = {t: 0.0 for t in group}  # the notebook's accumulation, pair by pair
        for pos, cur in enumerate(group):
            for prev in group[:pos]:
                per_task[prev] += matrix[prev, cur]
                per_task[cur] += matrix[cur, prev]
        reference = sum(v / (len(group) - 1) for v in per_task.values())
        assert group_score(matrix, group) == pytest.approx(reference)
    assert group_score(matrix, [4]) == 0.0


def test_choose_groups_finds_planted_groups_and_their_number():
    matrix, truth = planted([3, 2, 3], noise=0.05)
    groups, scores = choose_groups(matrix)
    assert groups == truth
    assert max(scores, key=scores.get) == 3 and set(scores) == set(range(1, 9))
    groups, scores = choose_groups(matrix, 2)
    assert len(groups) == 2 and list(scores) == [2]


def _noisy(sizes: list[int], seed: int, noise: float = 2.0) -> tuple[np.ndarray, list]:
    """30 replicate matrices (affinity 1 within planted groups, 0 across, plus noise) and
    their mean."""
    base = np.zeros((sum(sizes), sum(sizes)))
    for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes):
        base[start : start + size, start : start + size] = 1.0
    rng = np.random.default_rng(seed)
    replicates = [base + rng.normal(0.0, noise, base.shape) for _ in range(30)]
    return np.mean(replicates, axis=0), replicates


def test_noise_does_not_split_groups_whose_tasks_help_each_other_alike():
    """Two halves of four tasks: splitting a half into pairs keeps TAG's expected score, but
    the best pairs of a noisy matrix score higher by selection alone; the replicates'
    cross-fitted noise keeps the halves (a 95%-of-the-best rule kept them for 0 of these
    20; this rule keeps them for 17)."""
    halves = [[0, 1, 2, 3], [4, 5, 6, 7]]
    kept = [choose_groups(m, replicates=r)[0] for m, r in (_noisy([4, 4], s) for s in range(20))]
    assert sum(groups == halves for groups in kept) >= 15, kept
    # real structure is still split: three planted groups come out as three
    three = [
        choose_groups(m, replicates=r)[0] for m, r in (_noisy([3, 2, 3], s) for s in range(20))
    ]
    assert sum(groups == [[0, 1, 2], [3, 4], [5, 6, 7]] for groups in three) >= 18, three


def test_negative_affinity_everywhere_keeps_every_task_alone():
    groups, _ = choose_groups(-np.ones((4, 4)))
    assert groups == [[0], [1], [2], [3]]


def test_positive_affinity_everywhere_keeps_tasks_together():
    groups, _ = choose_groups(np.ones((4, 4)))
    assert groups == [[0, 1, 2, 3]]


def test_approximation_beyond_the_exact_size():
    replicates = [planted([4, 5, 3], noise=0.5, seed=s)[0] for s in range(30)]
    matrix, truth = np.mean(replicates, axis=0), planted([4, 5, 3])[1]
    assert len(matrix) > EXACT_MAX_TASKS
    assert choose_groups(matrix, replicates=replicates)[0] == truth
    # on small random matrices it is never better than exact, and often equal
    for seed in range(4):
        small = np.random.default_rng(seed).normal(size=(7, 7))
        approx = partition_score(small, _approximate(small, 3))
        assert approx <= partition_score(small, best_partition(small, 3)) + 1e-12


def test_bad_requests_are_explained():
    with pytest.raises(ConfigError, match="between 1 and the number of tasks"):
        choose_groups(np.zeros((3, 3)), 4)
    with pytest.raises(ConfigError, match="square"):
        choose_groups(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="never labelled in the same batch"):
        choose_groups(np.array([[1.0, np.nan], [0.0, 1.0]]))
