"""TorchScript (``torch.jit.trace``), loadable with ``torch.jit.load`` in Python or LibTorch
(C++) without mtlkit. PyTorch marks TorchScript as deprecated; prefer ONNX."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from mtlkit.export.base import FORMATS, Runner
from mtlkit.export.scores import ScoreModule

RUN_CODE = """import torch
model = torch.jit.load("{file}")
scores = model(torch.from_numpy(x_cat), torch.from_numpy(x_num))"""


@FORMATS.register(
    "torchscript",
    "TorchScript (deprecated by PyTorch), for torch.jit.load / LibTorch",
    suffix=".pt",
    run_code=RUN_CODE,
)
def write_torchscript(
    module: ScoreModule, example: tuple[torch.Tensor, torch.Tensor], path: Path
) -> Runner:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.(trace|load).*` is deprecated")
        # The one data-dependent branch frozen by tracing is a tower's output width (fixed).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.trace(module, example).save(str(path))
        loaded = torch.jit.load(str(path))

    @torch.no_grad()
    def run(x_cat, x_num):
        return [o.numpy() for o in loaded(torch.from_numpy(x_cat), torch.from_numpy(x_num))]

    return run
