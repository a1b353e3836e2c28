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
#: Without a number of groups, fewer groups are kept while their best partition's shortfall
#: from the highest score is not significant at this one-sided level (see
#: :func:`choose_groups`).
SHORTFALL_LEVEL = 0.05


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
    matrix: np.ndarray,
    n_groups: int | None = None,
    replicates: Sequence[np.ndarray] | None = None,
) -> tuple[list[list[int]], dict[int, float]]:
    """The groups, and the best score for each number of groups tried.

    With ``n_groups`` None, every K from 1 to N is tried and the fewest groups that score
    no worse than the best K beyond the noise are kept (every task alone, score 0, when no
    grouping scores above 0). The noise comes from ``replicates``, the ``(N, N)`` matrices
    whose mean is ``matrix`` (one per probed step; NaN entries count as the mean's), split
    in two halves (alternate replicates) and cross-fitted: each K's best partition is chosen
    on one half and scored on every replicate of the other, so a split that only fits the
    noise of the matrix it was chosen on gains nothing. K is kept when its held-out score's
    shortfall from the best K's is within a one-sided t-test's margin at
    :data:`SHORTFALL_LEVEL` (mean <= t * standard error over the replicates). With fewer
    than four replicates the matrix is taken as exact: only ties go to fewer groups. The
    groups returned are the best partition of ``matrix`` into the chosen number.

    Why not simply the highest score: split a group whose tasks all help each other alike
    and every task keeps the same expected mean affinity from its group-mates, so TAG's
    score does not change, but the best split of a noisy matrix scores higher on that
    matrix by selection alone, and the more tasks the more splits to select from (a rule
    keeping the fewest groups within 95% of the highest score cut 8 planted tasks in two
    halves further for 4 seeds of 5). Groups are sorted by their first task, tasks within
    a group by index.
    """
    matrix = _checked(matrix)
    n = len(matrix)
    counts = list(range(1, n + 1)) if n_groups is None else [n_groups]
    if n_groups is not None and not 1 <= n_groups <= n:
        raise ConfigError(
            f"--n-groups must lie between 1 and the number of tasks ({n}), got {n_groups}."
        )
    found = _best_partitions(matrix, counts)
    scores = {k: partition_score(matrix, g) for k, g in found.items()}
    if max(scores.values()) <= TIE:
        best = max(counts)  # nothing to gain from any group-mate: the most groups asked for
    elif len(counts) == 1:
        best = counts[0]
    else:
        best = _fewest_within_noise(matrix, replicates, counts, scores)
    return sorted(sorted(g) for g in found[best]), scores


def _best_partitions(matrix: np.ndarray, counts: Sequence[int]) -> dict[int, list[list[int]]]:
    if len(matrix) <= EXACT_MAX_TASKS:
        return _exact(matrix, counts)
    return {k: _approximate(matrix, k) for k in counts}


def _fewest_within_noise(
    matrix: np.ndarray,
    replicates: Sequence[np.ndarray] | None,
    counts: Sequence[int],
    scores: dict[int, float],
) -> int:
    """The fewest of ``counts`` groups whose cross-fitted score is not significantly below
    the best one's (see :func:`choose_groups`); by ``scores`` alone, ties to the fewest,
    without enough ``replicates``."""
    if replicates is None or len(replicates) < 4:
        top = max(scores.values())
        return min(k for k in counts if scores[k] >= top - TIE)
    from scipy import stats  # here: the grouping alone needs only NumPy

    filled = np.stack([np.where(np.isfinite(r), r, matrix) for r in replicates])
    halves = [filled[0::2], filled[1::2]]
    # held[k][r]: the score on replicate r of the K-partition chosen on the other half
    held = {k: np.empty(len(filled)) for k in counts}
    for half, rows in enumerate((slice(0, None, 2), slice(1, None, 2))):
        chosen = _best_partitions(halves[1 - half].mean(0), counts)
        for k in counts:
            held[k][rows] = [partition_score(r, chosen[k]) for r in halves[half]]
    top = max(counts, key=lambda k: (held[k].mean(), -k))
    t = float(stats.t.ppf(1 - SHORTFALL_LEVEL, len(filled) - 1))
    for k in sorted(counts):
        shortfall = held[top] - held[k]
        if shortfall.mean() <= t * shortfall.std(ddof=1) / np.sqrt(len(filled)) + TIE:
            return k
    return top


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
