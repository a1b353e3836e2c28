"""`mtlkit compare` on a built-in data set given as a local copy."""

import pandas as pd

from mtlkit.cli.main import main


def test_compare_runs_on_a_local_copy_of_a_builtin_data_set(tmp_path, census_file, capsys):
    path, _ = census_file
    out = tmp_path / "run"
    args = ["compare", "census-income", "--dataset-path", str(path), "--dataset-option", "group=1"]
    args += ["--models", "shared_bottom", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0, capsys.readouterr().err
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["task"]) == {"income", "marital"}
    assert set(results["model"]) == {"single_task", "shared_bottom"}


def test_dataset_options_are_refused_for_files_and_unknown_options_named(
    tmp_path, census_file, capsys
):
    path, _ = census_file
    base = ["--models", "mmoe", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(["compare", str(path), "--labels", "a", "--dataset-option", "group=2", *base]) == 2
    assert "only apply to a built-in data set" in capsys.readouterr().err
    bad = ["compare", "census-income", "--dataset-path", str(path), "--dataset-option", "grop=2"]
    assert main([*bad, *base]) == 2
    assert "grop" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
