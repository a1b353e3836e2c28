"""Synthetic multi-task data with a controllable task correlation.

The generator of Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, section 3.2: two orthogonal unit vectors u1, u2
define task weights w1 = c*u1 and w2 = c*(p*u1 + sqrt(1-p^2)*u2), and each label is
y = w^T x + sum_i sin(alpha_i w^T x + beta_i) + noise. The cosine of w1 and w2 is the
correlation p; alpha_i, beta_i ~ N(0, 0.3^2). With more than two tasks, task k uses its own orthogonal u_k against u1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mtlkit.errors import DataError
from mtlkit.files import atomic_write_text


def make_synthetic(
    n_rows: int = 10_000,
    *,
    n_features: int = 100,
    n_tasks: int = 2,
    correlation: float = 0.9,
    task_type: str = "binary",
    noise: float | Sequence[float] = 0.1,
    n_sines: int = 10,
    scale: float = 1.0,
    seed: int = 0,
    label_prefix: str = "label",
) -> pd.DataFrame:
    """Generate a table of ``n_features`` numeric columns ``x0..`` and ``n_tasks`` labels.

    ``correlation`` in [-1, 1] is the cosine between the tasks' weight vectors (the paper's
    knob). ``task_type`` "regression" keeps the real-valued labels; "binary" thresholds each
    at its median (balanced classes). The noiseless signal is scaled to unit variance and
    ``noise`` is the standard deviation of the added label noise (a noise-to-signal ratio),
    one value for all tasks or one per task. Deterministic for a given ``seed``.
    """
    if not -1.0 <= correlation <= 1.0:
        raise DataError(f"correlation must lie in [-1, 1], got {correlation}.")
    if task_type not in ("binary", "regression"):
        raise DataError(f"task_type must be 'binary' or 'regression', got {task_type!r}.")
    if n_tasks < 1 or n_features < n_tasks:
        raise DataError(
            f"need 1 <= n_tasks <= n_features, got n_tasks={n_tasks}, n_features={n_features}."
        )
    noises = np.broadcast_to(np.asarray(noise, dtype=float), (n_tasks,))
    rng = np.random.default_rng(seed)
    # Orthonormal directions: QR of a Gaussian matrix.
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_tasks)))
    u1 = basis[:, 0]
    weights = [scale * u1] + [
        scale * (correlation * u1 + np.sqrt(1.0 - correlation**2) * basis[:, k])
        for k in range(1, n_tasks)
    ]
    # Small frequencies and phases keep the label correlation close to the knob (at scale 1
    # the sines dominate and negative correlations wash out).
    alpha = rng.normal(0.0, 0.3, n_sines)
    beta = rng.normal(0.0, 0.3, n_sines)
    return _labelled_frame(rng, n_rows, weights, alpha, beta, noises, task_type, label_prefix)


def _labelled_frame(
    rng: np.random.Generator,
    n_rows: int,
    weights: Sequence[np.ndarray],
    alpha: np.ndarray,
    beta: np.ndarray,
    noises: np.ndarray,
    task_type: str,
    label_prefix: str,
) -> pd.DataFrame:
    """Standard normal features and one label per weight vector ``w``: the paper's
    ``y = w^T x + sum_i sin(alpha_i w^T x + beta_i)``, scaled to unit variance, plus noise;
    thresholded at its median for binary tasks."""
    n_features = len(weights[0])
    x = rng.standard_normal((n_rows, n_features))
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"x{i}" for i in range(n_features)])
    for k, w in enumerate(weights):
        z = x @ w
        signal = z + np.sin(np.outer(z, alpha) + beta).sum(axis=1)
        # Unit-variance signal, so that ``noise`` is a noise-to-signal ratio for every seed.
        signal = (signal - signal.mean()) / signal.std()
        y = signal + rng.normal(0, noises[k], n_rows)
        if task_type == "binary":
            y = (y > np.median(y)).astype(np.int64)
        frame[f"{label_prefix}{k}"] = y
    return frame


def make_grouped_synthetic(
    n_rows: int = 10_000,
    *,
    groups: Sequence[int] = (3, 3),
    within: float = 0.9,
    across: float = 0.0,
    n_features: int = 100,
    task_type: str = "binary",
    noise: float = 0.1,
    n_sines: int = 10,
    seed: int = 0,
    label_prefix: str = "label",
) -> pd.DataFrame:
    """Tasks in planted groups: the generator of :func:`make_synthetic` (Ma et al., KDD
    2018) with ``sum(groups)`` tasks whose weight vectors have cosine ``within`` inside a group
    and ``across`` between groups (a known answer for task grouping, e.g. TAG's).

    Construction: task k of group g has ``w_k = sqrt(within) * c_g + sqrt(1 - within) * e_k``
    with the ``e_k`` orthonormal and orthogonal to the group directions ``c_g``, which are unit
    vectors of pairwise cosine ``across / within``. Labels are numbered across the groups in
    order (``groups=(3, 3)``: label0-2 form the first group, label3-5 the second).
    """
    counts = [int(g) for g in groups]
    if not counts or min(counts) < 1:
        raise DataError(f"groups lists the number of tasks of each group (>= 1), got {groups}.")
    if not 0.0 < within <= 1.0:
        raise DataError(f"within must lie in (0, 1], got {within}.")
    ratio = across / within
    n_groups, n_tasks = len(counts), sum(counts)
    low = -1.0 / (n_groups - 1) if n_groups > 1 else -1.0
    if not low <= ratio <= 1.0:
        raise DataError(
            f"with {n_groups} groups and within={within}, across must lie in "
            f"[{low * within:g}, {within:g}] (no set of directions has the cosines asked for), "
            f"got {across}."
        )
    if task_type not in ("binary", "regression"):
        raise DataError(f"task_type must be 'binary' or 'regression', got {task_type!r}.")
    if n_features < n_groups + n_tasks:
        raise DataError(
            f"need n_features >= groups + tasks ({n_groups + n_tasks}), got {n_features}."
        )
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_groups + n_tasks)))
    # Group directions of pairwise cosine ``ratio``: rows of a square root of their Gram matrix.
    gram = (1.0 - ratio) * np.eye(n_groups) + ratio
    values, vectors = np.linalg.eigh(gram)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    centres = root @ basis[:, :n_groups].T
    weights = []
    for g, count in enumerate(counts):
        for _ in range(count):
            own = basis[:, n_groups + len(weights)]
            weights.append(np.sqrt(within) * centres[g] + np.sqrt(1.0 - within) * own)
    alpha = rng.normal(0.0, 0.3, n_sines)
    beta = rng.normal(0.0, 0.3, n_sines)
    noises = np.full(n_tasks, float(noise))
    return _labelled_frame(rng, n_rows, weights, alpha, beta, noises, task_type, label_prefix)


def write_partial_label_files(
    frame: pd.DataFrame, folder: str | Path, labels: Sequence[str], *, seed: int = 0
) -> list[Path]:
    """Split ``frame`` into one CSV file per label, each file keeping only its own label.

    The rows are shuffled and dealt out evenly, so every row appears in exactly one file: the
    partial-label case where each data source labels one task.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [lab for lab in labels if lab not in frame.columns]
    if missing:
        raise DataError(f"labels {missing} are not columns of the frame.")
    order = np.random.default_rng(seed).permutation(len(frame))
    paths = []
    for k, (label, part) in enumerate(zip(labels, np.array_split(order, len(labels)))):
        others = [lab for lab in labels if lab != label]
        path = folder / f"part{k}_{label}.csv"
        atomic_write_text(path, frame.iloc[np.sort(part)].drop(columns=others).to_csv(index=False))
        paths.append(path)
    return paths


def make_funnel(
    n_rows: int = 10_000,
    *,
    n_features: int = 20,
    click_rate: float = 0.3,
    conversion_rate: float = 0.3,
    correlation: float = 0.5,
    noise: float = 0.3,
    seed: int = 0,
    probabilities: bool = False,
) -> pd.DataFrame:
    """A synthetic impression -> click -> conversion funnel for ESMM and AITM.

    Every row is an impression with ``n_features`` numeric columns ``x0..`` (standard normal).
    Two unit weight vectors with cosine ``correlation`` give latent scores
    ``s = w^T x + noise * N(0, 1)``; ``click`` is 1 for the ``click_rate`` share of rows with
    the highest click score, and ``conversion`` is 1 for the ``conversion_rate`` share of the
    *clicked* rows with the highest conversion score. So a conversion implies a click, the
    ``conversion`` column is the CTCVR label over all impressions (about ``click_rate *
    conversion_rate`` positives) and ``conversion_rate`` is the CVR among clicks. Deterministic
    for a given ``seed``.

    With ``probabilities=True`` the frame also holds the true probabilities given the features
    (the score noise is independent per row and step): ``p_click`` = P(click | x) and
    ``p_cvr`` = P(conversion | click, x) = Phi((w_conv^T x - t) / noise), where ``t`` is the
    conversion threshold; ``p_cvr`` is defined for every impression, clicked or not, which is
    what ESMM's pCVR estimates. The other columns are the same as without it.
    """
    for name, rate in (("click_rate", click_rate), ("conversion_rate", conversion_rate)):
        if not 0.0 < rate < 1.0:
            raise DataError(f"{name} must lie strictly between 0 and 1, got {rate}.")
    if not -1.0 <= correlation <= 1.0:
        raise DataError(f"correlation must lie in [-1, 1], got {correlation}.")
    if n_features < 2 or n_rows < 2:
        raise DataError(f"need n_features >= 2 and n_rows >= 2, got {n_features}, {n_rows}.")
    if noise < 0:
        raise DataError(f"noise is a standard deviation and must be >= 0, got {noise}.")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, 2)))
    w_click = basis[:, 0]
    w_conv = correlation * basis[:, 0] + np.sqrt(1.0 - correlation**2) * basis[:, 1]
    x = rng.standard_normal((n_rows, n_features))
    s_click = x @ w_click + noise * rng.standard_normal(n_rows)
    s_conv = x @ w_conv + noise * rng.standard_normal(n_rows)
    t_click = np.quantile(s_click, 1.0 - click_rate)
    click = s_click > t_click
    t_conv = np.quantile(s_conv[click], 1.0 - conversion_rate) if click.any() else np.inf
    conversion = click & (s_conv > t_conv)
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"x{i}" for i in range(n_features)])
    frame["click"] = click.astype(np.int64)
    frame["conversion"] = conversion.astype(np.int64)
    if probabilities:
        frame["p_click"] = _exceeds(x @ w_click, t_click, noise)
        frame["p_cvr"] = _exceeds(x @ w_conv, t_conv, noise)
    return frame


def _exceeds(mean: np.ndarray, threshold: float, noise: float) -> np.ndarray:
    """P(mean + noise * N(0, 1) > threshold), elementwise."""
    if noise == 0:
        return (mean > threshold).astype(float)
    return stats.norm.sf((threshold - mean) / noise)
