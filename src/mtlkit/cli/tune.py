"""Tune one model with Optuna on your files; print and save its best settings.

Split the rows as 'mtlkit train' does (--fractions, --split-seed), run --trials
Optuna trials (TPE sampler, median pruning on the validation metric) on the
training and validation parts only (the test part is never read), then print the
best settings as a ready 'mtlkit train' command line and save them in
OUT/best.json, which 'mtlkit train --params OUT/best.json' reuses. Settings you
give (mmoe:n_experts=4, a strategy's setting, a training flag such as
--batch-size) are kept, not tuned. Rerun the same command (same --out) to
continue an interrupted study without repeating its finished trials.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from mtlkit.cli.options import (
    add_data,
    add_quiet,
    add_settings,
    command,
    flag,
    given_settings,
    plugin_listing,
)
from mtlkit.cli.train import SPLIT_PARAMS
from mtlkit.data.read_options import READ_PARAM_NAMES
from mtlkit.experiments.choices import parse_strategy
from mtlkit.experiments.config import GRID_PARAMS, TRAIN_PARAMS, CompareConfig, ModelChoice
from mtlkit.experiments.tuning_plan import (
    StudyRecord,
    best_settings,
    from_flags,
    keep_given,
    study_path,
    tune_flags,
)
from mtlkit.files import atomic_write_json, check_output_folder, new_run_dir
from mtlkit.training.settings import DEFAULT_MODEL, DEFAULT_STRATEGY, TrainConfig

TUNE_FLAGS = tune_flags("trials", tuned_by_default=True)
#: The split settings of 'mtlkit train', and the rows of built-in synthetic data.
DATA_PARAMS = (
    *SPLIT_PARAMS,
    *(p for p in GRID_PARAMS if p.name in ("n_rows", *READ_PARAM_NAMES)),
)
BEST_FILE = "best.json"


EXAMPLE = "example: mtlkit tune data/ --labels income marital --model mmoe --trials 30 --out runs/tune-mmoe"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "tune", run, __doc__, listing=plugin_listing, epilog=EXAMPLE)
    add_data(p, "+")
    p.add_argument("--labels", nargs="+", help="the label columns (one task each)")
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="the model, optionally with settings kept fixed, e.g. mmoe:n_experts=4 "
        f"(default {DEFAULT_MODEL}; see 'mtlkit models -v')",
    )
    p.add_argument(
        "--strategy",
        default=DEFAULT_STRATEGY,
        help=f"the training strategy, optionally with settings (default {DEFAULT_STRATEGY})",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="the study's folder (created, or continued if it holds this study); default: a "
        "new time-stamped folder under runs/",
    )
    add_settings(p.add_argument_group("tuning"), TUNE_FLAGS, defaults=False)
    add_settings(p.add_argument_group("data"), DATA_PARAMS, defaults=False)
    add_settings(p.add_argument_group("training settings"), TRAIN_PARAMS, defaults=False)
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    from mtlkit.experiments.backends import make_backend
    from mtlkit.experiments.cells import Cell
    from mtlkit.experiments.grid import (  # loads PyTorch
        check_data,
        load_grid_data,
        prepare_run_dir,
        tune_grid,
    )

    values: dict = {
        "data": [str(Path(d).resolve()) if Path(d).exists() else d for d in args.data],
        "labels": args.labels,
        "models": [args.model],
        "strategies": [args.strategy],
        **given_settings(args, (*DATA_PARAMS, *TRAIN_PARAMS)),
    }
    tune = from_flags(given_settings(args, TUNE_FLAGS), "trials")
    values["tune"] = keep_given(tune, list(values), "the command line")
    config = CompareConfig.from_mapping(values, "the command line")
    check_output_folder(args.out or Path("runs"), "--out")
    data = load_grid_data(config)
    check_data(config, data)
    out = args.out or new_run_dir(Path("runs"), "tune")
    prepare_run_dir(config, out)
    choice = ModelChoice.parse(args.model)
    cell = Cell(choice.model, args.strategy, config.tune.seed, choice.params, choice.label)
    local = make_backend("local")
    tune_grid(config, out, data, local, progress=not args.quiet, studies=[cell])
    record = StudyRecord.from_dict(json.loads(study_path(out, cell.study_id).read_text()))
    best = best_settings(
        record, choice.params, parse_strategy(args.strategy)[1], config.train_params()
    )
    atomic_write_json(out / BEST_FILE, best)
    tuning = best["tuning"]
    print(
        f"\nBest of {tuning['trials']} trials ({tuning['pruned']} pruned, "
        f"{tuning['time_s']:.0f} s): validation {record.monitor} {record.best_value:.4f} "
        f"(trial {record.best_trial})."
    )
    print("Tuned: " + ", ".join(f"{k}={v}" for k, v in record.settings().items()))
    print(f"Saved to {out / BEST_FILE}. Train it with:\n")
    print("  " + train_command(args, config, best))
    print(f"\nor: mtlkit train ... --params {out / BEST_FILE} --out MODEL_DIR")
    return 0


def train_command(args: argparse.Namespace, config: CompareConfig, best: dict) -> str:
    """The ``mtlkit train`` command line that trains ``best`` on the same data and split."""
    words = ["mtlkit", "train", *args.data]
    if args.labels:
        words += ["--labels", *args.labels]
    words += ["--model", choice_text(best["model"], best["model_params"])]
    words += ["--strategy", choice_text(best["strategy"], best["strategy_params"])]
    defaults = {p.name: p.default for p in (*SPLIT_PARAMS, *TrainConfig.params())}
    split = {p.name: getattr(config, p.name) for p in SPLIT_PARAMS}
    for name, value in {**split, **best["train_params"]}.items():
        if _same(value, defaults[name]):
            continue
        if isinstance(value, bool):
            words.append(flag(name) if value else flag(f"no_{name}"))
        elif isinstance(value, (list, tuple)):
            words += [flag(name), *map(str, value)]
        else:
            words += [flag(name), "none" if value is None else str(value)]
    return shlex.join([*words, "--out", "MODEL_DIR"])


def choice_text(name: str, params: dict) -> str:
    """``NAME:key=value...`` as ``--model``/``--strategy`` read it (values as YAML)."""
    return ":".join(
        [name, *(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())]
    )


def _same(value: object, default: object) -> bool:
    as_list = (list, tuple)
    if isinstance(value, as_list) and isinstance(default, as_list):
        return list(value) == list(default)
    return value == default
