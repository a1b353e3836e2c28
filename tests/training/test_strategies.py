"""Training strategies: every strategy with every model family, masking, alternation."""

import copy
import json
import math

import pytest
import torch
from torch import nn

from mtlkit.data.schema import Schema, TaskSpec
from mtlkit.data.tensors import TensorData
from mtlkit.errors import ConfigError
from mtlkit.evaluation.run_record import History
from mtlkit.models import check_hyperparameters, create
from mtlkit.models.shared_bottom import SharedBottom
from mtlkit.training.losses import masked_task_losses
from mtlkit.training.settings import TrainConfig
from mtlkit.training.strategies import (
    Strategy,
    available_strategies,
    check_strategy,
    make_strategy,
)
from mtlkit.training.trainer import Trainer

FAMILIES = ["shared_bottom", "mmoe", "ple", "esmm"]
STRATEGIES = list(available_strategies())
SCHEMA = Schema((5, 3), 4, (TaskSpec("click", "binary"), TaskSpec("buy", "binary")))


def _data(n: int = 512, seed: int = 0, labelled: float = 0.8) -> TensorData:
    """Two binary tasks, ``buy`` implies ``click`` (valid for ESMM too), partial labels."""
    g = torch.Generator().manual_seed(seed)
    x_cat = torch.stack(
        [torch.randint(0, 5, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)], 1
    )
    x_num = torch.randn(n, 4, generator=g)
    click = (x_num[:, 0] + 0.5 * x_cat[:, 0] - 1 > 0).float()
    buy = click * (x_num[:, 1] > 0).float()
    mask = torch.rand(n, 2, generator=g) < labelled
    y = torch.stack([click, buy], 1) * mask  # placeholder 0 where unlabelled, as loading does
    return TensorData(x_cat, x_num, y, mask)


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return create(name, SCHEMA)


def _grads(model: nn.Module, strategy) -> dict[str, torch.Tensor]:
    named = dict(model.named_parameters())
    named.update({f"strategy.{i}": p for i, p in enumerate(strategy.parameters())})
    return {k: p.grad.clone() for k, p in named.items() if p.grad is not None}


@pytest.mark.parametrize("model_name", FAMILIES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_trains_every_model_family(model_name, strategy):
    model = _model(model_name)
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(epochs=2, batch_size=128, patience=0, progress=False, diagnostic_batches=2)
    hist = Trainer(model, cfg, strategy).fit(_data(), _data(256, seed=1))
    assert len(hist.epochs) == 2
    for record in hist.epochs:
        for task in ("click", "buy"):
            assert math.isfinite(record.train[task]["loss"])
            assert math.isfinite(record.val[task]["loss"])
        assert -1 <= record.diagnostics.grad_cosine <= 1
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "no parameter moved"
    json.dumps(hist.to_dict(), allow_nan=False)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_strategy_draws_from_its_own_stream_not_the_global_generator(strategy):
    """Dropout draws from torch's global generator, which data-parallel ranks with unequal
    shares of a batch use unequally: a strategy's draws (RLW's weights, PCGrad's task order,
    GradDrop's signs...) come from its own stream, seeded from the run's seed, and leave the
    global generator alone."""
    model = _model("mmoe")  # no dropout: nothing else draws from the global generator
    cfg = TrainConfig(epochs=1, batch_size=128, patience=0, progress=False, seed=3)
    trainer = Trainer(model, cfg, strategy)
    trainer.fit(_data(), _data(256, seed=1))
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(3).get_state())
    again = Trainer(_model("mmoe"), cfg, strategy)
    again.fit(_data(), _data(256, seed=1))
    for a, b in zip(trainer.strategy.random_state, again.strategy.random_state):
        assert torch.equal(a, b)  # the same draws from the same seed


def _step_losses(model, batch):
    out = model(batch.x_cat, batch.x_num)
    return masked_task_losses(SCHEMA.tasks, out, batch.y, batch.mask, model.probability_outputs)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_masked_entries_contribute_zero_gradient(strategy):
    batch = _data(256)
    # Change everything a mask hides: labels of unlabelled entries, and the features of rows
    # that carry no label at all. The gradients must not move.
    perturbed = copy.deepcopy(batch)
    perturbed.y[~batch.mask] = 1.0 - perturbed.y[~batch.mask] + 7.0
    hidden = ~batch.mask.any(1)
    assert hidden.any()
    perturbed.x_num[hidden] = torch.randn(int(hidden.sum()), 4) * 5
    perturbed.x_cat[hidden] = (perturbed.x_cat[hidden] + 1) % 3
    grads = []
    for data in (batch, perturbed):
        model = _model("mmoe")
        strat = make_strategy(strategy, model)
        present = torch.tensor([True, not strat.one_task_per_step])  # e.g. alternating
        strat.backward(_step_losses(model, data), present)
        grads.append(_grads(model, strat))
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_alternating_updates_only_the_active_tasks_tower():
    model = _model("mmoe")
    strat = make_strategy("alternating", model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    data = _data(512)
    steps = list(strat.batches(data, 64, torch.Generator().manual_seed(0)))
    assert [k for _, k in steps[:4]] == [0, 1, 0, 1]
    for batch, k in steps:
        assert batch.mask[:, k].all()  # only rows labelled for the active task
    snapshots = []
    for batch, k in steps[:3]:
        optimizer.zero_grad(set_to_none=True)
        strat.backward(_step_losses(model, batch), torch.arange(2) == k)
        optimizer.step()
        snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
    tasks = {0: "click", 1: "buy"}
    for step in (1, 2):  # steps 1 (task 1) and 2 (task 0) after at least one step of the other
        active, idle = tasks[step % 2], tasks[1 - step % 2]
        for name, value in snapshots[step].items():
            moved = not torch.equal(value, snapshots[step - 1][name])
            if f".{idle}." in name:
                assert not moved, f"{name} of the idle task moved"
            elif f".{active}." in name or name.startswith("experts"):
                assert moved, f"{name} did not move"


def test_proportional_alternation_covers_each_tasks_labelled_rows_once():
    data = _data(1000, labelled=0.5)
    strat = make_strategy("alternating", _model("shared_bottom"), order="proportional")
    steps = list(strat.batches(data, 50, torch.Generator().manual_seed(0)))
    for k in range(2):
        assert sum(len(b) for b, t in steps if t == k) == int(data.mask[:, k].sum())
    assert [k for _, k in steps] != sorted(k for _, k in steps)  # interleaved, not task blocks


def test_uncertainty_weighting_gives_the_less_noisy_task_the_larger_weight():
    torch.manual_seed(0)
    n = 2000
    x = torch.randn(n, 4)
    signal = x[:, 0] + x[:, 1]
    y = torch.stack([signal + 0.1 * torch.randn(n), signal + 1.5 * torch.randn(n)], 1)
    schema = Schema((), 4, (TaskSpec("clean", "regression", 1), TaskSpec("noisy", "regression", 1)))
    data = TensorData(torch.zeros(n, 0, dtype=torch.long), x, y, torch.ones(n, 2, dtype=torch.bool))
    model = create("shared_bottom", schema)
    cfg = TrainConfig(epochs=4, batch_size=128, lr=0.02, patience=0, progress=False)
    hist = Trainer(model, cfg, "uncertainty").fit(data, data)
    weights = hist.epochs[-1].task_weights
    assert weights["clean"] > 3 * weights["noisy"], weights
    assert hist.epochs[0].task_weights["clean"] < weights["clean"]  # it was learned


def test_dwa_and_gradnorm_weights_adapt_and_stay_normalised():
    for name in ("dwa", "gradnorm"):
        cfg = TrainConfig(epochs=4, batch_size=64, patience=0, progress=False, lr=0.01)
        hist = Trainer(_model("shared_bottom"), cfg, name).fit(_data(), _data(256, seed=1))
        weights = [list(e.task_weights.values()) for e in hist.epochs]
        assert weights[-1] != pytest.approx([1.0, 1.0]), name
        assert sum(weights[-1]) == pytest.approx(2.0, rel=1e-4), name


def test_aggregator_task_weights_are_recorded():
    cfg = TrainConfig(epochs=1, batch_size=64, patience=0, progress=False)
    hist = Trainer(_model("mmoe"), cfg, "upgrad").fit(_data(), _data(256, seed=1))
    weights = hist.epochs[0].task_weights
    assert set(weights) == {"click", "buy"} and all(w > 0 for w in weights.values())


class _Calibrated(SharedBottom):
    """A model with an auxiliary loss on a parameter no task loss touches."""

    def __init__(self, schema):
        super().__init__(schema, **check_hyperparameters("shared_bottom", {}))
        self.calibrator = nn.Parameter(torch.zeros(()))

    def auxiliary_loss(self):
        return (self.calibrator - 3.0) ** 2


@pytest.mark.parametrize("strategy", ["joint", "alternating", "uncertainty", "gradnorm", "pcgrad"])
def test_the_auxiliary_loss_is_trained_under_every_kind_of_strategy(strategy):
    torch.manual_seed(0)
    model = _Calibrated(SCHEMA)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.1, patience=0, progress=False)
    Trainer(model, cfg, strategy).fit(_data(), _data(256, seed=1))
    assert model.calibrator.item() > 0.3  # starts at 0; only its gradient moves it


def test_history_round_trips_through_json():
    cfg = TrainConfig(epochs=2, batch_size=128, patience=0, progress=False)
    hist = Trainer(_model("mmoe"), cfg, "dwa").fit(_data(), _data(256, seed=1))
    text = json.dumps(hist.to_dict(), allow_nan=False)
    back = History.from_dict(json.loads(text))
    assert back.best_epoch == hist.best_epoch
    assert back.series("val", "buy", "loss") == hist.series("val", "buy", "loss")
    assert back.diagnostic("grad_cosine") == pytest.approx(hist.diagnostic("grad_cosine"))
    assert len(back.epochs[0].diagnostics.expert_utilization["click"]) == 8


def test_bad_strategy_settings_are_refused():
    with pytest.raises(ConfigError, match="Did you mean 'pcgrad'"):
        check_strategy("pcgard")
    with pytest.raises(ConfigError, match="'c' must be >= 0"):
        check_strategy("cagrad", {"c": -1.0})
    with pytest.raises(ConfigError, match="order"):
        make_strategy("alternating", _model("mmoe"), order="random")
    with pytest.raises(ConfigError, match="'uncertainty' has no setting"):
        check_strategy("uncertainty", {"alpha": 2})
    with pytest.raises(ConfigError, match=r"'weights' must be >= 0"):
        check_strategy("joint", {"weights": [-1.0, 1.0]})  # gradient ascent on a task
    with pytest.raises(ConfigError, match="one weight per task"):
        Trainer(
            _model("mmoe"), TrainConfig(epochs=1, progress=False), "joint", {"weights": [1.0]}
        ).fit(_data(64), _data(64))


def test_estimator_takes_strategy_parameters_and_saves_the_history(tmp_path, synthetic_splits):
    from mtlkit.training.estimator import MultiTaskEstimator

    train, val, test = synthetic_splits
    with pytest.raises(ConfigError, match="order"):
        MultiTaskEstimator(
            "mmoe", strategy="alternating", strategy_params={"order": "rr"}
        ).check_params()
    est = MultiTaskEstimator(
        "mmoe",
        strategy="alternating",
        strategy_params={"order": "proportional"},
        epochs=2,
        batch_size=256,
        progress=False,
    ).fit(train, val)
    assert est.trainer_.strategy.order == "proportional"
    loaded = MultiTaskEstimator.load(est.save(tmp_path / "model"))
    assert loaded.strategy_params == {"order": "proportional"}
    assert loaded.history_.series("val", "label0", "loss") == est.history_.series(
        "val", "label0", "loss"
    )
    assert loaded.predict(test)["label1"].shape == (len(test),)


class _LabelLoss(SharedBottom):
    """A model whose label loss records which labels each step hands it."""

    def __init__(self, schema):
        super().__init__(schema, **check_hyperparameters("shared_bottom", {}))
        self.seen: list[torch.Tensor] = []

    def label_loss(self, y, mask):
        self.seen.append(mask.any(0))
        return None


@pytest.mark.parametrize("strategy, per_step", [("joint", 2), ("alternating", 1)])
def test_the_label_loss_gets_only_the_labels_of_the_tasks_a_step_trains(strategy, per_step):
    model = _LabelLoss(SCHEMA)
    cfg = TrainConfig(epochs=1, batch_size=64, patience=0, progress=False)
    Trainer(model, cfg, strategy).fit(_data(), _data(256, seed=1))
    assert model.seen and all(int(s.sum()) == per_step for s in model.seen)


def test_a_strategy_is_named_so_that_a_saved_model_reloads(tmp_path, synthetic_splits):
    # Before: MultiTaskEstimator(strategy=<instance>).save() wrote "strategy": "base" and load()
    # failed. A strategy is now a registered name, its identity, kept through save/load.
    from mtlkit.training.estimator import MultiTaskEstimator
    from mtlkit.training.strategies.weighting import Uncertainty

    with pytest.raises(ConfigError, match="registered strategy name"):
        MultiTaskEstimator("mmoe", strategy=Uncertainty).check_params()
    train, val, _ = synthetic_splits
    est = MultiTaskEstimator("mmoe", strategy="uncertainty", epochs=1, progress=False)
    loaded = MultiTaskEstimator.load(est.fit(train, validation=val).save(tmp_path / "m"))
    assert loaded.strategy == "uncertainty"


class _Recorder(Strategy):
    """Sums the losses and records the hook calls."""

    def __init__(self, model):
        super().__init__(model)
        self.calls: list[str] = []
        self.after: list[torch.Tensor] = []

    def before_step(self):
        self.calls.append("before")

    def backward(self, losses, present, extra=None):
        self.calls.append("backward")
        self.before_losses = losses.detach()
        losses[present].sum().backward()

    def after_step(self, step_losses):
        self.calls.append("after")
        self.after.append(step_losses())


def test_step_hooks_run_around_each_step_with_the_updated_losses(monkeypatch):
    from mtlkit.training.strategies import STRATEGIES

    entry = STRATEGIES.add("_recorder", _Recorder, "test only")
    try:
        model = _model("shared_bottom")
        cfg = TrainConfig(epochs=1, batch_size=512, lr=0.05, patience=0, progress=False)
        trainer = Trainer(model, cfg, entry.name)
        trainer.fit(_data(512), _data(64, seed=1))
        strat = trainer.strategy
        assert strat.calls == ["before", "backward", "after"]  # one step
        # after_step sees the same batch's losses under the stepped parameters: lower.
        assert (strat.after[0] < strat.before_losses).all()
    finally:
        STRATEGIES._entries.pop("_recorder")
