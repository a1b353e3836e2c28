"""Confidence intervals over repeated runs (seeds)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, CI low, CI high): ``mean +- t_{(1+level)/2, n-1} * std / sqrt(n)``.

    NaN values are ignored; with fewer than two values std and the interval are NaN.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * std / math.sqrt(len(x))
    return mean, std, mean - half, mean + half
