"""The interface of an export format and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mtlkit.errors import ConfigError
from mtlkit.export.scores import ScoreModule
from mtlkit.registry import Registry

#: Runs an exported file: ``(x_cat, x_num)`` arrays -> the outputs in ``output_names`` order.
Runner = Callable[[np.ndarray, np.ndarray], list[np.ndarray]]


class ExportFormat(ABC):
    """Writes a :class:`ScoreModule` to a file with a dynamic batch axis, and runs the file
    (the export checks its outputs against PyTorch's)."""

    #: The file name's ending, e.g. ".onnx".
    suffix: str
    #: Python that runs the file on arrays ``x_cat``, ``x_num`` (``{file}``: its name).
    run_code: str

    @staticmethod
    @abstractmethod
    def write(module: ScoreModule, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
        """Write ``module`` (traced on ``example``) to ``path``."""

    @staticmethod
    @abstractmethod
    def runner(path: Path) -> Runner:
        """A function running the file at ``path`` outside mtlkit."""


#: Export formats by name (info: ``extra``, the pip extra its packages come with).
FORMATS: Registry[type[ExportFormat]] = Registry("export format", "mtlkit.export.formats")


def missing_export_extra(err: ImportError) -> ConfigError:
    return ConfigError(
        f"exporting to ONNX needs the onnx, onnxscript and onnxruntime packages ({err}); "
        "install them with: pip install 'mtlkit[export]'."
    )
