"""Data sets the user places by hand: Tencent Ads 2020, Ali-CCP, AliExpress."""

import numpy as np
import pandas as pd
import pytest

from mtlkit import DataError
from mtlkit.datasets import load


def _tencent(folder, user_columns=("user_id", "age", "gender")):
    train, test = folder / "train_preliminary", folder / "test"
    train.mkdir(parents=True)
    test.mkdir()
    ads = pd.DataFrame(
        {
            "creative_id": [10, 11, 12, 13],
            "ad_id": [100, 101, 102, 103],
            "product_id": ["\\N", "5", "5", "7"],
            "product_category": [2, 5, 5, 18],
            "advertiser_id": [900, 901, 901, 902],
            "industry": ["6", "\\N", "319", "6"],
        }
    )
    ads.to_csv(train / "ad.csv", index=False)
    ads.to_csv(test / "ad.csv", index=False)
    pd.DataFrame(
        {
            "time": [1, 1, 3, 2, 2, 9],
            "user_id": [1, 1, 1, 2, 2, 3],
            "creative_id": [10, 11, 12, 10, 10, 13],
            "click_times": [1, 2, 1, 1, 3, 1],
        }
    ).to_csv(train / "click_log.csv", index=False)
    users = pd.DataFrame({"user_id": [1, 2, 3], "age": [4, 7, 1], "gender": [1, 2, 2]})
    users[list(user_columns)].to_csv(train / "user.csv", index=False)
    pd.DataFrame(
        {
            "time": [5, 6],
            "user_id": [3000001, 3000001],
            "creative_id": [11, 13],
            "click_times": [1, 1],
        }
    ).to_csv(test / "click_log.csv", index=False)


def test_tencent_users_are_aggregated_and_test_users_unlabelled(tmp_path):
    _tencent(tmp_path)
    table = load("tencent-ads-2020", path=tmp_path)
    assert table.task_names == ["age", "gender"]
    assert [t.kind for t in table.tasks] == ["multiclass", "binary"]
    assert len(table) == 4
    f = table.features
    assert "user_id" not in f.columns
    user1 = 0  # labelled users come first, in user_id order
    assert f.loc[user1, "clicks"] == 4 and f.loc[user1, "click_records"] == 3
    assert f.loc[user1, "active_days"] == 2 and f.loc[user1, "n_advertiser_id"] == 2
    assert f.loc[user1, "top_product_category"] == "5"  # 3 clicks on category 5, 1 on 2
    assert f.loc[user1, "share_category_5"] == pytest.approx(0.75)
    assert table.feature_kinds["top_industry"] == "categorical"
    np.testing.assert_array_equal(table.masks["gender"], [True, True, True, False])
    assert list(table.source) == ["train users"] * 3 + ["test users"]


def test_tencent_user_file_with_one_label_labels_one_task(tmp_path):
    _tencent(tmp_path, user_columns=("user_id", "gender"))
    table = load("tencent-ads-2020", path=tmp_path)
    assert table.task_names == ["gender"]


def test_tencent_missing_files_say_where_to_get_and_put_them(tmp_path):
    with pytest.raises(DataError) as info:
        load("tencent-ads-2020", cache_dir=tmp_path)
    message = str(info.value)
    assert "algo.qq.com" in message
    for name in ("click_log.csv", "ad.csv", "user.csv"):
        assert str(tmp_path / "tencent-ads-2020" / name) in message
    (tmp_path / "x").mkdir()
    pd.DataFrame({"time": [1], "user_id": [1]}).to_csv(tmp_path / "x" / "click_log.csv")
    pd.DataFrame({"creative_id": [1]}).to_csv(tmp_path / "x" / "ad.csv")
    with pytest.raises(DataError, match=r"click_log.csv lacks column\(s\)"):
        load("tencent-ads-2020", path=tmp_path / "x")


def test_ali_ccp_gives_ctr_and_ctcvr_on_every_impression(tmp_path):
    frame = pd.DataFrame(
        {
            "click": [1, 0, 1, 0, 1, 1],
            "purchase": [1, 0, 0, 0, 1, 0],
            "101": [5, 6, 5, 7, 8, 5],
            "205": [1, 1, 2, 2, 3, 3],
            "D109_14": [0.1, 0.5, 0.3, 0.2, 0.9, 0.4],
        }
    )
    frame.iloc[:4].to_csv(tmp_path / "ali_ccp_train.csv", index=False)
    frame.iloc[4:].to_csv(tmp_path / "ali_ccp_test.csv", index=False)
    table = load("ali-ccp", path=tmp_path)
    assert table.task_names == ["ctr", "ctcvr"]
    np.testing.assert_array_equal(table.labels["ctr"], [1, 0, 1, 0, 1, 1])
    np.testing.assert_array_equal(table.labels["ctcvr"], [1, 0, 0, 0, 1, 0])
    assert table.feature_kinds == {"101": "categorical", "205": "categorical", "D109_14": "numeric"}
    assert sorted(set(table.source)) == ["ali_ccp_test.csv", "ali_ccp_train.csv"]


def test_aliexpress_format_and_bad_labels(tmp_path):
    folder = tmp_path / "aliexpress" / "AliExpress_NL"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"search_id": range(8)})
    for i in range(1, 4):
        frame[f"categorical_{i}"] = rng.integers(0, 5, 8)
    for i in range(1, 3):
        frame[f"numerical_{i}"] = rng.random(8)
    frame["click"] = [1, 0, 1, 0, 0, 1, 1, 0]
    frame["conversion"] = [1, 0, 0, 0, 0, 1, 0, 0]
    frame.to_csv(folder / "train.csv", index=False)
    table = load("aliexpress", cache_dir=tmp_path)  # default folder under the cache
    assert "search_id" not in table.features.columns
    assert table.feature_kinds["categorical_1"] == "categorical"
    assert table.feature_kinds["numerical_2"] == "numeric"
    assert table.labels["ctcvr"].sum() == 2
    frame.assign(click=2).to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError, match="'click' must hold 0/1"):
        load("aliexpress", path=folder)
    with pytest.raises(DataError) as info:
        load("aliexpress", cache_dir=tmp_path, country="ES")
    assert str(tmp_path / "aliexpress" / "AliExpress_ES" / "train.csv") in str(info.value)
    assert "tianchi" in str(info.value)


@pytest.mark.parametrize(
    ("name", "files", "conversion", "n_categorical", "n_numeric"),
    [
        (
            "ali-ccp",
            ("ali_ccp_train.csv", "ali_ccp_val.csv", "ali_ccp_test.csv"),
            "purchase",
            23,
            8,
        ),
        ("aliexpress", ("train.csv", "test.csv"), "conversion", 16, 63),
    ],
)
def test_published_sample_files_read_unchanged(
    name, files, conversion, n_categorical, n_numeric, shared_data
):
    """The real layouts (torch-rechub's sample files in ../shared/data/samples) load as they
    are: every row, the funnel labels (CTCVR = click and conversion), the declared kinds."""
    folder = shared_data / "samples" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    raw = pd.concat([pd.read_csv(folder / f) for f in files], ignore_index=True)
    table = load(name, path=folder)
    assert len(table.features) == len(raw)
    assert table.labels["ctr"].sum() == raw["click"].sum()
    assert table.labels["ctcvr"].sum() == (raw["click"] & raw[conversion]).sum()
    kinds = list(table.feature_kinds.values())
    assert (kinds.count("categorical"), kinds.count("numeric")) == (n_categorical, n_numeric)
