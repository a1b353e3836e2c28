"""The grid: resume after a killed run, report rebuild, refusing a changed config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.evaluation.run_record import RunRecord

SRC = Path(__file__).resolve().parents[2] / "src"
GRID = [
    "compare",
    "synthetic",
    "--rows",
    "800",
    "--epochs",
    "2",
    "--models",
    "shared_bottom",
    "mmoe:n_experts=2",
    "--seeds",
    "0",
    "1",
    "2",
    "--quiet",
]
N_CELLS = 9  # (single_task + 2 models) x 3 seeds


def _compare(out: Path, *extra: str) -> subprocess.Popen:
    # One torch thread, as in this test process (tests/conftest.py), so that the results of
    # the subprocess and of the in-process reference run are bit-identical.
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mtlkit", *GRID, "--out", str(out), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _cell_values(run_dir: Path) -> dict[str, list]:
    out = {}
    for path in (run_dir / "cells").glob("*.json"):
        rows = RunRecord.from_dict(json.loads(path.read_text())).rows()
        out[path.stem] = sorted((r["task"], r["split"], r["metric"], r["value"]) for r in rows)
    return out


def test_a_killed_grid_resumes_without_losing_or_repeating_runs(tmp_path, capsys):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _compare(killed)
    deadline = time.monotonic() + 120
    while not list((killed / "cells").glob("*.json")):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no cell finished in 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _cell_values(killed)
    assert 1 <= len(before) < N_CELLS  # really interrupted mid-way
    assert not list((killed / "cells").glob(".*"))  # no half-written file left behind

    rerun = _compare(killed)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert f"{len(before)} already finished (skipped)" in out
    assert main([*GRID, "--out", str(clean)]) == 0  # in-process: saves a torch start-up

    after, reference = _cell_values(killed), _cell_values(clean)
    assert len(after) == N_CELLS and set(after) == set(reference)
    for cell, values in before.items():
        assert after[cell] == values  # kept, not retrained
        assert values == reference[cell]  # same as without the interruption
    results = pd.read_parquet(killed / "results.parquet")
    per_cell = results.groupby(["run_id", "task", "split", "metric"]).size()
    assert (per_cell == 1).all() and results["run_id"].nunique() == N_CELLS


def test_report_rebuilds_from_saved_runs_and_a_changed_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*GRID[:7], "shared_bottom", "--seeds", "0", "1", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Report:" in printed and "label0" in printed
    (out / "report.html").unlink()
    (out / "results.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()
    page = (out / "report.html").read_text()
    assert "Recommendation" in page and "data:image/png;base64," in page
    assert "mtlkit compare synthetic" in page  # the exact command is recorded
    assert "shared_bottom" in (out / "report.md").read_text()
    assert "val fluct." in (out / "report.md").read_text()  # the stability column

    changed = [a if a != "800" else "900" for a in args]  # rows 800 -> 900
    assert main([*changed, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "n_rows" in err
    fewer = [a if a != "2" else "1" for a in args]  # epochs 2 -> 1: only growing is allowed
    assert main([*fewer, "--out", str(out)]) == 2
    assert "not lower it to 1" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["cells", "config"])
def test_report_on_a_folder_without_a_grid_says_so(tmp_path, capsys, missing):
    if missing == "cells":
        (tmp_path / "config.json").write_text(
            json.dumps({"data": ["synthetic"], "models": ["mmoe"]})
        )
    assert main(["report", str(tmp_path)]) == 2
    assert "mtlkit compare" in capsys.readouterr().err


def test_parallel_jobs_give_the_same_results_as_one_process(tmp_path, capsys):
    args = ["compare", "synthetic", "--rows", "800", "--epochs", "2"]
    args += ["--models", "shared_bottom", "--seeds", "0", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    one, two = _cell_values(tmp_path / "one"), _cell_values(tmp_path / "two")
    assert len(one) == 4  # (single_task + shared_bottom) x 2 seeds
    assert one == two


def test_a_regression_task_is_reported_and_compared_with_report_metric(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["price"] = 2 * x[:, 0] + rng.normal(0, 0.3, 600)
    frame["buy"] = (x[:, 0] + rng.normal(0, 0.5, 600) > 0).astype(int)
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    out = tmp_path / "run"
    args = ["compare", str(tmp_path / "mixed.csv"), "--labels", "price", "buy"]
    assert (
        main(
            [
                *args,
                "--models",
                "mmoe",
                "--seeds",
                "0",
                "1",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()  # Markdown-escaped: roc\_auc shows as roc_auc
    assert "Task price (a regression task) reports no roc\\_auc" in report
    assert "--metric rmse" in report
    assert main(["report", str(out), "--metric", "rmse"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["task"]) == {"price"} and (summary["mean"] > 0).all()
    assert "Task buy (a binary task) reports no rmse" in (out / "report.md").read_text()


def test_mtlkit_report_does_not_load_pytorch(tmp_path):
    out = tmp_path / "run"
    args = [*GRID[:7], "shared_bottom", "--seeds", "0", "--quiet", "--out", str(out)]
    assert main(args) == 0
    code = (
        "import sys; from mtlkit.cli.main import main; "
        f"assert main(['report', {str(out)!r}]) == 0; "
        "assert 'torch' not in sys.modules, 'report imported torch'"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_task_without_labels_in_a_split_fails_before_the_grid_trains(tmp_path, capsys):
    # Before: the grid trained every cell, then could not build its report.
    frame = pd.DataFrame(
        {"x": np.arange(300.0), "a": np.arange(300) % 2, "b": np.where(np.arange(300) < 2, 1, None)}
    )
    frame.loc[1, "b"] = 0
    frame.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "run"
    code = main(
        ["compare", str(tmp_path / "data.csv"), "--labels", "a", "b", "--models", "mmoe"]
        + ["--out", str(out), "--quiet"]
    )
    assert code == 2
    assert "task 'b' has no labelled rows in the" in capsys.readouterr().err
    assert not (out / "cells").exists()


def test_resuming_with_more_epochs_continues_only_the_unconverged_cells(tmp_path, capsys):
    out, fresh = tmp_path / "run", tmp_path / "fresh"
    args = ["compare", "synthetic", "--rows", "600", "--models", "shared_bottom"]
    args += ["--seeds", "0", "1", "--diagnostic-batches", "0", "--quiet"]
    assert main([*args, "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # Two epochs with patience 5 cannot early-stop: every run is flagged, none ranked.
    results = pd.read_csv(out / "results.csv")
    assert "converged" in results and not results["converged"].any()
    assert "no verdict for label0 yet: every run hit the epoch cap" in printed
    assert "is best" not in printed
    assert f"mtlkit compare --resume {out} --epochs 4" in printed
    assert "0/2 †" in (out / "report.md").read_text()
    assert len(list((out / "state").glob("*.pt"))) == 4

    kept = out / "cells" / "single_task__joint__seed0.json"  # pretend it converged
    record = json.loads(kept.read_text())
    record["history"]["converged"] = True
    kept.write_text(json.dumps(record))
    assert main(["compare", "--resume", str(out), "--epochs", "4", "--quiet"]) == 0
    assert "1 already finished (skipped), 3 not converged: continued" in capsys.readouterr().out
    assert json.loads(kept.read_text()) == record  # a converged cell is never retrained
    assert json.loads((out / "config.json").read_text())["epochs"] == 4

    assert main([*args, "--epochs", "4", "--out", str(fresh)]) == 0
    continued, reference = _cell_values(out), _cell_values(fresh)
    for cell in set(continued) - {kept.stem}:
        assert continued[cell] == reference[cell]  # continuing = training 4 epochs at once
        history = json.loads((out / "cells" / f"{cell}.json").read_text())["history"]
        assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]
    commands = (out / "command.txt").read_text().splitlines()
    assert len(commands) == 2 and commands[1].endswith("--epochs 4 --quiet")


def test_cells_written_before_the_label_field_was_renamed_resume_and_report(tmp_path, capsys):
    # Cell files written before RunRecord.model became RunRecord.label hold the label as
    # "model" (and the registry name as "architecture"): resume and report still read them.
    out = tmp_path / "run"
    args = ["compare", "synthetic", "--rows", "600", "--epochs", "1", "--models"]
    args += ["mmoe:n_experts=2", "--seeds", "0", "--diagnostic-batches", "0", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    before = pd.read_csv(out / "results.csv")
    assert {"single_task", "mmoe:n_experts=2"} == set(before["model"])
    old = {}
    for path in (out / "cells").glob("*.json"):
        record = json.loads(path.read_text())
        assert "model" not in record  # the new form
        record["model"] = record.pop("label")
        record["history"]["converged"] = True  # so resuming keeps it
        path.write_text(json.dumps(record))
        old[path.name] = record
    assert {r["model"] for r in old.values()} == {"single_task", "mmoe:n_experts=2"}
    assert {r["architecture"] for r in old.values()} == {"single_task", "mmoe"}
    capsys.readouterr()

    assert main(["compare", "--resume", str(out), "--quiet"]) == 0
    assert "2 already finished (skipped)" in capsys.readouterr().out
    assert {p.name: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")} == old
    (out / "results.csv").unlink()
    assert main(["report", str(out)]) == 0
    after = pd.read_csv(out / "results.csv")
    columns = ["run_id", "model", "architecture", "task", "split", "metric", "value"]
    pd.testing.assert_frame_equal(after[columns], before[columns])
    assert "mmoe:n_experts=2" in (out / "report.md").read_text()
