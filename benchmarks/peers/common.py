"""Presets, the shared encoded split and helpers every system's runner uses."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CENSUS = HERE.parents[2] / "shared" / "data" / "census-income.test.gz"
SPLIT = CACHE / "census-split.npz"  # the encoded arrays every system reads
RAW_SPLIT = CACHE / "census-split.pkl"  # the same split as tables (what the estimator takes)
TASKS = ("income", "marital")

PRESETS = {
    "default": {
        "embedding_dim": 8,
        "models": {
            "mmoe": {"n_experts": 8, "expert_hidden": [64, 32], "tower_hidden": [32]},
            "shared_bottom": {"bottom_hidden": [64, 32], "tower_hidden": [32]},
            "ple": {
                "n_levels": 2,
                "n_task_experts": 2,
                "n_shared_experts": 2,
                "expert_hidden": [64, 32],
                "tower_hidden": [32],
            },
            "single_task": {"hidden": [64, 32]},
        },
    },
    "small": {
        "embedding_dim": 4,
        "models": {
            "mmoe": {"n_experts": 8, "expert_hidden": [16], "tower_hidden": [8]},
            "shared_bottom": {"bottom_hidden": [16], "tower_hidden": [8]},
            "ple": {
                "n_levels": 2,
                "n_task_experts": 2,
                "n_shared_experts": 2,
                "expert_hidden": [16],
                "tower_hidden": [8],
            },
            "single_task": {"hidden": [16, 8]},
        },
    },
}
TRAINING = {"epochs": 5, "batch_size": 1024, "lr": 1e-3}


def load_split(device: str = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """``{"train"|"val"|"test": {"x_cat", "x_num", "y"}}`` as tensors, plus ``"cards"``."""
    arrays = np.load(SPLIT)
    out: dict = {"cards": arrays["cards"].tolist()}
    for split in ("train", "val", "test"):
        out[split] = {
            k: torch.from_numpy(arrays[f"{split}_{k}"]).to(device) for k in ("x_cat", "x_num", "y")
        }
    return out


def aucs(y: np.ndarray, scores: np.ndarray) -> list[float]:
    """Test ROC AUC per task; ``y`` and ``scores`` are ``(N, T)``."""
    return [float(roc_auc_score(y[:, k], scores[:, k])) for k in range(y.shape[1])]


def peak_rss_mb() -> float:
    """Peak resident memory of this process.

    ``VmHWM`` of /proc where present: ``ru_maxrss`` survives ``exec`` on Linux, so a worker
    would report its parent's peak when that was higher.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up(device: str) -> None:
    """The same one-off warm-up in every run (thread pool, allocator, kernels)."""
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    net.to(device)
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(1024, 64, device=device)
    for _ in range(20):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
