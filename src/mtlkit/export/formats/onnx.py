"""ONNX through PyTorch's ``torch.export``-based exporter (the default of torch >= 2.9; it
needs ``onnxscript``), run with ``onnxruntime``."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import torch

from mtlkit.errors import missing_extra
from mtlkit.export.base import FORMATS, Runner
from mtlkit.export.scores import INPUT_NAMES, ScoreModule

#: Messages of the exporter that say nothing about an mtlkit model: the gates' bookkeeping
#: tensors assigned in forward, an internal deprecation, the shared batch axis name.
_NOISE = (
    "The tensor attribute",
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "# The axis name",
)
RUN_CODE = """import onnxruntime
session = onnxruntime.InferenceSession("{file}")
scores = session.run(None, {{"x_cat": x_cat, "x_num": x_num}})"""


@FORMATS.register(
    "onnx",
    "ONNX (dynamic batch axis), for onnxruntime and other ONNX runtimes",
    suffix=".onnx",
    run_code=RUN_CODE,
    extra="export",
)
def write_onnx(
    module: ScoreModule, example: tuple[torch.Tensor, torch.Tensor], path: Path
) -> Runner:
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 (the exporter's dependency)
    except ImportError as err:
        raise missing_extra("exporting to ONNX", "export", err) from None
    batch = torch.export.Dim("batch")
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # torchvision
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for message in _NOISE:
                warnings.filterwarnings("ignore", message=re.escape(message))
            program = torch.onnx.export(
                module,
                example,
                dynamo=True,
                verbose=False,
                input_names=list(INPUT_NAMES),
                output_names=module.output_names,
                dynamic_shapes=({0: batch}, {0: batch}),
            )
    finally:
        quiet.setLevel(level)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x_cat, x_num: session.run(None, {"x_cat": x_cat, "x_num": x_num})
