import numpy as np
import pandas as pd
import pytest

from mtlkit.data.loading import load_tables
from mtlkit.data.splits import check_splits, keep_label_fraction, split_table, split_with_test
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import DataError


def row_ids(table):
    return sorted(table.features["row"].tolist())


@pytest.fixture
def numbered(merged_table):
    merged_table.features["row"] = np.arange(len(merged_table))
    return merged_table


def test_split_is_a_partition_with_the_requested_sizes(numbered):
    train, val, test = split_table(numbered, seed=0)
    assert sorted(row_ids(train) + row_ids(val) + row_ids(test)) == list(range(600))
    assert [len(train), len(val), len(test)] == pytest.approx([420, 90, 90], abs=3)


def test_same_seed_same_split_other_seed_differs(numbered):
    first = [row_ids(part) for part in split_table(numbered, seed=5)]
    assert first == [row_ids(part) for part in split_table(numbered, seed=5)]
    assert first != [row_ids(part) for part in split_table(numbered, seed=6)]


@pytest.mark.parametrize("seed", range(10))
def test_every_task_is_labelled_in_every_split_of_a_small_merged_table(people, seed):
    rng = np.random.default_rng(seed)
    frames = {  # 40 rows; "marital" is labelled on 10 only
        "a": people(30, 1).assign(income=rng.choice(["lo", "hi"], 30)),
        "b": people(10, 2).assign(marital=["married", "single"] * 5),
    }
    train, val, test = split_table(load_tables(frames, ["income", "marital"]), seed=seed)
    check_splits(train, val, test)
    for part in (train, val, test):
        assert part.masks["income"].any() and part.masks["marital"].any()


def test_classes_are_stratified(merged_table):
    train, val, test = split_table(merged_table, seed=1)
    for task in merged_table.task_names:
        overall = np.bincount(merged_table.labels[task][merged_table.masks[task]].astype(int))
        for part in (train, val, test):
            counts = np.bincount(part.labels[task][part.masks[task]].astype(int))
            share = counts / counts.sum()
            assert share == pytest.approx(overall / overall.sum(), abs=0.04)


def test_group_split_keeps_groups_together(numbered):
    numbered.features["household"] = np.arange(len(numbered)) // 4
    parts = split_table(numbered, seed=2, group_column="household")
    groups = [set(part.features["household"]) for part in parts]
    assert (
        not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    )
    assert sum(len(g) for g in groups) == 150
    assert [len(p) for p in parts] == pytest.approx([420, 90, 90], abs=20)
    again = split_table(numbered, seed=2, group_column="household")
    assert [row_ids(p) for p in parts] == [row_ids(p) for p in again]


def test_split_with_separate_test_table(merged_table):
    test_frame = pd.DataFrame(
        {"hours": [30.0, 50.0], "children": [1, 2], "education": ["school", "college"]}
    ).assign(marital=["single", "divorced"])  # no income column, fewer marital classes
    test_table = load_tables(test_frame, ["marital"])
    train, val, test = split_with_test(merged_table, test_table, seed=0)
    assert len(train) + len(val) == len(merged_table)
    assert len(val) == pytest.approx(0.15 * len(merged_table), abs=3)
    assert test.tasks == merged_table.tasks
    assert not test.masks["income"].any()
    assert test.labels["marital"].tolist() == [2.0, 0.0]  # divorced, married, single
    with pytest.raises(DataError, match="'income'.*test split"):
        check_splits(train, val, test)


def test_check_splits_reports_unlabelled_split_and_single_class(merged_table):
    train, val, test = split_table(merged_table, seed=0)
    val.masks["marital"][:] = False
    with pytest.raises(DataError, match="'marital' has no labelled rows in the validation split"):
        check_splits(train, val, test)
    train, val, test = split_table(merged_table, seed=0)
    train.labels["income"][train.masks["income"]] = 1.0
    with pytest.raises(DataError, match="'income' has a single class \\(' 50000\\+\\.'\\)"):
        check_splits(train, val, test)


def test_bad_fractions_and_group_column(merged_table):
    with pytest.raises(DataError, match="fractions"):
        split_table(merged_table, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(DataError, match="fractions"):
        split_table(merged_table, fractions=(0.8, 0.2))
    with pytest.raises(DataError, match="group_column 'nope'"):
        split_table(merged_table, group_column="nope")


def test_label_fractions_keep_nested_subsets_of_one_tasks_labels_and_every_row():
    frame = make_synthetic(2000, n_features=5, seed=0)
    frame.loc[::7, "label0"] = np.nan  # partially labelled to begin with
    table = load_tables(frame, labels=["label0", "label1"])
    n_labelled = int(table.masks["label0"].sum())  # 1714
    kept = {f: keep_label_fraction(table, "label0", f, seed=3) for f in (1.0, 0.1, 0.02)}
    for fraction, part in kept.items():
        mask = part.masks["label0"]
        assert (
            mask.sum() == {1.0: 1714, 0.1: 171, 0.02: 34}[fraction] == round(fraction * n_labelled)
        )
        assert len(part) == len(table) and not (mask & ~table.masks["label0"]).any()
        assert np.isnan(part.labels["label0"][~mask]).all()  # masked, as the table contract says
        np.testing.assert_array_equal(part.labels["label0"][mask], table.labels["label0"][mask])
        np.testing.assert_array_equal(part.masks["label1"], table.masks["label1"])  # untouched
    assert (kept[0.02].masks["label0"] <= kept[0.1].masks["label0"]).all()  # nested
    assert not np.array_equal(
        keep_label_fraction(table, "label0", 0.1, seed=4).masks["label0"], kept[0.1].masks["label0"]
    )
    with pytest.raises(DataError, match="leaves none"):
        keep_label_fraction(table, "label0", 1e-4)
