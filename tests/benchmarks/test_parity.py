"""benchmarks/peers/parity.py re-draws the hidden layers it names, in lean and mtlkit models
alike (a wrong layer or scale would make its init comparison compare nothing)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch

from mtlkit.data.loading import load_tables
from mtlkit.data.preprocessor import Preprocessor
from mtlkit.data.synthetic import make_synthetic
from mtlkit.models import create

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers"


@pytest.fixture
def parity(monkeypatch):
    monkeypatch.syspath_prepend(str(PEERS))
    yield importlib.import_module("parity")
    for name in ("parity", "common", "lean"):  # the benchmark's modules, from its folder
        sys.modules.pop(name, None)


def _models(parity):
    import lean

    frame = make_synthetic(300, n_features=6, seed=0, label_prefix="t")
    schema = Preprocessor().fit(load_tables(frame, labels=["t0", "t1"])).schema()
    preset = parity.PRESETS["default"]
    for name in ("mmoe", "shared_bottom"):
        kwargs = {"embedding_dim": preset["embedding_dim"], **preset["models"][name]}
        yield create(name, schema, **kwargs)
        yield lean.build(name, list(schema.cat_cardinalities), schema.n_numeric, 2, preset)


@pytest.mark.parametrize(("scheme", "gain"), [("he", 2.0), ("lecun", 1.0), ("uniform", 1 / 3)])
def test_reinit_draws_the_named_scale_in_every_hidden_layer(parity, scheme, gain):
    torch.manual_seed(0)
    for model in _models(parity):
        layers = parity.hidden_weights(model)
        assert len(layers) == 2  # [64, 32]: both hidden layers of the experts / the bottom
        parity.reinit(model, scheme)
        for weight, bias, fan_in in layers:
            assert float(weight.detach().std()) * math.sqrt(fan_in) == pytest.approx(
                math.sqrt(gain), rel=0.1
            )
            assert bool((bias == 0).all()) == (scheme != "uniform")
