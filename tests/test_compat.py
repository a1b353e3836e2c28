"""The original notebook API (mtlkit.compat): -1 labels, epoches, plots and clear errors."""

import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

from mtlkit import (
    ConfigError,
    DataError,
    MultiTaskEstimator,
    compat,
    make_synthetic,
    write_partial_label_files,
)
from mtlkit.compat import CTCVRNet, TrainResult, get_data, mmoe_model, to_table
from mtlkit.training.losses import masked_task_losses

LABELS = ["label0", "label1"]
FAST = {"batch_size": 256}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("original")
    frame = make_synthetic(1200, n_features=6, correlation=0.8, seed=3)
    write_partial_label_files(frame, path, LABELS)
    return path


@pytest.fixture(scope="module")
def data(folder):
    return get_data(folder, labels=LABELS)


def test_get_data_merges_shuffles_and_marks_missing_labels_with_minus_one(folder, capsys):
    frame = get_data(folder, labels=LABELS)
    out = capsys.readouterr().out
    assert "part0_label0.csv (600 rows)" in out and "part1_label1.csv (600 rows)" in out
    assert "features used (6): x0, x1" in out
    assert list(frame.columns) == [f"x{i}" for i in range(6)] + LABELS
    assert len(frame) == 1200 and frame["label0"].dtype.kind == "i"
    assert set(frame["label0"]) == {-1, 0, 1} and (frame["label0"] == -1).sum() == 600
    assert not ((frame["label0"] != -1) & (frame["label1"] != -1)).any()
    # shuffled: the two files' rows are interleaved, not stacked
    assert (frame["label0"].iloc[:600] == -1).sum() not in (0, 600)
    # a single file works too
    single = get_data(folder / "part1_label1.csv", labels=["label1"])
    assert len(single) == 600


def test_minus_one_is_masked_never_a_class(data):
    table = to_table(data, LABELS)
    for spec in table.tasks:
        assert spec.kind == "binary" and spec.classes == (0, 1)
    np.testing.assert_array_equal(table.masks["label0"], data["label0"].to_numpy() != -1)


def test_a_minus_one_row_changes_no_gradient_of_its_task(data):
    """The label1 loss gradient with a -1 row equals the gradient without that row at all,
    while a real label (0 or 1) in its place does change it."""
    model = mmoe_model(6, **FAST)
    model.train(data, LABELS, plot_list=[], epochs=1, verbose=0, plot_dir="unused")
    est = model.estimator
    row = int(np.flatnonzero(data["label1"].to_numpy() == -1)[0])
    batch = data.iloc[:64] if row < 64 else pd.concat([data.iloc[:63], data.iloc[[row]]])
    pos = batch.index.get_loc(row)

    def grads(frame):
        tensors = est.preprocessor_.transform(to_table(frame, LABELS))
        est.model_.zero_grad()
        out = est.model_(tensors.x_cat, tensors.x_num)
        losses = masked_task_losses(est.schema_.tasks, out, tensors.y, tensors.mask)
        losses[1].backward()
        return torch.cat([p.grad.flatten() for p in est.model_.parameters() if p.grad is not None])

    with_minus_one = grads(batch)
    without_row = grads(batch.drop(index=row))
    torch.testing.assert_close(with_minus_one, without_row)
    for value in (0, 1):
        labelled = batch.copy()
        labelled.iloc[pos, labelled.columns.get_loc("label1")] = value
        assert not torch.allclose(grads(labelled), with_minus_one)


def test_train_writes_the_four_plots_and_returns_history_and_metrics(data, tmp_path, capsys):
    model = mmoe_model(6, **FAST)
    result = model.train(
        data,
        LABELS,
        plot_list=["loss", "accuracy", "auc", "pr"],
        epoches=3,
        verbose=0,
        plot_dir=tmp_path,
    )
    out = capsys.readouterr().out
    assert isinstance(result, TrainResult)
    assert len(result.history.epochs) == 3
    assert set(result.test_metrics) == set(LABELS)
    assert result.test_metrics["label0"]["roc_auc"] > 0.6
    assert "training time:" in out
    for name in ("loss", "accuracy", "auc", "pr"):
        path = result.plots[name]
        assert path.name == f"{name}.png" and path.stat().st_size > 1000
        assert path.parent.parent == tmp_path  # a folder of this training's own
        assert str(path) in out
    assert "epochs" not in out.split("training time")[0]  # verbose=0: no progress bar text


def test_epochs_and_epoches(data, tmp_path):
    model = mmoe_model(6, **FAST)
    assert len(model.train(data, LABELS, [], epochs=2, verbose=0).history.epochs) == 2
    assert len(model.train(data, LABELS, [], epoches=1, verbose=0).history.epochs) == 1
    assert len(model.train(data, LABELS, [], epochs=1, epoches=1, verbose=0).history.epochs) == 1
    with pytest.raises(ConfigError, match="epochs=2 and epoches=3"):
        model.train(data, LABELS, [], epochs=2, epoches=3)


def test_user_errors_are_clear(data):
    model = mmoe_model(6)
    with pytest.raises(
        ConfigError,
        match=r"plot name must be one of \['loss', 'accuracy', 'auc', 'pr'\], got 'roc'",
    ):
        model.train(data, LABELS, plot_list=["loss", "roc"], epochs=1)
    with pytest.raises(DataError, match=r"label\(s\) \['label2'\] are not columns"):
        model.train(data, ["label0", "label2"], plot_list=[], epochs=1)
    with pytest.raises(DataError, match="built for 5 features but the data has 6"):
        mmoe_model(5).train(data, LABELS, plot_list=[], epochs=1)
    with pytest.raises(ConfigError, match="num_features must be a positive integer"):
        mmoe_model(0)
    with pytest.raises(ConfigError, match=r"pass \['epochs'\] to train"):
        mmoe_model(6, epochs=3)


def test_mmoe_model_has_the_original_sizes(data):
    model = mmoe_model(6)
    model.train(data, LABELS, plot_list=[], epochs=1, verbose=0)
    net = model.estimator.model_
    assert (
        net.experts.output_dim == 16
        and len(net.gates["label0"](torch.zeros(1, net.encoder.output_dim))[0]) == 8
    )


def test_ctcvrnet_trains_esmm_on_a_funnel(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1500, 5)), columns=[f"f{i}" for i in range(5)])
    click = (frame["f0"] + rng.normal(0, 0.5, 1500) > 0.3).astype(int)
    frame["click"] = click
    frame["buy"] = click * (frame["f1"] > 0).astype(int)
    result = CTCVRNet().train(
        frame, ["click", "buy"], ["loss", "auc"], epoches=2, verbose=0, plot_dir=tmp_path
    )
    assert set(result.test_metrics) == {"click", "buy"} and result.plots["auc"].is_file()
    with pytest.raises(ConfigError, match="two labels"):
        CTCVRNet().train(frame, ["click"], [], epochs=1)


def test_plots_are_shown_inline_in_a_notebook(data, tmp_path, monkeypatch):
    shown = []
    fake = types.ModuleType("IPython.display")
    fake.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    monkeypatch.setattr(compat, "_in_notebook", lambda: True)
    result = mmoe_model(6, **FAST).train(
        data, LABELS, ["loss", "pr"], epochs=1, verbose=0, plot_dir=tmp_path
    )
    assert [type(f).__name__ for f in shown] == ["Figure", "Figure"]
    assert shown[1].axes[0].get_title() == "label0" and result.plots["pr"].is_file()


def test_outside_a_notebook_nothing_is_shown():
    assert compat._in_notebook() is False


def test_the_original_titanic_experiment_runs_with_a_warning(tmp_path, monkeypatch):
    # The original notebook: CTCVRNet().train(data, ["Survived", "Pclass"], ...). Survived and
    # first class are not a funnel (survivors in other classes), so ESMM's product is only an
    # assumption there: compat warns and trains; the core API refuses unless asked.
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    n = 600
    first = rng.random(n) < 0.25
    frame = pd.DataFrame(
        {
            "Age": rng.normal(30, 12, n).round(),
            "Fare": np.where(first, 80.0, 15.0) + rng.gamma(2.0, 5.0, n),
            "Sex": rng.choice(["male", "female"], n),
            "Embarked": rng.choice(["S", "C", "Q"], n),
            "Survived": (rng.random(n) < np.where(first, 0.6, 0.3)).astype(int),
            "Pclass": first.astype(int),
        }
    )
    frame.to_csv(tmp_path / "titanic.csv", index=False)
    data = get_data(tmp_path / "titanic.csv", labels=["Survived", "Pclass"])
    with pytest.warns(UserWarning, match="not a funnel.*only a modelling assumption"):
        result = CTCVRNet().train(
            data, ["Survived", "Pclass"], ["loss", "auc"], epochs=2, verbose=0
        )
    assert set(result.test_metrics) == {"Survived", "Pclass"}
    table = to_table(data, ["Survived", "Pclass"])
    with pytest.raises(DataError, match="funnel order"):
        MultiTaskEstimator("esmm", epochs=1, progress=False).fit(table)
    with pytest.warns(UserWarning, match="funnel_check='warn'"):
        MultiTaskEstimator("esmm", epochs=1, progress=False, funnel_check="warn").fit(table)


def test_get_data_reads_minus_one_in_a_file_as_a_missing_label(tmp_path):
    frame = make_synthetic(300, n_features=3, seed=0)
    frame.loc[::3, "label1"] = -1  # the original's files mark a missing label so
    frame.to_csv(tmp_path / "data.csv", index=False)
    data = get_data(tmp_path / "data.csv", labels=["label0", "label1"])
    assert (data["label1"] == -1).sum() == 100
    table = to_table(data, ["label0", "label1"])
    assert table.masks["label1"].sum() == 200 and table.tasks[1].kind == "binary"
