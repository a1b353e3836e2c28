"""examples/quickstart.ipynb runs top to bottom in the project's environment, and its outputs
show what the notebook promises: the partial-label files, the comparison's verdict, a trained
model's test metrics and predictions on new rows."""

import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed or displayed, as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
    return "".join(parts)


def test_committed_notebook_has_no_outputs():
    """The notebook is kept without outputs: what it shows comes from running it (here)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert [c for c in cells if c["cell_type"] == "code" and c.get("outputs")] == []


def test_quickstart_notebook_runs_and_shows_the_verdict(tmp_path, monkeypatch):
    # The kernel is this environment's Python: jupyter's "python3" kernel runs `python`
    # from PATH, so put this interpreter's folder first.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One torch thread: on a shared machine (CI, the 2-core development box) torch's threads
    # spin waiting for each other, which made this notebook ~10x slower (docs/speed.md).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError on a cell that fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [out for c in code for out in c.outputs if out.output_type == "error"]
    assert errors == []
    outputs = [_text(c) for c in code]
    assert Path(outputs[0].strip()).resolve() == Path(sys.executable).resolve()
    everything = "\n".join(outputs)

    # 1. Two files, each with one label column, loaded into one table with both tasks.
    assert "part0_label0.csv" in everything and "part1_label1.csv" in everything
    assert "label0: labelled on 600 rows" in everything
    assert "label1: labelled on 600 rows" in everything
    # 2-3. The comparison ran and its verdict speaks about both tasks and the baseline.
    verdict = next(o for o in outputs if o.startswith("Recommendation:"))
    assert "label0" in verdict and "label1" in verdict and "single-task" in verdict
    assert "shared_bottom" in everything and "single_task" in everything
    # 4. A trained model's test metrics, and predictions for the 400 new rows.
    assert "label0: test ROC-AUC 0." in everything
    assert "label0: 400 predictions" in everything and "label1: 400 predictions" in everything
