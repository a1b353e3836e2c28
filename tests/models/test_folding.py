"""Embeddings folded into the first linear layer (``EncodedInput.folded_linear``): the same
values and gradients as the dense layer, used where the rule says it pays."""

import numpy as np
import pytest
import torch

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.errors import ConfigError
from mtlkit.models import available, blocks, create
from mtlkit.models.blocks import EncodedInput, InputEncoder, folding_pays, reused_folds
from mtlkit.training import scoring

BINARY = tuple(TaskSpec(f"t{i}", "binary") for i in range(3))


def _batch(schema: Schema, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x_cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in schema.cat_cardinalities])
    return x_cat.T.contiguous(), torch.randn(n, schema.n_numeric, generator=g)


@pytest.fixture
def always_fold(monkeypatch):
    monkeypatch.setattr(blocks, "folding_pays", lambda *args: True)


@pytest.fixture
def never_fold(monkeypatch):
    monkeypatch.setattr(blocks, "folding_pays", lambda *args: False)


@pytest.fixture
def folds(monkeypatch) -> list[int]:
    """Records the output width of every layer that was computed folded."""
    calls: list[int] = []
    original = EncodedInput.folded_linear

    def spy(self, weight, bias, layer):
        out = original(self, weight, bias, layer)
        if out is not None:
            calls.append(weight.shape[1])
        return out

    monkeypatch.setattr(EncodedInput, "folded_linear", spy)
    return calls


@pytest.mark.parametrize("n_numeric", [2, 0])
def test_folded_layer_has_the_dense_layers_values_and_gradients(always_fold, n_numeric):
    torch.manual_seed(0)
    schema = Schema((3, 7, 2, 5), n_numeric, BINARY)  # unequal columns: padded to 7 rows each
    enc = InputEncoder(schema, embedding_dim=3)
    weight = torch.randn(enc.output_dim, 6, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    x_cat, x_num = _batch(schema, 50)
    grad = torch.randn(50, 6)

    dense = torch.addmm(bias, enc(x_cat, x_num), weight)
    expected = torch.autograd.grad(dense, [enc.embedding.weight, weight, bias], grad)
    folded = enc.encode(x_cat, x_num).folded_linear(weight, bias, weight)
    got = torch.autograd.grad(folded, [enc.embedding.weight, weight, bias], grad)

    torch.testing.assert_close(folded, dense, rtol=1e-5, atol=1e-5)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_folding_pays_in_inference_and_only_on_wide_layers_in_training():
    def census(batch: int) -> torch.Tensor:  # 29 columns, the widest of 52 categories
        return torch.zeros(batch, 29, dtype=torch.long)

    inference = torch.zeros(232, 512)
    trained = torch.zeros(232, 512, requires_grad=True)
    padded = 29 * 52
    assert folding_pays(census(4096), 8, padded, inference)
    assert not folding_pays(census(16), 8, padded, inference)  # fewer lookups than rows
    assert folding_pays(census(1024), 8, padded, trained)
    assert not folding_pays(census(128), 8, padded, trained)  # batch too small
    # 8 x 256 pays while training (1.25-1.44x), 8 x 128 does not (0.89-1.00x).
    assert folding_pays(census(1024), 8, padded, torch.zeros(232, 256, requires_grad=True))
    assert not folding_pays(census(1024), 8, padded, torch.zeros(232, 128, requires_grad=True))
    narrow = torch.zeros(116, 128, requires_grad=True)
    assert not folding_pays(census(1024), 4, padded, narrow)
    with torch.no_grad():
        assert folding_pays(census(1024), 4, padded, narrow)


def _model(name: str):
    try:
        return create(name, Schema((5, 3, 9), 4, BINARY))
    except ConfigError:  # the funnel models take two binary steps
        return create(name, Schema((5, 3, 9), 4, BINARY[:2]))


@pytest.mark.parametrize("name", available())
def test_every_model_predicts_the_same_with_and_without_folding(name, monkeypatch, folds):
    torch.manual_seed(0)
    model = _model(name).eval()
    x_cat, x_num = _batch(model.schema, 64)
    with torch.no_grad():
        folded = model(x_cat, x_num)
        with monkeypatch.context() as m:
            m.setattr(blocks, "folding_pays", lambda *args: False)
            dense = model(x_cat, x_num)
    for task in model.task_names:
        torch.testing.assert_close(folded[task], dense[task], rtol=1e-5, atol=1e-5)
    readers_of_the_encoded_input = {  # single_task: its per-task copies are never folded
        "shared_bottom", "mmoe", "omoe", "sparse_mmoe", "ple", "cgc",
        "esmm", "escm2", "escm2_ips", "aitm", "adatt",
    }  # fmt: skip
    assert bool(folds) == (name in readers_of_the_encoded_input)


def test_mmoe_trains_folded_with_the_dense_gradients(folds, monkeypatch):
    """Wide embeddings and experts on a large batch: the experts' first layer and the
    three gates, one product, are folded while training, with the same gradients."""
    torch.manual_seed(0)
    schema = Schema((40, 7, 25), 3, BINARY)
    model = create("mmoe", schema, embedding_dim=8, n_experts=8, expert_hidden=(64,))
    x_cat, x_num = _batch(schema, 512)

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        sum(out.square().mean() for out in model(x_cat, x_num).values()).backward()
        return [p.grad.clone() for p in model.parameters()]

    folded = gradients()
    assert folds == [8 * 64 + 3 * 8]  # the experts (8 x 64) and 3 gates of 8
    with monkeypatch.context() as m:
        m.setattr(blocks, "folding_pays", lambda *args: False)
        dense = gradients()
    for f, d in zip(folded, dense):
        torch.testing.assert_close(f, d, rtol=1e-4, atol=1e-6)


def _counted_folding_pays(monkeypatch) -> list[int]:
    """Records each time a folded layer decides whether to fold (computes its product)."""
    calls: list[int] = []
    original = blocks.folding_pays

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(blocks, "folding_pays", spy)
    return calls


@pytest.mark.parametrize(
    ("family", "params", "folded_layers"),
    [
        # the experts' first layer and every task's gate in one product
        ("mmoe", {"n_experts": 4, "expert_hidden": (16, 8)}, 1),
        # PLE's first level: every expert's first layer and every gate in one product
        ("ple", {"n_task_experts": 2, "n_shared_experts": 2, "expert_hidden": (16, 8)}, 1),
    ],
)
def test_a_scoring_pass_folds_each_layer_once_with_the_forwards_scores(
    monkeypatch, family, params, folded_layers
):
    """``scoring.scored`` computes each folded layer's product at the first batch and
    reuses it: the scores are the ones of one dense forward over every row (1e-6), and
    no later batch computes a product again."""
    torch.manual_seed(0)
    schema = Schema((40, 7, 25, 3), 3, BINARY[:2])
    model = create(family, schema, embedding_dim=8, **params)
    x_cat, x_num = _batch(schema, 1000)
    data = TensorData(x_cat, x_num, torch.zeros(1000, 2), torch.ones(1000, 2, dtype=torch.bool))
    with torch.no_grad(), monkeypatch.context() as m:
        m.setattr(blocks, "folding_pays", lambda *args: False)
        expected = {t: torch.sigmoid(v) for t, v in model.eval()(x_cat, x_num).items()}
    decisions = _counted_folding_pays(monkeypatch)
    scores = scoring.predict_scores(
        scoring.scored(model, schema.tasks, None, data, 64), schema.tasks
    )
    assert len(decisions) == folded_layers  # once each, at the first batch
    for task, values in scores.items():
        np.testing.assert_allclose(values, expected[task].numpy(), rtol=0, atol=1e-6)


def test_reused_products_are_those_of_the_first_batch(monkeypatch):
    """Within ``reused_folds`` a layer reads its product from the dict it was given: a
    later batch with the same dict does not fold again, and a new dict starts afresh."""
    torch.manual_seed(0)
    schema = Schema((40, 7, 25), 3, BINARY[:2])
    model = create("mmoe", schema, embedding_dim=8, n_experts=4, expert_hidden=(16,)).eval()
    x_cat, x_num = _batch(schema, 256)
    decisions = _counted_folding_pays(monkeypatch)
    products: dict = {}
    with torch.inference_mode():
        whole = model(x_cat, x_num)
        assert len(decisions) == 1  # the experts' first layer and the gates: one product
        with reused_folds(products):
            halves = [model(x_cat[i : i + 128], x_num[i : i + 128]) for i in (0, 128)]
        assert len(decisions) == 2 and len(products) == 1  # the first half folded, once
        with reused_folds({}):
            model(x_cat, x_num)
    assert len(decisions) == 3
    for task in model.task_names:
        joined = torch.cat([h[task] for h in halves])
        torch.testing.assert_close(joined, whole[task], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", available())
def test_every_model_predicts_the_same_with_and_without_gradients(name, never_fold):
    """Without gradients the ReLUs rectify their layer's output in place: the outputs are
    those of the forward that records gradients, bit for bit (a ReLU overwriting a tensor
    that another layer still reads would change them). Folding is off in both: it is
    decided differently with gradients."""
    torch.manual_seed(0)
    model = _model(name).eval()
    x_cat, x_num = _batch(model.schema, 64)
    recorded = model(x_cat, x_num)
    with torch.inference_mode():
        scored = model(x_cat, x_num)
    for task in model.task_names:
        torch.testing.assert_close(scored[task], recorded[task].detach(), rtol=0, atol=0)
