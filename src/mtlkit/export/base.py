"""The interface of an export format and its registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mtlkit.export.scores import ScoreModule
from mtlkit.registry import Registry

#: Runs an exported file: ``(x_cat, x_num)`` arrays -> the outputs in ``output_names`` order.
Runner = Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


class WriteFormat(Protocol):
    def __call__(
        self, module: ScoreModule, example: tuple[torch.Tensor, torch.Tensor], path: Path
    ) -> Runner:
        """Write ``module`` (traced on ``example``, dynamic batch axis) to ``path``; return
        a function that runs the written file outside mtlkit (the export checks its outputs
        against PyTorch's)."""


#: Export formats by name: their write function (info: ``suffix``, the file name's ending;
#: ``run_code``, Python that runs the file on arrays ``x_cat``, ``x_num``, with ``{file}``
#: for its name; ``extra``, the pip extra of its packages, if any).
FORMATS: Registry[WriteFormat] = Registry("export format", "mtlkit.export.formats")
