"""TorchScript (``torch.jit.trace``), loadable with ``torch.jit.load`` in Python or LibTorch
(C++) without mtlkit. PyTorch marks TorchScript as deprecated; prefer ONNX."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from mtlkit.export.base import FORMATS, ExportFormat, Runner
from mtlkit.export.scores import ScoreModule


@FORMATS.register(
    "torchscript", "TorchScript (deprecated by PyTorch), for torch.jit.load / LibTorch"
)
class TorchScript(ExportFormat):
    suffix = ".pt"
    run_code = (
        "import torch\n"
        'model = torch.jit.load("{file}")\n'
        "scores = model(torch.from_numpy(x_cat), torch.from_numpy(x_num))"
    )

    @staticmethod
    def write(module: ScoreModule, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace.*` is deprecated")
            # The one data-dependent branch frozen by tracing is the output width, fixed per task.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            traced = torch.jit.trace(module, example)
        path.parent.mkdir(parents=True, exist_ok=True)
        traced.save(str(path))

    @staticmethod
    def runner(path: Path) -> Runner:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated")
            loaded = torch.jit.load(str(path))

        @torch.no_grad()
        def run(x_cat, x_num):
            return [o.numpy() for o in loaded(torch.from_numpy(x_cat), torch.from_numpy(x_num))]

        return run
