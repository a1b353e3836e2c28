"""Equal tuning budget: every model x strategy gets the same Optuna trials on the validation
split, the cells train with the tuned values, the test split is never read, a killed study
resumes without repeating trials, and `mtlkit tune` saves settings `mtlkit train` reuses."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest

from mtlkit.cli.compare import resolve_config
from mtlkit.cli.main import build_parser, main
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.synthetic import make_synthetic
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments import grid
from mtlkit.experiments.backends import make_backend
from mtlkit.experiments.cells import Cell, grid_cells
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.grid import load_grid_data, prepare_run_dir, run_grid, tune_grid
from mtlkit.experiments.study import FINISHED, StudySpec, _objective, run_study, storage
from mtlkit.experiments.tuning_plan import (
    STORAGE_FILE,
    TUNING_DIR,
    TuneConfig,
    load_studies,
    search_space,
)
from mtlkit.models import create
from mtlkit.reporting.report import build_report

SRC = Path(__file__).resolve().parents[2] / "src"
GRID = {
    "data": "synthetic",
    "n_rows": 600,
    "epochs": 2,
    "models": ["shared_bottom", "mmoe:n_experts=2"],
    "seeds": [0, 1],
    "tune": {"trials": 3},
}


def _finished(run_dir: Path) -> dict[str, list[tuple]]:
    """Per study of ``run_dir``: its finished trials as (number, params, value)."""
    url = f"sqlite:///{run_dir / TUNING_DIR / STORAGE_FILE}"
    out = {}
    for name in optuna.get_all_study_names(url):
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(states=FINISHED)
        out[name] = [(t.number, t.params, t.value) for t in trials]
    return out


def test_every_model_gets_the_same_budget_and_its_cells_train_with_the_tuned_values(tmp_path):
    # Also: studies run in parallel processes give the same tuned values.
    config = CompareConfig.from_mapping(GRID)
    data = load_grid_data(config)
    prepare_run_dir(config, tmp_path)
    assert len(run_grid(config, tmp_path, data, make_backend("local"), progress=False)) == 6
    trials = _finished(tmp_path)
    studies = {"single_task__joint", "shared_bottom__joint", "mmoe-n_experts=2__joint"}
    assert set(trials) == studies
    assert all(len(t) == 3 for t in trials.values())  # the same budget, baseline included
    assert all("n_experts" not in params for _, params, _ in trials["mmoe-n_experts=2__joint"])

    records = {r.study: r for r in load_studies(tmp_path)}
    train = data[(None, None)][0]
    schema = Preprocessor().fit(train).schema()
    for path in (tmp_path / "cells").glob("*.json"):
        cell = RunRecord.from_dict(json.loads(path.read_text()))
        record = records[f"{cell.label.replace(':', '-')}__joint"]
        best = record.best
        epoch = cell.history.epochs[0]
        assert epoch.lr == pytest.approx(best["train"]["lr"])
        assert epoch.steps == math.ceil(len(train.features) / best["train"]["batch_size"])
        given = {"n_experts": 2} if cell.architecture == "mmoe" else {}
        model = create(cell.architecture, schema, **given, **best["model"])
        assert cell.n_params == sum(p.numel() for p in model.parameters())

    # Studies in parallel processes (sharing the SQLite file) find what one process finds.
    parallel_jobs = make_backend("local", jobs=2)
    assert tune_grid(config, tmp_path / "parallel", data, parallel_jobs, progress=False) == 3
    parallel = {r.study: (r.best, r.best_value) for r in load_studies(tmp_path / "parallel")}
    assert parallel == {r.study: (r.best, r.best_value) for r in records.values()}

    report = build_report(tmp_path)
    page = (tmp_path / "report.md").read_text()
    assert "## Tuning" in page and "same budget: 3 Optuna trials" in page
    assert "tuning_trials.png" in page
    assert report.html.is_file()


class Untouchable:
    """A stand-in for the test split: any use of it fails the test."""

    def __getattribute__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")

    def __iter__(self):
        raise AssertionError("the test split was read (iter)")

    def __bool__(self):
        raise AssertionError("the test split was read (bool)")


def test_tuning_never_reads_the_test_split(tmp_path, monkeypatch, capsys):
    load = grid.load_splits
    monkeypatch.setattr(grid, "load_splits", lambda *a, **k: (*load(*a, **k)[:2], Untouchable()))
    config = CompareConfig.from_mapping({**GRID, "models": ["shared_bottom"], "epochs": 1})
    data = grid.load_grid_data(config)
    assert grid.tune_grid(config, tmp_path / "grid", data, make_backend("local"), False) == 2
    args = ["tune", "synthetic", "--rows", "600", "--model", "shared_bottom", "--trials", "2"]
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "one"), "--quiet"]) == 0
    assert (tmp_path / "one" / "best.json").is_file()


def _open_storage(run_dir: Path) -> str:
    try:
        storage(run_dir)
    except Exception as err:  # reported by name in the assertion below
        return type(err).__name__
    return "ok"


def test_processes_opening_a_new_storage_at_once_all_get_it(tmp_path):
    # Parallel workers (and the grid's progress count) open the same new file; the losers of
    # the race to create the tables or stamp their version must retry, not fail. Workers come
    # from a fork server: forking this multi-threaded test process could deadlock a worker
    # (it did, now and then), and a pool waits for ever on a worker that died.
    with multiprocessing.get_context("forkserver").Pool(4) as pool:
        for i in range(6):
            opened = pool.map_async(_open_storage, [tmp_path / str(i)] * 4).get(timeout=120)
            assert opened == ["ok"] * 4


def _compare(out: Path) -> subprocess.Popen:
    # One torch thread, as in this test process (tests/conftest.py): bit-identical results.
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    args = ["compare", "synthetic", "--rows", "600", "--epochs", "2", "--models"]
    args += ["shared_bottom", "--seeds", "0", "--tune", "3", "--quiet", "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "mtlkit", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _poll_finished(run_dir: Path) -> int:
    # A plain SQL count (milliseconds): loading the studies through Optuna takes longer than
    # a trial of this tiny grid, so on a quiet machine every trial finished before the kill.
    try:
        with closing(sqlite3.connect(run_dir / TUNING_DIR / STORAGE_FILE, timeout=1)) as db:
            return db.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:  # the file is being created
        return 0


def test_a_killed_tuning_grid_resumes_without_repeating_trials(tmp_path):
    killed = tmp_path / "killed"
    proc = _compare(killed)
    deadline = time.monotonic() + 180
    while not (killed / TUNING_DIR / STORAGE_FILE).is_file() or not _poll_finished(killed):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no trial finished in 180 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _finished(killed)
    assert 1 <= sum(map(len, before.values())) < 6  # (single_task + shared_bottom) x 3

    rerun = _compare(killed)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    after = _finished(killed)
    assert all(len(t) == 3 for t in after.values()) and len(after) == 2
    for name, trials in before.items():
        assert after[name][: len(trials)] == trials  # kept, not run again

    clean = tmp_path / "clean"
    args = ["compare", "synthetic", "--rows", "600", "--epochs", "2", "--models"]
    args += ["shared_bottom", "--seeds", "0", "--tune", "3", "--quiet", "--out", str(clean)]
    assert main(args) == 0
    resumed = {r.study: (r.best, r.best_value) for r in load_studies(killed)}
    reference = {r.study: (r.best, r.best_value) for r in load_studies(clean)}
    assert resumed == reference  # the interruption changed nothing


def test_mtlkit_tune_prints_and_saves_settings_that_train_reuses(tmp_path, capsys):
    make_synthetic(600, n_features=5, seed=0).to_csv(tmp_path / "d.csv", index=False)
    data = [str(tmp_path / "d.csv"), "--labels", "label0", "label1"]
    out = tmp_path / "study"
    args = ["tune", *data, "--model", "mmoe:n_experts=2", "--trials", "2", "--epochs", "1"]
    assert main([*args, "--batch-size", "128", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert best["model"] == "mmoe" and best["model_params"]["n_experts"] == 2  # given: kept
    assert best["train_params"]["batch_size"] == 128  # given on the command line: kept
    assert best["tuning"]["keep"] == ["batch_size"] and best["tuning"]["trials"] == 2
    assert "expert_hidden" in best["model_params"] and best["train_params"]["lr"] != 1e-3

    command = next(line for line in printed.splitlines() if "mtlkit train" in line)
    words = shlex.split(command.replace("MODEL_DIR", str(tmp_path / "printed")))
    assert main([*words[1:], "--quiet"]) == 0
    assert (
        main(["train", *data, "--params", str(out / "best.json"), "--out", str(tmp_path / "m")])
        == 0
    )
    for folder in ("printed", "m"):
        saved = json.loads((tmp_path / folder / "estimator.json").read_text())["params"]
        assert saved["lr"] == pytest.approx(best["train_params"]["lr"])
        assert saved["expert_hidden"] == best["model_params"]["expert_hidden"]
        assert saved["n_experts"] == 2 and saved["batch_size"] == 128


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tune", "0"], "'trials' must be >= 1"),
        (["--tune", "2", "--tune-keep", "lrr"], "tune keep names ['lrr']"),
        (["--tune-seed", "1"], "give the tuning budget (--tune N)"),
        (["--config", "CONFIG"], "Did you mean 'trials'?"),
    ],
)
def test_bad_tune_settings_fail_before_training(tmp_path, capsys, extra, message):
    config = tmp_path / "grid.yaml"
    config.write_text("data: synthetic\nmodels: [mmoe]\ntune: {trails: 3}\n")
    extra = [str(config) if e == "CONFIG" else e for e in extra]
    out = tmp_path / "run"
    assert main(["compare", "synthetic", "--models", "mmoe", *extra, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_each_data_variant_gets_its_own_study():
    config = CompareConfig.from_mapping(
        {**GRID, "label_fractions": {"label1": [1.0, 0.1]}, "correlations": [0.5]}
    )
    studies = {c.study_id for c in grid_cells(config)}
    assert len(studies) == 2 * 3  # fractions x (single_task, shared_bottom, mmoe)
    assert "corr+0.50__frac0.1__single_task__joint" in studies


def test_the_search_space_leaves_out_what_the_user_gave():
    names = {d.name for d in search_space("mmoe", "cagrad", {"n_experts": 4}, {}, ["dropout"])}
    assert {"lr", "batch_size", "weight_decay", "expert_hidden", "cagrad.c"} <= names
    assert not {"n_experts", "dropout", "top_k"} & names  # given, kept, no search space
    assert "cagrad.c" not in {d.name for d in search_space("mmoe", "cagrad", {}, {"c": 0.4})}

    args = build_parser().parse_args(
        ["compare", "synthetic", "--models", "mmoe", "--tune", "5", "--batch-size", "256"]
    )
    config = resolve_config(args)
    assert config.tune == TuneConfig(trials=5, keep=["batch_size"])
    assert config.train.batch_size == 256


def _tiny_splits():
    from mtlkit.data.loading import load_tables
    from mtlkit.data.splits import split_table

    frame = make_synthetic(500, n_features=5, seed=1)
    return split_table(load_tables(frame, ["label0", "label1"]), seed=0)


def test_a_trial_the_pruner_stops_ends_after_its_first_epoch():
    train, val, _ = _tiny_splits()
    cell = Cell("shared_bottom", "joint", 0, {}, "shared_bottom")
    spec = StudySpec(cell, TuneConfig(trials=1), {"epochs": 5})
    reported = []

    class Pruned(optuna.trial.FixedTrial):
        def report(self, value, step):
            reported.append((step, value))

        def should_prune(self):
            return True

    params = {"lr": 1e-3, "batch_size": 128, "weight_decay": 0.0, "bottom_hidden": "[32]"}
    params |= {"tower_hidden": "[8]", "embedding_dim": 4, "dropout": 0.0}
    with pytest.raises(optuna.TrialPruned):
        _objective(spec, spec.space(), train, val)(Pruned(params))
    assert [step for step, _ in reported] == [1] and math.isfinite(reported[0][1])


def test_importances_need_enough_finished_trials(tmp_path):
    train, val, _ = _tiny_splits()
    settings = {"epochs": 1, "batch_size": 128}
    few = StudySpec(Cell("shared_bottom", "joint", 0, {}, "few"), TuneConfig(trials=2), settings)
    cell = Cell("shared_bottom", "joint", 0, {}, "enough")
    enough = StudySpec(cell, TuneConfig(trials=5), settings)
    assert run_study(few, train, val, tmp_path)[0].importances is None
    record, ran = run_study(enough, train, val, tmp_path)
    assert ran == 5 and record.count("COMPLETE") == 5
    assert (record.study, record.model, record.architecture) == (
        "enough__joint",
        "enough",
        cell.model,
    )
    assert set(record.importances) == {d.name for d in enough.space()}
    assert sum(record.importances.values()) == pytest.approx(1.0)
    assert run_study(enough, train, val, tmp_path)[1] == 0  # finished: nothing runs again
    assert storage(tmp_path).get_all_studies()  # both in the run folder's one file
