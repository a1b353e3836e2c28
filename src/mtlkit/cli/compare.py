"""``mtlkit compare``: run the model x strategy x seed grid and write the comparison report."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import yaml

from mtlkit.errors import ConfigError
from mtlkit.experiments.config import METRICS, CompareConfig, load_config_file
from mtlkit.experiments.grid import CONFIG_FILE, check_data, run_grid
from mtlkit.files import atomic_write_bytes, new_run_dir
from mtlkit.reporting.report import COMMAND_FILE, build_report, table_groups

#: CLI option dest -> config key, for the settings a command line may give or override.
_OVERRIDES = {
    "data": "data",
    "labels": "labels",
    "models": "models",
    "strategies": "strategies",
    "seeds": "seeds",
    "correlations": "correlations",
    "rows": "rows",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "patience": "patience",
    "split_seed": "split_seed",
    "metric": "metric",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare models x strategies x seeds against single-task; write a report",
        description=(
            "Train every model x strategy x seed on the same train/validation/test splits,\n"
            "plus the single-task baseline, then write tidy results, a summary with 95%\n"
            "confidence intervals and paired tests against single-task, plots and a\n"
            "self-contained report.html. Rerun the same command (same --out) to resume an\n"
            "interrupted grid: finished runs are kept and skipped."
        ),
        epilog=(
            "examples:\n"
            "  mtlkit compare synthetic --correlations 0.9 0.5 "
            "--models shared_bottom mmoe --seeds 0 1 2 --epochs 10 --out runs/synth\n"
            "  mtlkit compare data/ --labels income marital --models mmoe --jobs 2\n"
            "  mtlkit compare --config grid.yaml --out runs/census\n"
            "A model may carry hyperparameters: mmoe:n_experts=4:expert_hidden=[32]."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data",
        nargs="*",
        help="data files, folders or globs, or a built-in data set name such as 'synthetic'",
    )
    p.add_argument("--config", type=Path, help="a YAML or TOML file with the grid's settings")
    p.add_argument("--labels", nargs="+", help="the label columns (one task each)")
    p.add_argument("--models", nargs="+", help="models to compare (see 'mtlkit models')")
    p.add_argument(
        "--strategies",
        nargs="+",
        help="training strategies, optionally with settings, e.g. joint uncertainty "
        "alternating:order=proportional (default: joint)",
    )
    p.add_argument("--seeds", type=int, nargs="+", help="model seeds (default: 0 1 2)")
    p.add_argument(
        "--correlations",
        type=float,
        nargs="+",
        help="synthetic data only: task correlations to compare, each in [-1, 1]",
    )
    p.add_argument("--rows", type=int, help="synthetic data only: rows (default 10000)")
    p.add_argument("--epochs", type=int, help="maximum epochs per run (default 20)")
    p.add_argument("--batch-size", type=int, help="batch size (default 512)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    p.add_argument("--patience", type=int, help="early-stopping patience (default 5; 0: off)")
    p.add_argument("--split-seed", type=int, help="seed of the data split, shared by all runs")
    p.add_argument("--metric", choices=METRICS, help="the metric compared (default roc_auc)")
    p.add_argument(
        "--dataset-path",
        type=Path,
        help="built-in data sets only: a local copy of the data (see 'mtlkit datasets')",
    )
    p.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="built-in data sets only: a loader option, e.g. group=2 (repeatable)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        help="the run folder (created, or resumed if it holds this grid); default: a new "
        "time-stamped folder under runs/",
    )
    where.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="finish the grid saved in RUN_DIR"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> CompareConfig:
    """The grid's configuration: --resume's saved one, or --config's file, overridden by the
    settings given on the command line."""
    values: dict = {}
    where = "the command line"
    if args.resume is not None:
        saved = args.resume / CONFIG_FILE
        if not saved.is_file():
            raise ConfigError(
                f"{args.resume} holds no comparison to resume ({CONFIG_FILE} missing)."
            )
        values, where = json.loads(saved.read_text()), str(saved)
    elif args.config is not None:
        values, where = load_config_file(args.config), str(args.config)
    for dest, key in _OVERRIDES.items():
        given = getattr(args, dest)
        if given not in (None, []):
            values[key] = given
    if args.data:
        values["data"] = [str(Path(d).resolve()) if Path(d).exists() else d for d in args.data]
    options = dict(values.get("dataset_options") or {})
    for item in args.dataset_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--dataset-option takes KEY=VALUE, got {item!r}.")
        options[key] = yaml.safe_load(value)
    if args.dataset_path is not None:
        options["path"] = str(args.dataset_path.resolve())
    if options:
        values["dataset_options"] = options
    return CompareConfig.from_mapping(values, where)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {args.jobs}.")
    config = resolve_config(args)
    check_data(config)
    run_dir = args.resume or args.out or new_run_dir(Path("runs"), "compare")
    run_dir.mkdir(parents=True, exist_ok=True)

    def announce(todo: int, done: int) -> None:
        skipped = f", {done} already finished (skipped)" if done else ""
        print(f"{todo + done} runs in the grid{skipped}; writing to {run_dir}", flush=True)

    command = run_dir / COMMAND_FILE
    if not command.is_file():
        atomic_write_bytes(command, shlex.join(["mtlkit", *args.argv]).encode())
    try:
        run_grid(config, run_dir, jobs=args.jobs, progress=not args.quiet, on_start=announce)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted. Finished runs are saved in {run_dir}; rerun the same command "
            f"(or 'mtlkit compare --resume {run_dir}') to continue."
        )
        raise
    report = build_report(run_dir)
    print(f"\nTest {config.metric}, mean over seeds (n.s.: not significantly different):")
    for title, table in table_groups(report.summary):
        print(f"\n{title}")
        print(table[_SHOWN].to_string(index=False))
    print()
    for sentence in report.sentences:
        print(f"- {sentence}")
    print(f"\nReport: {report.html}\nTables: {run_dir / 'results.csv'}, {run_dir / 'summary.csv'}")
    return 0


_SHOWN = [
    "rank",
    "model",
    "strategy",
    "mean ± std",
    "gain vs single-task [95% CI]",
    "vs single-task",
]
