"""Task groups from an inter-task affinity matrix: the partition that maximises TAG's score.

Fifty et al., "Efficiently Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021,
section 3.3: a task ``j`` in a group ``G`` is credited with the mean affinity *onto* it from
the other tasks of its group, ``mean_{i in G, i != j} Z[i, j]``; a grouping's score is the
sum of these over the tasks. A task alone has nothing to gain from a group-mate and scores 0
(trained by itself, no other task's step moves its loss), so singletons are allowed.

One deliberate difference from the paper: TAG's network selection picks up to K groups that
may *overlap* (a task may sit in several networks and is served by its best one); mtlkit
returns a *partition* (each task in exactly one group), which is what one trains. Because the
score is a sum over groups, the best partition into exactly K groups is found exactly by
dynamic programming over subsets for up to :data:`EXACT_MAX_TASKS` tasks (``K * 3^N / 2``
steps); beyond, by a stated approximation: agglomerative merging (start from singletons,
merge the two groups whose union gains most) followed by moving single tasks between groups
while the score improves (a local optimum, not a guaranteed best).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlkit.errors import ConfigError

#: Up to this many tasks, the best partition is found exactly.
EXACT_MAX_TASKS = 10
#: Two scores closer than this are equal.
TIE = 1e-12
#: Without a number of groups, the fewest groups whose best score reaches this share of the
#: highest best score are kept (see :func:`choose_groups`).
PARSIMONY = 0.95


def group_score(matrix: np.ndarray, group: Sequence[int]) -> float:
    """TAG's score of one group: the sum over its tasks ``j`` of the mean of ``Z[i, j]`` over
    the other tasks ``i`` of the group (0 for a task alone)."""
    members = list(group)
    if len(members) < 2:
        return 0.0
    block = matrix[np.ix_(members, members)]
    return float((block.sum() - np.trace(block)) / (len(members) - 1))


def partition_score(matrix: np.ndarray, groups: Sequence[Sequence[int]]) -> float:
    """The score of a partition: the sum of its groups' :func:`group_score`."""
    return sum(group_score(matrix, g) for g in groups)


def best_partition(matrix: np.ndarray, n_groups: int) -> list[list[int]]:
    """The partition of the tasks (rows of the ``(N, N)`` ``matrix``, ``matrix[i, j]`` the
    affinity of task i onto task j) into exactly ``n_groups`` non-empty groups with the
    highest score: exact up to :data:`EXACT_MAX_TASKS` tasks, approximate beyond."""
    matrix = _checked(matrix)
    n = len(matrix)
    if not 1 <= n_groups <= n:
        raise ConfigError(
            f"the number of groups must lie between 1 and the number of tasks ({n}), "
            f"got {n_groups}."
        )
    if n <= EXACT_MAX_TASKS:
        return _exact(matrix, [n_groups])[n_groups]
    return _approximate(matrix, n_groups)


def choose_groups(
    matrix: np.ndarray, n_groups: int | None = None
) -> tuple[list[list[int]], dict[int, float]]:
    """The groups, and the best score for each number of groups tried.

    With ``n_groups`` None, every K from 1 to N is tried and the fewest groups whose best
    partition scores at least :data:`PARSIMONY` of the highest best score are kept (every
    task alone, score 0, when no grouping scores above 0). Why not simply the highest: split
    a group whose tasks all help each other alike and every task keeps the same mean
    affinity from its group-mates, so TAG's score does not change and measurement noise
    alone would decide; tasks are split apart only where that clearly raises the affinity
    they receive. Groups are sorted by their first task, tasks within a group by index.
    """
    matrix = _checked(matrix)
    n = len(matrix)
    counts = list(range(1, n + 1)) if n_groups is None else [n_groups]
    if n_groups is not None and not 1 <= n_groups <= n:
        raise ConfigError(
            f"--n-groups must lie between 1 and the number of tasks ({n}), got {n_groups}."
        )
    if n <= EXACT_MAX_TASKS:
        found = _exact(matrix, counts)
    else:
        found = {k: _approximate(matrix, k) for k in counts}
    scores = {k: partition_score(matrix, g) for k, g in found.items()}
    top = max(scores.values())
    if top <= TIE:
        best = max(counts)  # nothing to gain from any group-mate: the most groups asked for
    else:
        best = min(k for k in counts if scores[k] >= PARSIMONY * top - TIE)
    return sorted(sorted(g) for g in found[best]), scores


def _checked(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not len(matrix):
        raise ConfigError(f"an affinity matrix is square and not empty, got {matrix.shape}.")
    if not np.isfinite(matrix[~np.eye(len(matrix), dtype=bool)]).all():
        raise ConfigError(
            "the affinity matrix has missing (NaN) entries off its diagonal: some pair of "
            "tasks was never labelled in the same batch; give rows labelled for both tasks."
        )
    return matrix


def _exact(matrix: np.ndarray, counts: Sequence[int]) -> dict[int, list[list[int]]]:
    """Dynamic programming over subsets: ``best[k][mask]`` is the best score of ``mask``'s
    tasks split into k groups; the group holding the lowest task of ``mask`` is chosen."""
    n = len(matrix)
    full = (1 << n) - 1
    block = [0.0] * (full + 1)
    for mask in range(1, full + 1):
        block[mask] = group_score(matrix, [i for i in range(n) if mask >> i & 1])
    most = max(counts)
    minus_inf = float("-inf")
    best = [[minus_inf] * (full + 1) for _ in range(most + 1)]
    choice = [[0] * (full + 1) for _ in range(most + 1)]
    best[0][0] = 0.0
    for k in range(1, most + 1):
        previous, current, chosen = best[k - 1], best[k], choice[k]
        for mask in range(1, full + 1):
            low = mask & -mask
            rest = mask ^ low
            sub = rest
            while True:  # every subset of ``rest``, with the lowest task added
                group = sub | low
                value = previous[mask ^ group]
                if value != minus_inf and block[group] + value > current[mask]:
                    current[mask] = block[group] + value
                    chosen[mask] = group
                if sub == 0:
                    break
                sub = (sub - 1) & rest
    found = {}
    for k in counts:
        groups, mask = [], full
        for level in range(k, 0, -1):
            group = choice[level][mask]
            groups.append([i for i in range(n) if group >> i & 1])
            mask ^= group
        found[k] = groups
    return found


def _approximate(matrix: np.ndarray, n_groups: int) -> list[list[int]]:
    """Agglomerative merging down to ``n_groups`` groups, then single-task moves while the
    score improves (see the module's docstring)."""
    groups = [[i] for i in range(len(matrix))]
    while len(groups) > n_groups:
        gains = [
            (group_score(matrix, a + b) - group_score(matrix, a) - group_score(matrix, b), x, y)
            for x, a in enumerate(groups)
            for y, b in enumerate(groups)
            if x < y
        ]
        _, x, y = max(gains)
        groups[x] = groups[x] + groups.pop(y)
    improved = True
    while improved:
        improved = False
        for task in range(len(matrix)):
            source = next(g for g in groups if task in g)
            if len(source) == 1:
                continue  # moving it would leave an empty group
            without = [t for t in source if t != task]
            for target in groups:
                if target is source:
                    continue
                gain = (
                    group_score(matrix, without)
                    + group_score(matrix, target + [task])
                    - group_score(matrix, source)
                    - group_score(matrix, target)
                )
                if gain > TIE:
                    source.remove(task)
                    target.append(task)
                    improved = True
                    break
    return groups
