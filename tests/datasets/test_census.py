import numpy as np
import pytest

from mtlkit import DataError, MultiTaskEstimator, split_table
from mtlkit.datasets import load
from mtlkit.datasets.census import COLUMNS, load_census


def _column(rows, name):
    return [r[COLUMNS.index(name)] for r in rows]


def test_group1_tasks_labels_and_features(census_file):
    path, rows = census_file
    table = load("census-income", path=path)
    assert table.task_names == ["income", "marital"]
    assert all(t.kind == "binary" for t in table.tasks)
    expected_income = [v == "50000+." for v in _column(rows, "income_50k")]
    expected_marital = [v != "Never married" for v in _column(rows, "marital_stat")]
    np.testing.assert_array_equal(table.labels["income"], expected_income)
    np.testing.assert_array_equal(table.labels["marital"], expected_marital)
    assert table.masks["income"].all() and table.masks["marital"].all()
    features = set(table.features.columns)
    assert not features & {"income_50k", "marital_stat", "instance_weight", "income", "marital"}
    assert "education" in features and len(features) == 39
    for code in ("det_ind_code", "det_occ_code", "own_or_self", "vet_benefits", "year"):
        assert table.feature_kinds[code] == "categorical"
    assert table.feature_kinds["age"] == "numeric"
    # "?" is missing, the country "NA" is a value
    assert table.features["mig_chg_msa"].isna().any()
    assert "NA" in set(table.features["country_self"])


def test_group2_drops_education_and_marital_from_features(census_file):
    path, rows = census_file
    table = load_census(path, group=2)
    assert table.task_names == ["education", "marital"]
    degrees = [v.startswith(("Bachelors", "Masters")) for v in _column(rows, "education")]
    np.testing.assert_array_equal(table.labels["education"], degrees)
    assert not {"education", "marital_stat"} & set(table.features.columns)


def test_group3_has_six_targets_without_their_sources_or_proxies(census_file):
    path, rows = census_file
    table = load_census(path, group=3)
    assert table.task_names == ["income", "marital", "education", "sex", "citizenship", "hispanic"]
    assert all(t.kind == "binary" for t in table.tasks)
    np.testing.assert_array_equal(
        table.labels["sex"], [v == "Female" for v in _column(rows, "sex")]
    )
    native = [v.startswith("Native") for v in _column(rows, "citizenship")]
    np.testing.assert_array_equal(table.labels["citizenship"], native)
    hispanic = [v in ("Mexican-American", "Puerto Rican") for v in _column(rows, "hisp_origin")]
    np.testing.assert_array_equal(table.labels["hispanic"], hispanic)
    sources = {"income_50k", "marital_stat", "education", "sex", "citizenship", "hisp_origin"}
    # marital: household role and joint filing; citizenship: country of birth
    proxies = {"det_hh_fam_stat", "det_hh_summ", "tax_filer_stat", "country_self"}
    features = set(table.features.columns)
    assert not (sources | proxies | {"instance_weight"}) & features
    assert len(features) == 41 - len(sources) - len(proxies)
    assert set(table.feature_kinds) == features
    # the paper's groups keep the proxies as features
    assert proxies - {"marital_stat"} <= set(load_census(path, group=1).features.columns)


def test_a_folder_with_both_splits_loads_both(tmp_path, make_census):
    make_census(tmp_path / "census-income.data.gz", 50, seed=1)
    make_census(tmp_path / "census-income.test", 30, seed=2)
    table = load_census(tmp_path)
    assert len(table) == 80
    assert sorted(set(table.source)) == ["census-income.data.gz", "census-income.test"]
    assert len(load_census(tmp_path, split="test")) == 30


def test_bad_input_is_a_clear_error(tmp_path, census_file):
    path, _ = census_file
    with pytest.raises(DataError, match="group must be 1"):
        load_census(path, group=4)
    with pytest.raises(DataError, match="split must be"):
        load_census(tmp_path, split="validation")
    bad = tmp_path / "bad.csv"
    bad.write_text("1, 2, 3\n4, 5, 6\n")
    with pytest.raises(DataError, match="has 3 columns.*42"):
        load_census(bad)
    with pytest.raises(DataError, match="does not exist"):
        load_census(tmp_path / "nowhere.gz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="No census-income.data or census-income.test"):
        load_census(empty)


def test_shared_test_split_gives_the_paper_tasks(census_path):
    table = load("census-income", path=census_path)
    assert len(table) == 99_762 and table.task_names == ["income", "marital"]
    assert table.labels["income"].sum() == 6186  # rows with " 50000+."
    assert table.labels["marital"].sum() == 99_762 - 43_143  # not " Never married"


def test_mmoe_reaches_the_paper_level_auc_on_the_shared_test_split(census_path):
    """MMoE (default sizes) through the main API on a 70/15/15 split of census-income.test.

    Early stopping on validation ROC-AUC (patience 8) measured 0.9439/0.9942 (seed 0) and
    0.9431/0.9943 (seed 1) for income/marital; the defaults (stopping on the loss) gave
    0.9440/0.9944 and 0.9414/0.9944. About 45 s on 2 idle cores (minutes on busy ones).
    """
    table = load("census-income", path=census_path)
    train, val, test = split_table(table, (0.7, 0.15, 0.15), seed=0)
    est = MultiTaskEstimator("mmoe", monitor="roc_auc", patience=8, progress=False)
    est.fit(train, val)
    auc = {task: m["roc_auc"] for task, m in est.evaluate(test).items()}
    assert auc["income"] >= 0.94, auc
    assert auc["marital"] >= 0.99, auc


def test_shared_test_split_group3_targets(census_path):
    table = load_census(census_path, group=3)
    positives = {t: int(table.labels[t].sum()) for t in table.task_names}
    assert positives == {
        "income": 6186,
        "marital": 99_762 - 43_143,
        "education": 14_687,
        "sex": 51_791,
        "citizenship": 88_355 + 951 + 738,
        "hispanic": 4001 + 3695 + 1987 + 1582 + 1243 + 616 + 170,
    }
