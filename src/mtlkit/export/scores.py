"""A model's scores as one traceable module: what ``predict_proba`` returns, from encoded
inputs, as a tuple in a fixed order."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mtlkit.data.schema import Schema
from mtlkit.models.base import MTLModel
from mtlkit.training.calibration import Calibration
from mtlkit.training.losses import output_to_scores

#: The inputs of every exported model, in this order.
INPUT_NAMES = ("x_cat", "x_num")


class ScoreModule(nn.Module):
    """``forward(x_cat, x_num)`` -> the scores of ``predict_proba`` as a tuple named by
    :attr:`output_names`: per task a probability (binary), class probabilities
    (multiclass) or the value (regression), then the funnel models' conditional
    probabilities (e.g. ESMM's pCVR). The scores are computed in the same forward pass, so
    the model's bookkeeping between calls (gate weights, ``conditional_outputs``) does not
    leak into the exported graph; the model is in evaluation mode. A fitted ``calibration``
    (:mod:`mtlkit.training.calibration`) is part of the graph, as ``predict_proba`` applies it."""

    def __init__(self, model: MTLModel, calibration: Calibration | None = None) -> None:
        super().__init__()
        self.model = model
        self.calibration = calibration
        self.eval()
        self.tasks = list(model.schema.tasks)
        with torch.no_grad():
            model(*example_inputs(model.schema, 2))
        self.conditional = list(model.conditional_outputs())
        self.output_names = [t.name for t in self.tasks] + self.conditional

    def forward(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = self.uncalibrated(x_cat, x_num)
        if self.calibration is not None:
            named = self.calibration(named)
        return tuple(named[name] for name in self.output_names)

    def uncalibrated(self, x_cat: torch.Tensor, x_num: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's own scores by name (tasks, then conditional probabilities)."""
        out = self.model(x_cat, x_num)
        probabilities = self.model.probability_outputs
        scores = {
            t.name: output_to_scores(t, out[t.name], t.name in probabilities) for t in self.tasks
        }
        return scores | self.model.conditional_outputs()

    @torch.no_grad()
    def scores(self, x_cat: np.ndarray, x_num: np.ndarray) -> list[np.ndarray]:
        """The scores computed by PyTorch, for checking an exported file."""
        return [s.numpy() for s in self(torch.from_numpy(x_cat), torch.from_numpy(x_num))]


def example_inputs(schema: Schema, rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random valid encoded inputs: category ids within each column's range (0, missing,
    included) and standard-normal numbers."""
    generator = torch.Generator().manual_seed(seed)
    columns = [torch.randint(0, c, (rows,), generator=generator) for c in schema.cat_cardinalities]
    x_cat = torch.stack(columns, 1) if columns else torch.zeros((rows, 0), dtype=torch.int64)
    x_num = torch.randn((rows, schema.n_numeric), generator=generator)
    return x_cat, x_num
