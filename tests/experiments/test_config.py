"""A bad grid fails before any training, with a message naming the bad setting."""

from __future__ import annotations

import argparse
import json

import pytest

from mtlkit.cli.compare import add_parser, resolve_config
from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_synthetic
from mtlkit.errors import ConfigError
from mtlkit.experiments.config import CompareConfig, ModelChoice
from mtlkit.experiments.config_files import load_config_file


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "data.csv"
    make_synthetic(300, n_features=5, seed=0).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthetic", "--models", "mmeo"], "Did you mean 'mmoe'?"),
        (["synthetic", "--models", "mmoe", "--epochs", "-3"], "'epochs' must be >= 1"),
        (["synthetic", "--models", "mmoe:n_expert=4"], "has no setting(s) ['n_expert']"),
        (["synthetic", "--models", "mmoe", "--strategies", "pcgard"], "Did you mean 'pcgrad'?"),
        (["synthetic", "--models", "mmoe", "--strategies", "alternating:ordr=x"], "'ordr'"),
        (["synthetic", "--models", "mmoe", "--strategies", "joint:weights"], "NAME:key=value"),
        (["synthetic", "--models", "mmoe", "--correlations", "1.5"], "'correlations' must be <= 1"),
        (["synthetic", "--models", "mmoe", "--labels", "income"], "'income'"),
        (["nowhere.csv", "--models", "mmoe", "--labels", "a"], "does not exist"),
        (["synthetic", "--models", "mmoe", "--label-fractions", "label0=1,.1,.1"], "twice"),
        (["synthetic", "--models", "mmoe", "--label-fractions", "label0=1.5"], "must be <= 1"),
        (["synthetic", "--models", "mmoe", "--label-fractions", "label0=0"], "must be > 0"),
        (["synthetic", "--models", "mmoe", "--label-fractions", "label0"], "must read like"),
        (["synthetic", "--models", "mmoe", "--label-fractions", "x=0.5"], "name task 'x'"),
        (
            ["synthetic", "--rows", "100", "--models", "mmoe", "--label-fractions", "label0=0.001"],
            "leaves none",
        ),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["compare", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtlkit compare: error:") and message in err
    assert "Traceback" not in err
    assert not (out / "cells").exists()  # nothing trained, nothing saved


def test_label_missing_from_the_files_fails_before_training(tmp_path, capsys, csv_file):
    out = tmp_path / "run"
    code = main(
        ["compare", str(csv_file), "--labels", "label0", "income", "--models", "mmoe"]
        + ["--out", str(out), "--quiet"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "['income']" in err and "Check the spelling" in err
    assert not out.exists()  # the run folder is not even created


def test_yaml_and_toml_configs_give_the_same_grid(tmp_path):
    (tmp_path / "grid.yaml").write_text(
        "data: synthetic\nmodels: [shared_bottom, {model: mmoe, params: {n_experts: 4}, "
        "label: mmoe-4}]\nseeds: [0, 1]\ncorrelations: [0.9, 0.1]\nepochs: 3\n"
    )
    (tmp_path / "grid.toml").write_text(
        'data = "synthetic"\nseeds = [0, 1]\ncorrelations = [0.9, 0.1]\nepochs = 3\n'
        'models = ["shared_bottom", {model = "mmoe", params = {n_experts = 4}, label = "mmoe-4"}]\n'
    )
    configs = [
        CompareConfig.from_mapping(load_config_file(tmp_path / name))
        for name in ("grid.yaml", "grid.toml")
    ]
    assert configs[0] == configs[1]
    assert configs[0].models[1] == ModelChoice("mmoe", {"n_experts": 4}, "mmoe-4")
    assert [m.label for m in configs[0].grid_models()] == ["single_task", "shared_bottom", "mmoe-4"]


def test_unknown_config_keys_and_relative_paths(tmp_path, csv_file):
    (tmp_path / "grid.yaml").write_text(
        "data: data.csv\nlabels: [label0]\nmodels: [mmoe]\nepoch: 3\n"
    )
    with pytest.raises(ConfigError, match="unknown setting 'epoch'.*Did you mean 'epochs'"):
        CompareConfig.from_mapping(load_config_file(tmp_path / "grid.yaml"), "grid.yaml")
    (tmp_path / "grid.yaml").write_text("data: data.csv\nlabels: [label0]\nmodels: [mmoe]\n")
    config = CompareConfig.from_mapping(load_config_file(tmp_path / "grid.yaml"))
    assert config.data == [str(csv_file)]  # relative to the config file's folder
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(tmp_path / "bad.yaml")


def test_cli_model_settings_are_parsed_as_values():
    choice = ModelChoice.parse("mmoe:n_experts=4:expert_hidden=[8, 4]")
    assert choice.params == {"n_experts": 4, "expert_hidden": [8, 4]}
    assert choice.label == "mmoe:n_experts=4:expert_hidden=[8, 4]"
    with pytest.raises(ConfigError, match="NAME:key=value"):
        ModelChoice.parse("mmoe:4")


def test_strategy_settings_reach_the_strategy(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["compare", "synthetic", "--rows", "600", "--epochs", "1", "--models", "mmoe"]
    args += ["--strategies", "joint:weights=[1,3]", "--seeds", "0", "--out", str(out), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    cell = next((out / "cells").glob("mmoe__joint*"))
    history = json.loads(cell.read_text())["history"]
    assert history["epochs"][0]["task_weights"] == {"label0": 1.0, "label1": 3.0}


def test_label_fractions_from_a_config_file_or_the_command_line(tmp_path):
    (tmp_path / "grid.yaml").write_text(
        "data: synthetic\nmodels: [mmoe]\nlabel_fractions: {label0: [1.0, 0.1, 0.02]}\n"
    )
    from_file = CompareConfig.from_mapping(load_config_file(tmp_path / "grid.yaml"))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["compare", "synthetic", "--models", "mmoe", "--label-fractions", "label0=1,0.1,0.02"]
    )
    from_cli = resolve_config(args)
    assert from_file.to_dict() == from_cli.to_dict()
    assert from_cli.scarce_task == "label0"
    assert from_cli.label_fraction_values() == [1.0, 0.1, 0.02]
    with pytest.raises(ConfigError, match="one task"):
        CompareConfig.from_mapping(
            {"data": "synthetic", "models": ["mmoe"], "label_fractions": {"a": [1], "b": [1]}}
        )
