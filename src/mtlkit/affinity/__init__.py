"""Task affinity (TAG, Fifty et al., NeurIPS 2021) and the task groups chosen from it.

``measure_affinity`` and ``AffinityResult`` (:mod:`mtlkit.affinity.study`) load PyTorch on
first use; the grouping (:mod:`mtlkit.affinity.grouping`) needs only NumPy.
"""

from __future__ import annotations

from typing import Any

from mtlkit.affinity.grouping import best_partition, choose_groups, partition_score

__all__ = [
    "AffinityResult",
    "best_partition",
    "choose_groups",
    "measure_affinity",
    "partition_score",
]


def __getattr__(name: str) -> Any:
    if name in ("AffinityResult", "measure_affinity"):
        from mtlkit.affinity import study

        return getattr(study, name)
    raise AttributeError(f"module 'mtlkit.affinity' has no attribute {name!r}")
