"""`mtlkit export`: onnxruntime's outputs equal `mtlkit predict`'s, for mmoe, ple and esmm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlkit.cli.main import main
from mtlkit.data.loading import load_features
from mtlkit.data.preprocessor import Preprocessor
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


def _train(files, model: str, calibration: str = "none") -> str:
    out = files / f"{model}-{calibration}"
    args = ["train", str(files / "train.csv"), "--labels", "click", "conversion"]
    args += ["--model", model, "--epochs", "2", "--calibration", calibration]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    return str(out)


@pytest.mark.parametrize(
    "model, calibration",
    [("mmoe", "none"), ("ple", "none"), ("esmm", "none"), ("esmm", "isotonic"), ("mmoe", "platt")],
)
def test_onnx_outputs_equal_mtlkit_predict(files, model, calibration, capsys):
    """Calibrated models carry their calibration in the graph (esmm: recomposed steps)."""
    model_dir = _train(files, model, calibration)
    onnx_path = files / f"{model}-{calibration}-serving" / "model.onnx"
    assert main(["export", model_dir, "--format", "onnx", "--out", str(onnx_path)]) == 0
    predictions = files / f"{model}-{calibration}.csv"
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
    assert (f"recalibrated ({calibration}" in readme) == (calibration != "none")
    assert "| 0 | city |" in readme and r"x1\_\_missing" in readme  # escaped as in report.md
    assert "`x_cat`: int64, shape (batch, 1)" in readme


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_onnx_contract_describes_the_vocabulary_settings(files):
    """A model trained with max_categories, hash_buckets and min_frequency: the README
    gives the hashed column's buckets and the rare-value rule, and the exported file scores
    rows encoded that way as `mtlkit predict` does."""
    out = files / "vocab"
    args = ["train", str(files / "train.csv"), "--labels", "click", "conversion"]
    flags = ["--max-categories", "2", "--hash-buckets", "8", "--min-frequency", "3"]
    assert main([*args, *flags, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    onnx_path = files / "vocab-serving" / "model.onnx"
    assert main(["export", str(out), "--format", "onnx", "--out", str(onnx_path)]) == 0
    readme = onnx_path.with_name("model.README.md").read_text()
    assert "| 0 | city | 1 + pandas.util.hash_array(value as text, categorize=False) % 8;" in (
        readme
    )
    assert "seen fewer than 3 time(s) (min_frequency)" in readme
    prep = Preprocessor.load(onnx_path.with_name("model.preprocessor.json"))
    assert (prep.max_categories, prep.hash_buckets, prep.min_frequency) == (2, 8, 3)
    data = prep.transform(load_features(files / "new.csv"), require_labels=False)
    session = ort.InferenceSession(str(onnx_path))
    outputs = session.run(None, {"x_cat": data.x_cat.numpy(), "x_num": data.x_num.numpy()})
    assert main(["predict", str(out), str(files / "new.csv"), "--out", str(files / "v.csv")]) == 0
    np.testing.assert_allclose(outputs[0], pd.read_csv(files / "v.csv")["click"], atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # and documented so
def test_torchscript_export_and_clear_errors(files, capsys):
    import torch

    model_dir = _train(files, "mmoe")
    assert main(["export", model_dir, "--format", "torchscript"]) == 0
    path = files / "mmoe-none" / "export" / "model.pt"
    x_cat = torch.tensor([[0], [1], [3]])
    x_num = torch.zeros((3, 6))
    scores = torch.jit.load(str(path))(x_cat, x_num)
    assert [s.shape for s in scores] == [(3,), (3,)]
    assert all(((s > 0) & (s < 1)).all() for s in scores)

    assert main(["export", model_dir, "--format", "tflite"]) == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err
    assert main(["export", str(files / "none"), "--format", "onnx"]) == 2
    assert "holds no saved mtlkit model" in capsys.readouterr().err
