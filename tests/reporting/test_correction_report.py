"""The correction setting end to end: config file and flag, summary.csv, the report's note, and
'mtlkit report --correction' re-judging a finished grid without training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.errors import ConfigError
from mtlkit.experiments.config import CompareConfig

GRID = [
    "compare",
    "synthetic",
    "--rows",
    "600",
    "--epochs",
    "2",
    "--models",
    "shared_bottom",
    "--seeds",
    "0",
    "1",
    "2",
    "--quiet",
]


def test_the_correction_is_a_setting_with_holm_by_default():
    base = {"data": "synthetic", "models": ["mmoe"]}
    assert CompareConfig.from_mapping(base).correction == "holm"
    assert CompareConfig.from_mapping({**base, "correction": "bh"}).to_dict()["correction"] == "bh"
    with pytest.raises(ConfigError, match=r"'correction' must be one of \['holm', 'bh', 'none'\]"):
        CompareConfig.from_mapping({**base, "correction": "bonferroni"})


def test_summary_and_report_carry_the_correction_and_report_can_change_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*GRID, "--correction", "bh", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # 2 tasks x 1 model compared with single-task: a family of 2.
    note = "p-values are adjusted over the 2 comparisons against single-task by the Benjamini"
    assert note in printed
    summary = pd.read_csv(out / "summary.csv")
    family = summary[summary["model"] != "single_task"]
    assert (family["correction"] == "bh").all() and (family["family_size"] == 2).all()
    p = np.sort(family["p_value"].to_numpy())
    expected = np.minimum(1, np.minimum.accumulate((p * 2 / np.array([1, 2]))[::-1])[::-1])
    np.testing.assert_allclose(np.sort(family["p_adjusted"]), expected)  # BH by hand
    assert (family["significant"] == (family["p_adjusted"] < 0.05)).all()
    assert note in (out / "report.md").read_text() and note in (out / "report.html").read_text()
    assert "| adjusted p |" in (out / "report.md").read_text()

    assert main(["report", str(out), "--correction", "none"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    family = summary[summary["model"] != "single_task"]
    np.testing.assert_array_equal(family["p_adjusted"], family["p_value"])
    assert "p-values are not corrected for the 2 comparisons" in (out / "report.md").read_text()

    with pytest.raises(SystemExit):  # argparse refuses it, naming the choices
        main(["report", str(out), "--correction", "bonferroni"])
    assert "invalid choice: 'bonferroni'" in capsys.readouterr().err
