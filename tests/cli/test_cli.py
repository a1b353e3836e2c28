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
            "--seeds",
            "0",
            "--out",
            str(tmp_path / "demo"),
            "--jobs",
            "1",  # in this process: no worker start-up
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "demo"
    assert "Test roc_auc" in out and "mmoe" in out
    results = pd.read_parquet(run_dir / "results.parquet")
    assert set(results["model"]) == {"single_task", "shared_bottom", "mmoe"}
    assert set(results["label_fraction"]) == {1.0, 0.1, 0.02}  # label0 made scarce
    assert (run_dir / "summary.csv").is_file() and (run_dir / "report.html").is_file()
    assert (run_dir / "plots" / "metric_vs_label_fraction.png").is_file()
    # Two epochs cannot converge: no winner, the command that finishes the runs instead.
    assert "Label scarcity at task correlation +0.90: no verdict for label0 yet" in out
    assert f"mtlkit compare --resume {run_dir} --epochs 4" in out
    assert out.strip().splitlines()[-1] == f"Report: {run_dir / 'report.html'}"


def test_user_errors_are_reported_without_traceback(tmp_path, capsys):
    code = main(["demo", "--rows", "100", "--correlations", "3", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "correlation" in err and "Traceback" not in err


def test_strategies_lists_every_strategy_with_its_settings(capsys):
    from mtlkit.training.strategies import available_strategies

    assert main(["strategies", "--verbose"]) == 0
    out = capsys.readouterr().out
    for name in available_strategies():
        assert name in out
    assert "c=0.5" in out and "rescale=1" in out and "order=round_robin" in out


def test_compare_help_is_generated_from_the_declared_settings(capsys):
    import pytest

    from mtlkit.training.settings import TrainConfig

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    for p in TrainConfig.params():
        if p.name not in ("seed", "progress"):
            assert "--" + p.name.replace("_", "-") in out
    assert "strategies: " in out and "pcgrad" in out and "uncertainty" in out
