"""Export a saved model for serving without mtlkit: ONNX, or TorchScript.

:func:`export_model` writes the model as one file taking the encoded inputs ``x_cat``
(int64) and ``x_num`` (float32) with a dynamic batch axis and returning the scores of
``predict_proba`` (:class:`~mtlkit.export.scores.ScoreModule`, with the model's fitted
calibration in the graph), checks the file's outputs
against PyTorch's on random rows, and writes the preprocessor's JSON and a README of the
input contract next to it. Formats are plug-ins (:data:`FORMATS`, one module each in
:mod:`.formats`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtlkit.errors import MtlkitError
from mtlkit.export.base import FORMATS
from mtlkit.export.contract import contract_readme
from mtlkit.export.scores import ScoreModule, example_inputs
from mtlkit.files import atomic_write_bytes, atomic_write_text, check_output_file

#: Largest difference allowed between the exported file's outputs and PyTorch's.
TOLERANCE = 1e-5


@dataclass
class Exported:
    """The files written: the model, the preprocessor's JSON, the README of the inputs."""

    model: Path
    preprocessor: Path
    readme: Path
    output_names: list[str]
    max_difference: float


def export_model(
    model_dir: str | Path, format: str = "onnx", out: str | Path | None = None
) -> Exported:
    """Export the model saved in ``model_dir`` as ``format`` to ``out`` (default:
    ``MODEL_DIR/export/model<suffix>``); ``<stem>.preprocessor.json`` and
    ``<stem>.README.md`` go next to it. ``out`` must end in the format's suffix, and none of
    these files may be one of a saved model's own files (checked before any work)."""
    from mtlkit.training.estimator import MultiTaskEstimator

    entry = FORMATS.entry(format)
    suffix = entry.info["suffix"]
    path = Path(out) if out is not None else Path(model_dir) / "export" / f"model{suffix}"
    check_output_file(path, f"the {format} file", (suffix,))
    prep = path.with_name(f"{path.stem}.preprocessor.json")
    readme = path.with_name(f"{path.stem}.README.md")
    for companion in (prep, readme):
        check_output_file(companion, f"the file written next to {path.name}")
    est = MultiTaskEstimator.load(model_dir)
    module = ScoreModule(est.model_, est.trainer_.calibration)
    run = entry.target(module, example_inputs(est.schema_, 16), path)
    x_cat, x_num = (t.numpy() for t in example_inputs(est.schema_, 61, seed=1))
    difference = max(
        float(np.abs(got - want).max(initial=0.0))
        for got, want in zip(run(x_cat, x_num), module.scores(x_cat, x_num))
    )
    tolerance = TOLERANCE
    if module.calibration is not None:  # a steep calibration map magnifies round-off
        with torch.no_grad():
            raw = module.uncalibrated(torch.from_numpy(x_cat), torch.from_numpy(x_num))
        tolerance *= max(1.0, module.calibration.sensitivity(raw))
    if not difference <= tolerance:
        raise MtlkitError(
            f"the exported {format} model's outputs differ from PyTorch's by {difference:.3g} "
            f"(more than {tolerance:.3g}); please report this with the model's settings."
        )
    state = (Path(model_dir) / "preprocessor.json").read_bytes()
    atomic_write_bytes(prep, state)
    text = contract_readme(
        json.loads(state),
        est.schema_.tasks,
        module.output_names,
        path.name,
        prep.name,
        format,
        entry.info["run_code"],
        est.calibration,
    )
    atomic_write_text(readme, text)
    return Exported(path, prep, readme, module.output_names, difference)


__all__ = ["FORMATS", "Exported", "export_model"]
