"""The reproduction scripts of docs/reproductions.md, each run end to end on a tiny setting.

They run in a temporary folder (their ``runs/`` and ``docs/figures/`` paths are relative), so
the committed figures are not touched.
"""

from __future__ import annotations

import gzip
import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def run_script(tmp_path, monkeypatch):
    """``run_script(name, *args)`` runs ``benchmarks/<name>.py`` as ``__main__`` in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def run(name: str, *args: str) -> None:
        monkeypatch.setattr(sys, "argv", [name, *args])
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")

    return run


def test_mmoe_synthetic_chooses_the_rate_on_seed_0_and_runs_only_it_on_the_other_seeds(
    run_script, tmp_path
):
    out = tmp_path / "mmoe"
    run_script(
        "reproduce_mmoe_synthetic",
        "--seeds",
        "2",
        "--rows",
        "300",
        "--epochs",
        "2",
        "--out",
        str(out),
    )
    results = pd.read_csv(out / "results.csv")
    rates = results.groupby(["seed", "model"])["lr"].nunique()
    assert (rates.loc[0] == 3).all() and (rates.loc[1] == 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6 * 3 and summary["n"].eq(2).all()
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == 6 * 3 and pairs["wins"].str.endswith("/2").all()
    assert (tmp_path / "docs" / "figures" / "mmoe_synthetic.png").stat().st_size > 0


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # Levene test on 2 seeds
def test_observations_tables_carry_both_stability_columns(run_script, tmp_path):
    out = tmp_path / "obs"
    args = ["--rows", "600", "--seeds", "2", "--funnel-seeds", "2", "--correlations", "0.5"]
    run_script("reproduce_observations", *args, "--epochs", "3", "--out", str(out))
    tables = (out / "tables.md").read_text()
    assert "alternating vs joint" in tables and "Levene test" in tables
    assert "std over seeds" in tables and "val fluct." in tables
    summary = pd.read_csv(out / "funnel" / "compare" / "summary.csv")
    assert set(summary["model"]) == {"single_task", "esmm", "mmoe"}
    assert summary["val_fluctuation"].notna().all()
    figures = tmp_path / "docs" / "figures"
    for name in ("joint_vs_alternating.png", "esmm_vs_mmoe_stability.png"):
        assert (figures / name).stat().st_size > 0


def test_esmm_scores_both_pcvr_estimates_on_every_setting_and_resumes(run_script, tmp_path):
    out = tmp_path / "esmm"
    args = ["--rows", "10000", "--seeds", "2", "--epochs", "2", "--out", str(out)]
    run_script("reproduce_esmm", *args)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * 3 * 2 * 2 * 2  # encodings x click rates x CVRs x seeds x models
    assert runs["mean_pred"].between(0, 1).all() and runs["auc_all"].between(0, 1).all()
    assert len(pd.read_csv(out / "summary.csv")) == 2 * 3 * 2
    assert (tmp_path / "docs" / "figures" / "esmm_vs_base.png").stat().st_size > 0
    before = (out / "runs.csv").read_text()
    run_script("reproduce_esmm", *args)  # every run is recorded: nothing is fitted again
    assert (out / "runs.csv").read_text() == before


def test_census_tunes_every_model_with_the_batch_size_kept(run_script, tmp_path, census_path):
    sample = tmp_path / "census-sample.gz"
    with gzip.open(census_path, "rt") as source:
        lines = [next(source) for _ in range(3000)]
    sample.write_bytes(gzip.compress("".join(lines).encode()))
    out = tmp_path / "census"
    run_script(
        "reproduce_census",
        *["--data", str(sample), "--seeds", "2", "--epochs", "3", "--tune", "1"],
        *["--batch-size", "256", "--out", str(out)],
    )
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 2 * 2 * 6 and table["seeds"].eq(2).all()
    income = table[(table["group"] == 1) & (table["task"] == "income")]
    assert income["paper_value"].notna().sum() == 5  # PLE is not in the paper
    assert table[table["task"] == "marital"]["mean"].gt(0.85).all()  # learned in 3 epochs
    for group in (1, 2):
        tuned = list((out / f"group{group}" / "tuning").glob("*.json"))
        assert len(tuned) == 6
        for path in tuned:
            study = json.loads(path.read_text())
            assert study["tune"]["trials"] == 1 and "batch_size" not in study["best"]["train"]
    assert (tmp_path / "docs" / "figures" / "census_tune1.png").stat().st_size > 0
