"""``compare --task-groups``: the grouped configuration (one model per task group) beside
all-in-one and single-task, through the one compare flow (issue #22)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from results_frames import seed_results

from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_grouped_synthetic
from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import RunRecord
from mtlkit.experiments import grid
from mtlkit.experiments.cells import grid_cells, task_groups
from mtlkit.experiments.config import CompareConfig
from mtlkit.experiments.stats import grouping_sentences, summarize_grid

LABELS = ["label0", "label1", "label2"]
GROUPED = "shared_bottom (grouped)"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Planted groups: label0 and label1 share a direction, label2 is orthogonal to both."""
    path = tmp_path_factory.mktemp("data") / "planted.csv"
    make_grouped_synthetic(900, groups=(2, 1), n_features=8, seed=0).to_csv(path, index=False)
    return path


def _compare(data, out, groups: str, *extra: str) -> list[str]:
    return [
        "compare",
        str(data),
        "--labels",
        *LABELS,
        "--models",
        "shared_bottom",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "2",
        "--task-groups",
        groups,
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_explicit_groups_add_a_grouped_entry_to_the_grid_and_its_report(planted, tmp_path):
    out = tmp_path / "run"
    assert main(_compare(planted, out, "label0,label1;label2")) == 0
    records = [RunRecord.from_dict(json.loads(p.read_text())) for p in out.glob("cells/*.json")]
    grouped = [r for r in records if r.model == GROUPED]
    # one run per group and seed: a shared model on {label0, label1}, single-task on label2
    assert sorted((r.architecture, tuple(r.task_kinds), r.seed) for r in grouped) == [
        ("shared_bottom", ("label0", "label1"), 0),
        ("shared_bottom", ("label0", "label1"), 1),
        ("single_task", ("label2",), 0),
        ("single_task", ("label2",), 1),
    ]
    assert all(set(r.metrics["test"]) == set(r.task_kinds) for r in grouped)
    summary = pd.read_csv(out / "summary.csv")
    rows = summary[summary["model"] == GROUPED]
    assert sorted(rows["task"]) == LABELS and rows["n_seeds"].eq(2).all()
    assert rows["p_vs_all_in_one"].notna().all()  # paired with all-in-one, seed by seed
    assert summary[summary["model"] != GROUPED]["p_vs_all_in_one"].isna().all()
    # the comparisons with all-in-one join the family the p-values are corrected over
    assert summary["family_size"].iloc[0] == 2 * 3 + 3
    report = (out / "report.md").read_text()
    assert "{label0, label1} together and {label2} apart" in report
    assert "shared\\_bottom (grouped)" in report or "shared_bottom (grouped)" in report


def test_auto_groups_are_measured_on_the_training_split_only(planted, tmp_path, monkeypatch):
    seen = []
    measure = grid.measure_affinity

    def recorded(table, **kwargs):
        seen.append(table)
        return measure(table, **kwargs)

    monkeypatch.setattr(grid, "measure_affinity", recorded)
    out = tmp_path / "run"
    assert main(_compare(planted, out, "auto")) == 0
    (table,) = seen
    frame = pd.read_csv(planted)
    # the 70% training split: its rows are the training rows of the grid's split
    train, _, _ = grid.load_grid_data(
        CompareConfig.from_mapping(
            {"data": [str(planted)], "labels": LABELS, "models": ["shared_bottom"]}
        )
    )[(None, None)]
    assert len(table) == len(train) == round(0.7 * len(frame))
    pd.testing.assert_frame_equal(table.features, train.features)
    saved = json.loads((out / "affinity.json").read_text())
    assert (out / "affinity.html").is_file()
    cells = {p.stem for p in out.glob("cells/*grouped*.json")}
    assert len(cells) == 2 * len(saved["groups"])  # one run per measured group and seed
    # resuming keeps the measured groups: no second measurement
    assert main(_compare(planted, out, "auto")) == 0
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("label0,labl1;label2", "'labl1', which is not a task. Did you mean 'label1'?"),
        ("label0,label1;label1,label2", "task 'label1' is in two task groups"),
        ("label0,label1", "leave out 'label2'"),
        ("label0,,label1;label2", "without ',' or ';'"),
    ],
)
def test_bad_groups_are_one_line_errors(groups, message):
    values = {"data": ["x.csv"], "labels": LABELS, "models": ["mmoe"], "task_groups": groups}
    with pytest.raises(ConfigError, match="task") as err:
        CompareConfig.from_mapping(values, validate=False)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_groups_of_a_built_in_data_set_are_checked_against_its_tasks(tmp_path, capsys):
    args = ["compare", "synthetic", "--rows", "200", "--models", "shared_bottom", "--quiet"]
    args += ["--task-groups", "label0;lable1", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'lable1', which is not a task. Did you mean 'label1'?" in err
    assert not (tmp_path / "run" / "cells").exists()


def test_config_files_take_the_groups_as_lists_and_save_one_form():
    values = {"data": ["x.csv"], "labels": LABELS, "models": ["mmoe"]}
    listed = CompareConfig.from_mapping({**values, "task_groups": [LABELS[:2], [LABELS[2]]]})
    typed = CompareConfig.from_mapping({**values, "task_groups": "label0, label1 ; label2"})
    assert listed.task_groups == typed.task_groups == "label0,label1;label2"
    assert listed.given_groups == [["label0", "label1"], ["label2"]]
    with pytest.raises(ConfigError, match="give one, e.g. --models mmoe"):
        CompareConfig.from_mapping({**values, "models": ["single_task"], "task_groups": "auto"})


def test_one_group_of_every_task_is_the_all_in_one_model(tmp_path):
    values = {"data": ["x.csv"], "labels": LABELS, "models": ["mmoe"], "seeds": [0, 1]}
    split = CompareConfig.from_mapping({**values, "task_groups": "label0;label1,label2"})
    cells = [c for c in grid_cells(split) if c.label == "mmoe (grouped)"]
    assert sorted((c.model, c.tasks, c.seed) for c in cells) == [
        ("mmoe", ("label1", "label2"), 0),
        ("mmoe", ("label1", "label2"), 1),
        ("single_task", ("label0",), 0),
        ("single_task", ("label0",), 1),
    ]
    whole = CompareConfig.from_mapping({**values, "task_groups": ",".join(LABELS)})
    assert [c.label for c in grid_cells(whole)] == ["single_task"] * 2 + ["mmoe"] * 2
    (sentence,) = grouping_sentences(pd.DataFrame(), task_groups(whole))
    assert "that is the all-in-one model, so no grouped models were trained" in sentence
    # auto: no grouped cells before the affinity is measured into the run folder
    auto = CompareConfig.from_mapping({**values, "task_groups": "auto"})
    assert len(grid_cells(auto, tmp_path)) == 4
    (tmp_path / "affinity.json").write_text(json.dumps({"groups": [LABELS[:2], LABELS[2:]]}))
    assert len(grid_cells(auto, tmp_path)) == 8


def _grouped_summary(grouped: list[float], all_in_one: list[float]) -> pd.DataFrame:
    single = [0.80, 0.81, 0.79, 0.80, 0.81, 0.80]
    per_task = {
        task: {"single_task": single, "mmoe": all_in_one, "mmoe (grouped)": grouped}
        for task in ("a", "b", "c")
    }
    results = seed_results(per_task)
    results["converged"] = True
    return summarize_grid(results)


def test_the_recommendation_names_the_groups_only_when_they_beat_the_simpler_choices():
    groups = [("a", "b"), ("c",)]
    better = _grouped_summary([0.90, 0.91, 0.89, 0.90, 0.91, 0.90], [0.80, 0.82, 0.79] * 2)
    (sentence,) = grouping_sentences(better, groups)
    assert sentence.startswith("On this data, train {a, b} together and {c} apart (mmoe + joint)")
    assert "better than all-in-one for a (" in sentence
    tie = _grouped_summary(
        [0.80, 0.82, 0.79, 0.81, 0.80, 0.81], [0.81, 0.80, 0.80, 0.80, 0.81, 0.80]
    )
    (sentence,) = grouping_sentences(tie, groups)
    assert sentence.startswith("On this data, no grouping beats the simpler choices with mmoe")
    worse = _grouped_summary([0.70, 0.71, 0.69, 0.70, 0.71, 0.70], [0.80, 0.82, 0.79] * 2)
    (sentence,) = grouping_sentences(worse, groups)
    assert "are mixed: worse than all-in-one for a" in sentence
    assert grouping_sentences(better, None) == []
