"""max_categories, hash_buckets and min_frequency from the estimator, the CLI and config files,
saved with the model; model folders saved before these settings still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mtlkit.cli.main import build_parser, main
from mtlkit.cli.options import given_settings
from mtlkit.errors import ConfigError
from mtlkit.experiments.cells import Cell
from mtlkit.experiments.config import TRAIN_PARAMS, CompareConfig
from mtlkit.experiments.config_files import load_config_file
from mtlkit.experiments.run import Settings, run_one
from mtlkit.training.estimator import MultiTaskEstimator

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = {"max_categories": 50, "hash_buckets": 32, "min_frequency": 2}
FAST = {"epochs": 1, "progress": False, "diagnostic_batches": 0}


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    """500 rows: ``user`` with ~480 ids (more than 4 x max_categories=50 in any split:
    hashed), ``shop`` with 10 ids seen often and 20 seen once (out of the vocabulary at
    min_frequency=2)."""
    rng = np.random.default_rng(0)
    n = 500
    shops = np.concatenate([rng.integers(0, 10, n - 20), np.arange(100, 120)])
    frame = pd.DataFrame(
        {
            "user": [f"u{k}" for k in rng.integers(0, 10_000, n)],
            "shop": [f"s{k}" for k in rng.permutation(shops)],
            "x": rng.normal(size=n),
        }
    )
    frame["y"] = (frame["x"] + rng.normal(size=n) > 0).astype(int)
    frame["z"] = (rng.random(n) < 0.4).astype(int)
    path = tmp_path_factory.mktemp("vocab") / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def check_fitted_state(state: dict) -> None:
    """A preprocessor.json fitted on ``csv_file`` with :data:`SETTINGS`."""
    assert {k: state[k] for k in SETTINGS} == SETTINGS
    user, shop = state["categorical"]
    assert user["name"] == "user" and user["hashed"] and user["buckets"] == 32
    assert shop == {"name": "shop", "vocab": [f"s{k}" for k in range(10)]}  # rare: id 0


def test_estimator_settings_reach_the_preprocessor_and_round_trip(csv_file, tmp_path):
    est = MultiTaskEstimator("shared_bottom", labels=["y", "z"], **SETTINGS, **FAST)
    assert {k: clone(est).get_params()[k] for k in SETTINGS} == SETTINGS
    with pytest.warns(UserWarning, match="'user' has .* hashed into 32 ids"):
        est.fit(csv_file)
    assert est.schema_.cat_cardinalities == (33, 11)
    est.save(tmp_path / "model")
    check_fitted_state(json.loads((tmp_path / "model" / "preprocessor.json").read_text()))
    loaded = MultiTaskEstimator.load(tmp_path / "model")
    assert {k: loaded.get_params()[k] for k in SETTINGS} == SETTINGS
    np.testing.assert_array_equal(
        loaded.predict_proba(csv_file)["y"], est.predict_proba(csv_file)["y"]
    )


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_categories", 0, "'max_categories' must be >= 1, got 0"),
        ("hash_buckets", -1, "'hash_buckets' must be >= 1, got -1"),
        ("min_frequency", 1.5, "'min_frequency' must be an integer, got 1.5"),
    ],
)
def test_bad_estimator_settings_are_config_errors(setting, value, message):
    with pytest.raises(ConfigError, match=message):
        MultiTaskEstimator(**{setting: value}).check_params()


def test_train_flags_are_saved_with_the_model(csv_file, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["train", str(csv_file), "--labels", "y", "z", "--model", "shared_bottom"]
    flags = ["--max-categories", "50", "--hash-buckets", "32", "--min-frequency", "2"]
    assert main([*args, *flags, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    check_fitted_state(json.loads((out / "preprocessor.json").read_text()))
    params = json.loads((out / "estimator.json").read_text())["params"]
    assert {k: params[k] for k in SETTINGS} == SETTINGS
    bad = [*args, "--min-frequency", "0", "--out", str(tmp_path / "bad"), "--quiet"]
    assert main(bad) == 2
    assert "'min_frequency' must be >= 1, got 0" in capsys.readouterr().err


def test_compare_and_tune_take_the_settings_as_flags():
    parser = build_parser()
    for command in (["compare", "d.csv", "--models", "mmoe"], ["tune", "d.csv"]):
        args = parser.parse_args([*command, "--labels", "y", "--max-categories", "77"])
        given = given_settings(args, TRAIN_PARAMS)
        assert given == {"max_categories": 77}, command
        config = CompareConfig.from_mapping(
            {"data": ["d.csv"], "labels": ["y"], "models": ["mmoe"], **given}, validate=False
        )
        assert config.train_params()["max_categories"] == 77


def test_config_file_settings_reach_each_run(csv_file, tmp_path):
    """A comparison's config file -> the training settings of every run -> the model."""
    (tmp_path / "grid.yaml").write_text(
        f"data: [{csv_file}]\nlabels: [y, z]\nmodels: [shared_bottom]\nepochs: 1\n"
        "diagnostic_batches: 0\nmax_categories: 50\nhash_buckets: 32\nmin_frequency: 2\n"
    )
    config = CompareConfig.from_mapping(load_config_file(tmp_path / "grid.yaml"))
    from mtlkit.data.loading import load_tables
    from mtlkit.data.splits import split_table

    train, val, test = split_table(load_tables(csv_file, ["y", "z"]), (0.6, 0.2, 0.2))
    cell = Cell("shared_bottom", "joint", 0, {}, "shared_bottom")
    settings = Settings(train_params=config.train_params())
    with pytest.warns(UserWarning, match="hashed into 32 ids"):
        run_one(cell, settings, train, val, test, model_dir=tmp_path / "model")
    state = json.loads((tmp_path / "model" / "preprocessor.json").read_text())
    assert {k: state[k] for k in SETTINGS} == SETTINGS
    (tmp_path / "bad.yaml").write_text(
        "data: [a.csv]\nlabels: [y]\nmodels: [mmoe]\nhash_buckets: 0\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'hash_buckets' must be >= 1"):
        CompareConfig.from_mapping(load_config_file(tmp_path / "bad.yaml"), "bad.yaml")


def test_a_model_folder_saved_before_these_settings_still_loads(tmp_path):
    """model_v0 was saved by mtlkit 8f77496: its preprocessor.json has no min_frequency and
    its estimator.json no vocabulary settings."""
    folder = shutil.copytree(FIXTURES / "model_v0", tmp_path / "model")
    est = MultiTaskEstimator.load(folder)
    assert est.preprocessor_.min_frequency == 1 and est.preprocessor_.max_categories == 1000
    scores = est.predict_proba(FIXTURES / "model_v0_rows.csv")["y"]
    expected = [0.5880420207977295] * 4 + [0.5906969904899597]  # what 8f77496 predicted
    np.testing.assert_allclose(scores[:5], expected, rtol=1e-6)
