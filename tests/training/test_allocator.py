"""glibc keeps freed memory for the next batch once mtlkit trains or predicts."""

import os
import platform
import subprocess
import sys

import pytest

from mtlkit.training import scoring, trainer
from mtlkit.training.estimator import MultiTaskEstimator

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Page faults over 80 steps that allocate, write and free buffers of 4-8 MB (what a forward
# pass over a large batch does), after the given setup code and 40 steps of warm-up.
_FAULTS = """
import resource, torch
{setup}
def step():
    a = torch.empty(1024, 512).fill_(1.0)
    b = torch.empty(2048, 512).fill_(2.0)
    return (a.repeat(2, 1) + b).relu().sum()
for _ in range(40):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(80):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setup: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS.format(setup=setup)],
        capture_output=True,
        text=True,
        check=True,
        env=environ,
    )
    return int(out.stdout.split()[-1])


TUNE = "from mtlkit.training.allocator import keep_freed_memory; assert keep_freed_memory()"


def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    glibc_defaults = _faults("")
    kept = _faults(TUNE)
    # Each step's buffers span 4,096 pages: glibc's defaults fault many of them in again
    # (here 10,000-250,000 over the 80 steps), unless the system backs them otherwise.
    if glibc_defaults < 1_000:
        pytest.skip(f"only {glibc_defaults} page faults with glibc's defaults here")
    assert kept < glibc_defaults / 4  # (a kept heap still faults in a page run now and then)


def test_the_users_own_allocator_settings_are_left_alone():
    setup = (
        "from mtlkit.training.allocator import keep_freed_memory; assert not keep_freed_memory()"
    )
    _faults(setup, MALLOC_TRIM_THRESHOLD_="131072")  # fails (check=True) if it is applied


def test_training_and_prediction_apply_it(monkeypatch, synthetic_splits):
    train, val, test = synthetic_splits
    calls = []
    for module in (trainer, scoring):  # the training loop, and scoring (prediction)
        monkeypatch.setattr(module, "keep_freed_memory", lambda: calls.append(1))
    est = MultiTaskEstimator("shared_bottom", epochs=1, progress=False, diagnostic_batches=0)
    est.fit(train, val)
    assert calls
    calls.clear()
    est.predict_proba(test)
    assert calls
