import pandas as pd

from mtlkit.cli.main import main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "demo" in out and "models" in out


def test_models_lists_the_zoo(capsys):
    assert main(["models", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "mmoe" in out and "n_experts=8" in out


def test_demo_writes_results_and_prints_a_table(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--rows",
            "1500",
            "--epochs",
            "2",
            "--correlations",
            "0.9",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Test ROC-AUC" in out and "mmoe" in out
    run_dir = next(tmp_path.iterdir())
    results = pd.read_parquet(run_dir / "results.parquet")
    assert set(results["model"]) == {"single_task", "shared_bottom", "mmoe"}
    assert (run_dir / "results.csv").is_file() and (run_dir / "summary.json").is_file()
    assert str(run_dir) in out


def test_user_errors_are_reported_without_traceback(tmp_path, capsys):
    code = main(["demo", "--rows", "100", "--correlations", "3", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "correlation" in err and "Traceback" not in err
