"""Encode the census split once: the arrays (.npz) every system reads, and the same split as
tables (.pkl) for mtlkit's estimator, which encodes them itself (the worker checks that its
encoding equals the arrays).

Census-Income test file, tasks income and marital (``mtlkit.datasets.load(..., group=1)``),
70/15/15 split with seed 0, mtlkit's ``Preprocessor`` fitted on the training split:
categorical columns as ids (0 = missing or unseen), numeric columns standardised with a
missing indicator where training had missing values.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
from common import CACHE, CENSUS, RAW_SPLIT, SPLIT, TASKS


def prepare(census=CENSUS) -> None:
    from mtlkit import datasets
    from mtlkit.data.preprocessor import Preprocessor
    from mtlkit.data.splits import split_table

    if not census.is_file():
        sys.exit(f"{census} is missing: the benchmark needs the Census-Income test file there.")
    table = datasets.load("census-income", path=census, group=1)
    assert table.task_names == list(TASKS), table.task_names
    splits = split_table(table, (0.7, 0.15, 0.15), seed=0)
    pre = Preprocessor().fit(splits[0])
    arrays = {"cards": np.asarray(pre.schema().cat_cardinalities)}
    for name, part in zip(("train", "val", "test"), splits):
        data = pre.transform(part)
        assert bool(data.mask.all()), "the census tasks are labelled on every row"
        arrays[f"{name}_x_cat"] = data.x_cat.numpy()
        arrays[f"{name}_x_num"] = data.x_num.numpy()
        arrays[f"{name}_y"] = data.y.numpy()
    CACHE.mkdir(exist_ok=True)
    np.savez(SPLIT, **arrays)
    with open(RAW_SPLIT, "wb") as fh:
        pickle.dump(splits, fh)
    print(
        f"encoded split: {len(splits[0]):,} / {len(splits[1]):,} / {len(splits[2]):,} rows, "
        f"{len(arrays['cards'])} categorical + {arrays['train_x_num'].shape[1]} numeric inputs "
        f"-> {SPLIT}"
    )


if __name__ == "__main__":
    prepare()
