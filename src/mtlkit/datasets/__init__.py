"""Built-in multi-task data sets: ``load(name, path=None, **kwargs)`` and ``available()``.

One module per data set; downloads and the cache folder live in :mod:`.cache`.
"""

from mtlkit.datasets.cache import cache_root
from mtlkit.datasets.registry import DATASETS, DatasetInfo, available, load

__all__ = ["DATASETS", "DatasetInfo", "available", "cache_root", "load"]
