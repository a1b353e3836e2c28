"""`mtlkit export`: onnxruntime's outputs equal `mtlkit predict`'s, for mmoe, ple and esmm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.data.features import Preprocessor
from mtlkit.data.loading import load_features
from mtlkit.data.synthetic import make_funnel

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A click -> conversion funnel with a categorical column and missing numbers (so the
    inputs hold category ids, missing ids and missing indicators), and unlabelled new rows
    with a category never seen in training."""
    folder = tmp_path_factory.mktemp("export")
    frame = make_funnel(900, n_features=5, seed=0)
    rng = np.random.default_rng(0)
    frame["city"] = rng.choice(["paris", "oslo", "rome", None], len(frame))
    frame.loc[::7, "x1"] = np.nan
    frame.to_csv(folder / "train.csv", index=False)
    new = frame.drop(columns=["click", "conversion"]).head(200).copy()
    new.loc[:9, "city"] = "lima"
    new.to_csv(folder / "new.csv", index=False)
    return folder


def _train(files, model: str) -> str:
    out = files / model
    args = ["train", str(files / "train.csv"), "--labels", "click", "conversion"]
    assert main([*args, "--model", model, "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    return str(out)


@pytest.mark.parametrize("model", ["mmoe", "ple", "esmm"])
def test_onnx_outputs_equal_mtlkit_predict(files, model, capsys):
    model_dir = _train(files, model)
    onnx_path = files / f"{model}-serving" / "model.onnx"
    assert main(["export", model_dir, "--format", "onnx", "--out", str(onnx_path)]) == 0
    predictions = files / f"{model}.csv"
    assert main(["predict", model_dir, str(files / "new.csv"), "--out", str(predictions)]) == 0
    expected = pd.read_csv(predictions).drop(columns="source")

    # Encode the rows as the README next to the file says, then run it without mtlkit.
    prep = Preprocessor.load(onnx_path.with_name("model.preprocessor.json"))
    data = prep.transform(load_features(files / "new.csv"), require_labels=False)
    session = ort.InferenceSession(str(onnx_path))
    assert [i.shape[0] for i in session.get_inputs()] == ["batch", "batch"]
    names = [o.name for o in session.get_outputs()]
    assert names == list(expected.columns)  # conversion_given_click too for esmm
    outputs = session.run(None, {"x_cat": data.x_cat.numpy(), "x_num": data.x_num.numpy()})
    for name, values in zip(names, outputs):
        np.testing.assert_allclose(values, expected[name], atol=1e-5, rtol=0)
    readme = onnx_path.with_name("model.README.md").read_text()
    assert "| 0 | city |" in readme and r"x1\_\_missing" in readme  # escaped as in report.md
    assert "`x_cat`: int64, shape (batch, 1)" in readme


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_and_clear_errors(files, capsys):
    import torch

    model_dir = _train(files, "mmoe")
    assert main(["export", model_dir, "--format", "torchscript"]) == 0
    path = files / "mmoe" / "export" / "model.pt"
    x_cat = torch.tensor([[0], [1], [3]])
    x_num = torch.zeros((3, 6))
    scores = torch.jit.load(str(path))(x_cat, x_num)
    assert [s.shape for s in scores] == [(3,), (3,)]
    assert all(((s > 0) & (s < 1)).all() for s in scores)

    assert main(["export", model_dir, "--format", "tflite"]) == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err
    assert main(["export", str(files / "none"), "--format", "onnx"]) == 2
    assert "holds no saved mtlkit model" in capsys.readouterr().err
