"""Accuracy per epoch: mtlkit against a lean PyTorch loop on the same encoded split, one
difference at a time (issue #24, item 2).

Every run trains on the peers harness's census split (``prepare.py``: the same encoded
arrays and the same 70/15/15 split for every system) at the default preset (Adam 1e-3, no
weight decay, batch 1024, 5 epochs, one torch thread) and prints the test AUC of every task
after every epoch, then a table of the 5-epoch test AUC per variant (mean and min-max over
the seeds). AUC is deterministic given a seed, so these numbers are valid on a loaded
machine; nothing here is timed.

Variants (``--variants``; ``init`` is the initialisation of the hidden layers' weights of
the experts (MMoE) or of the shared bottom (shared-bottom), applied after the model is built):

- ``lean``: benchmarks/peers/lean.py as it is (every weight at ``nn.Linear``'s default).
- ``lean-he``: the loop of the external harness of issue #24, as that issue lists its
  choices: one fused ``nn.Embedding`` table at its default N(0, 1) initialisation, He-normal
  (``kaiming_normal_``: N(0, 2 / fan_in)) expert / bottom weights with zero biases, ReLU,
  Adam 1e-3 without weight decay; gates and towers at ``nn.Linear``'s default.
- ``lean-uniform``: ``lean`` with the expert / bottom weights re-drawn from ``nn.Linear``'s
  default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (and its biases), mtlkit's default too: a
  second draw of the same init (the spread of the init alone).
- ``lean-trainval``: ``lean`` trained on the training and the validation rows (a loop that
  holds out no validation split: 21% more rows and steps per epoch).
- ``lean-lognum``: ``lean`` with every numeric column as ``sign(x) log(1 + |x|)`` before the
  standardisation (the census money columns are heavy-tailed).
- ``lean-29x10`` / ``mtlkit-29x10``: the split encoded with the issue's column counts (29
  categorical + 10 numeric; the issue does not name the columns: here ``own_or_self``,
  ``vet_benefits`` and ``year`` read as numbers) instead of ``mtlkit.datasets``' 32 + 7.
- ``mtlkit``: ``MultiTaskEstimator`` as a user runs it (its own defaults), ``patience=0``;
  the last epoch's AUC is reported, and (column "kept epoch") the AUC of the epoch it keeps
  (the best validation loss).
- ``mtlkit-uniform`` / ``mtlkit-he``: ``mtlkit`` with the expert / bottom weights re-drawn
  as in ``lean-uniform`` / ``lean-he``.
- ``mtlkit-lecun``: ``mtlkit`` with N(0, 1 / fan_in) expert / bottom weights and zero biases
  (Keras' ``VarianceScaling`` at its defaults, the expert initialiser of the MMoE reference
  implementation keras-mmoe).
- ``mtlkit-dense``: ``mtlkit`` with the folded first layer
  (``EncodedInput.folded_linear``) switched off: every first layer is the dense product.

Run from the repository root (``--score val`` scores the validation rows instead)::

    PYTHONPATH=src:benchmarks/peers .venv/bin/python benchmarks/peers/parity.py
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from unittest.mock import patch

import numpy as np
import torch
from common import PRESETS, RAW_SPLIT, SPLIT, TASKS, TRAINING, aucs, load_split

VARIANTS = (
    "lean",
    "lean-he",
    "lean-uniform",
    "lean-trainval",
    "lean-lognum",
    "lean-29x10",
    "mtlkit",
    "mtlkit-uniform",
    "mtlkit-he",
    "mtlkit-lecun",
    "mtlkit-dense",
    "mtlkit-29x10",
)
#: The issue's "29 categorical + 10 numeric" encoding: these code columns read as numbers.
CODES_AS_NUMBERS = {"own_or_self": "numeric", "vet_benefits": "numeric", "year": "numeric"}


def hidden_weights(model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """``(weight, bias, fan_in)`` of every hidden layer of the experts / the shared bottom /
    the per-task networks of a lean or an mtlkit model (MMoE, shared-bottom or single-task)."""
    from mtlkit.models.blocks import BatchedMLP

    if hasattr(model, "experts") and isinstance(model.experts, BatchedMLP):  # mtlkit MMoE
        return [(w, b, w.shape[1]) for w, b in zip(model.experts.weights, model.experts.biases)]
    if hasattr(model, "experts"):  # lean MMoE: (n, in, out) weights
        return [(w, b, w.shape[1]) for w, b in zip(model.experts.w, model.experts.b)]
    if isinstance(getattr(model, "towers", None), BatchedMLP):  # mtlkit single-task
        return [(w, b, w.shape[1]) for w, b in zip(model.towers.weights, model.towers.biases)]
    if hasattr(model, "nets"):  # lean single-task (its last layer is the output)
        return [(w, b, w.shape[1]) for w, b in zip(model.nets.w[:-1], model.nets.b[:-1])]
    if hasattr(model.bottom, "w"):  # lean shared-bottom
        return [(w, b, w.shape[1]) for w, b in zip(model.bottom.w, model.bottom.b)]
    linears = [m for m in model.bottom if isinstance(m, torch.nn.Linear)]  # mtlkit
    return [(m.weight, m.bias, m.in_features) for m in linears]


@torch.no_grad()
def reinit(model: torch.nn.Module, scheme: str) -> None:
    """Re-draw the expert / bottom weights: ``he`` N(0, 2 / fan_in) and ``lecun``
    N(0, 1 / fan_in) weights with zero biases; ``uniform`` ``nn.Linear``'s default
    U(+-1/sqrt(fan_in)) for both."""
    for w, b, fan_in in hidden_weights(model):
        if scheme in ("he", "lecun"):
            w.normal_(0.0, math.sqrt((2.0 if scheme == "he" else 1.0) / fan_in))
            b.zero_()
        else:
            bound = 1.0 / math.sqrt(fan_in)
            w.uniform_(-bound, bound)
            b.uniform_(-bound, bound)


def hidden_std(model: torch.nn.Module) -> float:
    """Std of the first expert / bottom layer's weights times sqrt(fan_in) (He-normal: 1.41,
    nn.Linear's default: 0.58)."""
    w, _, fan_in = hidden_weights(model)[0]
    return float(w.detach().std()) * math.sqrt(fan_in)


def run_lean(model_name: str, seed: int, init: str | None, data: dict, epochs: int) -> dict:
    import lean

    torch.manual_seed(seed)
    n_num = data["train"]["x_num"].shape[1]
    model = lean.build(model_name, data["cards"], n_num, len(TASKS), PRESETS["default"])
    if init:
        reinit(model, init)
    std = hidden_std(model)
    test, per_epoch, last = data["test"], [], {}

    def score(_epoch: int) -> None:
        scores = lean.predict(model, test["x_cat"], test["x_num"]).numpy().astype(np.float64)
        per_epoch.append(aucs(test["y"].numpy(), scores))
        last["scores"] = scores

    lean.train(
        model,
        data["train"],
        epochs,
        TRAINING["batch_size"],
        TRAINING["lr"],
        seed,
        on_epoch=score,
    )
    return {
        "per_epoch": per_epoch,
        "restored": None,
        "best_epoch": None,
        "std": std,
        "scores": last["scores"],
    }


def run_mtlkit(
    model_name: str,
    seed: int,
    init: str | None,
    dense: bool,
    data: dict,
    epochs: int,
    feature_kinds: dict | None = None,
) -> dict:
    from mtlkit.models import blocks
    from mtlkit.training import estimator as estimator_mod
    from mtlkit.training.estimator import MultiTaskEstimator

    with open(RAW_SPLIT, "rb") as fh:
        train, val, _ = pickle.load(fh)
    preset = PRESETS["default"]
    build = estimator_mod.build_model
    stds: list[float] = []

    def build_reinit(*args, **kwargs):
        model = build(*args, **kwargs)
        if init:
            reinit(model, init)
        stds.append(hidden_std(model))
        return model

    est = MultiTaskEstimator(
        model_name,
        epochs=epochs,
        batch_size=TRAINING["batch_size"],
        lr=TRAINING["lr"],
        patience=0,
        progress=False,
        seed=seed,
        feature_kinds=feature_kinds,
        embedding_dim=preset["embedding_dim"],
        **preset["models"][model_name],
    )
    test, per_epoch, last = data["test"], [], {}

    def score(_epoch: int, _value: float = math.nan) -> list[float]:
        model = est.model_
        model.eval()
        with torch.no_grad():
            out = model(test["x_cat"], test["x_num"])
        scores = torch.stack([out[t].sigmoid() for t in TASKS], 1).numpy().astype(np.float64)
        per_epoch.append(aucs(test["y"].numpy(), scores))
        last["scores"] = scores
        model.train()
        return per_epoch[-1]

    no_folding = patch.object(blocks, "folding_pays", lambda *a: False) if dense else nullcontext()
    with patch.object(estimator_mod, "build_model", build_reinit), no_folding:
        est.fit(train, val, on_epoch=score)
    last_epoch_scores = last["scores"]
    restored = score(0)  # the weights the estimator kept (its best epoch)
    per_epoch.pop()
    return {
        "per_epoch": per_epoch,
        "restored": restored,
        "best_epoch": est.history_.best_epoch,
        "std": stds[0],
        "scores": last_epoch_scores,
    }


def with_train_and_val(data: dict) -> dict:
    """``data`` with the validation rows added to the training rows."""
    train = {k: torch.cat([data["train"][k], data["val"][k]]) for k in data["train"]}
    return {**data, "train": train}


def with_log_numeric(data: dict) -> dict:
    """``data`` with its numeric columns as ``sign(x) log(1 + |x|)`` of the raw values,
    standardised with the training split's mean and standard deviation."""
    from mtlkit.data.preprocessor import Preprocessor

    with open(RAW_SPLIT, "rb") as fh:
        tables = pickle.load(fh)
    names = Preprocessor().fit(tables[0]).feature_names["numeric"]
    logs = []
    for table in tables:
        raw = table.features[names].to_numpy(np.float64)
        assert not np.isnan(raw).any(), "the census numeric columns have no missing values"
        logs.append(np.sign(raw) * np.log1p(np.abs(raw)))
    mean, std = logs[0].mean(0), logs[0].std(0)
    out = dict(data)
    for split, log in zip(("train", "val", "test"), logs):
        x_num = torch.from_numpy(((log - mean) / np.where(std > 0, std, 1.0)).astype(np.float32))
        assert x_num.shape == data[split]["x_num"].shape
        out[split] = {**data[split], "x_num": x_num}
    return out


def encoded_with(kinds: dict, scored: str) -> dict:
    """The split encoded by a ``Preprocessor`` with these feature kind overrides (its
    ``scored`` split as ``"test"``)."""
    from mtlkit.data.preprocessor import Preprocessor

    with open(RAW_SPLIT, "rb") as fh:
        tables = pickle.load(fh)
    pre = Preprocessor(kinds).fit(tables[0])
    out: dict = {"cards": list(pre.schema().cat_cardinalities)}
    for split, table in zip(("train", "val", "test"), tables):
        encoded = pre.transform(table)
        out[split] = {"x_cat": encoded.x_cat, "x_num": encoded.x_num, "y": encoded.y}
    return {**out, "test": out[scored], "scored": scored}


def run(variant: str, model: str, seed: int, data: dict, epochs: int) -> dict:
    system, _, option = variant.partition("-")
    init = option if option in ("he", "lecun", "uniform") else None
    if system == "lean":
        if option == "trainval":
            data = with_train_and_val(data)
        elif option == "lognum":
            data = with_log_numeric(data)
        elif option == "29x10":
            data = encoded_with(CODES_AS_NUMBERS, data["scored"])
        return run_lean(model, seed, init, data, epochs)
    if option == "29x10":
        data = encoded_with(CODES_AS_NUMBERS, data["scored"])
        return run_mtlkit(model, seed, None, False, data, epochs, CODES_AS_NUMBERS)
    return run_mtlkit(model, seed, init, option == "dense", data, epochs)


def bootstrap_se(y: np.ndarray, scores: np.ndarray, draws: int = 200) -> list[float]:
    """The standard deviation of each task's test AUC over ``draws`` bootstrap resamples of
    the test rows: how much the choice of test rows alone moves an AUC, whatever the seed."""
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(y), len(y)) for _ in range(draws)]
    return [float(np.std([aucs(y[i], scores[i])[k] for i in picks])) for k in range(y.shape[1])]


def _summary(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mmoe", "shared_bottom"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"])
    parser.add_argument(
        "--score",
        choices=("test", "val"),
        default="test",
        help="the split scored after every epoch (val: the rows mtlkit validates on)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not SPLIT.is_file():
        raise SystemExit(f"{SPLIT} is missing: run benchmarks/peers/prepare.py first.")
    data = load_split()
    data.update(test=data[args.score], scored=args.score)  # the split every run scores
    out(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load {os.getloadavg()}, 1 thread")
    results: dict[tuple[str, str], list[dict]] = {}
    for model in args.models:
        for variant in args.variants:
            for seed in args.seeds:
                r = run(variant, model, seed, data, args.epochs)
                results.setdefault((model, variant), []).append(r)
                curve = "  ".join(
                    f"e{e}: " + "/".join(f"{a:.4f}" for a in auc)
                    for e, auc in enumerate(r["per_epoch"], 1)
                )
                kept = (
                    ""
                    if r["restored"] is None
                    else f"  kept e{r['best_epoch']}: "
                    + "/".join(f"{a:.4f}" for a in r["restored"])
                )
                out(
                    f"{model} {variant} seed {seed} (std*sqrt(fan_in) {r['std']:.2f}): "
                    f"{curve}{kept}"
                )
    names = " / ".join(TASKS)
    out(f"\n| model | variant | {args.score} AUC {names} after {args.epochs} epochs | kept epoch |")
    out("|---|---|---|---|")
    for (model, variant), rs in results.items():
        last = [_summary([r["per_epoch"][-1][k] for r in rs]) for k in range(len(TASKS))]
        kept = (
            "-"
            if rs[0]["restored"] is None
            else " / ".join(_summary([r["restored"][k] for r in rs]) for k in range(len(TASKS)))
        )
        out(f"| {model} | {variant} | {' / '.join(last)} | {kept} |")
    first = next(iter(results.values()))[0]
    y = data["test"]["y"].numpy().astype(np.float64)
    se = bootstrap_se(y, first["scores"])
    out(
        f"\n{args.score} split: {len(y):,} rows, positives {' / '.join(f'{int(p):,}' for p in y.sum(0))}; "
        f"bootstrap standard error of one run's AUC ({' / '.join(TASKS)}): "
        + " / ".join(f"{v:.4f}" for v in se)
    )


if __name__ == "__main__":
    main()
