"""On a CUDA GPU: streamed training moves each batch to the device, and two NCCL ranks make
the updates of one process. Skipped without CUDA (none of these has run in CI, which has no
GPU)."""

from __future__ import annotations

import pytest
import test_distributed as ddp
import torch
import torch.multiprocessing as mp
from test_streaming_training import LABELS, SETTINGS, _write

from mtlkit.data.streaming_table import stream_tables
from mtlkit.data.synthetic import make_synthetic
from mtlkit.training.estimator import MultiTaskEstimator

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_a_stream_trains_on_the_gpu_as_on_the_cpu(tmp_path):
    frame = make_synthetic(1200, n_features=6, correlation=0.9, seed=0)
    train = _write(tmp_path / "train", frame.iloc[:900], 70)
    val = _write(tmp_path / "val", frame.iloc[900:], 50)
    fitted = {}
    for device in ("cpu", "cuda"):
        est = MultiTaskEstimator("mmoe", n_experts=2, shuffle=False, device=device, **SETTINGS)
        est.fit(stream_tables(train, LABELS), validation=stream_tables(val, LABELS))
        assert next(est.model_.parameters()).device.type == device
        fitted[device] = est.model_.state_dict()
    for name, value in fitted["cpu"].items():
        torch.testing.assert_close(fitted["cuda"][name].cpu(), value, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_nccl_ranks_make_the_updates_of_one(tmp_path):
    out = tmp_path / "weights.pt"
    mp.start_processes(
        ddp._worker, args=(str(tmp_path / "init"), str(out), "nccl"), nprocs=2, start_method="spawn"
    )
    two = torch.load(out, weights_only=True)
    for strategy in ddp.STRATEGIES:
        one = ddp._train(strategy, masked_value=0.0)
        for name, value in one.items():
            torch.testing.assert_close(two[strategy][name], value, atol=1e-4, rtol=1e-4)
