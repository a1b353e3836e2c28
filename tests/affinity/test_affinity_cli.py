"""``mtlkit affinity``: files in, affinity.json and the heatmap page out; errors that teach."""

from __future__ import annotations

import json

import pytest

from mtlkit.cli.main import main
from mtlkit.data.synthetic import make_grouped_synthetic


@pytest.fixture
def grouped_csv(tmp_path):
    path = tmp_path / "tasks.csv"
    make_grouped_synthetic(1500, groups=(2, 2), n_features=10, seed=0).to_csv(path, index=False)
    return path


def test_affinity_writes_json_and_heatmap(grouped_csv, tmp_path, capsys):
    out = tmp_path / "aff"
    labels = ["label0", "label1", "label2", "label3"]
    code = main(
        ["affinity", str(grouped_csv), "--labels", *labels, "--n-groups", "2", "--seeds", "0",
         "1", "--epochs", "2", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    saved = json.loads((out / "affinity.json").read_text())
    assert saved["tasks"] == labels and saved["seeds"] == [0, 1]
    assert len(saved["matrix"]) == len(saved["cosine"]) == 4 and len(saved["groups"]) == 2
    page = (out / "affinity.html").read_text()
    assert "data:image/png;base64," in page and (out / "affinity.png").stat().st_size > 1000
    for group in saved["groups"]:
        assert ", ".join(group) in page
    printed = capsys.readouterr().out
    assert "groups:" in printed and "affinity.json" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "label0"], "at least two --labels"),
        (["--labels", "label0", "label9"], "label9"),
        (["--labels", "label0", "label1", "--n-groups", "3"], "between 1 and the number"),
        (["--labels", "label0", "label1", "--model", "nope"], "nope"),
    ],
)
def test_affinity_errors_are_one_line(grouped_csv, tmp_path, capsys, args, message):
    assert main(["affinity", str(grouped_csv), *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtlkit affinity: error:") and message in err
    assert "Traceback" not in err


def test_affinity_help_explains_the_method(capsys):
    with pytest.raises(SystemExit):
        main(["affinity", "--help"])
    out = capsys.readouterr().out
    assert "TAG" in out and "--n-groups" in out and "affinity.json" in out
